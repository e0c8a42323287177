"""The chain of custody on the spoke's batch page, through the real app (issue 17): the section
lists who holds each material and every transfer; its forms record a receipt from a courier
(signed by the logged-in user) and a hand-over to a user who signs in place; a refusal is shown
in the form it came from, as typed, and writes nothing."""

from __future__ import annotations

from batch_helpers import LOT
from spoke_pages import app, browser, site, start_batch
from support import PASSWORD
from web_helpers import alerts, post_form, text

__all__ = ["app", "site"]  # the fixtures of the spoke's pages (spoke_pages)


def receipt(**changes: str) -> dict[str, str]:
    return {
        "side": "received",
        "material": "starting_material",
        "container": "SHP-0042",
        "place": "Goods-in",
        "own_organisation": "",
        "other_organisation": "Lyon Collection Centre",
        "other_name": "Jean Courier",
        "esign_username": "olivia",
        "esign_password": PASSWORD,
        **changes,
    }


def test_the_batch_page_shows_the_chain_of_custody_and_a_scan_first_form(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    page = text(olivia.get(f"/batches/{batch_id}"))
    section = page.split('id="custody"')[1].split("</section>")[0]
    assert 'Apheresis starting material</strong>: <span class="muted">not received yet' in section
    assert 'Final product</strong>: <span class="muted">not made yet' in section
    assert "No transfer recorded." in section
    assert section.count("data-scan-form") == 2  # receive, hand over
    assert 'name="container" class="scan" data-scan' in section
    assert "scan.js" in section


def test_a_receipt_from_a_courier_is_recorded_and_the_holder_shown(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}"
    answer = post_form(olivia, f"{url}/custody", receipt(), page=url)
    assert answer.status_code == 303, alerts(answer)
    assert answer.headers["Location"].endswith("#custody")
    section = text(olivia.get(url)).split('id="custody"')[1].split("</section>")[0]
    with site.uow() as uow:
        name = uow.site.name
    assert f"held by {name}" in section
    assert "Jean Courier, Lyon Collection Centre (not a user: typed by the signer)" in section
    assert "SHP-0042" in section
    assert "Olivia Tester (olivia) — Received" in section


def test_a_hand_over_to_a_user_is_signed_by_both_at_the_same_panel(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}"
    assert post_form(olivia, f"{url}/custody", receipt(), page=url).status_code == 303
    answer = post_form(
        olivia,
        f"{url}/custody",
        receipt(
            side="handed_over", other_name="", other_organisation="", other_username="sam",
            other_secret=PASSWORD, esign_username="",
        ),
        page=url,
    )  # fmt: skip
    assert answer.status_code == 303, alerts(answer)
    section = text(olivia.get(url)).split('id="custody"')[1].split("</section>")[0]
    assert "Olivia Tester (olivia) — Handed over" in section
    assert "Sam Tester (sam) — Received" in section
    assert "as a witness at the session of Olivia Tester (olivia)" in section
    record = text(olivia.get(f"{url}/record"))
    assert "custody of the apheresis starting material in container SHP-0042" in record


def test_a_refused_transfer_is_shown_in_its_form_as_typed_and_writes_nothing(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}"
    answer = post_form(olivia, f"{url}/custody", receipt(container=" "), page=url)
    assert answer.status_code == 400
    assert (
        "The shipper or container ID is missing. Scan the ID on the shipper or container "
        "the material travels in." in alerts(answer)
    )
    page = text(answer)
    form = page.split('data-custody="received"')[1].split("</form>")[0]
    assert 'class="error refusal"' in form
    assert 'value="Jean Courier"' in form  # as typed
    assert PASSWORD not in page  # secrets are never typed back
    answer = post_form(olivia, f"{url}/custody", receipt(side="handed_over"), page=url)
    assert answer.status_code == 409
    assert any("has not been received yet" in a for a in alerts(answer))
    assert "No transfer recorded." in text(olivia.get(url))


def lot_receipt(**changes: str) -> dict[str, str]:
    return {
        "lot_number": LOT,
        "container": "DRY-SHIPPER-9",
        "from_name": "Hub Courier",
        "from_organisation": "Hub Logistics",
        "place": "Goods-in",
        "esign_username": "sam",
        "esign_password": PASSWORD,
        **changes,
    }


def test_a_lot_from_the_hub_is_received_into_custody_on_the_materials_page(app, site):
    sam = browser(app, site, "sam")
    page = text(sam.get("/materials"))
    form = page.split('id="lot-custody"')[1].split("</form>")[0]
    assert 'name="container" class="scan" data-scan' in form and "data-scan-form" in form
    answer = post_form(sam, "/materials/lots/custody", lot_receipt(), page="/materials")
    assert answer.status_code == 303, alerts(answer)
    again = post_form(sam, "/materials/lots/custody", lot_receipt(), page="/materials")
    assert again.status_code == 409
    assert any(a.startswith(f"Lot {LOT} was already received into custody") for a in alerts(again))
    assert 'value="Hub Courier"' in text(again)  # the form as typed
