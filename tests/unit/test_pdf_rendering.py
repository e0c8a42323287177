"""The printed executed batch record (mes.pdf.render): a PDF/A-3b a person and a machine can read.

A small record is rendered in one piece and in two parts laid out in parallel (joined, page
numbers laid over); both must pass ``qpdf --check``, show every value and signature, carry
"page X of Y" and the record hash on every page, embed the ledger byte for byte and declare
PDF/A-3b. The pages are written to ``test-artifacts/pdf-record-*.png`` to look at.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pikepdf
import pytest
from record_fixtures import executed_batch, ledger_json, sample_record

from mes.core.record import BatchRecord
from mes.pdf.render import record_html, render_record_pdf

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def sample() -> tuple[BatchRecord, bytes]:
    batch = executed_batch()
    return sample_record(batch), ledger_json(batch)


@pytest.fixture(scope="module", params=[1, 2], ids=["one-piece", "two-parts"])
def rendered(request: pytest.FixtureRequest, sample, tmp_path_factory) -> Path:
    record, attachment = sample
    path = tmp_path_factory.mktemp("pdf") / f"record-{request.param}.pdf"
    path.write_bytes(render_record_pdf(record, attachment, workers=request.param))
    return path


def page_texts(path: Path) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return text.split("\f")[:-1]


def test_qpdf_finds_no_error(rendered: Path):
    check = subprocess.run(["qpdf", "--check", str(rendered)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No syntax or stream encoding errors found" in check.stdout


def test_every_page_has_its_number_of_the_total_the_batch_and_the_record_hash(
    rendered: Path, sample
):
    record, _ = sample
    pages = page_texts(rendered)
    assert len(pages) >= 4
    for number, text in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in text
        assert f"Record SHA-256 {record.record_hash}" in text
        assert f"Batch {record.cover.batch_number} · {record.cover.product}" in text


def test_the_text_shows_the_batch_every_value_and_every_manifestation(rendered: Path, sample):
    record, _ = sample
    text = re.sub(r"\s+", " ", " ".join(page_texts(rendered)))
    assert record.cover.batch_number in text
    for label, value in record.cover.chain_of_identity:
        assert f"{label} {value}" in text
    for unit in record.units:
        for op in unit.operations:
            for ph in op.phases:
                assert f"{ph.number}. {ph.name} — {ph.status_title}" in text
                for v in ph.values:
                    assert (
                        f"{v.label}{' (calculated)' if v.calculated else ''} = {v.value_text}"
                        in text
                    )
                    for change in v.changes:
                        assert f"{change.original} → {change.new} — reason: {change.reason}" in text
                for s in ph.signatures:
                    assert s.text in text
    for s in record.cover.batch_signatures:
        assert s.text in text
    assert record.cover.release is not None and record.cover.release.signature is not None
    assert record.cover.release.signature.text in text
    (deviation,) = record.deviations
    assert deviation.acknowledgement is not None and deviation.acknowledgement.text in text
    assert "Outside alert limits (acceptable ≥ 70 %; alert below 85 %; target 95 %)" in text
    for line in record.audit:
        assert f"{line.at_text} {line.who}" in text


def test_the_ledger_is_embedded_byte_for_byte_as_the_records_source(rendered: Path, sample):
    _, attachment = sample
    with pikepdf.open(rendered) as pdf:
        files = pdf.attachments
        assert list(files) == ["batch-record.json"]
        spec = files["batch-record.json"]
        assert spec.get_file().read_bytes() == attachment
        assert spec.obj.AFRelationship == pikepdf.Name.Source
        assert spec.get_file().mime_type == "application/json"
        assert [f.UF for f in pdf.Root.AF] == ["batch-record.json"]


def test_the_pdf_declares_pdf_a_3b_with_an_output_intent_and_embedded_fonts(rendered: Path):
    with pikepdf.open(rendered) as pdf:
        metadata = pdf.open_metadata()
        assert metadata["pdfaid:part"] == "3"
        assert metadata["pdfaid:conformance"] == "B"
        assert pdf.Root.OutputIntents[0].S == pikepdf.Name.GTS_PDFA1
        fonts = subprocess.run(
            ["pdffonts", str(rendered)], capture_output=True, text=True, check=True
        ).stdout.splitlines()[2:]
        assert fonts
        assert all(re.search(r"\byes\s+yes\s+(yes|no)\s+\d+", row) for row in fonts), fonts
        assert len(pdf.open_outline().root) >= 3  # cover sections, unit procedures, audit trail


def test_the_pages_are_drawn_for_a_person_to_look_at(rendered: Path):
    ARTIFACTS.mkdir(exist_ok=True)
    prefix = ARTIFACTS / f"pdf-record-{rendered.stem}"
    for old in ARTIFACTS.glob(f"{prefix.name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(rendered), str(prefix)], check=True)
    drawn = sorted(ARTIFACTS.glob(f"{prefix.name}-*.png"))
    assert len(drawn) == len(page_texts(rendered))
    assert all(p.stat().st_size > 2000 for p in drawn)


def test_the_html_for_a_browser_carries_header_and_footer_in_its_page_rules(sample):
    record, _ = sample
    html = record_html(record)
    assert '"page " counter(page) " of " counter(pages)' in html
    assert f'"Record SHA-256 {record.record_hash}"' in html
    assert html.count('class="a"') == len(record.audit)


def test_a_file_attached_after_the_layout_is_associated_as_weasyprint_associates_it():
    """``attach`` (a report's CSV, after the parts are joined) writes what WeasyPrint writes."""
    import io
    from datetime import UTC, datetime

    from mes.pdf.render import Embedded, attach, render_document_pdf

    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    files = [
        Embedded(b"site,value\nSPK1,1.5\n", "data.csv", "The data", relationship="Data"),
        Embedded(b'{"a":1}', "about.json", "What it covers", relationship="Supplement"),
    ]
    html = "<p>A document</p>"
    by_weasyprint = pikepdf.open(io.BytesIO(render_document_pdf(html, files, at)))
    attached = pikepdf.open(io.BytesIO(attach(render_document_pdf(html), files, at)))

    def described(pdf: pikepdf.Pdf) -> list[tuple]:
        names = pdf.Root.Names.EmbeddedFiles.Names
        return [
            (
                str(names[i]),
                str(spec.F),
                str(spec.UF),
                str(spec.Desc),
                str(spec.AFRelationship),
                str(spec.EF.F.Subtype),
                dict(spec.EF.F.Params.items()),
                spec.EF.F.read_bytes(),
            )
            for i in range(0, len(names), 2)
            for spec in [names[i + 1]]
        ]

    # the same files, described alike (the name tree in name order, as PDF requires)
    assert described(attached) == sorted(described(by_weasyprint))
    assert sorted(str(f.UF) for f in attached.Root.AF) == ["about.json", "data.csv"]
    assert attached.open_metadata()["pdfaid:part"] == "3"
