"""The audit trail fits a 1280 × 800 panel: no column (WHY, WHERE) cut off, no sideways scroll.

A user with a long unbroken name and a role change with a long unbroken reason are recorded with
the real ``mes`` command; QA opens the trail at the spoke with the sign-ins shown, and the page's
scroll width is measured in Chromium (issue 15, item 11: it was 1,471 px).
"""

from __future__ import annotations

import re

from conftest import _mes
from playwright.sync_api import Page, expect
from support import PASSWORD
from test_browser import log_in

LONG_WORD = "Re-qualification-after-the-aseptic-process-simulation-APS-2026-017-" * 4


def test_the_audit_trail_fits_1280_pixels_with_long_reasons_and_names(
    page: Page, spoke, screenshot
):
    _mes(spoke.instance, "user", "add", "audrey", "--name", "Audrey " + "Longname" * 12,
         "--role", "operator", "--password-stdin", password=PASSWORD)  # fmt: skip
    _mes(spoke.instance, "user", "roles", "audrey", "--role", "operator", "--role",
         "supervisor", "--reason", LONG_WORD)  # fmt: skip
    log_in(page, spoke.url, "quinn")
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.goto(f"{spoke.url}/admin/audit?sign_ins=show")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    expect(page.get_by_text(LONG_WORD[:40]).first).to_be_attached()
    width = page.evaluate("document.documentElement.scrollWidth")
    screenshot(page, "audit-trail-1280")
    assert width <= 1280, f"the audit trail is {width} px wide at 1280"
    # the last column (WHERE) is on screen, not cut off to the right
    where = page.locator("table.audit th.c-where").bounding_box()
    assert where is not None and where["x"] + where["width"] <= 1280
