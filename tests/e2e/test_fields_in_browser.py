"""The phase page's fields in a real browser (touch, 1280×800) at the demo spoke (Europe/London):
limits say one thing at a time and nothing before a value is typed, "Before you sign" ticks off
as fields are filled, dates and times are typed in the site's order on the 24-hour clock (with
"Now"), an unreadable date is a message at its field, and the batch page says who it waits for.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect
from test_batch_in_browser import (
    PASSWORDS,
    demo_spoke,  # noqa: F401 - the module's demo spoke, built once
    fill_the_start_form,
    log_in,
    register_terminal,
    scan,
    scan_the_identity_check,
    sign_in_dialog,
    submit,
    tablet,
)

pytestmark = pytest.mark.e2e

LONDON = ZoneInfo("Europe/London")
TABLETS = itertools.count(10)
IDENTITY_CHECK = "Check the apheresis bag against the manufacturing order"


def start_through_the_identity_check(olivia: Page, url: str, serial: str) -> str:
    """Olivia starts a batch (test DIN A9999 26 000<serial>) and signs its identity check."""
    din, coi, patient = f"A99992600{serial}", f"CHA99992600{serial}", f"P-{serial}"
    log_in(olivia, url, "olivia")
    fill_the_start_form(olivia, url, "CART-CD19-FRESH", din, coi, patient, born="1970-05-17")
    sign_in_dialog(olivia, "Start the batch", "olivia", first=True)
    batch_url = re.sub(r"/phases/.*$", "", olivia.url)
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    scan_the_identity_check(olivia, din, coi, patient)
    sign_in_dialog(olivia, "Sign performed", "olivia", first=False)
    return batch_url


@pytest.fixture(scope="module")
def transport_check(browser: Browser, demo_spoke: str) -> str:  # noqa: F811
    """A batch whose transport check Olivia has started (fridge scanned): the phase's URL."""
    url = demo_spoke
    olivia, sam = tablet(browser), tablet(browser)
    register_terminal(olivia, url, "Fields tablet 1")
    register_terminal(sam, url, "Fields tablet 2")
    batch_url = start_through_the_identity_check(olivia, url, "0551")
    log_in(sam, url, "sam")
    sam.goto(f"{batch_url}/phases/apheresis_identity_check")
    sign_in_dialog(sam, "Verify", "sam", first=True)
    olivia.goto(f"{batch_url}/phases/apheresis_transport_check")
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    scan(olivia, "Quarantine fridge", "FR-01")
    olivia.context.close()
    sam.context.close()
    return f"{batch_url}/phases/apheresis_transport_check"


def operator_on(browser: Browser, url: str, page_url: str) -> Page:
    """Olivia, logged in at her registered tablet, on ``page_url``."""
    olivia = tablet(browser)
    register_terminal(olivia, url, f"Fields tablet {next(TABLETS)}")
    log_in(olivia, url, "olivia")
    olivia.goto(page_url)
    return olivia


def sign_performed(page: Page) -> None:
    """Tap "Sign performed" and sign in the dialog (with the user ID on a first signing)."""
    page.get_by_role("button", name="Sign performed").tap()
    dialog = page.locator("dialog.esign[open]")
    expect(dialog).to_be_visible()
    if dialog.get_by_label("User ID").count():
        dialog.get_by_label("User ID").fill("olivia")
    dialog.get_by_label("Password").fill(PASSWORDS["olivia"])
    with page.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).tap()


def visible_messages(page: Page, input_id: str) -> list[str]:
    """The limit messages on screen at one value field: the hint, and the deviation's box."""
    field = page.locator(f"[data-input={input_id}]")
    shown = []
    for part in (field.locator(".limit-hint"), field.locator(".deviation-comment")):
        if part.is_visible():
            shown.append(" ".join(part.inner_text().split()))
    return shown


def test_the_batch_page_says_a_supervisor_must_verify_as_guidance(
    browser: Browser,
    demo_spoke: str,  # noqa: F811
    screenshot,
):
    olivia = tablet(browser)
    register_terminal(olivia, demo_spoke, "Fields tablet 3")
    batch_url = start_through_the_identity_check(olivia, demo_spoke, "0552")
    olivia.goto(batch_url)
    number = olivia.locator(".batch-number").inner_text()
    steps = olivia.locator("section.next-steps")
    expect(steps).to_contain_text(
        f"Waiting for a second person (a supervisor) to verify '{IDENTITY_CHECK}'"
    )
    assert olivia.locator("section.next-steps .error, .error section.next-steps").count() == 0
    screenshot(olivia, "fields-01-batch-waits-for-a-supervisor")
    olivia.goto(f"{demo_spoke}/batches")
    card = olivia.locator(".batch-card", has=olivia.locator("a.batch-number", has_text=number))
    expect(card.locator(".next-steps-line")).to_contain_text(
        "Waiting for a second person (a supervisor) to verify"
    )
    screenshot(olivia, "fields-06-board-says-what-each-batch-waits-for")


def test_an_empty_action_limit_field_shows_no_deviation_box(
    browser: Browser,
    demo_spoke: str,  # noqa: F811
    transport_check: str,
    screenshot,
):
    olivia = operator_on(browser, demo_spoke, transport_check)
    for input_id in ("transport_temp_min", "transport_temp_max", "hours_since_collection"):
        expect(olivia.locator(f"[data-input={input_id}] .deviation-comment")).to_be_hidden()
        assert visible_messages(olivia, input_id) == []
    screenshot(olivia, "fields-02-empty-fields-no-deviation-box")


def test_a_value_shows_one_limit_message_the_worst_that_applies(
    browser: Browser,
    demo_spoke: str,  # noqa: F811
    transport_check: str,
    screenshot,
):
    olivia = operator_on(browser, demo_spoke, transport_check)
    hours = olivia.get_by_label("Time from end of collection to receipt")
    hours.press_sequentially("30")  # alert above 24 h, action above 48 h
    assert visible_messages(olivia, "hours_since_collection") == [
        "Outside the alert limits: it will be flagged for review."
    ]
    screenshot(olivia, "fields-03-alert-one-message")
    hours.fill("50")
    expect(olivia.locator("[data-input=hours_since_collection] .deviation-comment")).to_be_visible()
    assert visible_messages(olivia, "hours_since_collection") == [
        "Outside the action limits: a deviation will be raised.",
        "Say what happened: the deviation needs a comment before the phase is signed.",
    ]
    hours.fill("20.0")
    assert visible_messages(olivia, "hours_since_collection") == []


def test_before_you_sign_ticks_off_a_value_as_it_is_typed(
    browser: Browser,
    demo_spoke: str,  # noqa: F811
    transport_check: str,
):
    olivia = operator_on(browser, demo_spoke, transport_check)
    missing = olivia.locator(".missing li", has_text="Lowest transport temperature")
    expect(missing).to_have_text("Lowest transport temperature on the logger is not recorded")
    expect(missing).not_to_have_class(re.compile(r"\bdone\b"))
    olivia.get_by_label("Lowest transport temperature on the logger").press_sequentially("3.8")
    expect(missing).to_have_class(re.compile(r"\bdone\b"))
    olivia.get_by_label("Lowest transport temperature on the logger").fill("")
    expect(missing).not_to_have_class(re.compile(r"\bdone\b"))


def test_dates_are_typed_in_site_order_with_now_and_an_ambiguous_one_is_refused_at_the_field(
    browser: Browser,
    demo_spoke: str,  # noqa: F811
    transport_check: str,
    screenshot,
):
    olivia = operator_on(browser, demo_spoke, transport_check)
    olivia.get_by_label("Lowest transport temperature on the logger").fill("3.8")
    olivia.get_by_label("Highest transport temperature on the logger").fill("6.1")
    olivia.get_by_label("Time from end of collection to receipt").fill("20.0")
    olivia.locator("[data-input=temperature_excursion] label.option", has_text="no").tap()

    # Typed ambiguously: the signature dialog still opens, and the refusal is at the field.
    collected = olivia.get_by_label("End of apheresis collection")
    collected.press_sequentially("5122026 1430")
    sign_performed(olivia)  # the dialog opens: nothing blocks it silently
    error = olivia.locator("[data-input=collection_time] .field-error")
    expect(error).to_contain_text("could be read more than one way")
    screenshot(olivia, "fields-04-ambiguous-date-at-the-field")

    # "Now" writes the site's present time, day first, on the 24-hour clock.
    collected = olivia.get_by_label("End of apheresis collection")
    expect(collected).to_have_attribute("placeholder", "DD/MM/YYYY HH:MM")
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
    sign_performed(olivia)
    expect(olivia.locator(".flash").first).to_contain_text("Signed: performed.")
