"""A witness's signature given at another user's session says so on the printed record, in the
words the operator's record page uses (mes.core.record.witness_words; issue 15)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from datetime import timedelta

import pytest
from batch_fixtures import (
    OLIVIA,
    SAM,
    T0,
    TERMINAL,
    Action,
    fill_count,
    new_batch,
    perform_check_bag,
    sign,
)
from record_fixtures import ledger_json

from mes.core.batch import Batch
from mes.core.record import BatchRecord, batch_audit_lines, build_record, witness_words
from mes.pdf.readback import expected_words
from mes.pdf.render import record_html, render_record_pdf

ZONE = "Europe/Berlin"
SAM_AT_OLIVIAS_PANEL = replace(SAM, in_session_of=OLIVIA.actor)
IN_PLACE = "as a witness at the session of Olivia Tester (olivia)"


def witnessed_batch() -> Batch:
    """Olivia performs two phases; Sam verifies one and acknowledges a deviation at her panel."""
    batch = new_batch()
    perform_check_bag(batch)
    sign(
        batch, Action.VERIFY, SAM_AT_OLIVIAS_PANEL, T0 + timedelta(minutes=1), phase_id="check_bag"
    )
    at = T0 + timedelta(minutes=10)
    fill_count(batch, at)
    batch.report_deviation("Syringe dropped.", OLIVIA, at, TERMINAL, phase_id="count_cells")
    deviation = next(iter(batch.state.deviations))
    sign(batch, Action.ACKNOWLEDGE, SAM_AT_OLIVIAS_PANEL, at, deviation_id=deviation)
    return batch


def record_of(batch: Batch) -> BatchRecord:
    return build_record(
        batch,
        None,
        time_zone=ZONE,
        site_name="Spoke One",
        audit=batch_audit_lines(batch, batch.new_entries, ZONE),
        record_hash="0" * 64,
        generated_at=T0 + timedelta(hours=1),
        ledger=batch.new_entries,
    )


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    batch = witnessed_batch()
    record = record_of(batch)
    path = tmp_path_factory.mktemp("pdf") / "record.pdf"
    path.write_bytes(render_record_pdf(record, ledger_json(batch), workers=1))
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return record, re.sub(r"\s+", " ", text)


def test_the_record_marks_only_the_signatures_given_in_place():
    record = record_of(witnessed_batch())
    check_bag = record.units[0].operations[0].phases[0]
    performed, verified = check_bag.signatures
    assert performed.witness == "" and verified.witness == IN_PLACE
    assert record.deviations[0].acknowledgement.witness == IN_PLACE
    assert witness_words(OLIVIA.actor.as_dict()) == IN_PLACE  # one place for the words


def test_the_printed_record_says_the_verification_was_given_at_the_operators_session(printed):
    record, text = printed
    assert re.search(r"Sam Tester \(sam\) — Verified — [^·]*, " + re.escape(IN_PLACE), text)
    assert re.search(
        r"Acknowledged: Sam Tester \(sam\) — Acknowledged — [^·]*, " + re.escape(IN_PLACE), text
    )
    assert not re.search(r"Olivia Tester \(olivia\) — Performed — [^·]*, as a witness", text)
    assert any(e.text == IN_PLACE for e in expected_words(record))  # read back before signing
    assert IN_PLACE in record_html(record)
