"""The hub's decision at the spoke: the board, the batch page and the final label.

On SQLite and on PostgreSQL, a batch run at spoke SPK1 is reviewed at the hub and the review
chain reaches the spoke through its real sync client. The spoke's board (with closed batches
shown) says "Released by … at …" or "Rejected: <reason>"; the batch page shows the hub's
decision and its closure of each deviation; the final label is refused before the release (and
for a rejected batch) and, once released, shows the batch number, the DIN in its eye-readable
form, who released it, a Code 128 bar code of the DIN's ISBT 128 data and a QR code. Printing it
is recorded in the spoke's audit trail.
"""

from __future__ import annotations

import html
import re

import pytest
from review_network import batch_at_the_hub, decide, hub_client, spoke_app
from sqlalchemy import select
from sync_sites import net
from web_helpers import client_of, login, post_form, text

from mes.core.identity import mod37_2
from mes.core.review import Decision
from mes.store.models import AuditEntry
from mes.store.models import Batch as BatchRow
from mes.sync.client import sync_round


@pytest.fixture
def batch(net, tmp_path) -> str:
    return batch_at_the_hub(net, tmp_path)


@pytest.fixture
def pull(net, make_app):
    """One sync round of the spoke against the real hub app (what the background loop does)."""
    hub = make_app("hub")

    def round_() -> None:
        client = hub_client(net, hub)
        report = sync_round(client.runtime, client)
        assert report.refused == [], report.refused

    return round_


@pytest.fixture
def browser(net):
    client = client_of(spoke_app(net))
    assert login(client, "olivia").status_code == 302
    return client


def identity_of(net, batch_id: str) -> tuple[dict, str]:
    """The batch's DIN (as stored: din, flags, check) and patient identifier at the spoke."""
    with net.spoke_uow() as uow:
        coi = uow.session.get(BatchRow, batch_id).chain_of_identity
    return coi["din"], coi["patient_id"]


def words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_label_is_refused_until_the_hub_releases_the_batch_then_shows_the_identity(
    net, batch, pull, browser
):
    before = browser.get(f"/batches/{batch}/label")
    assert before.status_code == 409
    assert "not been released by QA at the hub" in words(text(before))
    assert "<svg" not in text(before)
    pull()  # nothing decided yet: still refused
    assert browser.get(f"/batches/{batch}/label").status_code == 409

    decide(net, batch, Decision.RELEASED)
    pull()
    page = browser.get(f"/batches/{batch}/label")
    assert page.status_code == 200
    body = text(page)
    shown = words(body)
    number = re.search(r'data-batch="([^"]+)"', body)[1]
    assert number.startswith("SPK1-") and number in shown
    din, patient = identity_of(net, batch)
    d, flags = din["din"], din["flags"] or "00"
    eye_readable = f"{d[:5]} {d[5:7]} {d[7:]} {flags} {mod37_2(d)}"
    assert eye_readable in shown  # the DIN as ISBT 128 prints it, with the check character
    assert patient in shown
    assert "RELEASED by Quinn Hub (quinn)" in shown
    barcode = re.search(r'<figure class="din-barcode">(<svg .*?</svg>)', body, re.S)
    assert barcode is not None and 'class="code128"' in barcode[1]
    assert barcode[1].count('fill="black"') > 20  # bars, drawn without inline styles (CSP)
    assert "style=" not in barcode[1]
    assert f"={d}{flags}" in shown  # '=' + the 13 characters + the flags, under the bar code
    assert re.search(r'<svg viewBox="[^"]+" class="matrix"', body)
    assert "@page" in browser.get("/static/label.css").get_data(as_text=True)
    with net.spoke_uow() as uow:
        printed = list(
            uow.session.execute(
                select(AuditEntry).where(AuditEntry.action == "final label printed")
            ).scalars()
        )
    assert printed == []  # looking at it is not printing it
    # ... and the preview does not print (its print style shows only a note): only the Print
    # button's answer, which records the print, is the printable label.
    assert 'class="final-label preview"' in body and "preview-note" in body
    css = browser.get("/static/label.css").get_data(as_text=True)
    assert ".final-label.preview { display: none; }" in css

    printing = post_form(browser, f"/batches/{batch}/label", {}, page=f"/batches/{batch}/label")
    assert printing.status_code == 200 and 'data-autoprint="1"' in text(printing)
    assert 'class="final-label"' in text(printing) and "preview-note" not in text(printing)
    with net.spoke_uow() as uow:
        printed = list(
            uow.session.execute(
                select(AuditEntry).where(AuditEntry.action == "final label printed")
            ).scalars()
        )
        assert [(e.record_type, e.record_id) for e in printed] == [("batch", batch)]
        assert printed[0].new["batch"] == number and printed[0].new["din"] == eye_readable


def test_the_board_and_batch_page_show_the_release_and_the_hubs_deviation_closures(
    net, batch, pull, browser
):
    decide(net, batch, Decision.RELEASED)
    board = words(text(browser.get("/batches?all=1")))
    assert "Released by" not in board  # not synced yet
    pull()
    board = words(text(browser.get("/batches?all=1")))
    assert re.search(r"Released by Quinn Hub at \d{4}-\d\d-\d\d \d\d:\d\d", board), board
    page = browser.get(f"/batches/{batch}")
    shown = words(text(page))
    assert "QA at the hub" in shown and "Released by Quinn Hub (quinn)" in shown
    closures = re.search(r'<table class="hub-deviations">.*?</table>', text(page), re.S)
    assert closures is not None
    row = words(closures[0])
    assert "minor" in row and "Printer ribbon worn" in row and "CAPA-0042" in row
    assert "Quinn Hub (quinn) at" in row  # closed by
    assert f'href="/batches/{batch}/label"' in text(page)


def test_a_rejected_batch_shows_the_reason_and_gets_no_label(net, batch, pull, browser):
    decide(net, batch, Decision.REJECTED, reason="Sterility test failed")
    pull()
    board = words(text(browser.get("/batches?all=1")))
    assert "Rejected: Sterility test failed" in board
    assert "Released by" not in board
    shown = words(text(browser.get(f"/batches/{batch}")))
    assert "Rejected by Quinn Hub (quinn)" in shown and "Sterility test failed" in shown
    label = browser.get(f"/batches/{batch}/label")
    assert label.status_code == 409
    assert "rejected by QA at the hub" in words(text(label))
    assert post_form(browser, f"/batches/{batch}/label", {}).status_code == 409


__all__ = ["net"]  # the fixture, imported from sync_sites


def test_no_label_is_issued_from_a_spoke_record_that_fails_verification(net, batch, pull, browser):
    from test_batch_release import alter_payload, drop_update_trigger

    from mes.store.models import BatchEntry

    decide(net, batch, Decision.RELEASED)
    pull()
    assert browser.get(f"/batches/{batch}/label").status_code == 200
    # Someone edits the patient identifier in the spoke's stored record behind the application.
    drop_update_trigger(net.spoke_engine, "batch_entries")
    with net.spoke_uow() as uow:
        created = uow.session.get(BatchEntry, (batch, 1)).payload
    coi = {**created["chain_of_identity"], "patient_id": "PAT-SOMEONE-ELSE"}
    alter_payload(net.spoke_engine, BatchEntry, batch, 1, chain_of_identity=coi)
    page = browser.get(f"/batches/{batch}/label")
    assert page.status_code == 409
    shown = words(text(page))
    assert "fails verification" in shown and "No final label is issued" in shown
    assert "PAT-SOMEONE-ELSE" not in shown and "<svg" not in text(page)
