"""In a real browser against a real ``mes serve``: login, the inactivity lock, the signature
dialog, and the terminal rule at a spoke (21 CFR 11.10(d), (h), 11.50, 11.200)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect
from support import PASSWORD

pytestmark = pytest.mark.e2e

LOCKED_ON_ACCOUNT = re.compile(r"/unlock\?next=(/|%2F)account$")


def log_in(page: Page, url: str, username: str, password: str = PASSWORD) -> None:
    """Fill and submit the login form by touch."""
    if "/login" not in page.url:
        page.goto(f"{url}/login")
    page.get_by_label("User ID").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").tap()


def open_signature_dialog(page: Page):
    """Tap the sign button; returns the open dialog."""
    page.get_by_role("button", name="Acknowledge and sign").tap()
    dialog = page.locator("dialog.esign")
    expect(dialog).to_be_visible()
    return dialog


def sign(page: Page, password: str, username: str | None = None) -> None:
    """Open the dialog, type the credentials and tap Sign."""
    dialog = open_signature_dialog(page)
    if username is not None:
        dialog.get_by_label("User ID").fill(username)
    dialog.get_by_label("Password").fill(password)
    dialog.get_by_role("button", name="Sign", exact=True).tap()


def test_a_user_logs_in_and_sees_their_name_and_a_wrong_password_is_explained(
    page, spoke, screenshot
):
    page.goto(f"{spoke.url}/")
    expect(page).to_have_url(re.compile(r"/login\?next=/?"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_text("This browser is not a registered terminal.")).to_be_visible()

    log_in(page, spoke.url, "quinn", "not-the-right-password")
    error = page.locator("section.card:has(form) p.error[role=alert]")
    expect(error).to_have_text(
        "User ID or password not accepted, or the account is locked. "
        "Try again; if this persists, ask an administrator."
    )
    expect(page.get_by_label("User ID")).to_have_value("quinn")
    screenshot(page, "01-login-wrong-password")

    log_in(page, spoke.url, "quinn")
    expect(page).to_have_url(f"{spoke.url}/")
    expect(page.get_by_role("heading", name="Welcome, Quinn Quality")).to_be_visible()
    expect(page.locator(".who .user")).to_contain_text("Quinn Quality")
    screenshot(page, "02-home")


def test_an_idle_page_locks_itself_and_the_server_asks_for_the_password_too(
    new_context, spoke, screenshot
):
    with_script = new_context().new_page()
    without_script = new_context(java_script_enabled=False).new_page()
    for page in (without_script, with_script):
        log_in(page, spoke.url, "sam")
        expect(page.get_by_role("heading", name="Welcome, Sam Supervisor")).to_be_visible()
        page.goto(f"{spoke.url}/account")
        expect(
            page.get_by_role("heading", name="Electronic signature accountability")
        ).to_be_visible()
        if page is without_script:
            last_request = time.monotonic()

    # No touch, no key for longer than the 3 s timeout: the page goes to the lock screen itself.
    expect(with_script).to_have_url(LOCKED_ON_ACCOUNT, timeout=8_000)
    expect(with_script.get_by_role("heading", name="Session locked")).to_be_visible()
    expect(with_script.locator("main")).to_contain_text("The session of Sam Supervisor (sam)")
    screenshot(with_script, "03-locked-by-idle-timer")

    # Without the script the record stays on screen, but the server refuses the next request.
    expect(
        without_script.get_by_role("heading", name="Electronic signature accountability")
    ).to_be_visible()
    time.sleep(max(0.0, last_request + spoke.timeout_seconds + 0.5 - time.monotonic()))
    without_script.reload()
    expect(without_script).to_have_url(LOCKED_ON_ACCOUNT)
    request = with_script.context.request  # the same cookies, without the page's script
    answer = request.get(f"{spoke.url}/account", max_redirects=0, headers={"Accept": "text/html"})
    assert answer.status == 302 and "/unlock" in answer.headers["location"]
    answer = request.get(f"{spoke.url}/account", headers={"Accept": "application/json"})
    assert (answer.status, answer.json()["error"]) == (401, "Session locked")
    # The lock screen itself stays put, however long it waits (it must not lock itself again).
    with_script.wait_for_timeout(3_500)
    expect(with_script).to_have_url(LOCKED_ON_ACCOUNT)

    with_script.get_by_label("Password").fill("not-the-right-password")
    with_script.get_by_role("button", name="Unlock").tap()
    expect(with_script.locator("p.error[role=alert]")).to_contain_text(
        "The user ID or password is wrong."
    )
    with_script.get_by_label("Password").fill(PASSWORD)
    with_script.get_by_role("button", name="Unlock").tap()
    expect(with_script).to_have_url(f"{spoke.url}/account")
    expect(
        with_script.get_by_role("heading", name="Electronic signature accountability")
    ).to_be_visible()


def test_the_signature_dialog_at_a_registered_terminal(new_context, spoke, screenshot):
    page = new_context().new_page()
    log_in(page, spoke.url, "ada")
    page.get_by_role("link", name="Terminals").first.tap()
    page.get_by_label("Terminal name").fill("Suite A tablet 1")
    page.get_by_label("Location").fill("Suite A")
    page.get_by_role("button", name="Register this browser as a terminal").tap()
    expect(page.get_by_text("This browser is now the terminal 'Suite A tablet 1'.")).to_be_visible()
    expect(page.locator(".topbar .terminal")).to_have_text("Suite A tablet 1")
    page.get_by_role("button", name="Log out").tap()
    expect(page.get_by_text("You are logged out.")).to_be_visible()

    log_in(page, spoke.url, "oscar")
    expect(page.get_by_text("must acknowledge the accountability statement")).to_be_visible()
    page.goto(f"{spoke.url}/account")
    dialog = open_signature_dialog(page)
    expect(dialog.locator(".meaning")).to_contain_text("Acknowledged")
    expect(dialog).to_contain_text("Oscar Operator (oscar)")
    expect(dialog.get_by_label("User ID")).to_be_visible()
    expect(dialog.get_by_label("Password")).to_have_attribute("type", "password")
    screenshot(page, "04-signature-dialog")
    dialog.get_by_role("button", name="Cancel").tap()
    expect(dialog).to_be_hidden()

    sign(page, PASSWORD)  # no user ID: the first signature of a session needs both
    expect(page.locator("#attestation p.error")).to_have_text(
        "The first signature of a session needs your user ID and password. "
        "Type your user ID as well as your password, or scan your badge and type your PIN."
    )
    sign(page, "not-the-right-password", username="oscar")
    expect(page.locator("#attestation p.error")).to_have_text(
        "The user ID or password is wrong. Try again; 4 more failed attempts will lock the account."
    )
    expect(page.locator(".manifestation")).to_have_count(0)
    screenshot(page, "05-signature-wrong-password")

    sign(page, PASSWORD, username="oscar")
    expect(
        page.get_by_text("Signed: you acknowledged the accountability statement.")
    ).to_be_visible()
    manifestation = page.locator(".manifestation")
    expect(manifestation).to_have_count(1)
    expect(manifestation).to_have_text(
        re.compile(
            r"^Oscar Operator \(oscar\) · Acknowledged · "
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · Suite A tablet 1$"
        )
    )
    expect(page.get_by_role("button", name="Acknowledge and sign")).to_have_count(0)
    screenshot(page, "06-signature-manifestation")


def test_at_the_spoke_an_unregistered_browser_is_told_it_cannot_sign(page, spoke, screenshot):
    log_in(page, spoke.url, "olivia")
    expect(
        page.get_by_text("This browser is not a registered terminal: you can read records here")
    ).to_be_visible()
    expect(page.locator(".topbar .terminal")).to_have_text("Unregistered terminal")
    page.goto(f"{spoke.url}/account")
    sign(page, PASSWORD, username="olivia")
    expect(page.locator("#attestation p.error")).to_have_text(
        "This browser is not a registered terminal of the site, so it cannot sign. "
        "Sign at a registered terminal, or ask an administrator to register this one."
    )
    expect(page.locator(".manifestation")).to_have_count(0)
    screenshot(page, "07-unregistered-terminal-refused")
