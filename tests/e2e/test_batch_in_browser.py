"""In a real browser (touch, tablet viewport) against the real demo spoke (``mes demo`` then
``mes serve``): an operator runs the first unit procedure of the fresh CAR-T recipe. She is
refused a phase out of order, scans labels, equipment and lots, records a viability outside the
action limits and sees the deviation it raises, and a supervisor verifies the identity check and
acknowledges the deviation (21 CFR 11.10(f), 11.50, 11.200; ISBT 128 chain of identity).
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from support import wait_until_up

from mes.cli.serve import free_port
from mes.core.identity import mod37_2

pytestmark = pytest.mark.e2e

PASSWORDS = {
    "ada": "keys-to-the-suite",
    "olivia": "cells-in-the-hood",
    "sam": "check-the-timers",
}
DIN = "A999926000777"  # fake facility A9999: test data
COI = "CHA999926000777"
PATIENT = "P-0777"


@pytest.fixture(scope="module")
def demo_spoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mes demo --no-serve`` builds the hub and spoke; ``mes serve`` serves the spoke."""
    folder = tmp_path_factory.mktemp("demo") / "demo"
    executable = shutil.which("mes")
    assert executable, "the 'mes' command is not installed (pip install -e .)"
    env = {**os.environ, "MES_INSTANCE": ""}
    built = subprocess.run(
        [executable, "demo", "--dir", str(folder), "--no-serve", "--history", "0"],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    port = free_port("127.0.0.1", 0)
    url = f"http://127.0.0.1:{port}"
    log = folder / "spoke.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [executable, "--instance", str(folder / "spoke"), "serve", "--port", str(port)],
            stdout=output, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        wait_until_up(url, server, log)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()


def tablet(browser: Browser, **viewport: int) -> Page:
    size = {"width": 1280, "height": 800} | viewport
    context = browser.new_context(has_touch=True, viewport=size)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    return context.new_page()


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("User ID").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[username])
    page.get_by_role("button", name="Log in").tap()
    expect(page.locator(".who .user")).to_be_visible()


def register_terminal(page: Page, url: str, name: str) -> None:
    """The administrator registers this browser as a terminal, then logs out."""
    log_in(page, url, "ada")
    page.goto(f"{url}/admin/terminals")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name=re.compile("Register")).tap()
    expect(page.locator(".terminal.ok")).to_have_text(name)
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").tap()


def sign_in_dialog(page: Page, button: str, username: str, first: bool) -> None:
    page.get_by_role("button", name=button).first.tap()
    dialog = page.locator("dialog.esign[open]")
    expect(dialog).to_be_visible()
    if first:
        dialog.get_by_label("User ID").fill(username)
    dialog.get_by_label("Password").fill(PASSWORDS[username])
    with page.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).tap()


def submit(page: Page, button: Locator) -> None:
    """Tap a button that posts its form, and wait for the page the server answers with.

    Whatever the test does next (fill a field that the answer shows again, read the page, tap
    a button another person's page shows only once this is saved) must act on that answer, not
    on the page the tap left: on a busy machine the old page stays on screen for seconds.
    """
    with page.expect_navigation():
        button.tap()


def scan(page: Page, label: str, value: str) -> None:
    """A keyboard-wedge scanner types into the tapped field and presses Enter: the page sends
    the scan and shows the answer without a page load (scan.js)."""
    field = page.get_by_label(label, exact=False).first
    field.tap()
    field.fill(value)
    form = page.locator("form[data-scan-form]")
    answered = int(form.get_attribute("data-scans-answered") or 0)
    field.press("Enter")
    expect(form).to_have_attribute("data-scans-answered", str(answered + 1))


def fill_the_start_form(
    page: Page, url: str, recipe: str, din: str, coi: str, patient: str, born: str = "1980-01-02"
) -> None:
    """The start form of ``recipe`` with the chain of identity typed as from the order."""
    page.goto(f"{url}/batches/new?recipe={recipe}")
    page.get_by_label("Chain of Identity identifier (ISBT 128 CoI)").fill(coi)
    page.get_by_label("Apheresis donation identification number (ISBT 128 DIN)").fill(
        f"{din} 00 {mod37_2(din)}"
    )
    page.get_by_label("Patient identifier on the manufacturing order").fill(patient)
    page.get_by_label("Patient date of birth").fill(born)


def scan_the_identity_check(
    page: Page, din: str, coi: str, patient: str, scan: Callable[[Page, str, str], None] = scan
) -> None:
    """The identity check's scans (the bag's DIN, patient and CoI labels, the scanner), bag intact."""
    scan(page, "DIN on the apheresis bag label", f"={din}00")
    scan(page, "Patient identifier on the apheresis bag label", patient)
    scan(page, "Chain of Identity identifier on the apheresis bag label", coi)
    scan(page, "barcode scanner", "SCN-01")
    page.locator("label.option", has_text="yes").tap()


def fill_the_transport_check(page: Page, scan: Callable[[Page, str, str], None] = scan) -> None:
    """The transport check's values inside their limits, no excursion, the fridge scanned."""
    collected = (datetime.now() - timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("End of apheresis collection").fill(collected)
    page.get_by_label("Lowest transport temperature on the logger").fill("3.8")
    page.get_by_label("Highest transport temperature on the logger").fill("6.1")
    page.get_by_label("Time from end of collection to receipt").fill("20.0")
    page.locator("[data-input=temperature_excursion] label.option", has_text="no").tap()
    scan(page, "Quarantine fridge", "FR-01")


def test_an_operator_runs_the_first_unit_procedure_of_car_t(
    browser: Browser, demo_spoke: str, screenshot
):
    url = demo_spoke
    olivia = tablet(browser)
    sam = tablet(browser)
    register_terminal(olivia, url, "Tablet 1")
    register_terminal(sam, url, "Tablet 2")

    # Start the batch: the chain of identity, typed as from the order and the bag label.
    log_in(olivia, url, "olivia")
    olivia.goto(f"{url}/batches/new?recipe=CART-CD19-FRESH")
    olivia.get_by_label("Chain of Identity identifier (ISBT 128 CoI)").fill(COI)
    din_field = olivia.get_by_label("Apheresis donation identification number (ISBT 128 DIN)")
    din_field.fill(f"{DIN} 00 {'A' if mod37_2(DIN) != 'A' else 'B'}")  # a typing error
    olivia.get_by_label("Patient identifier on the manufacturing order").fill(PATIENT)
    olivia.get_by_label("Patient date of birth").fill("1970-05-17")
    sign_in_dialog(olivia, "Start the batch", "olivia", first=True)
    expect(olivia.locator(".field-error[role=alert]")).to_contain_text("does not match DIN")
    screenshot(olivia, "batch-01-wrong-din-check-character")
    olivia.get_by_label("Apheresis donation identification number (ISBT 128 DIN)").fill(
        f"{DIN[:5]} {DIN[5:7]} {DIN[7:]} 00 {mod37_2(DIN)}"
    )
    olivia.get_by_label("Patient date of birth").fill("1970-05-17")
    sign_in_dialog(olivia, "Start the batch", "olivia", first=True)
    expect(olivia.get_by_role("heading", name="Check the apheresis bag")).to_be_visible()
    batch_url = re.sub(r"/phases/.*$", "", olivia.url)
    number = olivia.locator(".batch-number").inner_text()
    assert re.fullmatch(r"SPK1-\d{4}-\d{4}", number)

    # Out of order: the transport check cannot start before the identity check is done.
    olivia.goto(f"{batch_url}/phases/apheresis_transport_check")
    expect(olivia.get_by_role("button", name="Start this phase")).to_have_count(0)
    expect(olivia.locator("section.waiting")).to_contain_text(
        "'Check the apheresis bag against the manufacturing order' must be done first"
    )
    screenshot(olivia, "batch-02-out-of-order")

    # The identity check: scanner, DIN bar code, patient and CoI labels, the bag intact.
    olivia.goto(f"{batch_url}/phases/apheresis_identity_check")
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    scan(olivia, "DIN on the apheresis bag label", f"={DIN}00")
    expect(olivia.locator(".scan-field.done")).to_have_count(1)
    scan(olivia, "Patient identifier on the apheresis bag label", "P-0999")  # the wrong patient
    expect(olivia.locator("span.field-error[role=alert]")).to_contain_text(
        "does not match this batch's chain of identity"
    )
    screenshot(olivia, "batch-03-wrong-patient-label")
    scan(olivia, "Patient identifier on the apheresis bag label", PATIENT)
    scan(olivia, "Chain of Identity identifier on the apheresis bag label", COI)
    scan(olivia, "barcode scanner", "SCN-01")
    olivia.locator("label.option", has_text="yes").tap()
    submit(olivia, olivia.get_by_role("button", name="Save").last)
    # The wrong-label deviation needs a comment and a supervisor before the phase can be signed.
    deviation = olivia.locator("article.deviation").first
    expect(deviation).to_contain_text("does not match")
    comment = "Scanned the label of the bag on the next bench; rescanned the right bag."
    deviation.get_by_label("What happened, and what you did").fill(comment)
    submit(olivia, deviation.get_by_role("button", name="Add the comment"))
    expect(deviation.locator("p.comment")).to_contain_text(comment)  # saved: sam may acknowledge

    log_in(sam, url, "sam")
    sam.goto(f"{batch_url}/phases/apheresis_identity_check")
    sign_in_dialog(sam, "Acknowledge", "sam", first=True)
    expect(sam.locator("article.deviation").first).to_contain_text("Acknowledged")

    olivia.reload()
    sign_in_dialog(olivia, "Sign performed", "olivia", first=False)
    expect(olivia.locator(".flash").first).to_contain_text("Signed: performed.")

    sam.goto(f"{batch_url}/phases/apheresis_identity_check")
    expect(sam.locator("[data-phase-status]")).to_have_text("Performed — awaiting verification")
    screenshot(sam, "batch-04-verify")
    sign_in_dialog(sam, "Verify", "sam", first=False)
    sam.goto(f"{batch_url}/phases/apheresis_identity_check")
    expect(sam.locator("#phase-signatures")).to_contain_text("Sam Supervisor (sam) — Verified")

    # Transport: values inside limits; no excursion, so the excursion phase does not apply.
    olivia.goto(f"{batch_url}/phases/apheresis_transport_check")
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    fill_the_transport_check(olivia)
    sign_in_dialog(olivia, "Sign performed", "olivia", first=False)
    expect(
        olivia.get_by_role("heading", name="Sample the bag and count nucleated cells")
    ).to_be_visible()

    # Cell count: a viability below the action limit is recorded as typed and raises a deviation.
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    scan(olivia, "biosafety cabinet", "BSC-02")  # out of service
    expect(olivia.locator("span.field-error[role=alert]")).to_contain_text("out of service")
    scan(olivia, "biosafety cabinet", "BSC-01")
    scan(olivia, "cell counter", "CC-02")  # past its calibration date
    expect(olivia.locator("span.field-error[role=alert]")).to_contain_text("due for calibration")
    scan(olivia, "cell counter", "CC-01")
    scan(olivia, "balance", "BAL-01")
    scan(olivia, "Sterile sampling syringe", "SAMPLING-SYRINGE-OLD")  # expired
    expect(olivia.locator("span.field-error[role=alert]")).to_contain_text("expired")
    scan(olivia, "Sterile sampling syringe", "SAMPLING-SYRINGE-L01")
    olivia.get_by_label("Apheresis volume").fill("250")
    olivia.get_by_label("TNC concentration").fill("40.00")
    olivia.get_by_label("Viability", exact=True).fill("78.0")
    expect(olivia.locator("[data-input=viability] .limit-hint")).to_have_text(
        "Outside the action limits: a deviation will be raised."
    )
    olivia.locator("[data-input=viability] textarea").fill(
        "Low viability at receipt; medical team and QA informed."
    )
    screenshot(olivia, "batch-05-value-outside-action-limits")
    submit(olivia, olivia.get_by_role("button", name="Save").last)
    expect(olivia.locator("[data-input=viability] .recorded")).to_contain_text(
        "Recorded 78.0 % — Outside action limits"
    )
    expect(olivia.locator("article.deviation")).to_contain_text("Viability 78.0 % is outside")
    expect(olivia.locator(".calculation")).to_contain_text("10.00 ×10^9 cells")
    sign_in_dialog(olivia, "Sign performed", "olivia", first=False)
    expect(
        olivia.get_by_role("heading", name="Measure CD3+ cells by flow cytometry")
    ).to_be_visible()
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    scan(olivia, "flow cytometer", "FC-01")
    olivia.get_by_label("CD3+ cells, % of viable leukocytes").fill("45.0")
    sign_in_dialog(olivia, "Sign performed", "olivia", first=False)

    # The unit procedure is done; the deviation waits for a supervisor on the batch page.
    olivia.goto(batch_url)
    expect(olivia.locator("details.unit").first).to_contain_text("5 of 5 done")
    screenshot(olivia, "batch-06-first-unit-procedure-done")
    sam.goto(batch_url)
    sign_in_dialog(sam, "Acknowledge", "sam", first=False)
    expect(sam.locator("#deviations")).not_to_contain_text("open deviation")

    # The board, and the same phase page in portrait.
    olivia.goto(f"{url}/batches")
    expect(olivia.locator(f"[data-batch='{number}']")).to_contain_text(
        "Select the program and install the tubing set"
    )
    screenshot(olivia, "batch-07-board")
    portrait = tablet(browser, width=800, height=1280)
    log_in(portrait, url, "olivia")
    portrait.goto(f"{batch_url}/phases/apheresis_cell_count")
    expect(
        portrait.get_by_role("heading", name="Sample the bag and count nucleated cells")
    ).to_be_visible()
    screenshot(portrait, "batch-08-portrait")
    olivia.goto(f"{batch_url}/record")
    expect(olivia.locator("table.ledger")).to_contain_text("signed as verified")
    screenshot(olivia, "batch-09-record")


def test_touch_targets_are_at_least_48_css_pixels(browser: Browser, demo_spoke: str):
    page = tablet(browser)
    log_in(page, demo_spoke, "olivia")
    page.goto(f"{demo_spoke}/batches/new?recipe=CART-CD19-FRESH")
    small = page.evaluate(
        """() => Array.from(document.querySelectorAll('button, a.button, input:not([type=hidden]), select, label.option'))
            .filter(el => el.offsetParent !== null)
            .map(el => [el.outerHTML.slice(0, 80), el.getBoundingClientRect().height])
            .filter(([, h]) => h < 48)"""
    )
    assert small == []


def test_a_double_tap_a_replayed_form_and_the_back_button_never_sign_twice(
    browser: Browser, demo_spoke: str
):
    url, din, coi, patient = demo_spoke, "A999926000888", "CHA999926000888", "P-0888"
    page = tablet(browser)
    register_terminal(page, url, "Tablet 3")
    log_in(page, url, "olivia")
    fill_the_start_form(page, url, "CART-CD19-FRESH-DEMO", din, coi, patient)
    sign_in_dialog(page, "Start the batch", "olivia", first=True)
    phase_url = page.url
    record_url = re.sub(r"/phases/.*$", "/record", phase_url)
    submit(page, page.get_by_role("button", name="Start this phase"))
    scan_the_identity_check(page, din, coi, patient)
    submit(page, page.get_by_role("button", name="Save").last)
    html = page.content()  # the saved page's form: its token and the sequence it has seen
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    seen = re.search(r'name="seen_seq" value="(\d+)"', html).group(1)

    # A double tap on Sign: the page submits the form once.
    page.get_by_role("button", name="Sign performed").tap()
    dialog = page.locator("dialog.esign[open]")
    dialog.get_by_label("Password").fill(PASSWORDS["olivia"])
    with page.expect_navigation():
        page.evaluate(
            """() => { const d = document.querySelector('dialog.esign[open]');
                       const b = d.querySelector('button[type=submit]');
                       b.click(); b.click(); }"""
        )
    ledger = page.request.get(record_url).text()
    assert ledger.count("signed as performed") == 1

    # The same form replayed (as a second terminal or a resent request would): refused, named.
    replay = page.request.post(
        f"{phase_url}/sign/perform",
        form={"csrf_token": token, "seen_seq": seen, "esign_password": PASSWORDS["olivia"]},
        max_redirects=0,
    )
    assert replay.status == 409
    assert "Olivia Operator (olivia) signed performed in this phase" in replay.text()
    assert page.request.get(record_url).text().count("signed as performed") == 1

    # Back to the phase page: it is fetched again (no-store) and shows the phase as it is now.
    page.go_back()  # returns once the page it goes back to has loaded
    if page.url != phase_url:
        page.goto(phase_url)
    expect(page.locator("[data-phase-status]")).to_have_text("Performed — awaiting verification")
    expect(page.get_by_role("button", name="Sign performed")).to_have_count(0)
