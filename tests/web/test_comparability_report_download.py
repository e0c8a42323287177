"""The comparability page's downloads: the signed report (PDF/A) and its CSV, from the real app.

QA (and other readers of the network) download the report of the period the page shows; the
PDF is signed by the hub's certificate and embeds the CSV whose SHA-256 it prints; the CSV
download is the same bytes. Bad periods and unknown recipes are a 4xx page, never a 500; an
operator is refused. SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import subprocess

from cpv_series import CODE, add_batches, steady
from support import NOW
from test_network_pages import browser, hub_app, people
from web_helpers import text

from mes.core.certificate import DocumentSigningKey
from mes.pdf.verify import verify_report_pdf
from mes.services.document_certificate import write_document_key

__all__ = ["hub_app", "people"]

PERIOD = "from=2026-03-01&to=2026-12-31"


def _with_certificate(tmp_path) -> DocumentSigningKey:
    (tmp_path / "keys").mkdir(exist_ok=True)
    key = DocumentSigningKey.generate("TEST", "Test site", NOW)
    write_document_key(tmp_path, key)
    return key


def test_the_page_links_the_signed_report_and_its_csv(hub_app, make_uow):
    add_batches(make_uow, steady())
    page = browser(hub_app, "quinn").get(f"/network/comparability/{CODE}?{PERIOD}")
    assert page.status_code == 200, text(page)
    html = page.get_data(as_text=True)
    assert f'href="/network/comparability/{CODE}/report.pdf?' in html
    assert 'data-signed-pdf="the signed report"' in html
    assert f'href="/network/comparability/{CODE}/report.csv?' in html


def test_qa_downloads_the_signed_report_and_the_same_csv(hub_app, make_uow, tmp_path):
    key = _with_certificate(tmp_path)
    add_batches(make_uow, steady())
    quinn = browser(hub_app, "quinn")
    response = quinn.get(f"/network/comparability/{CODE}/report.pdf?{PERIOD}")
    assert response.status_code == 200, text(response)
    assert response.mimetype == "application/pdf"
    stem = f"{CODE}-comparability-2026-03-01-to-2026-12-31"
    assert f'filename="{stem}.pdf"' in response.headers["Content-Disposition"]
    csv = quinn.get(f"/network/comparability/{CODE}/report.csv?{PERIOD}")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert f'filename="{stem}.csv"' in csv.headers["Content-Disposition"]
    path = tmp_path / "downloaded.pdf"
    path.write_bytes(response.data)
    signature = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
    assert "Signature is Valid" in signature and "Total document signed" in signature
    shown = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Viability at harvest (%)" in shown
    assert f"SHA-256 {hashlib.sha256(csv.data).hexdigest()}" in shown
    assert "by Quinn" in shown
    outcome = verify_report_pdf(response.data, [key.certificate], (f"{stem}.csv", csv.data))
    assert outcome.ok, outcome.problems


def test_bad_requests_are_a_page_that_says_what_is_wrong(hub_app, make_uow, tmp_path):
    _with_certificate(tmp_path)
    add_batches(make_uow, steady())
    quinn = browser(hub_app, "quinn")
    for url, words in (
        (f"/network/comparability/{CODE}/report.pdf?from=2026-13-45", "From"),
        (f"/network/comparability/{CODE}/report.pdf?from=2026-12-31&to=2026-03-01", "period ends"),
        (f"/network/comparability/NO-SUCH/report.pdf?{PERIOD}", "NO-SUCH"),
        (f"/network/comparability/NO-SUCH/report.csv?{PERIOD}", "NO-SUCH"),
        (f"/network/comparability/{CODE}/report.csv?to=31.31.2026", "To"),
    ):
        response = quinn.get(url)
        assert 400 <= response.status_code < 500, (url, response.status_code, text(response))
        assert words in text(response), (url, text(response))
    for far in ("from=0001-01-01&to=9999-12-31", "from=9999-12-31&to=9999-12-31"):
        response = quinn.get(f"/network/comparability/{CODE}/report.csv?{far}")
        assert response.status_code < 500, (far, text(response))
    otto = browser(hub_app, "otto")  # an operator does not read the network
    assert otto.get(f"/network/comparability/{CODE}/report.pdf?{PERIOD}").status_code == 403


def test_without_a_certificate_the_report_is_refused_with_what_to_do(hub_app, make_uow):
    add_batches(make_uow, steady())
    response = browser(hub_app, "quinn").get(f"/network/comparability/{CODE}/report.pdf?{PERIOD}")
    assert 400 <= response.status_code < 500
    assert "no document-signing certificate" in text(response)
