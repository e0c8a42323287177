"""Entries appended after QA's release decision are printed in an "After release" section.

Every kind the after-release work appends (issue 17: results, the physician's notification, the
final certification, custody, logger files, the bedside check and its mismatch, the infusion,
look-back dispositions) is read by its kind's words; a kind the record has no words for is
printed by its name and whole payload, never dropped. The cover shows the certification level.
The entries are sealed as the chains seal them (mes.core.ledger.seal), in both chains.
"""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from typing import Any

import pytest
from batch_fixtures import T0
from record_fixtures import ZONE, executed_batch, ledger_json

from mes.core.canonical import content_hash
from mes.core.clock import utc_text
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, SealedEntry, seal
from mes.core.record import (
    AFTER_RELEASE_WORDS,
    BatchRecord,
    after_release_summary,
    batch_audit_lines,
    build_record,
)
from mes.pdf.readback import expected_words, missing_from, squeezed
from mes.pdf.render import record_html, render_record_pdf

SPOKE_KEY, HUB_KEY = SiteKey.generate(), SiteKey.generate()
DECIDED = T0 + timedelta(hours=5)
CONTRACT_KINDS = {
    "result_recorded", "physician_notified", "batch_certified_final", "custody_transferred",
    "logger_imported", "bedside_checked", "bedside_mismatch", "infusion_started",
    "infusion_ended", "lookback_disposition",
}  # fmt: skip
STERILITY = {
    "result": "sterility_final", "value": "no growth", "unit": None,
    "within_specification": True, "specification": "No growth after 14 days",
    "reference": "LAB-2026-0412", "method": "Ph. Eur. 2.6.27",
}  # fmt: skip
MANIFESTATION = {
    "printed_name": "Quinn Tester", "username": "quinn", "meaning": "approved",
    "record_hash": "ab" * 32, "at": utc_text(DECIDED), "terminal": "QA desk 2", "site": "HUB",
}  # fmt: skip


def _body(batch_id: str, seq: int, prev: str, site: str, kind: str, minutes: int, payload: Any):
    who = ("quinn", "Quinn Tester") if site == "HUB" else ("carla", "Carla Clinician")
    return {
        "batch": batch_id, "seq": seq, "prev": prev,
        "at": utc_text(DECIDED + timedelta(minutes=minutes)), "site": site,
        "terminal": "Ward 3" if site != "HUB" else "QA desk 2",
        "actor": {"user_id": None, "username": who[0], "name": who[1]},
        "kind": kind, "payload": payload,
    }  # fmt: skip


def chains_after_release() -> tuple[Any, list[SealedEntry], list[SealedEntry]]:
    """The executed batch, its ledger with 6 entries after the decision, and a review chain
    whose decision is followed by 4 entries (one of a kind the record has no words for)."""
    batch = executed_batch()
    ledger = list(batch.new_entries)
    batch_id, head = batch.state.id, ledger[-1]
    spoke = [
        ("custody_transferred", {"from": "SPK1 cleanroom", "to": "Ward 3", "shipper": "SH-77"}),
        (
            "logger_imported",
            {
                "phase": "ship",
                "log": "transport",
                "file_name": "logger.csv",
                "sha256": "cd" * 32,
                "rows": 96,
                "first": "2026-11-21T09:00:00Z",
                "last": "2026-11-22T08:45:00Z",
                "min": "3.1",
                "max": "6.8",
                "minutes_outside": "0",
                "excursions": [],
                "window": {"low": "2", "high": "8", "unit": "°C", "max_minutes_outside": "30"},
            },
        ),
        ("result_recorded", {**STERILITY, "result": "mycoplasma", "value": "not detected"}),
        ("bedside_mismatch", {"scanned": "W1234 26 000001 X", "expected": "W1234 26 000001 A"}),
        ("bedside_checked", {"wristband": "MRN-1", "bag": "W1234 26 000001 A"}),
        ("infusion_started", {"timer_minutes": 30}),
        ("infusion_ended", {"volume_ml": 98}),
    ]
    prev = head.hash
    for offset, (kind, payload) in enumerate(spoke, start=1):
        entry = seal(
            _body(batch_id, head.seq + offset, prev, "SPK1", kind, 10 * offset, payload), SPOKE_KEY
        )
        ledger.append(entry)
        prev = entry.hash
    hub = [
        ("batch_released", {"decision": "released", "record": {"record_head": [head.seq, head.hash]},
                            "manifestation": {**MANIFESTATION, "meaning": "released"}}),
        ("result_recorded", STERILITY),
        ("physician_notified", {"physician": "Dr Pat Physician", "how": "phone", "result": "endotoxin",
                                "told_at": "2026-11-21 14:20 CET"}),
        ("batch_certified_final", {"manifestation": MANIFESTATION}),
        ("lookback_disposition", {"lookback": "LB-1", "disposition": "no_action", "reason": "unaffected lot"}),
        ("shelf_photo_attached", {"photo": "IMG-9"}),
    ]  # fmt: skip
    review, prev = [], GENESIS
    for seq, (kind, payload) in enumerate(hub, start=1):
        entry = seal(_body(batch_id, seq, prev, "HUB", kind, 5 + 10 * (seq - 1), payload), HUB_KEY)
        review.append(entry)
        prev = entry.hash
    return batch, ledger, review


def record_after_release() -> BatchRecord:
    batch, ledger, review = chains_after_release()
    from record_fixtures import review_of

    return build_record(
        batch,
        review_of(batch),
        time_zone=ZONE,
        site_name="Spoke One",
        audit=batch_audit_lines(batch, ledger, ZONE),
        record_hash=content_hash([e.body for e in ledger]),
        generated_at=DECIDED + timedelta(hours=3),
        ledger=ledger,
        review_entries=review,
    )


def test_every_contract_kind_has_words_and_an_unknown_kind_is_named_not_dropped():
    assert set(AFTER_RELEASE_WORDS) == CONTRACT_KINDS
    record = record_after_release()
    lines = record.after_release
    assert len(lines) == 7 + 5  # every entry after the decision, the decision itself not
    assert [a.chain for a in lines].count("batch") == 7
    assert [a.at_utc for a in lines] == sorted(a.at_utc for a in lines)  # both chains, by time
    by_kind = {a.kind: a for a in lines}
    assert by_kind["result_recorded"].summary in (
        "result sterility_final recorded",
        "result mycoplasma recorded",
    )
    sterility = next(a for a in lines if a.chain == "review" and a.kind == "result_recorded")
    assert sterility.summary == "result sterility_final recorded"
    assert sterility.text == (
        "result sterility_final = no growth (within specification; specification "
        "No growth after 14 days; report LAB-2026-0412)"
    )  # as mes.core.after_release words a result, wherever it is shown
    final = by_kind["batch_certified_final"]
    assert final.summary == "final certification"
    assert "e-signature of Quinn Tester (quinn), meaning 'approved'" in final.text
    assert by_kind["physician_notified"].text.startswith(
        "treating physician Dr Pat Physician told "
    )
    assert by_kind["bedside_mismatch"].summary == "identity MISMATCH at the bedside"
    assert "scanned: W1234 26 000001 X" in by_kind["bedside_mismatch"].text
    unknown = by_kind["shelf_photo_attached"]
    assert (unknown.summary, unknown.text) == (
        "shelf photo attached",
        "shelf photo attached — photo: IMG-9",
    )
    assert unknown.line.startswith("Hub review chain HUB entry 6\t")
    assert by_kind["infusion_ended"].who == "Carla Clinician (carla)"
    assert after_release_summary({"kind": "result_recorded", "payload": {}}) == "result recorded"


def test_the_audit_trail_words_entries_of_kinds_added_after_release():
    batch, ledger, _review = chains_after_release()
    lines = batch_audit_lines(batch, ledger, ZONE)
    assert lines[-1].text == "infusion ended — volume ml: 98"
    assert lines[-4].text.startswith("identity MISMATCH at the bedside — scanned:")


def test_the_cover_shows_the_certification_level():
    record = record_after_release()
    assert record.cover.certification == "Final"  # certified final by QA
    batch, ledger, review = chains_after_release()
    batch.procedure.compiled = {
        **batch.procedure.compiled,
        "pending_results": [
            {"id": "endotoxin", "label": "Endotoxin", "specification": "< 5 EU/kg"}
        ],
    }
    from record_fixtures import review_of

    provisional = build_record(
        batch, review_of(batch), time_zone=ZONE, site_name="Spoke One", audit=(),
        record_hash="0" * 64, generated_at=DECIDED, ledger=ledger, review_entries=review[:3],
    )  # fmt: skip
    assert provisional.cover.certification == "Provisional — awaiting Endotoxin (endotoxin)"
    before = build_record(
        batch, None, time_zone=ZONE, site_name="Spoke One", audit=(), record_hash="0" * 64,
        generated_at=DECIDED, ledger=ledger[: len(batch.new_entries)],
    )  # fmt: skip
    assert (before.cover.certification, before.after_release) == ("", ())


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    record = record_after_release()
    batch, _ledger, _review = chains_after_release()
    path = tmp_path_factory.mktemp("pdf") / "record.pdf"
    pdf = render_record_pdf(record, ledger_json(batch), workers=1)
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return record, pdf, re.sub(r"\s+", " ", text)


def test_the_printed_record_shows_every_entry_after_release_with_who_when_and_what(printed):
    record, pdf, text = printed
    assert "After release" in text
    assert f"Certification {record.cover.certification}" in text
    for a in record.after_release:
        assert a.who in text and a.at_text in text
        assert squeezed(a.text) in squeezed(text), a.text  # long lines wrap in the print
    assert missing_from(expected_words(record), pdf) == []


def test_the_read_back_refuses_a_print_that_hides_the_after_release_section(printed):
    record, _pdf, _text = printed
    hidden = record_html(record).replace('class="new-page after-release"', 'style="display: none"')
    assert hidden != record_html(record)
    from mes.pdf.render import render_document_pdf

    missing = missing_from(expected_words(record), render_document_pdf(hidden))
    assert {m.what for m in missing} == {
        f"{a.chain} entry {a.seq} in the after-release section" for a in record.after_release
    }
