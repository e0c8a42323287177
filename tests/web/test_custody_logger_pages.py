"""The custody form's logger upload on the spoke's batch page (issue 17), on both databases:
the form is multipart with a file field naming the recipe's shipment window; a file with an
excursion records the transfer with its findings and a deviation whose card shows the curve
(drawn from the entry); a refused file is shown in its form and writes nothing."""

from __future__ import annotations

import io

import pytest
from batch_helpers import spoke
from logger_helpers import custody_recipe, logger_csv
from spoke_pages import browser, start_batch
from support import PASSWORD
from web_helpers import csrf_token, text

from mes.services import batches


@pytest.fixture
def site(make_uow):
    return spoke(make_uow, recipe_text=custody_recipe())


@pytest.fixture
def app(make_app, site):
    return make_app("spoke", hub_key=site.hub_key.public)


def receive(client, url: str, content: bytes, name: str = "shipper.csv"):
    """POST the custody form as the page does: multipart, the logger file with the fields."""
    data = {
        "csrf_token": csrf_token(client, url),
        "side": "received",
        "material": "starting_material",
        "container": "SHP-0042",
        "place": "Goods-in",
        "own_organisation": "",
        "other_organisation": "Lyon Collection Centre",
        "other_name": "Jean Courier",
        "esign_username": "olivia",
        "esign_password": PASSWORD,
        "logger_file": (io.BytesIO(content), name),
    }
    return client.post(
        f"{url}/custody", data=data, content_type="multipart/form-data",
        headers={"Referer": "http://localhost" + url},
    )  # fmt: skip


def kinds(site, batch_id: str) -> list[str]:
    with site.uow() as uow:
        return [e.body["kind"] for e in batches.ledger_entries(uow, site.ctx("olivia"), batch_id)]


def test_a_shipment_file_with_an_excursion_is_recorded_with_the_curve_on_the_page(app, site):
    olivia = browser(app, site)
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}"
    section = text(olivia.get(url)).split('id="custody"')[1].split("</section>")[0]
    assert section.count('enctype="multipart/form-data"') == 2
    assert 'type="file" name="logger_file"' in section
    assert "checked against 2–8 °C, at most 0 min outside" in section
    answer = receive(olivia, url, logger_csv([5.0, 9.5, 7.0], step_minutes=10))
    assert answer.status_code == 303, text(answer)
    assert kinds(site, batch_id)[-2:] == ["custody_transferred", "deviation_raised"]
    page = text(olivia.get(url))
    section = page.split('id="custody"')[1].split("</section>")[0]
    assert "Logger file shipper.csv " in section and "highest 9.5 °C" in section
    [deviation] = site.view(batch_id).batch.state.deviations
    curve = f"/batches/{batch_id}/deviations/{deviation}/curve.svg"
    assert curve in page
    svg = olivia.get(curve)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert "outside the window" in svg.get_data(as_text=True)


def test_a_refused_shipment_file_is_shown_in_its_form_and_writes_nothing(app, site):
    olivia = browser(app, site)
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}"
    before = kinds(site, batch_id)
    bad = b"time,temperature_c\n2026-11-20T08:00:00Z,4\n2026-11-20T08:10:00Z,4,\xc2\xb0F\n"
    answer = receive(olivia, url, bad)
    assert answer.status_code in (400, 409, 422), answer.status_code
    form = text(answer).split('data-custody="received"')[1].split("</form>")[0]
    assert "The logger file is refused at line 3" in form
    assert kinds(site, batch_id) == before
