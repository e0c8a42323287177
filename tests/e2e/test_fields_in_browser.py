"""The phase page's fields in a real browser (touch, 1280×800) at the demo spoke (Europe/London):
limits say one thing at a time and nothing before a value is typed, "Before you sign" ticks off
as fields are filled, dates and times are typed in the site's order on the 24-hour clock (with
"Now"), an unreadable date is a message at its field, and the batch page says who it waits for.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect
from test_batch_in_browser import (
    PASSWORDS,
    demo_spoke,  # noqa: F401 - the module's demo spoke, built once
    log_in,
    register_terminal,
    scan,
    sign_in_dialog,
    submit,
    tablet,
)

from mes.core.identity import mod37_2

pytestmark = pytest.mark.e2e

LONDON = ZoneInfo("Europe/London")
DIN = "A999926000555"  # fake facility A9999: test data
COI = "CHA999926000555"
PATIENT = "P-0555"
IDENTITY_CHECK = "Check the apheresis bag against the manufacturing order"


def start_through_the_identity_check(olivia: Page, url: str) -> str:
    """Olivia starts a batch and signs its identity check; the batch's URL."""
    log_in(olivia, url, "olivia")
    olivia.goto(f"{url}/batches/new?recipe=CART-CD19-FRESH")
    olivia.get_by_label("Chain of Identity identifier (ISBT 128 CoI)").fill(COI)
    olivia.get_by_label("Apheresis donation identification number (ISBT 128 DIN)").fill(
        f"{DIN} 00 {mod37_2(DIN)}"
    )
    olivia.get_by_label("Patient identifier on the manufacturing order").fill(PATIENT)
    olivia.get_by_label("Patient date of birth").fill("1970-05-17")
    sign_in_dialog(olivia, "Start the batch", "olivia", first=True)
    batch_url = re.sub(r"/phases/.*$", "", olivia.url)
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    scan(olivia, "DIN on the apheresis bag label", f"={DIN}00")
    scan(olivia, "Patient identifier on the apheresis bag label", PATIENT)
    scan(olivia, "Chain of Identity identifier on the apheresis bag label", COI)
    scan(olivia, "barcode scanner", "SCN-01")
    olivia.locator("label.option", has_text="yes").tap()
    sign_in_dialog(olivia, "Sign performed", "olivia", first=False)
    return batch_url


def visible_messages(page: Page, input_id: str) -> list[str]:
    """The limit messages on screen at one value field (the hint and the deviation box)."""
    field = page.locator(f"[data-input={input_id}]")
    shown = []
    for part in (field.locator(".limit-hint"), field.locator(".deviation-comment > span")):
        if part.is_visible():
            shown.append(part.inner_text())
    return shown


def test_fields_limits_dates_and_what_the_batch_waits_for(
    browser: Browser,
    demo_spoke: str,  # noqa: F811
    screenshot,
):
    url = demo_spoke
    olivia, sam = tablet(browser), tablet(browser)
    register_terminal(olivia, url, "Fields tablet 1")
    register_terminal(sam, url, "Fields tablet 2")
    batch_url = start_through_the_identity_check(olivia, url)

    # The batch page says what the batch waits for and who can do it: guidance, not an error.
    olivia.goto(batch_url)
    steps = olivia.locator("section.next-steps")
    expect(steps).to_contain_text(
        f"Waiting for a second person (a supervisor) to verify '{IDENTITY_CHECK}'"
    )
    assert olivia.locator("section.next-steps .error, .error section.next-steps").count() == 0
    screenshot(olivia, "fields-01-batch-waits-for-a-supervisor")

    log_in(sam, url, "sam")
    sam.goto(f"{batch_url}/phases/apheresis_identity_check")
    sign_in_dialog(sam, "Verify", "sam", first=True)

    olivia.goto(f"{batch_url}/phases/apheresis_transport_check")
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    scan(olivia, "Quarantine fridge", "FR-01")

    # Nothing typed: no field says a deviation will be raised.
    for input_id in ("transport_temp_min", "transport_temp_max", "hours_since_collection"):
        expect(olivia.locator(f"[data-input={input_id}] .deviation-comment")).to_be_hidden()
        assert visible_messages(olivia, input_id) == []
    screenshot(olivia, "fields-02-empty-fields-no-deviation-box")

    # "Before you sign" ticks off each value as it is typed, before any save.
    missing = olivia.locator(".missing li[data-missing-field='value:transport_temp_min']")
    expect(missing).to_have_text("Lowest transport temperature on the logger is not recorded")
    expect(missing).not_to_have_class(re.compile(r"\bdone\b"))
    olivia.get_by_label("Lowest transport temperature on the logger").press_sequentially("3.8")
    expect(missing).to_have_class(re.compile(r"\bdone\b"))
    olivia.get_by_label("Lowest transport temperature on the logger").fill("")
    expect(missing).not_to_have_class(re.compile(r"\bdone\b"))
    olivia.get_by_label("Lowest transport temperature on the logger").fill("3.8")

    # One message at a time, the worst that applies.
    hours = olivia.get_by_label("Time from end of collection to receipt")
    hours.press_sequentially("30")  # alert above 24 h, action above 48 h
    assert visible_messages(olivia, "hours_since_collection") == [
        "Outside the alert limits: it will be flagged for review."
    ]
    screenshot(olivia, "fields-03-alert-one-message")
    hours.fill("50")
    expect(olivia.locator("[data-input=hours_since_collection] .deviation-comment")).to_be_visible()
    assert visible_messages(olivia, "hours_since_collection") == [
        "Outside the action limits: a deviation will be raised. Say what happened."
    ]
    hours.fill("20.0")
    assert visible_messages(olivia, "hours_since_collection") == []

    # A date typed ambiguously: the signature dialog still opens, and the refusal is at the field.
    collected = olivia.get_by_label("End of apheresis collection")
    expect(collected).to_have_attribute("placeholder", "DD/MM/YYYY HH:MM")
    collected.press_sequentially("5122026 1430")
    olivia.get_by_label("Highest transport temperature on the logger").fill("6.1")
    olivia.locator("[data-input=temperature_excursion] label.option", has_text="no").tap()
    olivia.get_by_role("button", name="Sign performed").tap()
    dialog = olivia.locator("dialog.esign[open]")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Password").fill(PASSWORDS["olivia"])
    with olivia.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).tap()
    error = olivia.locator("[data-input=collection_time] .field-error")
    expect(error).to_contain_text("could be read more than one way")
    expect(error).to_be_in_viewport()
    screenshot(olivia, "fields-04-ambiguous-date-at-the-field")

    # "Now" writes the site's present time, day first, on the 24-hour clock.
    collected = olivia.get_by_label("End of apheresis collection")
    before = datetime.now(LONDON).replace(second=0, microsecond=0)
    olivia.get_by_role("button", name="Now").tap()
    after = datetime.now(LONDON)
    typed = collected.input_value()
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", typed), typed
    assert before <= datetime.strptime(typed, "%d/%m/%Y %H:%M").replace(tzinfo=LONDON) <= after

    # Digits typed in one go, day first: yesterday at 14:30 site time.
    yesterday = datetime.now(LONDON) - timedelta(days=1)
    collected.fill("")
    collected.press_sequentially(f"{yesterday:%d%m%Y} 1430")
    submit(olivia, olivia.get_by_role("button", name="Save").last)
    expect(olivia.locator("[data-input=collection_time] .recorded")).to_contain_text(
        f"Recorded {yesterday:%Y-%m-%d} 14:30:00"
    )
    expect(olivia.get_by_label("End of apheresis collection")).to_have_value(
        f"{yesterday:%d/%m/%Y} 14:30"
    )
    screenshot(olivia, "fields-05-date-recorded")
    sign_in_dialog(olivia, "Sign performed", "olivia", first=False)
    expect(olivia.locator(".flash").first).to_contain_text("Signed: performed.")
