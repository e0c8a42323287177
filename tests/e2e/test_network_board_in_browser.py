"""In a real browser at 1280×800 against the real ``mes demo`` (hub and spoke, two processes, the
spoke syncing every 2 s, the hub holding demo history from four spokes): QA opens the live
board of batches in progress and the vein-to-vein turnaround page. A batch started at the spoke
appears on the already-open board without a reload, with its site, product and phase; the
board flags the demo's history spokes, which never call; the turnaround page shows the demo
recipe's chart, its words and its CSV. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect
from recipe_driver import compiled_recipe, prepare_site
from test_network_in_browser import RECIPE, RealTimeRun, demo, log_in, small_targets, spoke_site

pytestmark = pytest.mark.e2e
__all__ = ["demo"]  # the module's fixture: the running demo
DEMO_HISTORY = 5  # batches per spoke: the turnaround page's chart and the hub-only spokes


def test_qa_watches_a_new_batch_arrive_on_the_board_and_reads_the_turnaround(
    demo, new_context, screenshot
):
    hub = demo.hub
    quinn = new_context().new_page()
    log_in(quinn, hub, "quinn")
    quinn.goto(f"{hub}/network/batches")
    status = quinn.locator("[data-live-status]")
    rows = quinn.locator("[data-board-rows] tr[data-batch]")
    expect(status).to_contain_text("Live · as of")
    expect(rows).to_have_count(0)
    # The demo's history spokes have never called the hub: flagged; SPK1 syncs every 2 s.
    expect(quinn.locator("[data-overdue-note]")).to_contain_text("SPK2, SPK3, SPK4")
    expect(quinn.locator("tr[data-spoke=SPK1]")).not_to_have_class("overdue")
    expect(quinn.locator("tr[data-spoke=SPK2]")).to_have_class("overdue")
    assert small_targets(quinn) == []
    quinn.evaluate("window.sameDocument = true")  # gone if the page reloads
    screenshot(quinn, "network-board-01-watching")

    # At the spoke: a batch starts (the records sync in the background).
    runtime, site = spoke_site(demo.folder)
    try:
        data = compiled_recipe(RECIPE)
        lots, instruments = prepare_site(site, data)
        run = RealTimeRun(
            site, data, datetime.now(UTC), choices={}, lots=lots, instruments=instruments
        )
        run.start()
        number = run.batch.state.number
        first = run.run_until(lambda phase_id: True)  # stop before the first phase
    finally:
        runtime.close()
    row = quinn.locator(f"[data-board-rows] tr[data-batch='{run.batch_id}']")
    expect(row).to_have_count(1, timeout=15_000)
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text("SPK1")
    expect(cells.nth(1)).to_have_text(number)
    expect(cells.nth(2)).to_contain_text(f"{data['recipe_code']} v{data['version']}")
    expect(cells.nth(6)).to_contain_text(
        re.compile(r"received (within a second of being|\d+ s after it was) recorded")
    )
    # its count (the history spokes' batches in progress, stored in the background, count too)
    expect(quinn.locator("[data-board-count]")).to_have_text(re.compile(r"^[1-9]\d*$"))
    assert first is not None
    assert quinn.evaluate("window.sameDocument") is True  # updated in place, no reload
    link = cells.nth(1).locator("a")
    expect(link).to_have_attribute("href", f"/qa/batches/{run.batch_id}/record")
    screenshot(quinn, "network-board-02-new-batch")

    # Filtered to a product nothing is in progress of (the demo's history spokes have CAR-T
    # batches in progress): refused filter words for an unknown site.
    quinn.goto(f"{hub}/network/batches?site=SPK1&product=MRNA-NEOAG-FILL")
    expect(quinn.locator("[data-board-rows]")).to_contain_text(
        "No batch in progress matches these filters."
    )
    quinn.goto(f"{hub}/network/batches?site=NOPE")
    expect(quinn.locator("[data-filter-refused]")).to_have_text(
        "There is no spoke 'NOPE' at this hub. Choose one of: SPK1, SPK2, SPK3, SPK4."
    )
    screenshot(quinn, "network-board-03-refused-filter")

    # The turnaround page: the demo recipe's chart, its words and the CSV beside it, once the
    # demo has stored its history at the hub (in the background; its log says when: the demo
    # writes it whole, renamed into place, so once it exists it is complete).
    history = demo.folder / "history.log"
    deadline = time.monotonic() + 180
    while not history.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert history.read_text().startswith("History stored at the hub"), history.read_text()
    quinn.goto(f"{hub}/network/turnaround")
    section = quinn.locator("section[data-recipe]").first
    expect(section.locator("h2")).to_contain_text("CART-CD19")
    expect(section.locator("[data-words]")).to_contain_text("a median of")
    chart = section.locator("figure.turnaround-chart img")
    expect(chart).to_be_visible()
    assert chart.evaluate("img => img.naturalWidth > 600 && img.complete")
    box = chart.bounding_box()
    assert box is not None and box["width"] <= 1200  # fits the 1280-px hub screen
    assert quinn.evaluate("document.documentElement.scrollWidth") <= 1280
    with quinn.expect_download() as download:
        section.get_by_role("link", name="Download the data (CSV)").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("recipe_code,leg,from,to,site,batches,median_hours,p90_hours")
    section.get_by_text("The chart in words").click()
    expect(section.locator("[data-chart-words] li").last).to_contain_text("Network:")
    assert small_targets(quinn) == []
    screenshot(quinn, "network-turnaround-01")
