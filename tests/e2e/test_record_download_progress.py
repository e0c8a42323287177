"""A record that takes long to make shows that it is being prepared (issue 15, item 12).

download.js, in real Chromium: while the server is still making the PDF (held here until the
test has looked), the link says "Preparing the record…" with a progress bar and is announced;
once the PDF arrives it is saved under the server's file name and the link reads as before.
The server's answer is held by Playwright's routing, so nothing waits on time.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect
from test_browser import log_in

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_the_download_link_shows_progress_until_the_record_arrives(page: Page, spoke, screenshot):
    held: list[Route] = []
    page.route("**/record.pdf", lambda route: held.append(route))  # "still making it"
    log_in(page, spoke.url, "quinn")
    expect(page).not_to_have_url(re.compile(r"/login"))
    # the QA record page's link, as the hub writes it (a spoke has no QA pages)
    page.evaluate(
        """() => {
          const a = document.createElement("a");
          a.className = "button secondary";
          a.href = "/qa/batches/b-1/record.pdf";
          a.textContent = "Download the signed PDF record";
          document.querySelector("main").prepend(a);
        }"""
    )
    link = page.locator('a[href$="/record.pdf"]')
    link.tap()
    expect(link).to_contain_text("Preparing the record…")
    expect(link.locator("progress")).to_be_visible()
    expect(link).to_have_attribute("aria-busy", "true")
    expect(page.locator("#download-status")).to_have_text("Preparing the record…")
    screenshot(page, "record-download-preparing")
    assert len(held) == 1
    with page.expect_download() as download:
        held[0].fulfill(
            status=200,
            body=PDF,
            headers={
                "Content-Type": "application/pdf",
                "Content-Disposition": 'attachment; filename="SPK1-2026-0001-record.pdf"',
            },
        )
    assert download.value.suggested_filename == "SPK1-2026-0001-record.pdf"
    expect(link).to_have_text("Download the signed PDF record")
    expect(link.locator("progress")).to_have_count(0)


def test_the_signed_report_link_shows_the_same_progress(page: Page, spoke, screenshot):
    """The comparability page's report link (data-signed-pdf), its period in the query string."""
    held: list[Route] = []
    page.route(re.compile(r".*/report\.pdf\?from=.*"), lambda route: held.append(route))
    log_in(page, spoke.url, "quinn")
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.evaluate(
        """() => {
          const a = document.createElement("a");
          a.className = "button secondary";
          a.href = "/network/comparability/CART-CD19/report.pdf?from=2026-01-01&to=2026-12-31";
          a.dataset.signedPdf = "the signed report";
          a.textContent = "Signed report (PDF/A)";
          document.querySelector("main").prepend(a);
        }"""
    )
    link = page.locator("a[data-signed-pdf]")
    link.tap()
    expect(link).to_contain_text("Preparing the signed report…")
    expect(link.locator("progress")).to_be_visible()
    expect(page.locator("#download-status")).to_have_text("Preparing the signed report…")
    screenshot(page, "report-download-preparing")
    assert len(held) == 1
    name = "CART-CD19-comparability-2026-01-01-to-2026-12-31.pdf"
    with page.expect_download() as download:
        held[0].fulfill(
            status=200,
            body=PDF,
            headers={
                "Content-Type": "application/pdf",
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )
    assert download.value.suggested_filename == name
    expect(link).to_have_text("Signed report (PDF/A)")
    expect(page.locator("#download-status")).to_have_text("The signed report is downloaded.")
