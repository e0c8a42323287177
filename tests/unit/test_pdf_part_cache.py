"""The layout of a record's unchanging parts is kept and reused (mes.pdf.render.PartCache).

A batch's record is append-only: after the spoke completes it, only QA's review changes the
printed record (cover, deviations' workflow, QA's audit trail, record hash). A print after a QA
action reuses the parts laid out before and must read exactly as a print made from scratch.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from batch_fixtures import T0
from record_fixtures import ZONE, executed_batch, ledger_json, sample_record

from mes.core.canonical import content_hash
from mes.core.record import batch_audit_lines, build_record
from mes.pdf.render import PartCache, render_record_pdf


def text_of(pdf: bytes, folder: Path, name: str) -> str:
    path = folder / name
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def records():
    batch = executed_batch()
    before = build_record(
        batch,
        None,
        time_zone=ZONE,
        site_name="Spoke One, Suite A",
        audit=batch_audit_lines(batch, batch.new_entries, ZONE),
        record_hash=content_hash({"before": [e.hash for e in batch.new_entries]}),
        generated_at=T0 + timedelta(hours=5),
        ledger=batch.new_entries,
    )
    return before, sample_record(batch), ledger_json(batch)


def kept(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.pdf")}


def test_a_print_after_release_reuses_the_parts_and_reads_as_one_made_from_scratch(
    records, tmp_path
):
    before, after, attachment = records
    cache = PartCache(tmp_path / "parts")
    render_record_pdf(before, attachment, workers=2, cache=cache)
    first = kept(cache.folder)
    assert first, "the static parts were not kept"
    reused = render_record_pdf(after, attachment, workers=2, cache=cache)
    assert kept(cache.folder) == first  # nothing new laid out for the unchanged parts
    fresh = render_record_pdf(after, attachment, workers=2)
    reused_text = text_of(reused, tmp_path, "reused.pdf")
    assert reused_text == text_of(fresh, tmp_path, "fresh.pdf")
    pages = reused_text.split("\f")[:-1]
    for number, page in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in page
        assert f"Record SHA-256 {after.record_hash}" in page
        assert before.record_hash not in page
    assert "Released" in pages[0]


def test_a_damaged_kept_part_is_laid_out_again_not_used(records, tmp_path):
    before, _after, attachment = records
    cache = PartCache(tmp_path / "parts")
    render_record_pdf(before, attachment, workers=2, cache=cache)
    damaged = sorted(cache.folder.glob("*.pdf"))[0]
    broken = damaged.read_bytes()[:-200] + b"x" * 200
    damaged.write_bytes(broken)
    again = render_record_pdf(before, attachment, workers=2, cache=cache)
    fresh = render_record_pdf(before, attachment, workers=2)
    assert text_of(again, tmp_path, "again.pdf") == text_of(fresh, tmp_path, "fresh.pdf")
    check = subprocess.run(
        ["qpdf", "--check", str(tmp_path / "again.pdf")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert damaged.read_bytes() != broken  # laid out again and kept in its place
