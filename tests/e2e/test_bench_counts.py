"""Issue 15's targets, counted in a real browser (touch, 1280×800) against the real ``mes demo``.

Three replays (tests/e2e/bench_replay.py), each counting taps, keystrokes, scans, page loads and
signatures:

1. **the performer**: Olivia, at a registered panel and already logged in, starts a batch of the
   demo CAR-T recipe (CART-CD19-FRESH-DEMO) and does the first two unit procedures (7 applicable
   phases: the transport excursion and the tubing-set replacement do not apply), scanning with a
   keyboard-wedge scanner and signing each phase. Where a phase is verified, the verifier does it
   at their own tablet (not counted), except for the last one:
2. **a second-person verification on the same panel**: Oscar verifies "Weld the buffer and
   medium bags to the set" at Olivia's panel — in place when the page offers a witness signing
   (``[data-witness]``), else as today: log out, log in, find the phase, verify, log out, Olivia
   logs back in and returns to the batch;
3. **QA at the hub**: Quinn reviews the exceptions of three categories of a whole demo batch
   (run at the spoke by the recipe driver, synced to the hub) — one signature each today, one
   for all when the page offers a bulk review (``[data-bulk-review]``).

The baseline figures were measured on today's pages; the targets are asserted as ratios of them
and are expected to fail until the improvements of issue 15 land (strict xfail: the integrator
removes the marks once badge + PIN, the in-place witness and scanner-first entry are merged).
Screenshots of every page each replay lands on: test-artifacts/bench-*.png.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from bench_replay import (
    Counts,
    Person,
    Phase,
    Replay,
    chosen,
    dated,
    log_in_quietly,
    people_from_demo_output,
    perform_phase,
    register_terminal,
    review_categories,
    reviewable_categories,
    scan,
    start_batch,
    typed,
    verify_on_the_same_panel,
)
from playwright.sync_api import Browser, Page, expect
from test_network_in_browser import (  # the same demo: hub and spoke, syncing
    PASSWORDS as HUB_PASSWORDS,
)
from test_network_in_browser import (
    SPOKE_PASSWORDS,
    demo,  # noqa: F401 - the module's fixture: its own demo
)
from test_qa_review_in_browser import DemoSpokeRun, batch_completed_at_the_spoke

from mes.core.identity import mod37_2

pytestmark = pytest.mark.e2e

# The baseline: today's pages, measured on commit 4506859, 2026-12-05 (Chromium 1280×800, touch;
# the same figures on every run: the counts do not depend on the machine's speed).
# Performer: the start of the batch and 7 phases. 142 of the 206 keystrokes are the user ID and
# password (6 + 17 × 8); 30 of the 39 page loads are not a signature (22 of them are scans).
BASELINE_PERFORMER = Counts(
    taps=55, keystrokes=206, scans=22, page_loads=39, signatures=8, observed=64
)
# Verification on the same panel: log out, Oscar logs in (Home), Batches, the phase, Verify with
# user ID + password, log out, Olivia logs in, Batches, her batch.
BASELINE_VERIFICATION = Counts(taps=13, keystrokes=71, scans=0, page_loads=9, signatures=1)
# QA: 23 exceptions in three categories (alert limit, verified within seconds, comment), one
# signature each: user ID + password at the first, the 20-character password at every other.
BASELINE_QA = Counts(taps=49, keystrokes=465, scans=0, page_loads=25, signatures=23)

DIN = "A999926000515"  # fake facility A9999: test data
COI = "CHA999926000515"
PATIENT = "P-0515"
RECIPE = "CART-CD19-FRESH-DEMO"
CATEGORIES = 3  # QA reviews the exceptions of this many categories

NOT_YET = pytest.mark.xfail(
    strict=True, reason="issue 15: until badge+PIN, witness and scanner-first land"
)


def first_two_unit_procedures() -> list[Phase]:
    """The applicable phases of units 1 and 2 of the fresh CAR-T recipe, as the replay does them."""
    collected = (datetime.now() - timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M")
    return [
        Phase(
            "Check the apheresis bag against the manufacturing order",
            (
                scan("DIN on the apheresis bag label", f"={DIN}00"),
                scan("Patient identifier on the apheresis bag label", PATIENT),
                scan("Chain of Identity identifier on the apheresis bag label", COI),
                scan("barcode scanner", "SCN-01"),
                chosen("Bag intact, no leaks, cracks or visible clots", "yes"),
            ),
            verified=True,
        ),
        Phase(
            "Record collection time and transport temperature",
            (
                dated("End of apheresis collection", collected),
                typed("Lowest transport temperature on the logger", "3.8"),
                typed("Highest transport temperature on the logger", "6.1"),
                typed("Time from end of collection to receipt", "20.0"),
                chosen("Logger shows an excursion outside 2–8 °C", "no"),
                scan("Quarantine fridge", "FR-01"),
            ),
        ),
        Phase(
            "Sample the bag and count nucleated cells",
            (
                scan("biosafety cabinet", "BSC-01"),
                scan("cell counter", "CC-01"),
                scan("balance", "BAL-01"),
                scan("MAT-SAMPLING-SYRINGE", "SAMPLING-SYRINGE-L01"),
                typed("Apheresis volume", "250"),
                typed("TNC concentration", "40.00"),
                typed("Viability", "95.0"),
            ),
        ),
        Phase(
            "Measure CD3+ cells by flow cytometry",
            (
                scan("flow cytometer", "FC-01"),
                typed("CD3+ cells, % of viable leukocytes", "45.0"),
            ),
        ),
        Phase(
            "Select the program and install the tubing set",
            (
                scan("closed bioreactor", "BR-01"),
                scan("MAT-TS520", "TS520-L01"),
                typed("Program name and version shown on the device", "TCT 3.1"),
                chosen("Automated integrity test passed", "yes"),
            ),
        ),
        Phase(
            "Prepare culture medium with serum and IL-2",
            (
                scan("biosafety cabinet", "BSC-01"),
                scan("MAT-TEXMACS", "TEXMACS-L01"),
                scan("MAT-HUMAN-AB-SERUM", "HUMAN-AB-SERUM-L01"),
                scan("MAT-IL2", "IL2-L01"),
                typed("TexMACS volume", "970"),
                typed("Human AB serum added", "30.0"),
                typed("IL-2 solution added", "1.00"),
            ),
            verified=True,
        ),
        Phase(
            "Weld the buffer and medium bags to the set",
            (
                scan("tube welder", "TW-01"),
                scan("closed bioreactor", "BR-01"),
                scan("MAT-PBS-EDTA", "PBS-EDTA-L01"),
                chosen("All welds intact", "yes"),
                chosen("Device priming completed without alarm", "yes"),
            ),
            verified=True,
        ),
    ]


class QuickHandsRun(DemoSpokeRun):
    """The recipe driver with quick hands: each action 5 s after the one before, so that every
    verification comes seconds after its performance (an exception QA reviews)."""

    def tick(self) -> datetime:
        self.now += timedelta(seconds=5)
        return self.now


def run_a_whole_batch_at_the_spoke(folder) -> str:
    """A complete demo CAR-T batch at the spoke with exceptions of several categories: a value
    outside its action limits (its deviation commented and acknowledged), values in alert, and
    verifications seconds after performance. Returns its number."""
    return batch_completed_at_the_spoke(folder, QuickHandsRun).state.number


def tablet(browser: Browser) -> Page:
    context = browser.new_context(has_touch=True, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    return context.new_page()


def verify_elsewhere(tablet: Replay, url: str, batch_url: str, phase: str, who: Person) -> None:
    """A verifier at their own tablet (not part of the panel's counts)."""
    tablet.page.goto(batch_url)
    tablet.tap(tablet.page.get_by_role("link", name=phase).first)
    tablet.sign(tablet.page.get_by_role("button", name="Verify", exact=True), who)


@pytest.fixture(scope="module")
def measured(demo, browser: Browser) -> dict[str, Any]:  # noqa: F811 - the imported fixture
    """Run the three replays once; their counts and what they saw."""
    printed = (demo.folder.parent / "demo.out").read_text()
    people = people_from_demo_output(printed, {**SPOKE_PASSWORDS, **HUB_PASSWORDS})
    url, phases = demo.spoke, first_two_unit_procedures()
    panel = Replay(tablet(browser), "performer")
    elsewhere = Replay(tablet(browser), "elsewhere")
    register_terminal(panel, url, people["ada"], "Panel 1")
    register_terminal(elsewhere, url, people["ada"], "Tablet 2")
    log_in_quietly(elsewhere, url, people["sam"])
    verifier_logged_in = {"sam"}

    # 1. The performer: from the start page with the recipe chosen to the last phase signed.
    log_in_quietly(panel, url, people["olivia"])
    panel.page.goto(f"{url}/batches/new?recipe={RECIPE}")
    performer = panel.count()
    number = start_batch(
        panel,
        (
            scan("Chain of Identity identifier (ISBT 128 CoI)", COI),
            scan("Apheresis donation identification number (ISBT 128 DIN)", f"={DIN}00"),
            scan("Patient identifier on the manufacturing order", PATIENT),
            dated("Patient date of birth", "1970-05-17"),
        ),
        people["olivia"],
    )
    batch_url = re.sub(r"/phases/.*$", "", panel.page.url)
    assert re.fullmatch(r"SPK1-\d{4}-\d{4}", number), number
    assert mod37_2(DIN)  # the DIN of this test is a valid one
    witness_phase = phases[-1]
    for phase in phases:
        perform_phase(panel, phase, people["olivia"])
        if phase.verified and phase is not witness_phase:
            who = "sam" if phase is phases[0] else "oscar"
            if who not in verifier_logged_in:
                elsewhere.tap(elsewhere.page.get_by_role("button", name="Log out"))
                log_in_quietly(elsewhere, url, people[who])
                verifier_logged_in = {who}
            verify_elsewhere(elsewhere, url, batch_url, phase.name, people[who])
    panel.pause()
    performer_phases = len(phases) + 1  # the batch's start is a form with its signature too

    # 2. A second person verifies the last phase on the same panel.
    verification = panel.count("verification")
    how = verify_on_the_same_panel(
        panel,
        witness_phase.name,
        f"{batch_url}/phases/attach_buffer_and_medium",
        number,
        people["olivia"],
        people["oscar"],
    )
    panel.pause()
    panel.page.goto(f"{batch_url}/phases/attach_buffer_and_medium")
    expect(panel.page.locator("#phase-signatures")).to_contain_text(
        "Oscar Operator (oscar) — Verified"
    )
    panel.page.goto(batch_url)
    expect(panel.page.locator("details.unit").nth(0)).to_contain_text("5 of 5 done")
    expect(panel.page.locator("details.unit").nth(1)).to_contain_text("4 of 4 done")

    # 3. QA at the hub: a whole demo batch with its exceptions, reviewed in three categories.
    qa_number = run_a_whole_batch_at_the_spoke(demo.folder)
    hub = Replay(tablet(browser), "qa")
    log_in_quietly(hub, demo.hub, people["quinn"])
    hub.page.goto(f"{demo.hub}/qa/")
    row = hub.page.locator(f"tr[data-batch='{qa_number}']")
    for _ in range(60):  # the spoke syncs every 2 s (slower on a loaded machine)
        if row.count() and "Awaiting review" in row.inner_text():
            break
        hub.page.wait_for_timeout(1_000)
        hub.page.reload()
    expect(row.locator("[data-field=qa_state]")).to_have_text("Awaiting review")
    hub.page.goto(f"{demo.hub}/")
    qa = hub.count()
    hub.tap(hub.page.get_by_role("link", name="QA", exact=True))
    hub.tap(hub.page.locator(f"tr[data-batch='{qa_number}']").get_by_role("link", name=qa_number))
    categories = reviewable_categories(hub.page)[:CATEGORIES]
    exceptions = hub.page.locator(
        ", ".join(f"[data-category='{c}'] form.review-form" for c in categories)
    ).count()
    review_categories(hub, categories, people["quinn"])
    hub.pause()
    left = [c for c in reviewable_categories(hub.page) if c in categories]
    return {
        "performer": performer,
        "performer_phases": performer_phases,
        "verification": verification,
        "verification_how": how,
        "witness": people["oscar"],
        "performer_pin": people["olivia"].pin or "",
        "qa": qa,
        "qa_categories": categories,
        "qa_exceptions": exceptions,
        "qa_left": left,
    }


def test_the_replays_complete_and_count_what_people_do(measured):
    print({k: (v.as_dict() if isinstance(v, Counts) else v) for k, v in measured.items()})
    performer, verification, qa = measured["performer"], measured["verification"], measured["qa"]
    for counts in (performer, verification, qa):
        assert counts.taps > 0 and counts.keystrokes > 0, counts
        assert counts.page_loads > 0 and counts.signatures > 0, counts
    assert performer.scans > 0
    assert performer.signatures == measured["performer_phases"]  # the start and 7 phases
    assert verification.signatures == 1
    assert len(measured["qa_categories"]) == CATEGORIES, measured["qa_categories"]
    assert measured["qa_left"] == []  # every exception of the three categories is reviewed


# Issue 15 asked for "keystrokes <= 25 % of today's". Of today's 206 keystrokes, 64 are the
# observations themselves (the values and dates the operator reads off instruments and labels:
# 31 % already), and 21 CFR 11.200(a)(1)(i) requires the private component — the PIN — at every
# signing of a session (8 here). So the target is asserted as what it means: beyond the values,
# the operator types nothing but the PIN at each signature (today: 142 keystrokes of user ID and
# password). Taps: at most 60 % of today's.


def test_a_performer_types_only_the_values_and_a_pin_per_signature(measured):
    performer = measured["performer"]
    overhead = performer.keystrokes - performer.observed
    assert performer.observed == BASELINE_PERFORMER.observed, performer  # the same work
    assert measured["performer_pin"], "the demo prints every user's PIN"
    assert overhead <= len(measured["performer_pin"]) * performer.signatures, performer
    assert performer.taps <= 0.60 * BASELINE_PERFORMER.taps, performer


def test_a_phase_costs_one_page_load_besides_its_signature(measured):
    performer = measured["performer"]
    budget = measured["performer_phases"] + performer.signatures
    assert performer.page_loads <= budget, performer


def test_a_witness_verifies_in_place_with_a_badge_and_a_pin(measured):
    verification, witness = measured["verification"], measured["witness"]
    assert measured["verification_how"] == "in place"  # no logout
    assert verification.taps <= 4, verification
    assert verification.scans == 1, verification  # the badge
    assert verification.keystrokes <= len(witness.pin or "12345678"), verification  # the PIN
    assert verification.page_loads <= 2, verification


def test_qa_reviews_three_categories_of_exceptions_with_at_most_three_signatures(measured):
    assert measured["qa"].signatures <= CATEGORIES, measured["qa"]
    assert measured["qa_exceptions"] >= BASELINE_QA.signatures  # the same work, fewer signatures
