"""In a real browser at 1280×800 (the hub's screen) against the real ``mes demo`` once its history
is stored at the hub (months of CART-CD19-FRESH batches from four spokes): QA walks the network
oversight pages as a reviewer would, over the ground the other browser tests leave out.

* the live board filtered by product and site, the demo's hub-only spokes flagged AND said to be
  the demo's own (not a spoke gone quiet);
* turnaround: no leg of the demo recipe is negative (its milestones follow each other);
* comparability on the demo data: the filters and actions fit 1280 px, the parameters sharing a
  label are told apart by their phase, the baseline form proposes a whole period (freezing it
  is not refused for a date the page left out), the margin is set in the signature dialog and
  SPK3's shifted viability is then "not equivalent";
* QA's queue links the trends the frozen baseline reveals (SPK4 drifting on CD3+);
* the recipe page lists the critical parameters.
Screenshots go to test-artifacts/ (network-walk-*.png).
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect
from test_network_in_browser import PASSWORDS, demo, log_in, small_targets

pytestmark = pytest.mark.e2e
__all__ = ["demo"]  # the module's fixture: the running demo
DEMO_HISTORY = 30  # batches per spoke (the demo's default): enough for SPK3's shift, SPK4's drift

CODE = "CART-CD19-FRESH"
CD3 = "release_viability_phenotype.cd3_pct|%"
VIABILITY = "release_viability_phenotype.viability|%"


def fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def sign(form, username: str) -> None:
    dialog = form.locator("dialog.esign")
    expect(dialog).to_be_visible()
    name = dialog.locator("input[name=esign_username]")
    if name.is_visible():
        name.fill(username)
    dialog.locator("input[name=esign_password]").fill(PASSWORDS[username])
    dialog.get_by_role("button", name="Sign", exact=True).tap()


def test_qa_walks_the_network_oversight_pages_of_the_demo(demo, new_context, screenshot):
    history = demo.folder / "history.log"
    deadline = time.monotonic() + 600
    while not history.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert history.read_text().startswith("History stored at the hub"), history.read_text()
    hub = demo.hub
    page = new_context().new_page()
    # The administrator registers this browser as the QA workstation (only it signs).
    log_in(page, hub, "ada")
    page.goto(f"{hub}/admin/terminals")
    page.get_by_label("Name").fill("QA workstation")
    page.get_by_role("button", name=re.compile("Register")).tap()
    expect(page.locator(".terminal.ok")).to_have_text("QA workstation")
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").tap()
    log_in(page, hub, "quinn")

    # The board: the history spokes never call, and the board says they are the demo's.
    page.goto(f"{hub}/network/batches?product={CODE}")
    expect(page.locator("[data-demo-note]")).to_contain_text(
        "Demo spokes known only to this hub: SPK2, SPK3, SPK4."
    )
    page.goto(f"{hub}/network/batches?product={CODE}&site=SPK4")
    rows = page.locator("[data-board-rows] tr[data-batch]")
    expect(rows.first).to_be_visible()
    for site in rows.locator("td.site").all_inner_texts():
        assert site.startswith("SPK4")
    expect(page.locator("[data-demo-list]")).to_have_text("SPK4")
    fits(page)
    screenshot(page, "network-walk-01-board")

    # Turnaround: every leg's median is a duration forward in time.
    page.goto(f"{hub}/network/turnaround?recipe={CODE}")
    section = page.locator("section[data-recipe]").first
    expect(section.locator("[data-words]")).to_contain_text("a median of")
    cells = " ".join(section.locator("table").first.locator("td").all_inner_texts())
    assert not re.search(r"(^|\s)[-−]\d", cells), cells
    fits(page)
    screenshot(page, "network-walk-02-turnaround")

    # Comparability: the filter's fields in one row, the actions under them.
    page.goto(f"{hub}/network/comparability/{CODE}")
    recipe = page.locator("form[data-cpv-filter] select[name=recipe]")
    show = page.locator("form[data-cpv-filter]").get_by_role("button", name="Show")
    assert show.bounding_box()["y"] > recipe.bounding_box()["y"] + 30
    nav = page.get_by_role("navigation", name="Critical numbers")
    names = nav.locator("a").all_inner_texts()
    assert len(names) == len(set(names)), names  # a label shared by several phases says which
    assert any(n.startswith("Viability at ") for n in names), names  # its phase named
    fits(page)
    assert small_targets(page) == []
    screenshot(page, "network-walk-03-comparability")

    # QA freezes the CD3+ baseline with the form as the page proposes it, and signs (the page
    # shows one critical number at a time: CD3+ is chosen from the list).
    page.goto(f"{hub}/network/comparability/{CODE}?parameter={quote(CD3)}")
    section = page.locator(f"section.cpv-parameter[data-parameter='{CD3}']")
    section.get_by_text("Freeze a baseline…").tap()
    form = section.locator("form").filter(has=page.locator("input[name=period_from]"))
    expect(form.locator("input[name=period_to]")).to_have_value(re.compile(r"\d\d/\d\d/\d{4}"))
    form.locator("input[name=batches]").fill("40")
    form.get_by_role("button", name="Freeze the baseline").tap()
    sign(form, "quinn")
    expect(page.get_by_text("Baseline frozen: 40 batches")).to_be_visible(timeout=60_000)
    section = page.locator(f"section.cpv-parameter[data-parameter='{CD3}']")
    expect(section.locator("[data-limits]")).to_contain_text("Baseline frozen by Quinn Quality")
    expect(section.locator("table.cpv-signals")).to_contain_text("SPK4")

    # … and sets the equivalence margin of release viability: SPK3 is shifted 3 SD low.
    page.goto(f"{hub}/network/comparability/{CODE}?parameter={quote(VIABILITY)}")
    section = page.locator(f"section.cpv-parameter[data-parameter='{VIABILITY}']")
    section.get_by_text("Set the equivalence margin…").tap()
    form = section.locator("form").filter(has=page.locator("input[name=margin]"))
    form.locator("input[name=margin]").fill("2")
    form.locator("textarea[name=reason]").fill("Clinically irrelevant difference (PPQ protocol)")
    form.get_by_role("button", name="Set the margin").tap()
    sign(form, "quinn")
    section = page.locator(f"section.cpv-parameter[data-parameter='{VIABILITY}']")
    expect(section.locator("[data-margin]")).to_contain_text(
        "Equivalence margin ±2", timeout=60_000
    )
    expect(section.locator("[data-equivalence=SPK3] .pill")).to_have_text("not equivalent")
    expect(section.locator("table.cpv-capability th").nth(3)).to_have_text("Mean (%)")
    section.scroll_into_view_if_needed()
    screenshot(page, "network-walk-04-margin")

    # QA's queue: the trends the frozen baseline reveals, linked from the top of the queue.
    page.goto(f"{hub}/qa/")
    page.locator("[data-trends-link]").tap()
    trend = page.locator("#trends li a").filter(has_text="SPK4").first
    expect(trend).to_contain_text("CD3+")
    trend.tap()
    expect(page.get_by_role("heading", name=re.compile("Trend to assess"))).to_be_visible()
    fits(page)
    screenshot(page, "network-walk-05-trend")

    # The recipe's page lists what it marks critical.
    page.get_by_role("link", name="Recipes", exact=True).tap()
    page.locator(f"section#recipe-{CODE} a.rowlink").first.tap()
    critical = page.locator("#critical")
    expect(critical).to_contain_text("Critical quality attribute")
    expect(critical).to_contain_text("CD3+ cells, % of viable cells")
    fits(page)
    screenshot(page, "network-walk-06-recipe-critical")
