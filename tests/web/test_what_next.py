"""What a batch waits for and who can do it, on the batch page and the board, as guidance (not
error text); the board's open deviations lead to the deviation on the batch page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from batch_helpers import DIN_BARCODE, PATIENT, SCANNER
from lxml import html
from spoke_pages import app, browser, site
from support import NOW
from web_helpers import text

from mes.core.clock import utc_text

__all__ = ["app", "site"]  # the fixtures of the spoke's pages (spoke_pages)

LATER = NOW + timedelta(hours=3)


def tree(page: str) -> html.HtmlElement:
    return html.fromstring(page)


def words(element: html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def next_steps(page: str) -> list[str]:
    """The lines of the batch page's "What next" card (guidance: nowhere inside an error)."""
    [card] = tree(page).xpath("//section[contains(@class, 'next-steps')]") or [None]
    assert card is not None, "the batch page has no 'What next'"
    assert not card.xpath("ancestor-or-self::*[contains(@class, 'error')]")
    return [words(li) for li in card.xpath(".//li")]


def test_with_every_phase_done_the_operator_is_told_a_supervisor_signs_the_batch_complete(
    app, site
):
    olivia = browser(app, site, "olivia")
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    site.do_count(batch_id)
    site.do_culture_and_harvest(batch_id, at=LATER)
    page = text(olivia.get(f"/batches/{batch_id}"))
    assert next_steps(page) == [
        "Every phase is done: waiting for a supervisor to sign the batch complete."
    ]
    [line] = tree(text(olivia.get("/batches"))).xpath("//ul[@class='next-steps-line']")
    assert "waiting for a supervisor to sign the batch complete" in words(line)
    sam = browser(app, site, "sam")
    steps = tree(text(sam.get(f"/batches/{batch_id}")))
    assert steps.xpath("//section[contains(@class, 'next-steps')]//a[@href='#batch-actions']")


def test_a_hand_over_to_a_second_person_is_guidance_on_the_batch_page(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = site.start().state.id
    site.start_phase(batch_id, "check_bag")
    site.record(
        batch_id, "check_bag",
        values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": DIN_BARCODE, "bag_patient": PATIENT},
    )  # fmt: skip
    site.sign(batch_id, "check_bag")
    page = text(olivia.get(f"/batches/{batch_id}"))
    assert next_steps(page) == [
        "Waiting for a second person (a supervisor) to verify 'Check the bag'."
    ]
    # the phase the operator cannot verify herself: neutral words, not an error
    phase = tree(text(olivia.get(f"/batches/{batch_id}/phases/count_cells")))
    assert not phase.xpath("//p[@role='status' and contains(@class, 'error')]")


def test_the_board_links_an_open_deviation_to_it_on_the_batch_page(app, site):
    olivia = browser(app, site, "olivia")
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    site.do_count(batch_id, viability="65.0")  # outside the action limits, with a comment
    links = tree(text(olivia.get("/batches"))).xpath("//a[@data-open-deviations]")
    assert links, "the open deviation count is not a link"
    assert words(links[0]) == "1 open deviation"
    assert links[0].get("href") == f"/batches/{batch_id}#deviation-1"
    page = text(olivia.get(f"/batches/{batch_id}"))
    assert tree(page).xpath("//*[@id='deviation-1']")
    steps = next_steps(page)
    assert re.match(
        r"Waiting for a supervisor or QA to acknowledge deviation SPK1-2026-0001-D1 "
        r"\(not Olivia \w+, who raised it\)\.",
        steps[0],
    ), steps


def test_a_timer_wait_is_a_countdown_on_the_batch_page_and_the_board(app, site):
    olivia = browser(app, site, "olivia")
    now = datetime.now(UTC)  # the app reads the real clock: the count is done just now
    batch_id = site.start(at=now).state.id
    site.do_check_bag(batch_id, at=now)
    site.do_count(batch_id, at=now)
    site.do_culture(batch_id, at=now)
    due = utc_text(now + timedelta(hours=2))
    page = tree(text(olivia.get(f"/batches/{batch_id}")))
    [step] = page.xpath("//section[contains(@class, 'next-steps')]//li")
    assert re.fullmatch(r"'Harvest' may start in (1 h 5\d|2 h 00) min\.", words(step)), words(step)
    assert step.xpath(".//time/@data-countdown") == [due]
    [line] = tree(text(olivia.get("/batches"))).xpath("//ul[@class='next-steps-line']//li")
    assert re.fullmatch(r"'Harvest' may start in (1 h 5\d|2 h 00) min\.", words(line)), words(line)
    assert line.xpath(".//time/@data-countdown")
