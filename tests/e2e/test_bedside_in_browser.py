"""The bedside check in a real browser: a portrait touch tablet (800 × 1280) at the ward.

The product was made at SPK1 and released by QA at the hub (the review chain received back).
The spoke's real app is served over HTTP on its own database; the hub is not running at all:
the bedside page works with the hub and the network beyond the hospital down. Nina scans with a
keyboard-wedge scanner (the code's characters + Enter into the focused field): the bag's DIN,
its chain-of-identity code, a wrong wristband — the hard stop covers the whole screen — then
the right one, her badge and PIN; the infusion's start and end. Taps are counted; every target
is at least 48 px; screenshots go to test-artifacts/.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from bedside_sites import BADGE, PIN, connected, made, released
from itsdangerous import URLSafeSerializer
from playwright.sync_api import Locator, Page, expect
from support import PASSWORD
from sync_sites import Network
from werkzeug.serving import make_server

from mes.store.engine import make_engine

pytestmark = pytest.mark.e2e

VIEWPORT = {"width": 800, "height": 1280}


@dataclass
class Ward:
    url: str
    batch_id: str
    label: dict[str, str]
    terminal_cookie: str


@pytest.fixture
def ward(tmp_path, sqlite_template, site_key) -> Iterator[Ward]:
    """A released product at SPK1, and SPK1's app served over HTTP (the hub not running)."""
    hub_file, spoke_file = tmp_path / "hub.sqlite3", tmp_path / "spoke.sqlite3"
    shutil.copyfile(sqlite_template, hub_file)
    shutil.copyfile(sqlite_template, spoke_file)
    hub_engine, spoke_engine = (
        make_engine(f"sqlite:///{hub_file}"),
        make_engine(f"sqlite:///{spoke_file}"),
    )
    net = Network(hub_engine, spoke_engine, site_key, folder=tmp_path)
    site = connected(net)
    batch_id, label = made(site)
    released(net, site, batch_id)
    hub_engine.dispose()  # the hub is gone: nothing below reaches it

    from mes.app import create_app

    runtime = net.runtime("spoke")
    runtime.settings.instance_path.mkdir(parents=True, exist_ok=True)
    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cookie = URLSafeSerializer("sync-tests-spoke", salt="mes-terminal").dumps(site.terminal_id)
    try:
        yield Ward(f"http://127.0.0.1:{server.server_port}", batch_id, label, cookie)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        spoke_engine.dispose()


class Tablet:
    """Nina's tablet: taps counted, scans typed as a wedge scanner types them."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.taps = 0
        self.scans = 0

    def tap(self, target: Locator) -> None:
        target.tap()
        self.taps += 1

    def scan(self, code: str) -> None:
        # Into a page whose script has run (it moves Enter to the next field): on a busy
        # machine a page shown is not yet a page loaded.
        self.page.wait_for_load_state("load")
        self.page.keyboard.type(code)
        self.page.keyboard.press("Enter")
        self.scans += 1


def small_targets(page: Page) -> list:
    """Visible buttons, fields and links styled as buttons smaller than 48 CSS pixels."""
    page.wait_for_load_state("load")
    return page.evaluate(
        """() => Array.from(document.querySelectorAll(
              '.bedside button, .bedside a, .bedside input:not([type=hidden]), .hard-stop a'))
            .filter(el => el.offsetParent !== null || el.closest('.hard-stop'))
            .map(el => [el.outerHTML.slice(0, 80), el.getBoundingClientRect()])
            .filter(([, r]) => r.height < 48 || r.width < 48)
            .map(([html, r]) => [html, r.width, r.height])"""
    )


def covers_the_screen(page: Page, selector: str) -> bool:
    """The element fills the viewport and is what a finger touches everywhere on it."""
    return page.evaluate(
        """(selector) => {
            const el = document.querySelector(selector);
            const r = el.getBoundingClientRect();
            const w = window.innerWidth, h = window.innerHeight;
            const points = [[2, 2], [w - 2, 2], [w / 2, h / 2], [2, h - 2], [w - 2, h - 2]];
            return r.left <= 0 && r.top <= 0 && r.right >= w && r.bottom >= h &&
              points.every(([x, y]) => el.contains(document.elementFromPoint(x, y)));
        }""",
        selector,
    )


def test_the_bedside_check_on_a_portrait_touch_tablet_stops_full_screen_then_infuses(
    ward: Ward, browser, screenshot
):
    context = browser.new_context(has_touch=True, viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    try:
        walk(context, ward, screenshot)
    finally:
        context.close()


def walk(context, ward: Ward, screenshot) -> None:
    """Nina's work at the bedside, from the first scan to the infusion's end."""
    context.add_cookies([{"name": "mes_terminal", "value": ward.terminal_cookie, "url": ward.url}])
    page = context.new_page()
    tablet = Tablet(page)
    page.goto(f"{ward.url}/login")
    page.get_by_label("User ID").fill("nina")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").tap()
    expect(page.locator(".who .user")).to_be_visible()
    page.goto(f"{ward.url}/bedside/")
    expect(page.get_by_label("Scan the bag label")).to_be_focused()
    assert small_targets(page) == []

    # A bag of another site: refused at the top of the page, in view, saying what to do.
    tablet.scan("=A99992699999900")
    refusal = page.locator("[data-refusal]")
    expect(refusal).to_contain_text("is not a product of SPK1")
    expect(refusal).to_contain_text("Do not infuse it")
    expect(refusal).to_be_in_viewport()
    screenshot(page, "bedside-01-another-site")

    # The bag finds the product; the DIN is carried; the next field is focused.
    page.get_by_label("Scan the bag label").fill("")
    tablet.scan(ward.label["bag_din"])
    expect(page.locator("h1")).to_contain_text("SPK1-")
    expect(page.get_by_text("Released by QA")).to_be_visible()
    assert small_targets(page) == []
    screenshot(page, "bedside-02-product")
    for code in (ward.label["bag_coi"], "PAT-9999", BADGE, PIN):  # a wrong wristband
        tablet.scan(code)

    # The hard stop: the whole screen, red, saying what to do.
    stop = page.locator("[data-hard-stop]")
    expect(stop).to_contain_text("STOP — DO NOT INFUSE")
    expect(stop).to_contain_text("PAT-9999")
    assert covers_the_screen(page, "[data-hard-stop]")
    assert (
        page.evaluate(
            "getComputedStyle(document.querySelector('[data-hard-stop]')).backgroundColor"
        )
        == "rgb(176, 0, 32)"
    )
    assert small_targets(page) == []
    screenshot(page, "bedside-03-hard-stop")
    tablet.tap(page.get_by_role("link", name="I have stopped — back"))
    expect(page.locator(".bedside-stopped")).to_contain_text("MISMATCH")

    # The right patient: the check is signed with badge and PIN; the timer runs.
    for code in (ward.label["bag_din"], ward.label["bag_coi"], ward.label["wristband"], BADGE, PIN):
        tablet.scan(code)
    expect(page.locator("[data-matched]")).to_contain_text("Identity matches")
    expect(page.locator("[data-deadline] [data-left]")).to_contain_text("min left")
    screenshot(page, "bedside-04-matched-timer")
    # Each signature's page is scanned into once it has loaded (its script moves Enter on)
    # and its badge field has the focus: a scanner typing earlier would be lost.
    page.wait_for_load_state("load")
    expect(page.locator("#start-badge")).to_be_focused()
    tablet.scan(BADGE)
    tablet.scan(PIN)
    expect(page.locator("[data-started]")).to_contain_text("Infusion started at")
    page.wait_for_load_state("load")
    expect(page.locator("#end-badge")).to_be_focused()
    tablet.scan(BADGE)
    tablet.scan(PIN)
    expect(page.locator("[data-ended]")).to_contain_text("The chain of identity is closed")
    screenshot(page, "bedside-05-infused")
    # From the first scan to the infusion's end, one tap: leaving the hard stop.
    assert (tablet.taps, tablet.scans) == (1, 15)
