"""``mes report comparability`` refusals and ``mes verify`` of a signed report, as subprocesses.

The report is signed with the hub instance's own document-signing key (as the hub signs it),
from the stand-in view of tests/comparability_helpers.py; ``mes verify`` at the hub trusts its
own certificate and checks the CSV beside the PDF.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from cli_helpers import assert_refused
from comparability_helpers import stand_in_view
from test_verify_cli import hub_key_of

from mes.core.certificate import fingerprint
from mes.pdf.comparability import comparability_report, render_comparability_pdf
from mes.pdf.issue import COVER_STAMP_BOX
from mes.pdf.sign import sign_pdf
from mes.services.charts import control_chart_svg
from mes.services.cpv import comparability_csv

AT = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def hub(instance):
    assert instance.init().code == 0
    return instance


def _write_report(hub, folder, batches: int = 30):
    view = stand_in_view(batches)
    csv = comparability_csv(view).encode()
    report = comparability_report(
        view,
        csv=csv,
        chart=control_chart_svg,
        generated_at=AT,
        generated_by="Quinn QA (quinn)",
        hub="HUB",
        hub_name="HUB",
        time_zone="UTC",
    )
    pdf = sign_pdf(
        render_comparability_pdf(report, csv),
        hub_key_of(hub),
        at=AT,
        reason="Comparability report CART-CD19-FRESH 2026-01-01 to 2026-12-31",
        location="HUB (HUB)",
        name="HUB",
        stamp_page=0,
        stamp_box=COVER_STAMP_BOX,
    )
    path = folder / "report.pdf"
    path.write_bytes(pdf)
    (folder / "report.csv").write_bytes(csv)
    return path, csv


def test_verify_recognises_a_comparability_report_and_checks_the_csv_beside_it(hub, tmp_path):
    path, csv = _write_report(hub, tmp_path)
    digest = hashlib.sha256(csv).hexdigest()
    result = hub.run("verify", str(path))
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "ok: report.pdf\n"
        "  Signed by HUB (HUB) batch records on 2026-12-05 10:00:00 UTC (certificate SHA-256 "
        f"{fingerprint(hub_key_of(hub).certificate)})\n"
        "  Comparability report of CART-CD19-FRESH, 2026-01-01 to 2026-12-31: 30 batches, "
        "2 parameters\n"
        f"  Data comparability.csv (SHA-256 {digest}) embedded and printed\n"
        "  report.csv beside it is the same data.\n"
    )
    (tmp_path / "report.csv").write_bytes(csv.replace(b"SPK1", b"SPK7", 1))
    changed = hashlib.sha256((tmp_path / "report.csv").read_bytes()).hexdigest()
    refused = hub.run("verify", str(path))
    assert (refused.code, refused.out) == (1, "")
    assert refused.err == (
        f"FAILED: comparability report: report.csv beside it has SHA-256 {changed}, not the "
        f"report's data ({digest}): it is not the data of this report, or it was changed\n"
    )
    (tmp_path / "report.csv").unlink()
    alone = hub.run("verify", str(path))
    assert alone.code == 0 and "beside it" not in alone.out
    assert_refused(
        hub.run("verify", str(path), "--data", str(tmp_path / "other.csv")),
        f"There is no file {tmp_path / 'other.csv'}.",
    )
    assert_refused(
        hub.run("verify", str(path), "--against-hub"),
        f"{path} is a comparability report: --against-hub compares a batch record's entries "
        "with the hub's database. Verify the report without --against-hub.",
    )


def test_report_comparability_refuses_bad_input_in_one_line(hub, tmp_path):
    out = str(tmp_path / "r.pdf")
    base = ("report", "comparability", "CART-CD19-FRESH")
    assert_refused(
        hub.run(*base, "--from", "2026-13-01", "--to", "2026-12-31", "--out", out),
        "--from: '2026-13-01' is not a date. Write it as YYYY-MM-DD, e.g. 2027-03-31.",
    )
    assert_refused(
        hub.run(*base, "--from", "2026-01-01", "--to", "31/12/2026", "--out", out),
        "--to: '31/12/2026' is not a date. Write it as YYYY-MM-DD, e.g. 2027-03-31.",
    )
    assert_refused(
        hub.run(*base, "--from", "2026-12-31", "--to", "2026-01-01", "--out", out),
        "The period ends (2026-01-01) before it starts (2026-12-31). Swap the two dates.",
    )
    assert_refused(
        hub.run(*base, "--from", "2026-01-01", "--to", "2026-12-31", "--out", str(tmp_path / "r")),
        f"--out {tmp_path / 'r'} does not end in .pdf. Give the report's file name, e.g. "
        "--out report.pdf (the data is written beside it as report.csv).",
    )
    (tmp_path / "r.csv").write_text("kept\n")
    assert_refused(
        hub.run(*base, "--from", "2026-01-01", "--to", "2026-12-31", "--out", out),
        f"{tmp_path / 'r.csv'} exists already. Choose another --out file.",
    )
    missing = tmp_path / "nowhere" / "r.pdf"
    assert_refused(
        hub.run(*base, "--from", "2026-01-01", "--to", "2026-12-31", "--out", str(missing)),
        f"There is no folder {missing.parent}. Create it first.",
    )
    assert (tmp_path / "r.csv").read_text() == "kept\n"
    assert not (tmp_path / "r.pdf").exists()


def test_a_spoke_issues_no_report(instance, tmp_path):
    assert instance.init(role="spoke", site="SPK1").code == 0
    result = instance.run(
        "report",
        "comparability",
        "CART-CD19-FRESH",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
        "--out",
        str(tmp_path / "r.pdf"),
    )
    assert (result.code, result.out) == (1, "")
    assert result.err.startswith("error: Only the hub signs")


def _add_batches(instance) -> None:
    """Received batches of CART-CD19 at three sites, written into the instance's database."""
    from cpv_series import add_batches, steady

    from mes.services.runtime import load_site
    from mes.settings import load_settings
    from mes.store.engine import make_engine, session_factory
    from mes.store.uow import UnitOfWork

    settings = load_settings(instance.path, env={})
    engine = make_engine(settings.database_url)
    sessions, site = session_factory(engine), load_site(settings)
    try:
        add_batches(lambda *_a, **_k: UnitOfWork(sessions, site), steady(rounds=8))
    finally:
        engine.dispose()


def test_the_hub_writes_the_signed_report_and_its_csv_and_mes_verify_accepts_them(hub, tmp_path):
    _add_batches(hub)
    out = tmp_path / "cpv.pdf"
    period = ("--from", "2026-03-01", "--to", "2026-12-31")
    result = hub.run("report", "comparability", "CART-CD19", *period, "--out", str(out))
    assert (result.code, result.err) == (0, "")
    csv = (tmp_path / "cpv.csv").read_bytes()
    digest = hashlib.sha256(csv).hexdigest()
    lines = result.out.splitlines()
    assert lines[0].startswith(
        f"Wrote {out}: comparability report of CART-CD19, 2026-03-01 to 2026-12-31, "
        "24 batches from 3 sites, 1 parameters, "
    )
    assert lines[0].endswith(" bytes, signed by the hub.")
    assert lines[1] == f"Wrote {tmp_path / 'cpv.csv'}: its data, SHA-256 {digest}."
    verified = hub.run("verify", str(out))
    assert (verified.code, verified.err) == (0, ""), verified.err
    assert "  cpv.csv beside it is the same data.\n" in verified.out
    assert "Comparability report of CART-CD19, 2026-03-01 to 2026-12-31: 24 batches" in (
        verified.out
    )
    empty = hub.run(
        "report", "comparability", "CART-CD19", "--from", "2025-01-01", "--to", "2025-12-31",
        "--out", str(tmp_path / "empty.pdf"),
    )  # fmt: skip
    assert empty.code == 0 and "no batches in the period, 0 parameters" in empty.out
    assert_refused(
        hub.run("report", "comparability", "NO-SUCH", *period, "--out", str(tmp_path / "n.pdf")),
        "No critical numbers of a recipe 'NO-SUCH' have been received. "
        "Choose a recipe code the page lists.",
    )
