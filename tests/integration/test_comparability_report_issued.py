"""The signed comparability report issued at the hub from its database (SQLite and PostgreSQL).

Received batches of a recipe at three sites (written as ingest leaves them, tests/cpv_series.py),
a baseline QA froze, a shift at SPK2 kept as a trend and assessed by QA with a signature: the
hub issues the report (mes.pdf.comparability.issue_comparability_report, the path of the CLI and
the page) and the file is read by poppler (``pdfsig``, ``pdftotext``), ``qpdf`` and
``mes.pdf.verify``. The CSV it returns is the view's CSV, bound by the digest printed inside.
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cpv_series import CODE, KEY, add_batches, steady
from integration_helpers import attest
from support import NOW, PASSWORD, user_ctx

from mes.core.certificate import load_certificate
from mes.core.errors import ConfigurationError, InvalidInput, NotAuthorised, NotFound
from mes.core.passwords import PasswordPolicy
from mes.core.site import Site
from mes.pdf.comparability import issue_comparability_report
from mes.pdf.readback import printed_text
from mes.pdf.verify import verify_report_pdf
from mes.services import cpv
from mes.services.document_certificate import (
    document_certificate_pem,
    ensure_document_certificate,
)
from mes.services.esign import Credentials
from mes.services.runtime import Runtime
from mes.settings import Settings
from mes.store.engine import session_factory

FROM, TO = date(2026, 3, 1), date(2026, 12, 31)
AT = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _runtime(engine, site_key, folder: Path, role: str = "hub") -> Runtime:
    settings = Settings(
        instance_path=folder,
        role=role,
        site_code="TEST" if role == "hub" else "SPK1",
        site_name="Test site",
        time_zone="Europe/London",
        database_url=str(engine.url),
        secret_key="test-secret",
        session_timeout_seconds=300,
        password_expiry_days=None,
        proxy_hops=0,
    )
    site = Site(
        code=settings.site_code,
        name=settings.site_name,
        role=role,
        time_zone=settings.time_zone,
        key=site_key,
        password_policy=PasswordPolicy(expiry_days=None),
        hub_key=None,
    )
    return Runtime(settings, engine, session_factory(engine), site)


@pytest.fixture
def hub(engine, site_key, tmp_path, cli_ctx) -> Runtime:
    runtime = _runtime(engine, site_key, tmp_path)
    (tmp_path / "keys").mkdir(mode=0o700)  # as mes init leaves the instance folder
    ensure_document_certificate(runtime, cli_ctx)
    return runtime


@pytest.fixture
def qa(create_user, make_uow) -> str:
    quinn = create_user("quinn", roles=["qa"])
    attest(make_uow, quinn, "quinn")
    return quinn


def _signed() -> dict:
    return {
        "credentials": Credentials(password=PASSWORD, username="quinn"),
        "first_signing_in_session": True,
    }


@pytest.fixture
def network(make_uow, qa) -> dict:
    """Three sites in control, a baseline, then SPK2 nine below the centre line, assessed."""
    add_batches(make_uow, steady())
    with make_uow() as uow:
        cpv.freeze_baseline(
            uow, user_ctx(qa), CODE, KEY, FROM, FROM + timedelta(days=40), 12, "PPQ and after",
            **_signed(),
        )  # fmt: skip
    add_batches(
        make_uow,
        [("SPK2", v) for v in (92.5, 86.0, 86.5, 85.9, 86.2, 86.1, 85.8, 86.4, 86.0, 86.3)],
        start=NOW.replace(month=5, day=1),
        first=100,
    )
    with make_uow() as uow:
        shown = cpv.comparability(uow, user_ctx(qa), CODE, FROM, TO)
    run = next(s for s in shown.parameters[0].signals if s.scope == "SPK2" and s.rule.value == "N2")
    with make_uow() as uow:
        cpv.acknowledge_trend(
            uow, user_ctx(qa), run.trend_id, "deviation", "DEV-SPK2-2026-014",
            "Harvest media lot changed at SPK2; investigated under the site's deviation.",
            **_signed(),
        )  # fmt: skip
    return {"qa": qa, "run": run}


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report-text.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return " ".join(out.stdout.split())


def test_the_hub_issues_the_signed_report_with_its_signals_dispositions_and_csv(
    hub, network, make_uow, tmp_path, database_url
):
    qa, run = network["qa"], network["run"]
    issued = issue_comparability_report(hub, user_ctx(qa, at=AT), CODE, FROM, TO)
    assert issued.filename == f"{CODE}-comparability-2026-03-01-to-2026-12-31.pdf"
    assert issued.csv_filename == f"{CODE}-comparability-2026-03-01-to-2026-12-31.csv"
    with make_uow() as uow:  # the CSV is the view's, as the page downloads it
        view = cpv.comparability(uow, user_ctx(qa), CODE, FROM, TO)
    assert issued.csv == cpv.comparability_csv(view).encode("utf-8")
    path = tmp_path / issued.filename
    path.write_bytes(issued.pdf)
    if database_url.startswith("sqlite"):  # one copy to look at
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "comparability-report.pdf").write_bytes(issued.pdf)
    sig = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True)
    assert "Signature Validation: Signature is Valid." in sig.stdout, sig.stdout
    assert "Total document signed" in sig.stdout
    qpdf = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert qpdf.returncode == 0, qpdf.stdout + qpdf.stderr
    text = _text(issued.pdf, tmp_path)
    digest = hashlib.sha256(issued.csv).hexdigest()
    assert f"SHA-256 {digest}" in text
    assert "1. Viability at harvest (%)" in text
    assert run.words.startswith("SPK2: 9 batches in a row below the centre line of Viability")
    assert " ".join(run.words.split()) in text
    assert (
        "Disposition: Deviation at the site — its number — reference DEV-SPK2-2026-014 — Harvest "
        "media lot changed at SPK2; investigated under the site's deviation. — signed by "
        "Quinn Tester (quinn), 2026-11-21 09:00:00 GMT" in text
    )
    assert "Generated 2026-12-05 10:00:00 GMT by Quinn Tester (quinn)" in text
    assert "baseline of 12 batches (SPK1-2026-0001 to SPK3-2026-0012) frozen by Quinn Tester" in (
        text
    )
    assert "Batches 22 from 3 sites: SPK1, SPK2, SPK3" in text
    certificate = load_certificate(document_certificate_pem(hub.settings))
    outcome = verify_report_pdf(issued.pdf, [certificate], (issued.csv_filename, issued.csv))
    assert outcome.ok, outcome.problems


def test_a_period_with_no_batches_is_reported_as_such(hub, network):
    issued = issue_comparability_report(
        hub, user_ctx(network["qa"], at=AT), CODE, date(2025, 1, 1), date(2025, 12, 31)
    )
    assert issued.report.batches == 0 and issued.report.parameters == ()
    text = " ".join(printed_text(issued.pdf).split())
    assert "No batches in the period" in text
    assert (
        f"No batch of {CODE} recorded a critical parameter between 01/01/2025 and 31/12/2025"
        in (text)
    )


def test_refusals_name_what_is_wrong(hub, network, create_user, engine, site_key, tmp_path):
    qa = network["qa"]
    with pytest.raises(NotFound) as unknown:
        issue_comparability_report(hub, user_ctx(qa, at=AT), "NO-SUCH", FROM, TO)
    assert unknown.value.message == "No critical numbers of a recipe 'NO-SUCH' have been received."
    with pytest.raises(InvalidInput) as swapped:
        issue_comparability_report(hub, user_ctx(qa, at=AT), CODE, TO, FROM)
    assert swapped.value.message == "The period ends (2026-03-01) before it starts (2026-12-31)."
    olivia = create_user("olivia", roles=["operator"])
    with pytest.raises(NotAuthorised):
        issue_comparability_report(hub, user_ctx(olivia, at=AT), CODE, FROM, TO)
    spoke = _runtime(engine, site_key, tmp_path / "spoke", role="spoke")
    with pytest.raises(ConfigurationError) as at_spoke:
        issue_comparability_report(spoke, user_ctx(qa, at=AT), CODE, FROM, TO)
    assert at_spoke.value.message.startswith("Only the hub signs")
