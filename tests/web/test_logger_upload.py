"""The logger file uploaded on its phase page (issue 17), on both databases: the upload form,
the import with its curve on the page, an excursion's deviation card with the curve, and a
refused file shown at the upload with nothing written."""

from __future__ import annotations

import io

import pytest
from batch_helpers import DIN, spoke
from logger_helpers import logger_csv, logger_recipe
from spoke_pages import browser, start_batch
from web_helpers import csrf_token, text

from mes.core.identity import mod37_2
from mes.services import batches


@pytest.fixture
def site(make_uow):
    return spoke(make_uow, recipe_text=logger_recipe())


@pytest.fixture
def app(make_app, site):
    return make_app("spoke", hub_key=site.hub_key.public)


def kinds(site, batch_id: str) -> list[str]:
    with site.uow() as uow:
        return [e.body["kind"] for e in batches.ledger_entries(uow, site.ctx("olivia"), batch_id)]


def upload(client, url: str, content: bytes, name: str = "trip.csv"):
    """POST the file as the page's upload form does (multipart, with the page's CSRF token)."""
    data = {"csrf_token": csrf_token(client, url), "logger_file": (io.BytesIO(content), name)}
    return client.post(
        f"{url}/logger/transport_logger", data=data, content_type="multipart/form-data",
        headers={"Referer": "http://localhost" + url},
    )  # fmt: skip


def test_the_phase_page_offers_the_upload_and_shows_the_imported_curve(app, site):
    olivia = browser(app, site)
    batch_id = start_batch(olivia, din=f"{DIN} 00 {mod37_2(DIN)}")
    url = f"/batches/{batch_id}/phases/check_bag"
    page = text(olivia.get(url))
    assert 'enctype="multipart/form-data"' in page and 'form="logger-transport_logger"' in page
    assert "Transport temperature logger is not imported" in page
    # the values the logger fills are shown, never typed: no field of the phase form sends them
    assert 'name="value:transport_max"' not in page and 'id="f-transport_max"' in page
    assert 'placeholder="from the Transport temperature logger"' in page
    answer = upload(olivia, url, logger_csv([3.8, 4.4, 6.1]))
    assert answer.status_code == 303, text(answer)
    assert kinds(site, batch_id)[-4:] == [
        "phase_started", "logger_imported", "value_recorded", "value_recorded",
    ]  # fmt: skip
    page = text(olivia.get(url))
    assert (
        "Imported logger file &#39;trip.csv&#39;" in page
        or "Imported logger file 'trip.csv'" in page
    )
    curve = olivia.get(f"{url}/logger/transport_logger/curve.svg")
    assert curve.status_code == 200 and curve.mimetype == "image/svg+xml"
    assert curve.get_data(as_text=True).startswith("<svg")


def test_an_excursion_shows_its_deviation_with_the_curve(app, site):
    olivia = browser(app, site)
    batch_id = start_batch(olivia, din=f"{DIN} 00 {mod37_2(DIN)}")
    url = f"/batches/{batch_id}/phases/check_bag"
    assert upload(olivia, url, logger_csv([5, 9.5, 12.5, 7])).status_code == 303
    page = text(olivia.get(url))
    assert "Temperature excursion in transport" in page
    assert page.count(f"{url}/logger/transport_logger/curve.svg") == 2  # the card and the deviation


def test_a_refused_file_is_shown_at_the_upload_and_nothing_is_written(app, site):
    olivia = browser(app, site)
    batch_id = start_batch(olivia, din=f"{DIN} 00 {mod37_2(DIN)}")
    url = f"/batches/{batch_id}/phases/check_bag"
    before = kinds(site, batch_id)
    bad = b"time,temperature_c\n2026-11-20T08:00:00Z,4\n<script>alert(1)</script>,4\n"
    answer = upload(olivia, url, bad, name="<b>trip</b>.csv")
    assert answer.status_code == 422
    page = text(answer)
    assert "The logger file is refused at line 3" in page
    assert "<script>alert(1)</script>" not in page
    assert kinds(site, batch_id) == before
