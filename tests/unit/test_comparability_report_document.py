"""The comparability report as a document: HTML → PDF/A-3b → the hub's signature, read by real tools.

Built from a ComparabilityView made without a database (tests/comparability_helpers.py) with the
page's own control chart (matplotlib SVG) and CSV, laid out by WeasyPrint through the batch
record's pipeline, signed with a real document-signing certificate, then read by poppler
(``pdftotext``, ``pdfsig``), ``qpdf`` and ``mes.pdf.verify``.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from comparability_helpers import stand_in_view

from mes.core.canonical import strict_loads
from mes.core.certificate import DocumentSigningKey
from mes.pdf.comparability import (
    CSV_NAME,
    comparability_report,
    expected_words,
    missing_in_print,
    number,
    render_comparability_pdf,
)
from mes.pdf.issue import COVER_STAMP_BOX
from mes.pdf.sign import sign_pdf, verify_pdf
from mes.pdf.verify import (
    MANIFEST_NAME,
    document_kind,
    embedded_file,
    verify_report_pdf,
)
from mes.services.charts import control_chart_svg
from mes.services.cpv import comparability_csv

AT = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def key() -> DocumentSigningKey:
    return DocumentSigningKey.generate("HUB", "Central Hub", AT)


def _report(view):
    csv = comparability_csv(view).encode()
    report = comparability_report(
        view,
        csv=csv,
        chart=control_chart_svg,
        generated_at=AT,
        generated_by="Quinn QA (quinn)",
        hub="HUB",
        hub_name="Central Hub",
        time_zone="Europe/Berlin",
    )
    return report, csv


def _signed(report, csv, key) -> bytes:
    return sign_pdf(
        render_comparability_pdf(report, csv),
        key,
        at=AT,
        reason=f"Comparability report {report.recipe_code}",
        location="Central Hub (HUB)",
        name="Central Hub",
        stamp_page=0,
        stamp_box=COVER_STAMP_BOX,
    )


@pytest.fixture(scope="module")
def signed(key, tmp_path_factory):
    report, csv = _report(stand_in_view(90))
    pdf = _signed(report, csv, key)
    path = tmp_path_factory.mktemp("report") / "report.pdf"
    path.write_bytes(pdf)
    return report, csv, pdf, path


def _text(path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_the_printed_report_shows_each_parameter_signal_disposition_and_the_csv_digest(signed):
    report, csv, _pdf, path = signed
    text = " ".join(_text(path).split())
    digest = hashlib.sha256(csv).hexdigest()
    assert f"Data SHA-256 SHA-256 {digest}" in text
    assert "1. Viability at harvest (%)" in text and "2. Fold expansion" in text
    assert (
        "SPK2: 9 batches in a row below the centre line of Viability at harvest "
        "(SPK2-2026-0013 to SPK2-2026-0021)" in text
    )
    assert (
        "Disposition: Deviation at the site — its number — reference DEV-SPK2-0007 — Viability low "
        "at SPK2 since the new counter — signed by Quinn QA (quinn), 2026-03-02 11:15:00 CET"
        in text
    )
    assert (
        "SPK1: 9 batches in a row above the centre line of Fold expansion "
        "(SPK1-2026-0004 to SPK1-2026-0012)" in text
    )
    assert "Disposition: None: found on provisional limits (no baseline frozen by QA)" in text
    assert "Generated 2026-12-05 11:00:00 CET by Quinn QA (quinn)" in text
    assert "provisional: computed from the batches shown, no baseline frozen by QA" in text
    assert (
        "SPK2 Viability at harvest is 3.6 % lower than the rest of the network (90 % CI −4.3 to −2.9), "
        "outside the ±2 % margin: not equivalent" in text
    )
    assert "Not shown equivalent" in text and "No margin set" in text
    # the contents: nothing was tested without a margin, so no count of sites "not shown"
    assert re.search(r"2\. Fold expansion — [^:]*: \d+ signals?, no margin set", text)
    assert not re.search(r"Fold expansion — [^:]*: \d+ signals?, 0 sites", text)
    assert "Network: Ppk" in text
    assert missing_in_print(report, path.read_bytes()) == []
    assert len(expected_words(report)) > 10


def test_the_report_is_pdf_a_signed_by_the_hub_and_pdfsig_and_qpdf_accept_it(signed, key):
    _, _csv, pdf, path = signed
    qpdf = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert qpdf.returncode == 0, qpdf.stdout + qpdf.stderr
    sig = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True)
    assert "Signature Validation: Signature is Valid." in sig.stdout
    assert "Total document signed" in sig.stdout
    assert "CN=Central Hub (HUB) batch records" in sig.stdout
    check = verify_pdf(pdf, [key.certificate])
    assert check.ok and check.reason == "Comparability report CART-CD19-FRESH"
    assert b"pdfaid:part>3<" in pdf or b'pdfaid:part="3"' in pdf


def test_the_csv_is_embedded_with_its_manifest_and_verify_checks_it_and_the_file_beside(
    signed, key
):
    _, csv, pdf, _path = signed
    assert document_kind(pdf) == "report"
    assert embedded_file(pdf, CSV_NAME) == csv
    manifest = strict_loads(embedded_file(pdf, MANIFEST_NAME))
    assert manifest["format"] == "mes-comparability-report/1"
    assert manifest["data"] == {"name": CSV_NAME, "sha256": hashlib.sha256(csv).hexdigest()}
    assert manifest["period"] == {"from": "2026-01-01", "to": "2026-12-31"}
    assert manifest["parameters"] == ["count_cells.viability", "expand.fold"]
    assert manifest["batches"] == 90 and manifest["sites"] == ["SPK1", "SPK2", "SPK3"]
    outcome = verify_report_pdf(pdf, [key.certificate], ("report.csv", csv))
    assert outcome.ok, outcome.problems
    assert outcome.summary()[-1] == "report.csv beside it is the same data."
    changed = csv.replace(b"SPK2", b"SPK9", 1)
    refused = verify_report_pdf(pdf, [key.certificate], ("report.csv", changed))
    assert refused.problems == [
        f"comparability report: report.csv beside it has SHA-256 "
        f"{hashlib.sha256(changed).hexdigest()}, not the report's data "
        f"({hashlib.sha256(csv).hexdigest()}): it is not the data of this report, or it was "
        "changed"
    ]


def test_a_report_signed_by_another_certificate_or_altered_is_refused(signed):
    _, csv, pdf, _path = signed
    stranger = DocumentSigningKey.generate("EVIL", "Not the hub", AT)
    outcome = verify_report_pdf(pdf, [stranger.certificate], ("report.csv", csv))
    assert not outcome.ok
    assert "which is not a trusted hub certificate" in outcome.problems[0]


def test_a_period_with_no_batches_is_still_reported_and_says_so(key, tmp_path):
    report, csv = _report(stand_in_view(0))
    assert report.batches == 0
    path = tmp_path / "empty.pdf"
    path.write_bytes(_signed(report, csv, key))
    text = " ".join(_text(path).split())
    assert "No batches in the period" in text
    assert (
        "No batch of CART-CD19-FRESH recorded a critical parameter between 01/01/2026 and "
        "31/12/2026 at any site of the network." in text
    )
    assert "No critical parameter (criticality: cpp, cqa or ipc) was recorded" in text
    assert verify_report_pdf(path.read_bytes(), [key.certificate]).ok


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0.0, "0"),
        (85.25, "85.25"),
        (1234.5678, "1235"),
        (0.012345, "0.01235"),
        (-2.25, "−2.25"),
        (float("nan"), "—"),
    ],
)
def test_numbers_are_printed_with_four_significant_digits_and_a_true_minus(value, text):
    assert number(value) == text


def test_one_flipped_byte_after_signing_fails_the_signature(signed, key):
    _, csv, pdf, _path = signed
    from signed_record_helpers import flip_byte_in_a_stream

    outcome = verify_report_pdf(flip_byte_in_a_stream(pdf), [key.certificate], ("r.csv", csv))
    assert not outcome.ok
    assert any("altered after signing" in p or "cannot be read" in p for p in outcome.problems)


def test_data_swapped_before_signing_is_named_though_the_signature_holds(key):
    report, csv = _report(stand_in_view(30))
    other = csv.replace(b"SPK1", b"SPK8")
    forged = sign_pdf(
        render_comparability_pdf(report, other),  # the manifest and print name ``csv``
        key,
        at=AT,
        reason="Comparability report",
        location="Central Hub (HUB)",
        name="Central Hub",
    )
    outcome = verify_report_pdf(forged, [key.certificate])
    assert outcome.signature.ok
    assert outcome.problems == [
        f"comparability report: the embedded {CSV_NAME} has SHA-256 "
        f"{hashlib.sha256(other).hexdigest()}, the manifest says {hashlib.sha256(csv).hexdigest()}"
    ]


def test_a_long_report_laid_out_in_parts_reads_as_one_made_whole(key, tmp_path):
    report, csv = _report(stand_in_view(90))
    whole = render_comparability_pdf(report, csv, workers=1)
    parts = render_comparability_pdf(report, csv, workers=2)
    for name, pdf in (("whole", whole), ("parts", parts)):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(_signed_pdf(pdf, key))
        text = _text(path)
        assert missing_in_print(report, pdf) == [], name
        pages = text.count("\f")
        assert f"page 1 of {pages}" in text and f"page {pages} of {pages}" in text, name
        assert verify_report_pdf(path.read_bytes(), [key.certificate], ("r.csv", csv)).ok
    assert embedded_file(parts, CSV_NAME) == csv
    assert strict_loads(embedded_file(parts, MANIFEST_NAME)) == strict_loads(
        embedded_file(whole, MANIFEST_NAME)
    )


def _signed_pdf(pdf: bytes, key) -> bytes:
    return sign_pdf(
        pdf, key, at=AT, reason="Comparability report", location="HUB", name="Central Hub",
        stamp_page=0, stamp_box=COVER_STAMP_BOX,
    )  # fmt: skip


def test_many_signals_are_listed_compactly_each_still_shown_with_its_disposition(
    key, tmp_path, monkeypatch
):
    monkeypatch.setattr("mes.pdf.comparability.SIGNALS_IN_FULL", 1)
    view = stand_in_view(300)  # 6 and 5 signals, the first signed by QA
    report, csv = _report(view)
    first, signals = report.parameters[0], view.parameters[0].signals
    assert len(signals) > 2 and first.signal_count == len(signals)
    assert [s.signed for s in first.signals] == [first.signals[0].signed] and first.signals[
        0
    ].signed
    assert sum(len(g.items) for g in first.signal_groups) == len(signals) - 1
    run = signals[2]
    item = f"{run.numbers[0]} to {run.numbers[-1]} ({len(run.numbers)})"
    group = next(g for g in first.signal_groups if item in g.items)
    assert group.heading.startswith(run.words.split(": ")[0] + ": " + run.rule.words)
    pdf = render_comparability_pdf(report, csv)
    assert missing_in_print(report, pdf) == []
    path = tmp_path / "compact.pdf"
    path.write_bytes(_signed_pdf(pdf, key))
    text = " ".join(_text(path).split())
    assert f"{group.heading} Disposition of each: {group.disposition}" in text
    assert f"{len(signals)} signals: 1 with a disposition signed by QA, listed in full" in text
    hidden = [replace(g, items=(*g.items, "SPK9-2026-9999 (1)")) for g in first.signal_groups]
    altered = replace(
        report, parameters=(replace(first, signal_groups=tuple(hidden)), *report.parameters[1:])
    )
    assert len(missing_in_print(altered, pdf)) == len(hidden)


def test_charts_drawn_in_forked_processes_are_those_drawn_here(monkeypatch):
    view = stand_in_view(300)
    serial, _csv = _report(view)
    monkeypatch.setattr("mes.pdf.comparability.PARALLEL_CHART_POINTS", 0)
    parallel, _csv = _report(view)
    assert [p.chart_uri for p in parallel.parameters] == [p.chart_uri for p in serial.parameters]
    assert all(p.chart_uri for p in serial.parameters)
