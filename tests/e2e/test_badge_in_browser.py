"""Badge + PIN in a real browser at a spoke, with a keyboard-wedge scanner simulated as the
badge's characters + Enter into the focused field (21 CFR 11.200(a)(1)): the scanner's Enter
moves on to the PIN instead of submitting, at login and in the signature dialog."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from playwright.sync_api import Page, expect
from support import PASSWORD
from test_browser import log_in

pytestmark = pytest.mark.e2e

BADGE, PIN = "BADGE-20001", "851427"


def _mes(instance, *args: str, stdin: str) -> None:
    result = subprocess.run(
        [shutil.which("mes") or "mes", "--instance", str(instance), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MES_INSTANCE": ""},
        check=False,
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)


def scan(page: Page, code: str) -> None:
    """A keyboard-wedge scanner: the code's characters, then Enter, into the focused field."""
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def test_a_badge_scan_and_the_pin_log_in_and_sign_without_touching_the_keyboard_twice(
    new_context, spoke, screenshot
):
    _mes(spoke.instance, "user", "add", "bea", "--name", "Bea Badge", "--role", "operator",
         "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    _mes(spoke.instance, "user", "badge", "bea", stdin=BADGE + "\n")
    _mes(spoke.instance, "user", "pin", "bea", "--pin-stdin", stdin=PIN + "\n")
    page = new_context().new_page()
    log_in(page, spoke.url, "ada")  # a registered terminal signs (11.10(h))
    page.get_by_role("link", name="Terminals").first.tap()
    page.get_by_label("Terminal name").fill("Badge bench")
    page.get_by_role("button", name="Register this browser as a terminal").tap()
    expect(page.locator(".topbar .terminal")).to_have_text("Badge bench")
    page.get_by_role("button", name="Log out").tap()

    expect(page.get_by_label("Badge (scan it)")).to_be_focused()
    scan(page, BADGE)
    expect(page.get_by_label("PIN", exact=True)).to_be_focused()  # not submitted without it
    assert page.url.endswith("/login")
    screenshot(page, "badge-01-login-scanned")
    page.keyboard.type(PIN)
    page.keyboard.press("Enter")
    expect(page.get_by_text("Welcome, Bea Badge")).to_be_visible()

    page.goto(f"{spoke.url}/account")
    page.get_by_role("button", name="Acknowledge and sign").tap()
    dialog = page.locator("dialog.esign")
    expect(dialog.get_by_label("Badge (scan it)")).to_be_focused()
    scan(page, BADGE)
    expect(dialog.get_by_label("Password or PIN")).to_be_focused()
    screenshot(page, "badge-02-dialog-scanned")
    page.keyboard.type(PIN)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(
        page.get_by_text("Signed: you acknowledged the accountability statement.")
    ).to_be_visible()
    expect(page.locator(".manifestation")).to_contain_text("Bea Badge (bea)")
    screenshot(page, "badge-03-signed")
