"""The operator's pages at a spoke, through the real app: board, start, one phase at a time,
refusals shown next to the field, stale pages refused, the record in words."""

from __future__ import annotations

import re

import pytest
from batch_helpers import COUNTER, DIN_BARCODE, LOT, PATIENT, SCANNER
from spoke_pages import app, browser, sign_form, site, start_batch
from web_helpers import alerts, location, post_form, text

from mes.core.identity import mod37_2

__all__ = ["app", "site"]  # the fixtures of the spoke's pages (spoke_pages)


def test_an_operator_starts_a_batch_and_works_the_first_phase(app, site):
    olivia = browser(app, site, "olivia")
    assert "No batch is in progress" in text(olivia.get("/batches"))
    batch_id = start_batch(olivia)
    page = text(olivia.get(f"/batches/{batch_id}/phases/check_bag"))
    assert "Check the bag" in page and "Start this phase" in page
    assert "A9999 26 123456 00" in page  # the chain of identity, eye-readable, on every page
    url = f"/batches/{batch_id}/phases/check_bag"
    started = post_form(olivia, f"{url}/start", {}, page=url)
    assert location(started) == url
    saved = post_form(
        olivia,
        f"{url}/record",
        {
            "value:bag_intact": "yes",
            "equipment:0": SCANNER,
            "identity:bag_din": DIN_BARCODE,
            "identity:bag_patient": PATIENT,
        },
        page=url,
    )
    assert location(saved) == url
    signed = post_form(olivia, f"{url}/sign/perform", sign_form("olivia"), page=url)
    assert signed.status_code == 303
    page = text(olivia.get(url))
    assert "Performed — awaiting verification" in page
    assert "Olivia Tester (olivia) — Performed" in page
    board = text(olivia.get("/batches"))
    assert "SPK1-2026-0001" in board and "awaiting verification" in board


def test_an_out_of_order_phase_cannot_be_started_and_the_page_says_why(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}/phases/count_cells"
    page = text(olivia.get(url))
    assert "Start this phase" not in page
    assert "&#39;Check the bag&#39; must be done first" in page
    refused = post_form(olivia, f"{url}/start", {}, page=url)
    assert refused.status_code == 409
    assert "cannot start yet" in alerts(refused)[0]


def test_a_wrong_lot_and_a_wrong_label_are_refused_next_to_their_field(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}/phases/check_bag"
    post_form(olivia, f"{url}/start", {}, page=url)
    other = "A999926654321"
    response = post_form(
        olivia, f"{url}/record",
        {"identity:bag_din": f"{other} 00 {mod37_2(other)}", "equipment:0": "NO-SUCH"}, page=url,
    )  # fmt: skip
    assert response.status_code == 422
    messages = " ".join(alerts(response))
    assert "DIN on the bag does not match this batch's chain of identity." in messages
    assert "No instrument 'NO-SUCH' is registered at this site." in messages
    assert "Chain of identity mismatch" in text(response)  # the deviation, on the phase page


def test_a_value_outside_action_limits_is_recorded_and_raises_a_deviation(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    site.do_check_bag(batch_id)
    url = f"/batches/{batch_id}/phases/count_cells"
    post_form(olivia, f"{url}/start", {}, page=url)
    saved = post_form(
        olivia, f"{url}/record",
        {"value:volume": "200", "value:viability": "65.0", "value:viable_conc": "5.00",
         "equipment:0": COUNTER, "lot:MAT-SYRINGE": LOT,
         "comment:viability": "Bag arrived late"},
        page=url,
    )  # fmt: skip
    assert location(saved) == url
    page = text(olivia.get(url))
    assert "Recorded 65.0 % — Outside action limits" in page
    assert "SPK1-2026-0001-D1" in page and "Bag arrived late" in page
    assert f"Lot {LOT} (expires" in page and f"{COUNTER} — " in page  # what each slot scanned
    assert "Scan to replace" in page


def test_a_malformed_value_is_refused_and_nothing_is_recorded(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    site.do_check_bag(batch_id)
    url = f"/batches/{batch_id}/phases/count_cells"
    post_form(olivia, f"{url}/start", {}, page=url)
    response = post_form(
        olivia, f"{url}/record", {"value:volume": "two hundred", "value:viability": "92.25"},
        page=url,
    )  # fmt: skip
    assert response.status_code == 422
    messages = alerts(response)
    assert "Bag volume: 'two hundred' is not a number. Enter a number." in messages
    assert any("92.25 has 2 decimals; this value is recorded to 1" in m for m in messages)
    assert 'value="two hundred"' in text(response)  # what was typed stays in the field
    assert "Recorded" not in text(olivia.get(url))


def test_a_stale_page_is_refused_with_who_acted(app, site):
    olivia, oscar = browser(app, site, "olivia"), browser(app, site, "oscar")
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}/phases/check_bag"
    seen = re.search(r'name="seen_seq" value="(\d+)"', text(oscar.get(url))).group(1)
    post_form(olivia, f"{url}/start", {"seen_seq": seen}, page=url)
    refused = post_form(oscar, f"{url}/start", {"seen_seq": seen}, page=url)
    assert refused.status_code == 409
    assert "Olivia Tester (olivia) started in this phase" in alerts(refused)[0]


@pytest.mark.parametrize("seen", ["\u00b2", "1" * 5000], ids=["superscript-2", "5000-digits"])
def test_a_page_number_in_unicode_digits_or_thousands_of_digits_counts_as_none_not_a_500(
    app, site, seen
):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}/phases/check_bag"
    answer = post_form(olivia, f"{url}/start", {"seen_seq": seen}, page=url)
    assert location(answer) == url  # started, as from a form without the number (was: a 500)


def test_a_verifier_cannot_verify_their_own_phase_and_a_second_person_can(app, site):
    olivia, sam = browser(app, site, "olivia"), browser(app, site, "sam")
    batch_id = start_batch(olivia)
    url = f"/batches/{batch_id}/phases/check_bag"
    post_form(olivia, f"{url}/start", {}, page=url)
    post_form(
        olivia, f"{url}/sign/perform",
        {"value:bag_intact": "yes", "equipment:0": SCANNER, "identity:bag_din": DIN_BARCODE,
         "identity:bag_patient": PATIENT, **sign_form("olivia")},
        page=url,
    )  # fmt: skip
    assert "Verify" not in text(olivia.get(url)).split("Awaiting verification")[0][-200:]
    refused = post_form(olivia, f"{url}/sign/verify", sign_form(), page=url)
    assert refused.status_code in (403, 409)
    verified = post_form(sam, f"{url}/sign/verify", sign_form("sam"), page=url)
    assert verified.status_code == 303
    assert "Sam Tester (sam) — Verified" in text(sam.get(url))


def test_the_record_page_tells_the_ledger_in_words(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = start_batch(olivia)
    site.do_check_bag(batch_id)
    page = text(olivia.get(f"/batches/{batch_id}/record"))
    assert "created batch SPK1-2026-0001 from BATCH-TEST v1" in page
    assert "signed as performed" in page and "signed as verified" in page
    assert "scanned &#39;PAT-0001&#39; for bag_patient" in page


def test_materials_and_equipment_pages_list_the_masters(app, site):
    sam = browser(app, site, "sam")
    assert LOT in text(sam.get("/materials"))
    page = text(sam.get("/equipment"))
    assert COUNTER in page and SCANNER in page
    assert "registered" in text(sam.get(f"/equipment/{COUNTER}"))


def test_the_masters_pages_offer_their_register_forms(app, site):
    sam = browser(app, site, "sam")
    materials = sam.get("/materials").get_data(as_text=True)
    assert 'action="/materials/lots"' in materials and ">Receive</button>" in materials
    assert 'action="/materials"' in materials and ">Register</button>" in materials
    equipment = sam.get("/equipment").get_data(as_text=True)
    assert "Register an instrument" in equipment and 'name="calibration_due"' in equipment
    assert equipment.count('name="csrf_token"') >= 1
