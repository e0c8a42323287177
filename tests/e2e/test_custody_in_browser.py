"""A custody receipt on the batch page, in a real browser against the real demo spoke (issue 17).

Olivia starts a batch at a registered panel, then receives its starting material from a courier
on the batch page: the shipper's ID is scanned first (the wedge scanner's Enter moves on to the
next empty field, never submitting), the rest is typed, and her signature ("received") records
it. The chain of custody then says who holds the material. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect
from test_batch_in_browser import (  # the demo spoke and its people, as the batch test has them
    PASSWORDS,
    demo_spoke,  # noqa: F401 - the fixture
    fill_the_start_form,
    log_in,
    register_terminal,
    sign_in_dialog,
    tablet,
)

pytestmark = pytest.mark.e2e


def test_a_receipt_from_a_courier_is_scanned_signed_and_shown_as_the_holder(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 - the fixture imported above
    screenshot,
):
    url = demo_spoke
    panel = tablet(browser)
    register_terminal(panel, url, "Panel C1")
    log_in(panel, url, "olivia")
    din, coi, patient = "A999926000771", "CHA999926000771", "P-0771"
    fill_the_start_form(panel, url, "CART-CD19-FRESH-DEMO", din, coi, patient)
    sign_in_dialog(panel, "Start the batch", "olivia", first=True)
    batch_url = re.sub(r"/phases/.*$", "", panel.url)
    panel.goto(batch_url)

    section = panel.locator("#custody")
    expect(section.locator('[data-holder="starting_material"]')).to_contain_text("not received yet")
    expect(section.locator('[data-holder="final_product"]')).to_contain_text("not made yet")
    form = section.locator('form[data-custody="received"]')
    section.locator("details.custody-form summary").first.tap()
    container = form.get_by_label("Shipper or container ID (scan it)")
    container.tap()
    panel.keyboard.type("SHP-E2E-0771")  # the wedge scanner: the code and Enter
    panel.keyboard.press("Enter")
    expect(form.get_by_label("Where the material changes hands")).to_be_focused()
    panel.keyboard.type("Goods-in, suite A")
    form.get_by_label("Their organisation").fill("Lyon Collection Centre")
    form.get_by_label("Their name, if not a user").fill("Jean Courier")
    screenshot(panel, "custody-01-receipt-typed")
    form.locator("button[data-esign-open]").tap()
    dialog = panel.locator("dialog.esign[open]")
    expect(dialog).to_contain_text("Received")
    dialog.get_by_label("Password").fill(PASSWORDS["olivia"])
    with panel.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).tap()

    expect(panel.locator(".flash").first).to_contain_text("Custody transfer recorded.")
    expect(section.locator('[data-holder="starting_material"]')).to_contain_text("held by")
    expect(section.locator(".custody-transfers")).to_contain_text(
        "Jean Courier, Lyon Collection Centre (not a user: typed by the signer)"
    )
    expect(section.locator(".custody-transfers")).to_contain_text("SHP-E2E-0771")
    expect(section.locator(".custody-transfers")).to_contain_text("(olivia) — Received")
    screenshot(panel, "custody-02-holder")


def test_a_shipment_logger_file_is_uploaded_with_the_custody_form(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 - the fixture imported above
    screenshot,
    tmp_path,
):
    """The form is multipart: the chosen file reaches the service, which checks it against the
    recipe's shipment window — the demo recipe declares none, so the transfer is refused in
    its form with that sentence, and nothing is recorded."""
    url = demo_spoke
    panel = tablet(browser)
    register_terminal(panel, url, "Panel C2")
    log_in(panel, url, "olivia")
    din, coi, patient = "A999926000772", "CHA999926000772", "P-0772"
    fill_the_start_form(panel, url, "CART-CD19-FRESH-DEMO", din, coi, patient)
    sign_in_dialog(panel, "Start the batch", "olivia", first=True)
    batch_url = re.sub(r"/phases/.*$", "", panel.url)
    panel.goto(batch_url)
    section = panel.locator("#custody")
    form = section.locator('form[data-custody="received"]')
    section.locator("details.custody-form summary").first.tap()
    form.get_by_label("Shipper or container ID (scan it)").fill("SHP-E2E-0772")
    form.get_by_label("Where the material changes hands").fill("Goods-in")
    form.get_by_label("Their organisation").fill("Lyon Collection Centre")
    form.get_by_label("Their name, if not a user").fill("Jean Courier")
    form.locator("details.logger summary").tap()
    logger = tmp_path / "shipper.csv"
    logger.write_text("time,temperature_c\n2026-12-05T08:00:00Z,4.5\n", encoding="utf-8")
    form.locator('input[type="file"][name="logger_file"]').set_input_files(str(logger))
    form.locator("button[data-esign-open]").tap()
    dialog = panel.locator("dialog.esign[open]")
    dialog.get_by_label("Password").fill(PASSWORDS["olivia"])
    with panel.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).tap()
    refused = panel.locator('form[data-custody="received"] .refusal')
    expect(refused).to_contain_text("declares no temperature window for shipments")
    screenshot(panel, "custody-03-logger-refused")
    panel.goto(batch_url)
    expect(panel.locator("#custody")).to_contain_text("No transfer recorded.")
