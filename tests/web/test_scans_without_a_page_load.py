"""The phase page's scans sent one at a time by its script (``Accept: application/json``), on
both databases: the same service call as the plain form, the same ledger entries, a refusal a
4xx JSON answer with its message for its field; the start form's refusals at their fields; a
refused signature at its button or at the comment box that needs filling (issue 15)."""

from __future__ import annotations

import html
import re

import pytest
from batch_helpers import COUNTER, DIN, LOT, OTHER_DIN, PATIENT, SCANNER
from spoke_pages import app, browser, site, start_batch
from support import PASSWORD
from web_helpers import alerts, post_form, text

from mes.core.identity import mod37_2
from mes.services import batches

__all__ = ["app", "site"]  # the fixtures of the spoke's pages (spoke_pages)

JSON = {"Accept": "application/json"}


def started_phase(client, din: str = DIN, *, start: bool = True) -> tuple[str, str]:
    """A new batch (DIN ``din``) with its first phase started: (batch ID, phase URL)."""
    batch_id = start_batch(client, din=f"{din} 00 {mod37_2(din)}")
    url = f"/batches/{batch_id}/phases/check_bag"
    if start:
        post_form(client, f"{url}/start", {}, page=url)
    return batch_id, url


def scan(client, url: str, field: str, code: str, seen: int | None = None):
    """The page's script sending one scan, as a scanner's Enter does."""
    data = {field: code} | ({"seen_seq": str(seen)} if seen is not None else {})
    return post_form(client, f"{url}/record", data, page=url, headers=JSON)


def ledger(site, batch_id: str) -> list[tuple[str, dict]]:
    """The batch's entries after its first phase started, as (kind, payload), the batch's
    number taken out (deviation IDs carry it)."""
    with site.uow() as uow:
        entries = batches.ledger_entries(uow, site.ctx("olivia"), batch_id)
    number = entries[0].body["payload"]["number"]
    kinds = [e.body["kind"] for e in entries]
    after = kinds.index("phase_started") + 1
    return [
        (
            e.body["kind"],
            {
                k: v.replace(number, "N") if isinstance(v, str) else v
                for k, v in e.body["payload"].items()
            },
        )
        for e in entries[after:]
    ]


def test_an_accepted_scan_is_answered_in_json_with_the_slot_as_the_page_shows_it(app, site):
    olivia = browser(app, site)
    _, url = started_phase(olivia)
    answer = scan(olivia, url, "equipment:0", SCANNER)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["ok"] is True and body["recorded"] == 1 and body["fields"] == {}
    assert body["message"] is None
    slot = re.search(r'<label[^>]*data-slot="equipment:0".*?</label>', body["page"], re.S).group(0)
    assert f"{SCANNER} — " in slot and "✓" in slot  # what the plain page shows after a save
    assert f'name="seen_seq" value="{body["seen_seq"]}"' in body["page"]
    page = text(olivia.get(url))
    assert f"{SCANNER} — " in page and "Scan to replace" in page


@pytest.mark.parametrize(
    ("field", "code", "message"),
    [
        ("equipment:0", "NO-SUCH", "No instrument 'NO-SUCH' is registered at this site."),
        (
            "identity:bag_patient",
            "PAT-9999",
            "Patient ID on the bag does not match this batch's chain of identity.",
        ),
        ("lot:MAT-SYRINGE", "NO-SUCH-LOT", "NO-SUCH-LOT"),
    ],
    ids=["unknown-instrument", "identity-mismatch", "unknown-lot"],
)
def test_a_refused_scan_is_a_4xx_json_answer_with_its_message_for_its_field(
    app, site, field, code, message
):
    olivia = browser(app, site)
    batch_id, url = started_phase(olivia, start=not field.startswith("lot:"))
    if field.startswith("lot:"):  # the lot is scanned in the counting phase
        site.do_check_bag(batch_id)
        url = f"/batches/{batch_id}/phases/count_cells"
        post_form(olivia, f"{url}/start", {}, page=url)
    answer = scan(olivia, url, field, code)
    assert 400 <= answer.status_code < 500
    body = answer.get_json()
    assert body["ok"] is False
    assert message in body["fields"][field] and message in body["message"]
    slot = re.search(rf'<label[^>]*data-slot="{field}".*?</label>', body["page"], re.S).group(0)
    assert 'class="field-error refusal" role="alert"' in slot and message in html.unescape(slot)
    assert f'value="{code}"' not in slot  # cleared: the next scan lands in an empty field


def test_a_scan_from_a_stale_page_is_refused_in_json_at_its_field(app, site):
    olivia, oscar = browser(app, site), browser(app, site, "oscar")
    _, url = started_phase(olivia)
    seen = int(re.search(r'name="seen_seq" value="(\d+)"', text(oscar.get(url))).group(1))
    scan(olivia, url, "equipment:0", SCANNER, seen)
    answer = scan(oscar, url, "identity:bag_patient", PATIENT, seen)
    assert answer.status_code == 409
    body = answer.get_json()
    assert "Olivia Tester (olivia)" in body["fields"]["identity:bag_patient"]
    assert body["seen_seq"] > seen  # the page's next scan goes with the phase as it is now


def test_scans_sent_one_at_a_time_make_the_same_ledger_entries_as_the_plain_form(app, site):
    olivia = browser(app, site)
    by_form, form_url = started_phase(olivia, DIN)
    by_script, script_url = started_phase(olivia, OTHER_DIN)
    scans = [  # one instrument serves one batch at a time: the accepted scans are labels
        ("equipment:0", "NO-SUCH"),
        ("identity:bag_patient", "PAT-9999"),
        ("identity:bag_patient", PATIENT),
    ]
    for field, code in scans:
        post_form(olivia, f"{form_url}/record", {field: code}, page=form_url)
        scan(olivia, script_url, field, code)
    assert ledger(site, by_script) == ledger(site, by_form)
    kinds = [kind for kind, _ in ledger(site, by_form)]
    assert {"scan_refused", "deviation_raised", "identity_checked"} <= set(kinds), kinds


def test_a_refused_start_names_each_identifier_at_its_field_and_focuses_the_first(app, site):
    olivia = browser(app, site)
    refused = post_form(
        olivia, "/batches/new", {"recipe": "BATCH-TEST", "coi:din": f"{DIN} 00 {mod37_2(DIN)}"},
        page="/batches/new?recipe=BATCH-TEST",
    )  # fmt: skip
    assert refused.status_code == 422
    page = text(refused)
    patient = re.search(
        r'<label class="field">\s*<span>Patient identifier</span>.*?</label>', page, re.S
    )
    assert patient and "a value is required" in patient.group(0)
    assert "autofocus" in patient.group(0)  # the scanner's next code lands here, not in the DIN
    din = re.search(r'<input name="coi:din"[^>]*>', page).group(0)
    assert "autofocus" not in din and 'aria-invalid="false"' in din


def test_a_refused_signature_is_shown_at_its_button(app, site):
    olivia = browser(app, site)
    _, url = started_phase(olivia)
    whole = {"value:bag_intact": "yes", "equipment:0": SCANNER,
             "identity:bag_din": f"={DIN}00", "identity:bag_patient": PATIENT}  # fmt: skip
    refused = post_form(
        olivia, f"{url}/sign/perform", {**whole, "esign_password": "wrong-password"}, page=url
    )
    assert refused.status_code == 401
    page = text(refused)
    bar = re.search(r'<div class="actions sticky-actions">.*?</div>', page, re.S).group(0)
    assert 'class="error refusal" role="alert"' in bar
    assert "The user ID or password is wrong." in bar
    assert page.count('role="alert"') == 1  # not repeated at the top of the page


def test_a_deviation_without_its_comment_refuses_the_signature_at_the_comment_box(app, site):
    olivia = browser(app, site)
    batch_id, _ = started_phase(olivia, start=False)
    site.do_check_bag(batch_id)
    url = f"/batches/{batch_id}/phases/count_cells"
    post_form(olivia, f"{url}/start", {}, page=url)
    form = {"value:volume": "200", "value:viability": "65.0", "value:viable_conc": "5.00",
            "equipment:0": COUNTER, "lot:MAT-SYRINGE": LOT}  # fmt: skip
    post_form(olivia, f"{url}/record", form, page=url)
    page = text(olivia.get(url))
    assert "Add the comment" not in page  # one box per deviation: the one under the value
    assert 'href="#comment-viability"' in page
    refused = post_form(
        olivia, f"{url}/sign/perform", {**form, "esign_password": PASSWORD}, page=url
    )
    assert 400 <= refused.status_code < 500
    box = re.search(r'<label class="field deviation-comment" id="comment-viability".*?</label>',
                    text(refused), re.S).group(0)  # fmt: skip
    assert "needs a comment" in box and 'role="alert"' in box
    typed = "Bag arrived late; QA informed."
    signed = post_form(
        olivia, f"{url}/sign/perform",
        {**form, "comment:viability": typed, "esign_password": PASSWORD}, page=url,
    )  # fmt: skip
    assert signed.status_code == 303, alerts(signed)
    (deviation,) = site.view(batch_id).batch.state.deviations.values()
    assert deviation.comment == typed
