"""What the printed record says, read back with poppler's tools (issue 15, item 12).

The instructions are printed whole and rendered from their Markdown (bold, lists; a recipe's raw
HTML shows as text); the cover's values stand in one column; the supervisor's completion of the
batch does not print as "Reviewed", QA's review of an exception does.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from record_fixtures import executed_batch, ledger_json, sample_record

from mes.core.record import BatchRecord
from mes.pdf.render import record_html, render_record_pdf

LAST_WORDS = "then close the lid and note the time on the bag label."
INSTRUCTIONS = (
    "Count the cells **twice**, each time from a fresh sample of the bag; the two counts must "
    "agree within 10 %.\n\n"
    "1. Scan the **ISBT 128 DIN** on the bag.\n"
    "2. Mix the bag gently by inversion ten times, take 0.5 mL with the syringe.\n"
    "3. Load the counter's slide and read viability and concentration.\n\n"
    "Do not use a sample older than 15 minutes: the viability falls while it waits. "
    "<script>alert('x')</script> If the counts disagree, count a third sample, " + LAST_WORDS
)


def _pdf_text(path: Path) -> str:
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return re.sub(r"\s+", " ", out)


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> tuple[BatchRecord, Path]:
    batch = executed_batch()
    batch.procedure.phases["count_cells"].spec["instructions"] = INSTRUCTIONS
    record = sample_record(batch)
    cover = replace(
        record.cover,
        chain_of_identity=(
            *record.cover.chain_of_identity,
            ("Patient date of birth", "1984-03-07"),
        ),
    )
    record = replace(record, cover=cover)
    path = tmp_path_factory.mktemp("pdf") / "record.pdf"
    path.write_bytes(render_record_pdf(record, ledger_json(batch), workers=1))
    return record, path


def test_the_instructions_are_printed_whole_never_cut_with_an_ellipsis(printed):
    record, path = printed
    phase = next(
        p for u in record.units for o in u.operations for p in o.phases if p.id == "count_cells"
    )
    assert phase.instructions == INSTRUCTIONS  # the record keeps the whole text
    text = _pdf_text(path)
    assert LAST_WORDS in text
    assert "Do not use a sample older than 15 minutes" in text
    assert "agree within 10 %." in text


def test_the_instructions_are_rendered_from_markdown_bold_and_lists_and_raw_html_is_text(printed):
    record, path = printed
    text = _pdf_text(path)
    assert "**" not in text
    assert "Scan the ISBT 128 DIN on the bag." in text
    html = record_html(record)
    assert "<strong>ISBT 128 DIN</strong>" in html
    assert "<ol>" in html and "<li>Mix the bag gently" in html
    # a recipe's raw HTML is escaped: it shows as text and never becomes markup
    assert "<script>" not in html
    assert "&lt;script&gt;alert" in html
    assert "<script>alert('x')</script>" in text


def test_the_supervisors_completion_does_not_print_as_reviewed_as_qas_exception_review_does(
    printed,
):
    record, path = printed
    completion = [s for s in record.cover.batch_signatures if s.user_id == "sam"]
    assert [s.meaning for s in completion] == ["Completed"]
    (reviewed,) = record.reviewed
    assert reviewed.signature.meaning == "Reviewed"
    text = _pdf_text(path)
    assert "Sam Tester (sam) — Completed —" in text
    assert "Sam Tester (sam) — Reviewed" not in text
    assert "Quinn Tester (quinn) — Reviewed —" in text


def _x_of(path: Path, word: str) -> float:
    """Where ``word`` starts on the first page, in points from the left edge."""
    boxes = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(rf'<word xMin="([\d.]+)"[^>]*>{re.escape(word)}</word>', boxes)
    assert match, f"{word} is not on the cover"
    return float(match.group(1))


def test_the_covers_values_and_the_chain_of_identity_stand_in_one_column(printed):
    _, path = printed
    column = _x_of(path, "b-0001")  # the batch ID's value
    for value in ("PAT-0001", "1984-03-07", "Complete"):
        assert abs(_x_of(path, value) - column) < 0.5, value
