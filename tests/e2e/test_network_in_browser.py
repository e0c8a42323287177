"""In a real browser against the real ``mes demo`` (hub and spoke, two processes, the spoke
syncing every 2 s): QA watches the hub's network page while a batch runs at the spoke. A value
recorded outside its action limits at the spoke appears on the already-open hub page within
5 seconds, without a reload, with the site, batch, phase and value. The page says when the hub
cannot be reached and stops when the session is locked. The administrator adds a spoke, sees
its one-time code once, and suspends it with a reason. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from batch_helpers import Spoke as SpokeSite
from playwright.sync_api import Page, expect
from recipe_driver import EXAMPLE_RECIPES, BatchRun, compiled_recipe, prepare_site
from sqlalchemy import select
from support import wait_until_up

from mes.cli.demo import SPOKE_USERS
from mes.cli.serve import free_port
from mes.core.keys import SiteKey
from mes.services.esign import Credentials
from mes.services.runtime import open_runtime
from mes.settings import load_settings
from mes.store.models import Terminal, User

pytestmark = pytest.mark.e2e

PASSWORDS = {"ada": "keys-to-the-suite", "quinn": "release-by-exception"}
SPOKE_PASSWORDS = {user[0]: user[3] for user in SPOKE_USERS}
RECIPE = next(p for p in EXAMPLE_RECIPES if p.name == "car-t-fresh.yaml")
PHASE = "apheresis_transport_check"
PHASE_NAME = "Record collection time and transport temperature"
HOT = "12.5"  # °C, above the action limit of 8 °C for the highest transport temperature


@dataclass(frozen=True)
class Demo:
    """The running demo: where the hub and the spoke answer, and the demo folder."""

    hub: str
    spoke: str
    folder: Path


@pytest.fixture(scope="module")
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """``mes demo --dir D --port P --history N``: the hub URL is read from what it prints.

    N is the requesting module's ``DEMO_HISTORY`` (none unless it asks): storing the history
    is minutes of work at the hub, in the background, that only the pages reading it need.
    """
    per_site = getattr(request.module, "DEMO_HISTORY", 0)
    folder = tmp_path_factory.mktemp("network") / "demo"
    executable = shutil.which("mes")
    assert executable, "the 'mes' command is not installed (pip install -e .)"
    output = folder.parent / "demo.out"
    port = free_port("127.0.0.1", 0)
    with output.open("w") as out:
        process = subprocess.Popen(
            [executable, "demo", "--dir", str(folder), "--port", str(port),
             "--history", str(per_site)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            # The recipe driver records days of work in seconds: its entries are dated ahead of
            # the hub's clock, which the hub's review tolerates here (60 days).
            env={**os.environ, "MES_INSTANCE": "", "MES_REVIEW_CLOCK_TOLERANCE_SECONDS": "5184000"},
        )  # fmt: skip
    try:
        hub = spoke = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (hub and spoke):
            assert process.poll() is None, output.read_text()
            printed = output.read_text()
            hub_match = re.search(r"^Hub .*?(http://127\.0\.0\.1:\d+)/", printed, re.M)
            spoke_match = re.search(
                r"^Serving spoke SPK1 on (http://127\.0\.0\.1:\d+)/", printed, re.M
            )
            hub = hub_match.group(1) if hub_match else None
            spoke = spoke_match.group(1) if spoke_match else None
            time.sleep(0.3)
        assert hub and spoke, output.read_text()
        assert spoke == f"http://127.0.0.1:{port}"
        wait_until_up(hub, process, output)
        wait_until_up(spoke, process, output)
        yield Demo(hub, spoke, folder)
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl+C: the demo stops the hub it started
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    for log in (output, folder / "hub.log"):
        assert "Traceback" not in log.read_text(), log.read_text()


class RealTimeRun(BatchRun):
    """The recipe driver at the demo spoke: the real clock and the demo people's passwords."""

    def tick(self) -> datetime:
        self.now = datetime.now(UTC)
        return self.now

    def credentials(self, username: str) -> Credentials:
        return Credentials(SPOKE_PASSWORDS[username], username)


def spoke_site(folder: Path):
    """The demo spoke's own database, as the recipe driver's site (people, terminal)."""
    runtime = open_runtime(load_settings(folder / "spoke"))
    with runtime.uow(read_only=True) as uow:
        ids = {u.username: u.id for u in uow.session.execute(select(User)).scalars()}
        terminal = uow.session.execute(select(Terminal.id)).scalar()
    site = SpokeSite(
        make_uow=lambda *args, **kwargs: runtime.uow(),
        hub_key=SiteKey.generate(),  # unused: the demo installed the hub's bundles
        ids=ids,
        terminal_id=terminal,
        today=datetime.now(UTC).date(),
    )
    at_site = site.ctx
    site.ctx = lambda username, at=None, **kw: at_site(username, at or datetime.now(UTC), **kw)
    return runtime, site


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("User ID").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[username])
    page.get_by_role("button", name="Log in").tap()
    expect(page.locator(".who .user")).to_be_visible()


def small_targets(page: Page) -> list:
    """Visible buttons, fields and links styled as buttons smaller than 48 CSS pixels.

    Measured once the page has loaded: on a busy machine the stylesheet can arrive after the
    content the test waited for, and unstyled buttons measure small.
    """
    page.wait_for_load_state("load")
    return page.evaluate(
        """() => Array.from(document.querySelectorAll(
              'button, a.button, summary, input:not([type=hidden]), select, textarea'))
            .filter(el => el.offsetParent !== null)
            .map(el => [el.outerHTML.slice(0, 80), el.getBoundingClientRect()])
            .filter(([, r]) => r.height < 48 || r.width < 48)
            .map(([html, r]) => [html, r.width, r.height])"""
    )


def test_qa_sees_a_spoke_deviation_live_and_the_administrator_manages_spokes(
    demo: Demo, new_context, screenshot
):
    hub = demo.hub
    quinn = new_context().new_page()
    log_in(quinn, hub, "quinn")
    quinn.goto(f"{hub}/network/")
    alerts = quinn.locator("[data-alerts]")
    status = quinn.locator("[data-live-status]")
    spk1 = quinn.locator("tr[data-spoke=SPK1]")
    expect(alerts).to_contain_text("No open deviations at any spoke")
    expect(status).to_contain_text("Live · as of")
    expect(spk1.locator("[data-field=status_text]")).to_have_text("active")
    expect(quinn.get_by_role("heading", name="Add a spoke")).to_have_count(0)
    assert small_targets(quinn) == []
    quinn.evaluate("window.sameDocument = true")  # gone if the page reloads
    screenshot(quinn, "network-01-watching")

    # At the spoke: a batch starts; its first phase is done; the transport check is under way.
    runtime, site = spoke_site(demo.folder)
    try:
        data = compiled_recipe(RECIPE)
        lots, instruments = prepare_site(site, data)
        run = RealTimeRun(
            site, data, datetime.now(UTC), choices={f"{PHASE}.transport_temp_max": HOT},
            lots=lots, instruments=instruments,
        )  # fmt: skip
        run.start()
        number = run.batch.state.number
        assert run.run_until(PHASE) == PHASE
        run.start_phase(PHASE, "olivia")
        # The spoke's counts follow on the open page (the records sync in the background).
        expect(spk1.locator("[data-field=batches_text]")).to_have_text(
            re.compile(r"^\d+ \(1 in progress\)$"), timeout=15_000
        )
        expect(spk1.locator("[data-field=last_received]")).not_to_have_text("nothing yet")
        expect(alerts).to_contain_text("No open deviations at any spoke")
        result = run.record(PHASE, "olivia")  # the highest temperature is outside its limits
        recorded = time.monotonic()
        assert [d.phase for d in result.batch.state.deviations.values()] == [PHASE]
    finally:
        runtime.close()
    row = alerts.locator("tr[data-alert]")
    expect(row).to_have_count(1, timeout=5_000)
    seen = time.monotonic() - recorded
    assert seen <= 5, f"the deviation reached the open hub page after {seen:.1f} s"
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text("SPK1")
    expect(cells.nth(1)).to_have_text(number)
    expect(cells.nth(2)).to_have_text(PHASE_NAME)
    expect(cells.nth(3)).to_contain_text(HOT)
    expect(cells.nth(4)).to_contain_text("Value outside action limits")
    expect(quinn.locator("[data-open-count]")).to_have_text("1")
    expect(spk1.locator("[data-field=open_deviations]")).to_have_text("1")
    assert quinn.evaluate("window.sameDocument") is True  # no reload
    assert quinn.title().startswith("(1) ")
    screenshot(quinn, "network-02-live-deviation")

    # The hub page cannot be reached: it says so, and carries on when it can again.
    quinn.route("**/network/alerts.json", lambda route: route.abort())
    expect(status).to_have_text("Hub page offline, retrying…", timeout=10_000)
    screenshot(quinn, "network-03-offline")
    quinn.unroute("**/network/alerts.json")
    expect(status).to_contain_text("Live · as of", timeout=15_000)
    expect(row).to_have_count(1)

    # The administrator adds spoke SPK9: its one-time code is shown once.
    ada = new_context().new_page()
    log_in(ada, hub, "ada")
    ada.goto(f"{hub}/network/")
    assert small_targets(ada) == []
    ada.get_by_label("Site code").fill("SPK9")
    ada.get_by_label("Site name").fill("Demo spoke (hospital suite nine)")
    ada.get_by_label("Time zone").fill("Europe/London")
    ada.get_by_role("button", name="Add the spoke and show its enrollment code").tap()
    ticket = ada.locator("[data-enrollment-code]")
    expect(ticket).to_have_text(re.compile(r"^[A-Z2-9]{4}(-[A-Z2-9]{4}){4}$"))
    code = ticket.inner_text()
    expect(ada.locator("main")).to_contain_text("shown only now")
    screenshot(ada, "network-04-enrollment-code")

    # The spoke's administrator enrolls with it (as 'mes spoke enroll' does, over the API).
    request = urllib.request.Request(
        f"{hub}/api/v1/enroll",
        data=json.dumps(
            {
                "site_code": "SPK9",
                "code": code,
                "public_key_pem": SiteKey.generate().public.pem().decode("ascii"),
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200

    with ada.expect_navigation():  # the old page holds the code too: wait for the new one
        ada.get_by_role("link", name="Back to the network").tap()
    expect(ada.locator("main")).not_to_contain_text(code)
    spk9 = ada.locator("tr[data-spoke=SPK9]")
    expect(spk9.locator("[data-field=status_text]")).to_have_text("active")
    spk9.locator("summary", has_text="Suspend").tap()
    suspend = spk9.get_by_role("button", name="Suspend SPK9")
    expect(suspend).to_be_visible()
    assert small_targets(ada) == []
    suspend.tap()  # no reason: the browser asks for one, nothing is sent
    expect(spk9.locator("[data-field=status_text]")).to_have_text("active")
    spk9.get_by_label("Why suspend SPK9?").fill(
        "Site audit found open CAPAs; suspended until closed"
    )
    with ada.expect_navigation():
        suspend.tap()
    expect(ada.locator(".flash").first).to_have_text("Spoke SPK9 is now suspended.")
    expect(spk9.locator("[data-field=status_text]")).to_have_text("suspended")
    expect(spk9.locator("[data-field=status_reason]")).to_have_text(
        "Site audit found open CAPAs; suspended until closed"
    )
    screenshot(ada, "network-05-spoke-suspended")

    # QA's page (still not reloaded) notices the new spoke.
    expect(quinn.locator("[data-spokes-changed]")).to_be_visible(timeout=10_000)

    # QA's session is locked (another tab's Lock button): the page stops asking.
    other_tab = quinn.context.new_page()
    other_tab.goto(f"{hub}/")
    other_tab.get_by_role("button", name="Lock").tap()
    expect(status).to_have_text(
        "Session locked: live updates stopped. Unlock, then reload this page.", timeout=10_000
    )
    polls: list[str] = []
    quinn.on("request", lambda r: polls.append(r.url) if "alerts.json" in r.url else None)
    quinn.wait_for_timeout(5_000)
    assert polls == []
    assert quinn.evaluate("window.sameDocument") is True
    screenshot(quinn, "network-06-session-locked")
