"""A second-person verification on a shared panel, counted in a real browser (touch, 1280×800)
against the real demo spoke (issue 15, "The witness signs in place").

The operator performs the identity check and stays logged in; the supervisor verifies at the
same panel in the signature dialog ("Sign as another person" — here the only way, since the
operator cannot verify her own phase), with their own badge and PIN. The test counts
taps, keystrokes and page loads, and counts the same verification done the old way (log out,
the supervisor logs in, finds the phase, verifies, logs out, the operator logs in and finds her
place again). Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from test_batch_in_browser import (  # the demo spoke and its people, as the batch test has them
    PASSWORDS,
    demo_spoke,  # noqa: F401 - the fixture
    fill_the_start_form,
    log_in,
    register_terminal,
    scan_the_identity_check,
    sign_in_dialog,
    submit,
    tablet,
)

from mes.cli.demo import BADGES

pytestmark = pytest.mark.e2e


@dataclass
class Counted:
    """What a person does at the panel: taps, keys typed, and the pages the browser loads."""

    page: Page
    taps: int = 0
    keys: int = 0
    loads: int = 0
    steps: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("load", lambda _page: self._loaded())

    def _loaded(self) -> None:
        self.loads += 1

    def tap(self, target: Locator, what: str) -> None:
        self.taps += 1
        self.steps.append(f"tap {what}")
        target.tap()

    def tap_to_load(self, target: Locator, what: str) -> None:
        with self.page.expect_navigation():
            self.tap(target, what)
        self.page.wait_for_load_state("load")

    def type(self, text: str, what: str) -> None:
        """Keys into the focused field (a tap on the field is counted by the caller)."""
        self.keys += len(text)
        self.steps.append(f"type {what}")
        self.page.keyboard.type(text)


def performed_identity_check(page: Page, url: str, din: str, coi: str, patient: str) -> str:
    """Olivia starts a batch and performs its identity check; the phase's address."""
    fill_the_start_form(page, url, "CART-CD19-FRESH-DEMO", din, coi, patient)
    sign_in_dialog(page, "Start the batch", "olivia", first=True)
    phase_url = page.url
    submit(page, page.get_by_role("button", name="Start this phase"))
    scan_the_identity_check(page, din, coi, patient)
    submit(page, page.get_by_role("button", name="Save").last)
    sign_in_dialog(page, "Sign performed", "olivia", first=False)
    page.goto(phase_url)
    expect(page.locator("[data-phase-status]")).to_have_text("Performed — awaiting verification")
    return phase_url


def at_the_panel_after_the_check(
    browser: Browser, url: str, panel_name: str, serial: str
) -> tuple[Page, str]:
    """A registered panel where Olivia, logged in, performed the identity check of a new batch
    (DIN A999926000``serial``): the panel and the phase's address."""
    panel = tablet(browser)
    register_terminal(panel, url, panel_name)
    log_in(panel, url, "olivia")
    din, coi, patient = f"A999926000{serial}", f"CHA999926000{serial}", f"P-0{serial}"
    return panel, performed_identity_check(panel, url, din, coi, patient)


def test_a_supervisor_verifies_at_the_operators_panel_without_a_logout(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 - the fixture imported above
    screenshot,
):
    url = demo_spoke
    panel, phase_url = at_the_panel_after_the_check(browser, url, "Panel W1", "991")

    # The supervisor walks up to the panel: Verify is in the sticky bar, in view without scrolling.
    counted = Counted(panel)
    verify = panel.locator("#signing-bar").get_by_role("button", name="Verify")
    expect(verify).to_be_in_viewport()
    counted.tap(verify, "Verify")
    dialog = panel.locator("dialog.esign[open]")
    expect(dialog).to_contain_text("Another person, with their own badge and PIN")
    screenshot(panel, "witness-01-dialog")
    badge, pin = BADGES["sam"]
    expect(dialog.get_by_label("Badge (scan it)")).to_be_focused()  # the caret is in Badge
    # Sign is in view at 1280×800 although the dialog asks for badge, user ID and secret.
    expect(dialog.get_by_role("button", name="Sign", exact=True)).to_be_in_viewport()
    panel.screenshot(path="test-artifacts/e2e-witness-01b-dialog-as-seen.png")  # the viewport
    panel.keyboard.type(badge)  # the wedge scanner: the code and Enter (a scan, not keys)
    panel.keyboard.press("Enter")
    expect(dialog.get_by_label("Password or PIN")).to_be_focused()  # Enter moved on to the PIN
    counted.type(pin, "the supervisor's PIN")
    counted.tap_to_load(dialog.get_by_role("button", name="Sign", exact=True), "Sign")

    expect(panel.locator(".who .user")).to_contain_text("olivia")  # still the operator's panel
    expect(panel.locator(".flash").first).to_contain_text("Signed: verified.")
    taps, keys, loads = counted.taps, counted.keys, counted.loads
    print(f"\nwitness in place: {taps} taps, {keys} keys, {loads} page loads")
    assert taps <= 4, counted.steps
    assert keys == len(pin), counted.steps  # a badge scan and the PIN
    assert loads <= 2, counted.steps
    panel.goto(phase_url)
    expect(panel.locator("#phase-signatures")).to_contain_text("Sam Supervisor (sam) — Verified")
    expect(panel.locator("#phase-signatures")).to_contain_text(
        "Olivia Operator (olivia) — Performed"
    )
    screenshot(panel, "witness-02-verified")


def test_the_same_verification_the_old_way_for_comparison(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 - the fixture imported above
):
    """Log out, the supervisor logs in and verifies, logs out, the operator logs in again."""
    url = demo_spoke
    panel, phase_url = at_the_panel_after_the_check(browser, url, "Panel W2", "992")

    counted = Counted(panel)
    for person, finish in (("sam", "verify"), ("olivia", "back to the phase")):
        counted.tap_to_load(panel.get_by_role("button", name="Log out"), "Log out")
        counted.tap(panel.get_by_label("User ID"), "User ID")
        counted.type(person, f"{person}'s user ID")
        counted.tap(panel.get_by_label("Password", exact=True), "Password")
        counted.type(PASSWORDS[person], f"{person}'s password")
        counted.tap_to_load(panel.get_by_role("button", name="Log in"), "Log in")
        counted.tap_to_load(panel.locator("main").get_by_role("link", name="Batches"), "Batches")
        phase_link = panel.locator(f"a.rowlink[href$='{phase_url.split(url)[1]}']")
        if finish == "verify":
            counted.tap_to_load(phase_link, "the phase")
            counted.tap(panel.get_by_role("button", name="Verify"), "Verify")
            dialog = panel.locator("dialog.esign[open]")
            if dialog.get_by_label("User ID").count():  # the session's first signature
                counted.type("sam", "sam's user ID")
                counted.tap(dialog.get_by_label("Password"), "Password")
            counted.type(PASSWORDS["sam"], "sam's password")
            counted.tap_to_load(dialog.get_by_role("button", name="Sign", exact=True), "Sign")
        else:
            batch_link = panel.locator(
                f"a.batch-number[href$='{re.sub(r'/phases/.*$', '', phase_url.split(url)[1])}']"
            )
            counted.tap_to_load(batch_link, "the batch")
    expect(panel.locator(".who .user")).to_contain_text("olivia")
    print(f"\nthe old way: {counted.taps} taps, {counted.keys} keys, {counted.loads} loads")
    print("\n".join(counted.steps))
    assert counted.taps > 4


def test_a_logged_in_supervisor_may_sign_or_hand_the_dialog_to_another_person(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 - the fixture imported above
    screenshot,
):
    url = demo_spoke
    panel, phase_url = at_the_panel_after_the_check(browser, url, "Panel W3", "993")
    with panel.expect_navigation():
        panel.get_by_role("button", name="Log out").tap()
    log_in(panel, url, "sam")
    panel.goto(phase_url)

    panel.locator("#signing-bar").get_by_role("button", name="Verify").tap()
    dialog = panel.locator("dialog.esign[open]")
    expect(dialog.locator("[data-esign-signer]")).to_have_text("Sam Supervisor (sam)")
    expect(dialog.get_by_label("Badge (scan it)")).to_be_focused()  # his own first signing
    switch = dialog.get_by_label("Sign as another person (a witness at this panel)")
    switch.tap()
    expect(dialog.locator("[data-esign-signer]")).to_contain_text("Another person")
    expect(dialog.get_by_label("Badge (scan it)")).to_be_focused()
    screenshot(panel, "witness-03-another-person")
    dialog.get_by_label("User ID").tap()
    panel.keyboard.type("olivia")  # the performer cannot be the witness of her own phase
    dialog.get_by_label("Password or PIN").fill(PASSWORDS["olivia"])
    with panel.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).tap()
    expect(panel.locator("p.error[role=alert]")).to_contain_text(
        "you cannot verify it. Ask another trained person to verify."
    )
    expect(panel.locator(".who .user")).to_contain_text("sam")

    # Cancel leaves the dialog as it was; sam signs as himself.
    panel.locator("#signing-bar").get_by_role("button", name="Verify").tap()
    dialog.get_by_label("Sign as another person (a witness at this panel)").tap()
    dialog.get_by_role("button", name="Cancel").tap()
    sign_in_dialog(panel, "Verify", "sam", first=True)
    panel.goto(phase_url)
    expect(panel.locator("#phase-signatures")).to_contain_text("Sam Supervisor (sam) — Verified")
