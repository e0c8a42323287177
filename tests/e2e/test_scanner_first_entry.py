"""Scanner-first entry in a real browser (touch, against the real demo spoke), issue 15's four
problems that cause wrong entries or lost work. A keyboard-wedge scanner is simulated as the
characters of a code then Enter, typed into whatever field has the focus.

1. Starting a batch: Enter after a scan moves to the next empty field, never submits; after a
   refusal the focus is on the first field in error (caret at its end), not on the first field.
2. A phase: each scan is checked and shown without a page load, and the focus moves to the
   next empty scan field; a phase costs one page load besides its signature.
3. Every refusal (wrong instrument, expired lot, identity mismatch, refused signature, missing
   comment) is at the field or button that caused it, in view (not under the sticky bar),
   focused and announced, at 1280×800 and 800×1280.
4. The comment typed under an out-of-limit value is the deviation's comment, and survives a
   refused signature; the deviation's card has no second comment form.

Screenshots (what the user saw, not the whole page) go to test-artifacts/e2e-scan-*.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from test_batch_in_browser import (  # noqa: F401  (demo_spoke is a fixture)
    PASSWORDS,
    demo_spoke,
    fill_the_start_form,
    fill_the_transport_check,
    log_in,
    register_terminal,
    scan_the_identity_check,
    submit,
    tablet,
)

from mes.core.identity import mod37_2

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RECIPE = "CART-CD19-FRESH"
PORTRAIT = {"width": 800, "height": 1280}
LANDSCAPE = {"width": 1280, "height": 800}


def identity(serial: int) -> tuple[str, str, str]:
    """A donation's DIN, its CoI and its patient, from a serial number (fake facility A9999)."""
    din = f"A99992600{serial:04d}"
    return din, f"CH{din}", f"P-{serial:04d}"


def shot(page: Page, name: str) -> None:
    """What the user sees now (the viewport, where the message must be)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"e2e-scan-{name}.png"))


def count_loads(page: Page) -> list[str]:
    """The page loads of ``page`` from now on (the list grows with each load's URL)."""
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    return loads


def wedge(page: Page, code: str) -> None:
    """A keyboard-wedge scanner: the code's characters and Enter into the focused field."""
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def wedge_scan(page: Page, code: str) -> None:
    """A scan on a phase page, waiting for the page to show its answer (no page load)."""
    form = page.locator("form[data-scan-form]")
    answered = int(form.get_attribute("data-scans-answered") or 0)
    wedge(page, code)
    expect(form).to_have_attribute("data-scans-answered", str(answered + 1))


def focused_name(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement && document.activeElement.name")


def tap_scan(page: Page, label: str, code: str) -> None:
    """The operator taps a scan field, then scans."""
    page.get_by_label(label, exact=False).first.tap()
    wedge_scan(page, code)


def sign(page: Page, button: str, password: str, username: str | None = None) -> None:
    """Open the signature dialog of ``button`` and sign (a page load)."""
    page.get_by_role("button", name=button).first.tap()
    dialog = page.locator("dialog.esign[open]")
    expect(dialog).to_be_visible()
    if username:
        dialog.get_by_label("User ID").fill(username)
    dialog.get_by_label("Password").fill(password)
    with page.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).tap()


def assert_in_view_and_focused(page: Page, message: Locator, name: str) -> None:
    """The refusal ``message`` is inside the viewport, not under the sticky action bar (unless
    it is in it), announced (role=alert), and its field or button (or itself) has the focus."""
    expect(message).to_be_visible()
    expect(message).to_have_attribute("role", "alert")
    box = message.bounding_box()
    view = page.viewport_size
    assert box is not None and view is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= view["height"], (name, box, view)
    assert box["x"] >= 0 and box["x"] + box["width"] <= view["width"], (name, box, view)
    in_bar = message.evaluate("m => !!m.closest('.sticky-actions')")
    bar = page.locator(".sticky-actions")
    if not in_bar and bar.count() and bar.is_visible():
        top = bar.bounding_box()
        assert top is not None
        below_bar = box["y"] >= top["y"] + top["height"]
        assert box["y"] + box["height"] <= top["y"] or below_bar, (name, box, top)
    focused = message.evaluate(
        """m => { const a = document.activeElement;
                  const scope = m.closest('.field, .actions');
                  return a === m || (!!scope && scope.contains(a) && a !== document.body); }"""
    )
    assert focused, (name, page.evaluate("() => document.activeElement.outerHTML.slice(0, 200)"))
    shot(page, f"{name}-{view['width']}x{view['height']}")


def start_batch(page: Page, url: str, serial: int) -> str:
    """Start a batch of the fresh CAR-T recipe as typed from the order; the batch's URL."""
    din, coi, patient = identity(serial)
    fill_the_start_form(page, url, RECIPE, din, coi, patient, born="1970-05-17")
    sign(page, "Start the batch", PASSWORDS["olivia"], "olivia")
    expect(page.get_by_role("heading", name="Check the apheresis bag")).to_be_visible()
    return re.sub(r"/phases/.*$", "", page.url)


def operator_and_supervisor(browser: Browser, url: str, name: str, **viewport: int):
    """Olivia and Sam, each on a registered terminal, logged in."""
    olivia, sam = tablet(browser, **viewport), tablet(browser, **viewport)
    register_terminal(olivia, url, f"{name} 1")
    register_terminal(sam, url, f"{name} 2")
    log_in(olivia, url, "olivia")
    log_in(sam, url, "sam")
    return olivia, sam


def identity_check(olivia: Page, sam: Page, batch_url: str, serial: int, *, sam_first: bool):
    """The identity check done by scans, performed by Olivia and verified by Sam."""
    din, coi, patient = identity(serial)
    olivia.goto(f"{batch_url}/phases/apheresis_identity_check")
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    scan_the_identity_check(olivia, din, coi, patient, scan=tap_scan)
    sign(olivia, "Sign performed", PASSWORDS["olivia"])
    sam.goto(f"{batch_url}/phases/apheresis_identity_check")
    sign(sam, "Verify", PASSWORDS["sam"], "sam" if sam_first else None)


def transport_check(olivia: Page, batch_url: str) -> None:
    """Transport within limits; signing leads to the cell count."""
    olivia.goto(f"{batch_url}/phases/apheresis_transport_check")
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    fill_the_transport_check(olivia, scan=tap_scan)
    sign(olivia, "Sign performed", PASSWORDS["olivia"])
    expect(
        olivia.get_by_role("heading", name="Sample the bag and count nucleated cells")
    ).to_be_visible()


def to_the_cell_count(browser: Browser, url: str, name: str, serial: int, **viewport: int):
    """A batch whose cell count is the current phase (not started): (olivia, sam, batch URL)."""
    olivia, sam = operator_and_supervisor(browser, url, name, **viewport)
    batch_url = start_batch(olivia, url, serial)
    identity_check(olivia, sam, batch_url, serial, sam_first=True)
    transport_check(olivia, batch_url)
    return olivia, sam, batch_url


# --- 1. starting a batch ---------------------------------------------------------------------


def test_a_scan_after_the_chain_of_identity_never_lands_in_that_field(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 (the fixture imported above)
):
    url = demo_spoke
    din, coi, patient = identity(901)
    page = tablet(browser)
    register_terminal(page, url, "Scan start 1")
    log_in(page, url, "olivia")
    page.goto(f"{url}/batches/new?recipe={RECIPE}")
    loads = count_loads(page)
    assert focused_name(page) == "coi:coi_id"
    wedge(page, coi)  # the scanner's Enter: the next field, not a submitted form
    assert focused_name(page) == "coi:apheresis_din"
    wedge(page, f"={din}00")
    assert focused_name(page) == "coi:patient_id"
    wedge(page, patient)
    assert focused_name(page) == "coi:patient_dob"
    assert loads == []
    expect(page.get_by_label("Chain of Identity identifier (ISBT 128 CoI)")).to_have_value(coi)
    expect(page.locator(".field-error")).to_have_count(0)
    page.get_by_label("Patient date of birth").fill("1970-05-17")
    page.get_by_label("Patient date of birth").press("Enter")  # all filled: the dialog opens
    expect(page.locator("dialog.esign[open]")).to_be_visible()
    page.locator("dialog.esign[open]").get_by_role("button", name="Cancel").tap()

    # A DIN typed with a wrong check character: refused at the DIN, which has the focus with
    # the caret at its end; the next scan lands there, never in the chain of identity.
    din_field = page.get_by_label("Apheresis donation identification number (ISBT 128 DIN)")
    din_field.fill(f"{din} 00 {'A' if mod37_2(din) != 'A' else 'B'}")
    sign(page, "Start the batch", PASSWORDS["olivia"], "olivia")
    message = page.locator(".field:has([name='coi:apheresis_din']) .field-error")
    expect(message).to_contain_text("does not match DIN")
    assert_in_view_and_focused(page, message, "start-wrong-din")
    assert focused_name(page) == "coi:apheresis_din"
    caret, length = page.evaluate(
        "() => [document.activeElement.selectionStart, document.activeElement.value.length]"
    )
    assert caret == length
    wedge(page, "X")
    expect(page.get_by_label("Chain of Identity identifier (ISBT 128 CoI)")).to_have_value(coi)


# --- 2. a phase: scans without page loads, the focus on the next empty field ------------------


def count_typed_and_signed(olivia: Page) -> None:
    """With every scan of the cell count made and the focus on the bag volume: its values
    typed, the phase signed; the next phase's page."""
    olivia.keyboard.type("250")
    olivia.get_by_label("TNC concentration").fill("40.00")
    olivia.get_by_label("Viability", exact=True).fill("95.0")
    sign(olivia, "Sign performed", PASSWORDS["olivia"])
    expect(
        olivia.get_by_role("heading", name="Measure CD3+ cells by flow cytometry")
    ).to_be_visible()


def test_an_accepted_scan_moves_focus_to_the_next_empty_instrument(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 (the fixture imported above)
):
    olivia, _sam, batch_url = to_the_cell_count(browser, demo_spoke, "Scan focus", 902)
    loads = count_loads(olivia)
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    slots = olivia.evaluate(
        "() => Array.from(document.querySelectorAll('form[data-scan-form] input[data-scan]'))"
        ".map(el => el.name)"
    )
    assert slots[:3] == ["equipment:0", "equipment:1", "equipment:2"], slots
    assert focused_name(olivia) == slots[0]  # the first slot to scan, after the start
    for code, following in zip(
        ("BSC-01", "CC-01", "BAL-01", "SAMPLING-SYRINGE-L01"), [*slots[1:], None], strict=True
    ):
        wedge_scan(olivia, code)  # no tap: the focus is already where the next scan goes
        if following is not None:
            assert focused_name(olivia) == following, (code, focused_name(olivia))
    expect(olivia.locator(".scan-field.done")).to_have_count(4)
    assert focused_name(olivia) == "value:bag_volume"  # then the first value to type
    shot(olivia, "phase-after-four-scans")
    count_typed_and_signed(olivia)
    # The phase: its start and its signature, and nothing for its four scans.
    assert len(loads) == 2, loads
    record = olivia.request.get(f"{batch_url}/record").text()
    assert record.count("BSC-01") >= 1 and "SAMPLING-SYRINGE-L01" in record


def test_the_first_scan_on_a_ready_phase_starts_it_without_a_page_load(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 (the fixture imported above)
):
    olivia, _sam, batch_url = to_the_cell_count(browser, demo_spoke, "Scan ready", 911)
    loads = count_loads(olivia)
    status = olivia.locator(".phase-title [data-phase-status]")
    expect(status).to_have_attribute("data-phase-status", "ready")
    start = olivia.get_by_role("button", name="Start this phase")
    expect(start).to_be_visible()  # still there, to mark the start explicitly
    assert focused_name(olivia) == "equipment:0"  # the form is shown: scan straight away
    olivia.evaluate("() => window.scrollTo(0, 0)")
    shot(olivia, "ready-phase-before-first-scan")
    wedge_scan(olivia, "BSC-01")
    expect(status).to_have_attribute("data-phase-status", "in_progress")
    expect(status).to_have_text("In progress")
    expect(start).to_have_count(0)
    assert focused_name(olivia) == "equipment:1"
    shot(olivia, "ready-phase-after-first-scan")
    for code in ("CC-01", "BAL-01", "SAMPLING-SYRINGE-L01"):
        wedge_scan(olivia, code)
    count_typed_and_signed(olivia)
    assert len(loads) == 1, loads  # the signature's, and nothing for the start
    record = olivia.request.get(f"{batch_url}/record").text()
    assert "BSC-01" in record


# --- 3. refusals in view, focused, announced ---------------------------------------------------


@pytest.mark.parametrize("viewport", [LANDSCAPE, PORTRAIT], ids=["1280x800", "800x1280"])
def test_a_refused_scan_is_in_view_and_focused(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 (the fixture imported above)
    viewport: dict[str, int],
):
    url = demo_spoke
    serial = 903 if viewport is LANDSCAPE else 904
    din, coi, patient = identity(serial)
    name = f"Scan view {viewport['width']}"
    olivia, sam = operator_and_supervisor(browser, url, name, **viewport)
    batch_url = start_batch(olivia, url, serial)

    # Identity mismatch: the wrong patient's label.
    olivia.goto(f"{batch_url}/phases/apheresis_identity_check")
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    tap_scan(olivia, "DIN on the apheresis bag label", f"={din}00")
    tap_scan(olivia, "Patient identifier on the apheresis bag label", "P-0999")
    message = olivia.locator("[data-slot^='identity:'] .refusal")
    expect(message).to_contain_text("does not match this batch's chain of identity")
    assert_in_view_and_focused(olivia, message, "identity-mismatch")
    wedge_scan(olivia, patient)  # the focus stayed in the refused field: the rescan lands there
    tap_scan(olivia, "Chain of Identity identifier on the apheresis bag label", coi)
    tap_scan(olivia, "barcode scanner", "SCN-01")
    deviation = olivia.locator("article.deviation").first
    deviation.get_by_label("What happened, and what you did").fill("Scanned the wrong bag.")
    submit(olivia, deviation.get_by_role("button", name="Add the comment"))
    sam.goto(f"{batch_url}/phases/apheresis_identity_check")
    sign(sam, "Acknowledge", PASSWORDS["sam"], "sam")

    # A refused signature: the wrong password.
    olivia.reload()
    olivia.locator("label.option", has_text="yes").tap()  # not saved by the comment's form
    sign(olivia, "Sign performed", "not-my-password")
    message = olivia.locator(".sticky-actions .refusal")
    expect(message).to_contain_text("password")
    assert_in_view_and_focused(olivia, message, "refused-signature")
    assert olivia.evaluate("() => document.activeElement.matches('[data-esign-open]')")
    sign(olivia, "Sign performed", PASSWORDS["olivia"])
    sam.goto(f"{batch_url}/phases/apheresis_identity_check")
    sign(sam, "Verify", PASSWORDS["sam"])
    transport_check(olivia, batch_url)

    # A wrong instrument (out of service) and an expired lot.
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    wedge_scan(olivia, "BSC-02")
    message = olivia.locator("[data-slot='equipment:0'] .refusal")
    expect(message).to_contain_text("out of service")
    assert_in_view_and_focused(olivia, message, "wrong-instrument")
    for code in ("BSC-01", "CC-01", "BAL-01", "SAMPLING-SYRINGE-OLD"):
        wedge_scan(olivia, code)
    message = olivia.locator("[data-slot^='lot:'] .refusal")
    expect(message).to_contain_text("expired")
    assert_in_view_and_focused(olivia, message, "expired-lot")
    wedge_scan(olivia, "SAMPLING-SYRINGE-L01")
    expect(olivia.locator(".scan-field.done")).to_have_count(4)

    # A value outside its action limits signed without the deviation's comment.
    olivia.get_by_label("Apheresis volume").fill("250")
    olivia.get_by_label("TNC concentration").fill("40.00")
    olivia.get_by_label("Viability", exact=True).fill("60.0")
    sign(olivia, "Sign performed", PASSWORDS["olivia"])
    message = olivia.locator("#comment-viability .refusal")
    expect(message).to_contain_text("needs a comment")
    assert_in_view_and_focused(olivia, message, "missing-comment")
    assert focused_name(olivia) == "comment:viability"
    olivia.keyboard.type("Low viability at receipt; QA informed.")
    sign(olivia, "Sign performed", PASSWORDS["olivia"])
    expect(
        olivia.get_by_role("heading", name="Measure CD3+ cells by flow cytometry")
    ).to_be_visible()


# --- 4. one comment box per deviation ----------------------------------------------------------


def test_the_comment_typed_under_the_value_is_the_deviations_comment_and_survives_a_refusal(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 (the fixture imported above)
):
    olivia, _sam, batch_url = to_the_cell_count(browser, demo_spoke, "Scan comment", 905)
    submit(olivia, olivia.get_by_role("button", name="Start this phase"))
    for code in ("BSC-01", "CC-01", "BAL-01", "SAMPLING-SYRINGE-L01"):
        wedge_scan(olivia, code)
    olivia.get_by_label("Apheresis volume").fill("250")
    olivia.get_by_label("TNC concentration").fill("40.00")
    olivia.get_by_label("Viability", exact=True).fill("60.0")
    submit(olivia, olivia.get_by_role("button", name="Save").last)  # the deviation is raised
    card = olivia.locator("article.deviation").first
    expect(card).to_contain_text("Viability 60.0 % is outside")
    expect(card.get_by_role("button", name="Add the comment")).to_have_count(0)  # one box
    box = olivia.locator("#comment-viability textarea")
    expect(box).to_be_visible()
    comment = "Low viability at receipt; medical team and QA informed."
    box.fill(comment)
    sign(olivia, "Sign performed", "not-my-password")  # refused: what was typed stays
    expect(olivia.locator(".sticky-actions .refusal")).to_be_visible()
    expect(olivia.locator("#comment-viability textarea")).to_have_value(comment)
    shot(olivia, "comment-kept-after-refused-signature")
    sign(olivia, "Sign performed", PASSWORDS["olivia"])
    expect(
        olivia.get_by_role("heading", name="Measure CD3+ cells by flow cytometry")
    ).to_be_visible()
    olivia.goto(f"{batch_url}/phases/apheresis_cell_count")
    expect(olivia.locator("article.deviation p.comment")).to_contain_text(comment)


def test_a_scanned_lot_number_moves_on_to_its_expiry_instead_of_submitting(
    browser: Browser,
    demo_spoke: str,  # noqa: F811 (the fixture imported above)
):
    page = tablet(browser)
    log_in(page, demo_spoke, "sam")
    page.goto(f"{demo_spoke}/materials")
    loads = count_loads(page)
    page.get_by_label("Lot number").tap()
    wedge(page, "TEXMACS-L99")
    assert focused_name(page) == "expiry"  # the next empty field, not a submitted form
    assert loads == []
    expect(page.get_by_label("Lot number")).to_have_value("TEXMACS-L99")
