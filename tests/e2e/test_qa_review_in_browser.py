"""In a real browser against the real ``mes demo``: QA reviews by exception and releases a batch.

A whole fresh CAR-T batch runs at the demo spoke through the services (as its pages would; its
clock moves on to each time window), with the transport temperature above its action limit: a
deviation, commented and acknowledged at the spoke; the batch completes and syncs to the hub in
the background. Quinn (QA) logs into the hub on a touch screen, finds the batch in the QA queue,
sees release refused while the deviation is open, marks each other exception reviewed in the
e-signature dialog (user ID and password at the first signing, the password after that) — the
temperature outside its action limits raised the deviation and is settled by closing it, so it
has no "Mark reviewed" button —, investigates and closes the deviation, releases the batch and
sees the release manifestation. Screenshots go to test-artifacts/e2e-qa-*.png.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from recipe_driver import BatchRun, compiled_recipe, prepare_site
from test_network_in_browser import (  # the same demo, recipe, log-in and touch checks
    HOT,
    PASSWORDS,
    PHASE,
    RECIPE,
    SPOKE_PASSWORDS,
    demo,  # noqa: F401 - the module's fixture: its own demo
    log_in,
    small_targets,
    spoke_site,
)

from mes.core.batch import Batch
from mes.services.esign import Credentials

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

MANIFESTATION = r"by Quinn Quality \(quinn\) · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+"


class DemoSpokeRun(BatchRun):
    """The recipe driver at the demo spoke, with the demo people's own passwords.

    Its clock starts now and moves on to each timer's minimum, as the sync tests' runs do.
    """

    def credentials(self, username: str) -> Credentials:
        return Credentials(SPOKE_PASSWORDS[username], username)


def batch_completed_at_the_spoke(folder, run_kind: type[DemoSpokeRun] = DemoSpokeRun) -> Batch:
    """A whole batch run to completion at the demo spoke by ``run_kind``, the transport
    temperature above its action limit (a deviation, commented and acknowledged)."""
    runtime, site = spoke_site(folder)
    try:
        data = compiled_recipe(RECIPE)
        lots, instruments = prepare_site(site, data)
        run = run_kind(
            site, data, datetime.now(UTC),
            choices={f"{PHASE}.transport_temp_max": HOT},
            lots=lots, instruments=instruments,
        )  # fmt: skip
        run.start()
        run.run_until()
        batch = run.finish()
    finally:
        runtime.close()
    assert batch.state.status.value == "complete"
    return batch


def run_batch_at_the_spoke(folder) -> tuple[str, str]:
    """A complete batch with one deviation at the demo spoke: its number and deviation ID."""
    batch = batch_completed_at_the_spoke(folder)
    [deviation] = batch.state.deviations
    return batch.state.number, deviation


def sign(page: Page, form: Locator, first: bool) -> None:
    """Sign in the form's e-signature dialog: user ID at the session's first signing only."""
    dialog = form.locator("dialog.esign")
    expect(dialog).to_be_visible()
    user = dialog.locator("input[name=esign_username]")
    expect(user).to_have_count(1 if first else 0)
    if first:
        user.fill("quinn")
    dialog.locator("input[name=esign_password]").fill(PASSWORDS["quinn"])
    with page.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).tap()


def test_qa_reviews_by_exception_closes_the_deviation_and_releases_the_batch(
    demo,  # noqa: F811 - the imported fixture
    new_context,
    screenshot,
):
    number, deviation = run_batch_at_the_spoke(demo.folder)
    hub = demo.hub
    page = new_context().new_page()
    log_in(page, hub, "quinn")
    with page.expect_navigation():  # the loop below reloads: it must reload the queue
        page.get_by_role("link", name="QA", exact=True).tap()
    row = page.locator(f"tr[data-batch='{number}']")
    for _ in range(60):  # the spoke syncs every 2 s (slower on a loaded machine); a plain page
        if row.count() and "Awaiting review" in row.inner_text():
            break
        page.wait_for_timeout(1_000)
        page.reload()
    expect(row.locator("[data-field=qa_state]")).to_have_text("Awaiting review")
    expect(row.locator("[data-field=open_deviations]")).to_have_text("1")
    expect(row.locator("[data-field=unreviewed]")).not_to_have_text("0")
    expect(page.locator("[data-chip=awaiting_review] [data-count]")).not_to_have_text("0")
    assert small_targets(page) == []
    screenshot(page, "qa-01-queue")

    page.locator("[data-chip=awaiting_review]").tap()
    expect(page).to_have_url(re.compile(r"/qa/\?state=awaiting_review$"))
    row.get_by_role("link", name=number).tap()
    verdict = page.locator("[data-verdict]")
    expect(verdict).to_contain_text("Not ready for release")
    expect(verdict).to_contain_text(f"1 deviation is still open: {deviation}.")
    limit = page.locator("[data-category=action_limit] article.finding").first
    expect(limit).to_contain_text(f"Highest transport temperature on the logger = {HOT} °C")
    # The value raised the deviation: it is judged once, in the deviation's investigation.
    expect(limit).to_contain_text(
        f"It raised deviation {deviation}: settled when that deviation is closed."
    )
    expect(limit.locator("[data-settled]")).to_have_text(
        f"Settled by investigating and closing deviation {deviation}."
    )
    expect(limit.get_by_role("button", name="Mark reviewed")).to_have_count(0)
    expect(limit.locator("form.review-form")).to_have_count(0)
    assert small_targets(page) == []
    screenshot(page, "qa-02-review")

    # The finding links to its entry in the full record.
    limit.get_by_role("link", name=re.compile(r"^entry \d+ in the full record$")).tap()
    expect(page).to_have_url(re.compile(r"/record#entry-\d+$"))
    entry = page.locator("tr" + page.url[page.url.index("#") :])
    expect(entry).to_contain_text(
        f"recorded Highest transport temperature on the logger = {HOT} °C (outside action limits)"
    )
    # The whole record is too long for one full-page picture: what the browser shows at the entry.
    page.screenshot(path=str(ARTIFACTS / "e2e-qa-03-full-record.png"))
    page.go_back()

    # Release is refused while the deviation is open; the refusal names it.
    release = page.locator("#decision form").first
    release.get_by_role("button", name="Release the batch").tap()
    sign(page, release, first=True)
    refusal = page.locator("[data-refusal]")
    expect(refusal).to_contain_text(f"cannot be released: 1 deviation is still open: {deviation}.")
    expect(page.locator("[data-qa-state]")).to_have_text("Awaiting review")
    screenshot(page, "qa-04-release-refused")

    # Each other exception is marked reviewed in the signature dialog.
    to_review = page.locator("article.finding form.review-form")
    waiting = to_review.count()
    assert waiting >= 2, page.locator("#findings").inner_text()
    # Only the deviation and the value that raised it are settled by its closure.
    expect(page.locator("article.finding [data-settled]")).to_have_count(2)
    expect(page.locator("article.finding")).to_have_count(waiting + 2)
    first = True
    for left in range(waiting, 0, -1):
        expect(to_review).to_have_count(left)
        form = to_review.first
        if first:
            form.get_by_label("Note (optional)").fill("Seen with the logger's trace.")
        form.get_by_role("button", name="Mark reviewed").tap()
        sign(page, form, first=first)
        first = False
    expect(to_review).to_have_count(0)
    reviewed = page.locator("article.finding [data-manifestation]")
    expect(reviewed).to_have_count(waiting)
    expect(reviewed.first).to_have_text(re.compile(r"^Reviewed " + MANIFESTATION))
    expect(page.locator("#findings")).to_contain_text("Note: Seen with the logger's trace.")
    # The value outside action limits waits for its deviation's closure, unsigned.
    expect(limit.locator("[data-manifestation]")).to_have_count(0)
    expect(verdict).to_contain_text(f"1 deviation is still open: {deviation}.")
    expect(verdict).not_to_contain_text("not reviewed")
    screenshot(page, "qa-05-exceptions-reviewed")

    # The deviation is investigated, then closed with a signature.
    card = page.locator(f"[data-deviation='{deviation}']")
    card.get_by_label("Classification").select_option("major")
    card.get_by_label("Description").fill(f"Transport logger peaked at {HOT} °C, above 8 °C.")
    card.get_by_label("Impact assessment").fill("Short excursion; viability at release in range.")
    card.get_by_label("Root cause").fill("Courier box left open during the hand-over.")
    card.get_by_label("CAPA reference").fill("CAPA-2026-042")
    card.get_by_role("button", name="Save the investigation").tap()
    expect(page.locator(".flash").first).to_have_text(
        f"Deviation {deviation}: investigation saved."
    )
    card.locator("summary", has_text="History").tap()
    expect(card.locator(".history")).to_contain_text("Classification: — → major")
    close = card.locator(
        "form", has=page.get_by_role("button", name=f"Close deviation {deviation}")
    )
    close.get_by_role("button", name=f"Close deviation {deviation}").tap()
    sign(page, close, first=False)
    expect(card.locator("[data-field=status]")).to_have_text("closed")
    expect(card).to_contain_text(re.compile(r"Closure: Closed " + MANIFESTATION))
    expect(verdict).to_contain_text("Ready for release")
    # Closing the deviation settled the value it raised, with no "reviewed" signature of its own.
    expect(limit.locator("[data-settled]")).to_have_text(
        f"Settled: deviation {deviation} is investigated and closed."
    )
    expect(limit.locator("[data-manifestation]")).to_have_count(0)
    screenshot(page, "qa-06-deviation-closed")

    # Now the release is signed, and the page shows its manifestation.
    release = page.locator("#decision form").first
    release.get_by_role("button", name="Release the batch").tap()
    sign(page, release, first=False)
    expect(page.locator("[data-qa-state]")).to_have_text("Released")
    expect(verdict).to_contain_text(re.compile(rf"Batch {number}: Released " + MANIFESTATION))
    expect(page.locator("[data-decision]")).to_have_text("released")
    expect(page.get_by_role("button", name="Mark reviewed")).to_have_count(0)
    screenshot(page, "qa-07-released")

    with page.expect_navigation():
        page.get_by_role("link", name="QA", exact=True).tap()
    with page.expect_navigation():
        page.locator("[data-chip=released]").tap()
    expect(row.locator("[data-field=qa_state]")).to_have_text("Released")
