"""QA review by exception and the review chain, driven directly (mes.core.review; no database).

Batches are built in memory with the unit fixtures (tests/unit/batch_fixtures.py) and their
entries are fed to :func:`find_exceptions`, :class:`Review`, :func:`release_blockers` and
:func:`replay_review`, with a hub key of the test's own. Every refusal is checked to have sealed
nothing and changed nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from batch_fixtures import (
    COUNT_VALUES,
    NUMBER,
    OLIVIA,
    QUINN,
    SAM,
    SCANNER,
    SUE,
    T0,
    TERMINAL,
    TODAY,
    do_count,
    do_culture,
    do_simple,
    fill_count,
    lot,
    new_batch,
    person,
    sign,
)
from batch_helpers import DIN, OTHER_DIN, PATIENT

from mes.core.batch import Action, Batch
from mes.core.canonical import canonical_json, content_hash
from mes.core.clock import local_text, utc_text
from mes.core.errors import ChainBroken, InvalidInput, MesError, NotAuthorised
from mes.core.esign import Manifestation, Meaning, signature_binds
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry, seal, verify_chain
from mes.core.review import (
    REVIEW_RECORD_TYPE,
    Category,
    Classification,
    Decision,
    Finding,
    QaState,
    ReleaseRefused,
    Review,
    ReviewClosed,
    ReviewKind,
    ReviewSettings,
    find_exceptions,
    open_deviations,
    pending_reason,
    qa_state,
    release_blockers,
    replay_review,
    unreviewed,
)

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)
HUB = "HUB"
HUB_KEY = SiteKey.generate()
SETTINGS = ReviewSettings()
QA_AT = T0 + 24 * H  # when QA works on the batch at the hub
QA_DESK = "QA office 1"
QUENTIN = person("u-quentin", "quentin", "qa")
D1 = f"{NUMBER}-D1"
COMPLETE_INVESTIGATION = {
    "classification": "minor",
    "description": "Viability below the action limit at the count.",
    "impact": "None on the product: the cells were re-counted.",
    "root_cause": "Sample left too long before counting.",
}


# --- batches at the spoke ----------------------------------------------------------------------


def check_bag(
    batch: Batch,
    *,
    at: datetime = T0,
    performed_after: timedelta = MIN,
    verified_after: timedelta | None = 5 * MIN,
) -> None:
    """Check the bag with its data at ``at``, performed and (unless None) verified after it."""
    batch.start_phase("check_bag", OLIVIA, at, TERMINAL)
    batch.record_values("check_bag", {"bag_intact": "yes"}, OLIVIA, at, TERMINAL)
    batch.use_equipment("check_bag", 0, SCANNER, "SCN-01", OLIVIA, at, TERMINAL, TODAY)
    batch.check_identity("check_bag", "bag_din", f"={DIN}00", OLIVIA, at, TERMINAL)
    batch.check_identity("check_bag", "bag_patient", PATIENT, OLIVIA, at, TERMINAL)
    performed = at + performed_after
    sign(batch, Action.PERFORM, OLIVIA, performed, phase_id="check_bag")
    if verified_after is not None:
        sign(batch, Action.VERIFY, SAM, performed + verified_after, phase_id="check_bag")


def finish(batch: Batch) -> Batch:
    """The culture and the harvest (3 h after the count), then the batch signed complete."""
    do_culture(batch, T0 + 20 * MIN)
    do_simple(batch, "harvest", {"harvested": "yes"}, T0 + 3 * H)
    sign(batch, Action.COMPLETE, SAM, T0 + 4 * H)
    return batch


def clean_batch() -> Batch:
    """A complete batch run by the book: nothing for QA to look at."""
    batch = new_batch()
    check_bag(batch)
    do_count(batch, T0 + 10 * MIN)
    return finish(batch)


def counted(viability: str, comment: str | None = None) -> Batch:
    """The bag checked and the cells counted with ``viability``, performed; in progress."""
    batch = new_batch()
    check_bag(batch)
    comments = {"viability": comment} if comment else None
    fill_count(batch, T0 + 10 * MIN, {**COUNT_VALUES, "viability": viability}, comments=comments)
    sign(batch, Action.PERFORM, OLIVIA, T0 + 10 * MIN, phase_id="count_cells")
    return batch


def with_deviation() -> Batch:
    """A complete batch with one deviation and four exceptions to review: the bag verified 10 s
    after it was checked, a viability of 60 % (outside action limits: it raised the deviation,
    whose closure settles it) commented, a hold and its resumption."""
    batch = new_batch()
    check_bag(batch, verified_after=10 * SEC)
    count = {**COUNT_VALUES, "viability": "60.0"}
    fill_count(batch, T0 + 10 * MIN, count, comments={"viability": "Sample re-counted: 61 %"})
    sign(batch, Action.PERFORM, OLIVIA, T0 + 10 * MIN, phase_id="count_cells")
    batch.hold("Fire alarm in suite A", OLIVIA, T0 + 12 * MIN, TERMINAL)
    batch.resume("All clear after inspection", SAM, T0 + 13 * MIN, TERMINAL)
    sign(batch, Action.ACKNOWLEDGE, SAM, T0 + 15 * MIN, deviation_id=D1)
    return finish(batch)


def entry_of(batch: Batch, seq: int) -> SealedEntry:
    return next(e for e in batch.new_entries if e.seq == seq)


def seq_of(batch: Batch, kind: str, **payload: Any) -> int:
    """The seq of the last entry of ``kind`` whose payload has ``payload``."""
    return [
        e.seq
        for e in batch.new_entries
        if e.body["kind"] == kind and all(e.body["payload"].get(k) == v for k, v in payload.items())
    ][-1]


def findings(batch: Batch, settings: ReviewSettings = SETTINGS, **problems: str) -> list[Finding]:
    return find_exceptions(batch, batch.new_entries, settings, **problems)


def by_category(found: list[Finding], category: Category) -> list[Finding]:
    return [f for f in found if f.category is category]


# --- QA at the hub -----------------------------------------------------------------------------


def open_review(
    batch: Batch, entries: list[SealedEntry] | None = None, chain_problem: str | None = None
) -> Review:
    return Review(
        batch,
        entries or [],
        record=batch.new_entries,
        key=HUB_KEY,
        site=HUB,
        settings=SETTINGS,
        chain_problem=chain_problem,
    )


def manifestation(
    record: dict[str, Any], meaning: Meaning, who=QUINN, at: datetime = QA_AT
) -> Manifestation:
    """What the signing service makes of ``who`` signing ``record`` (21 CFR 11.50, 11.70)."""
    return Manifestation.for_record(
        record_type=REVIEW_RECORD_TYPE,
        record_id=record["batch"],
        record=record,
        signer_id=who.user_id,
        username=who.actor.username,
        printed_name=who.actor.name,
        meaning=meaning,
        at=at,
        terminal=QA_DESK,
        site=HUB,
    )


def mark(review: Review, key: str, who=QUINN, at: datetime = QA_AT, note: str | None = None):
    record = review.exception_record(key)
    m = manifestation(record, Meaning.REVIEWED, who, at)
    review.mark_reviewed(key, note, m, who.actor, at, QA_DESK)


def assess(review: Review, deviation: str, at: datetime = QA_AT, who=QUINN, **fields: Any):
    return review.assess_deviation(deviation, fields, who.actor, at, QA_DESK)


def close(review: Review, deviation: str, who=QUINN, at: datetime = QA_AT) -> None:
    record = review.closure_record(deviation)
    review.close_deviation(
        deviation, manifestation(record, Meaning.CLOSED, who, at), who.actor, at, QA_DESK
    )


def decide(
    review: Review, decision: Decision, reason: str | None = None, who=QUINN, at=QA_AT
) -> None:
    record = review.decision_record(decision, reason)
    meaning = Meaning.RELEASED if decision is Decision.RELEASED else Meaning.REJECTED
    review.decide(decision, reason, manifestation(record, meaning, who, at), who.actor, at, QA_DESK)


def refuses(
    review: Review, error: type[MesError], action: Callable[..., Any], *args: Any, **kwargs: Any
) -> MesError:
    """``action`` raises ``error`` and the review is exactly as before: nothing sealed."""
    entries, before = len(review.new_entries), repr(review.state)
    with pytest.raises(error) as caught:
        action(*args, **kwargs)
    assert type(caught.value) is error, caught.value
    assert len(review.new_entries) == entries
    assert repr(review.state) == before
    return caught.value


def stored_copy(entries: list[SealedEntry]) -> list[SealedEntry]:
    """The entries as another database hands them back: bodies parsed from canonical JSON."""
    return [
        SealedEntry(json.loads(canonical_json(dict(e.body))), e.hash, e.signature) for e in entries
    ]


# --- review by exception: what is found --------------------------------------------------------


def test_a_batch_run_by_the_book_has_no_exceptions_and_can_be_released_at_once():
    batch = clean_batch()
    assert findings(batch) == []
    review = open_review(batch)
    assert release_blockers(batch, review.state, review.findings) == []
    assert qa_state(batch, review.state) is QaState.AWAITING_REVIEW
    decide(review, Decision.RELEASED)
    assert review.state.decision is Decision.RELEASED
    assert qa_state(batch, review.state) is QaState.RELEASED


def test_a_value_outside_action_limits_is_found_with_its_deviation_under_stable_keys():
    batch = counted("60.0", "Sample re-counted: 61 %")
    seq = seq_of(batch, "value_recorded", value="viability")
    found = findings(batch)
    assert found == findings(batch)  # the same exceptions, however often they are computed
    (value,) = by_category(found, Category.ACTION_LIMIT)
    assert (value.key, value.seq, value.phase) == (f"value:{seq}", seq, "count_cells")
    assert value.title == "Viability = 60.0 % in 'Count cells'"
    assert value.detail == (
        "Outside action limits; recorded by Olivia Tester (olivia). "
        f"It raised deviation {D1}: settled when that deviation is closed."
    )
    assert value.category_title == "Value outside action limits"
    # The excursion is judged once, in its deviation's investigation: no "reviewed" of its own.
    assert (value.blocking, value.by_closure) == (False, True)
    review = open_review(batch)
    assert value.key not in [f.key for f in unreviewed(review.findings, review.state)]
    (deviation,) = by_category(found, Category.DEVIATION)
    assert (deviation.key, deviation.by_closure, deviation.blocking) == (
        f"deviation:{D1}",
        True,
        False,
    )
    assert deviation.title == f"Deviation {D1} — value outside action limits"
    assert deviation.detail == (
        "Viability 60.0 % is outside the action limits (acceptable ≥ 70 %; alert below 85 %; target 95 %). "
        "— comment: Sample re-counted: 61 %"
    )
    assert by_category(found, Category.ALERT_LIMIT) == []


def test_a_value_outside_alert_limits_is_found_without_a_deviation():
    batch = counted("80.0")
    seq = seq_of(batch, "value_recorded", value="viability")
    found = findings(batch)
    (alert,) = by_category(found, Category.ALERT_LIMIT)
    assert (alert.key, alert.title) == (f"value:{seq}", "Viability = 80.0 % in 'Count cells'")
    assert alert.detail == "Outside alert limits; recorded by Olivia Tester (olivia)."
    assert by_category(found, Category.ACTION_LIMIT) == by_category(found, Category.DEVIATION) == []


def test_a_calculation_outside_its_action_limits_is_found_with_its_unit():
    batch = new_batch()
    check_bag(batch)
    fill_count(batch, T0 + 10 * MIN, {**COUNT_VALUES, "viable_conc": "0.20"})  # total 40 < 100
    seq = seq_of(batch, "calculated", value="total")
    (value,) = by_category(findings(batch), Category.ACTION_LIMIT)
    assert (value.key, value.title) == (
        f"value:{seq}",
        "Total viable cells = 40.0 ×10^6 cells in 'Count cells'",
    )


def test_a_correction_shows_the_original_value_the_new_one_and_the_reason():
    batch = counted("92.0")
    original = seq_of(batch, "value_recorded", value="volume")
    correction = {"value": "volume", "new": "210", "reason": "Misread the scale"}
    sign(batch, Action.CORRECT, SUE, T0 + 20 * MIN, phase_id="count_cells", correction=correction)
    seq = seq_of(batch, "value_corrected", value="volume")
    (found,) = by_category(findings(batch), Category.CORRECTION)
    assert (found.key, found.seq, found.phase) == (f"correction:{seq}", seq, "count_cells")
    assert found.title == "Bag volume corrected in 'Count cells'"
    assert found.detail == (
        f"Corrected from 200 to 210 (corrects entry {original}) by Sue Tester (sue); "
        "reason: Misread the scale"
    )


@pytest.mark.parametrize(
    ("after", "late"),
    [(31 * MIN, True), (2 * H, True), (30 * MIN, False), (5 * MIN, False)],
)
def test_a_performer_signing_more_than_the_margin_after_the_phases_last_data_signed_late(
    after, late
):
    batch = new_batch()
    check_bag(batch, performed_after=after)
    performed = [
        e.seq
        for e in batch.new_entries
        if e.body["kind"] == "signature" and e.body["payload"]["record"]["action"] == "perform"
    ][-1]
    found = by_category(findings(batch), Category.LATE_SIGNATURE)
    if not late:
        assert found == []
        return
    last_data = performed - 1
    minutes = int(after.total_seconds()) // 60
    assert [(f.key, f.phase, f.title, f.detail) for f in found] == [
        (
            f"late:{performed}",
            "check_bag",
            f"'Check the bag' signed {minutes} min after its last data",
            f"Olivia Tester (olivia) signed as performed at entry {performed}; the phase's last "
            f"data was entry {last_data} (margin 30 min).",
        )
    ]


def test_the_late_signature_margin_is_a_setting():
    batch = new_batch()
    check_bag(batch, performed_after=45 * MIN)
    assert len(by_category(findings(batch), Category.LATE_SIGNATURE)) == 1
    generous = ReviewSettings(late_signature_minutes=60)
    assert by_category(findings(batch, generous), Category.LATE_SIGNATURE) == []


@pytest.mark.parametrize(
    ("gap", "stamped"),
    [(0 * SEC, True), (10 * SEC, True), (29 * SEC, True), (31 * SEC, False), (5 * MIN, False)],
)
def test_a_verification_within_seconds_of_the_performance_is_a_rubber_stamp(gap, stamped):
    batch = new_batch()
    check_bag(batch, verified_after=gap)
    verified = batch.new_entries[-1].seq
    found = by_category(findings(batch), Category.RUBBER_STAMP)
    if not stamped:
        assert found == []
        return
    seconds = int(gap.total_seconds())
    assert [(f.key, f.phase, f.title, f.detail) for f in found] == [
        (
            f"rubber-stamp:{verified}",
            "check_bag",
            f"'Check the bag' verified {seconds} s after it was performed",
            f"Sam Tester (sam) signed as verified at entry {verified}, {seconds} s after the "
            "performer's signature (threshold 30 s).",
        )
    ]


def test_the_rubber_stamp_threshold_is_a_setting():
    batch = new_batch()
    check_bag(batch, verified_after=10 * SEC)
    assert (
        by_category(findings(batch, ReviewSettings(rubber_stamp_seconds=5)), Category.RUBBER_STAMP)
        == []
    )
    assert (
        len(
            by_category(
                findings(batch, ReviewSettings(rubber_stamp_seconds=60)), Category.RUBBER_STAMP
            )
        )
        == 1
    )


def test_a_phase_that_needed_verification_and_was_left_performed_is_found_unverified():
    batch = new_batch()
    check_bag(batch, verified_after=None)
    performed = batch.new_entries[-1].seq
    sign(batch, Action.ABORT, SAM, T0 + H, reason="Patient withdrew consent")
    (found,) = by_category(findings(batch), Category.MISSING_VERIFICATION)
    assert (found.key, found.phase, found.seq) == (
        f"unverified:check_bag:{performed}",
        "check_bag",
        performed,
    )
    assert found.title == "'Check the bag' was not verified"
    assert found.detail == (
        "The recipe asks for a second person's verification; the record has none."
    )
    # Phases without a verification step, performed, are not exceptions.
    batch = new_batch()
    check_bag(batch)
    do_count(batch, T0 + 10 * MIN)
    sign(batch, Action.ABORT, SAM, T0 + H, reason="Patient withdrew consent")
    assert by_category(findings(batch), Category.MISSING_VERIFICATION) == []


def test_deviation_comments_holds_resumes_and_the_abort_reason_are_found_as_comments():
    batch = counted("60.0", "Sample re-counted: 61 %")
    batch.hold("Fire alarm in suite A", OLIVIA, T0 + 20 * MIN, TERMINAL)
    batch.resume("All clear after inspection", SAM, T0 + 30 * MIN, TERMINAL)
    sign(batch, Action.ABORT, SAM, T0 + H, reason="Patient withdrew consent")
    comments = by_category(findings(batch), Category.COMMENT)
    assert [(f.key, f.title, f.detail) for f in comments] == [
        (
            f"comment:{seq_of(batch, 'deviation_commented')}",
            f"Comment on deviation {D1}",
            "Olivia Tester (olivia): Sample re-counted: 61 %",
        ),
        (
            f"comment:{seq_of(batch, 'batch_held')}",
            "The batch was put on hold",
            "Olivia Tester (olivia): Fire alarm in suite A",
        ),
        (
            f"comment:{seq_of(batch, 'batch_resumed')}",
            "The batch was resumed",
            "Sam Tester (sam): All clear after inspection",
        ),
        (
            f"comment:{batch.new_entries[-1].seq}",
            "The batch was aborted",
            "Sam Tester (sam): Patient withdrew consent",
        ),
    ]


def test_refused_scans_are_found_with_what_was_scanned_and_why():
    batch = new_batch()
    check_bag(batch)
    batch.start_phase("count_cells", OLIVIA, T0 + 10 * MIN, TERMINAL)
    batch.use_material(
        "count_cells", "MAT-SYRINGE", lot(status="quarantine"), "LOT-Q", OLIVIA,
        T0 + 10 * MIN, TERMINAL, TODAY,
    )  # fmt: skip
    seq = seq_of(batch, "scan_refused")
    (found,) = by_category(findings(batch), Category.REFUSED_SCAN)
    assert (found.key, found.phase, found.seq) == (f"refused-scan:{seq}", "count_cells", seq)
    assert found.title == "Scan of 'LOT-Q' refused in 'Count cells'"
    assert found.detail == (
        "For MAT-SYRINGE: Lot LOT-SYR-001 of Sampling syringe (MAT-SYRINGE) is in quarantine "
        "(not released by QA). (by Olivia Tester (olivia))."
    )


def test_an_identity_mismatch_is_a_deviation_to_close():
    batch = new_batch()
    batch.start_phase("check_bag", OLIVIA, T0, TERMINAL)
    batch.check_identity("check_bag", "bag_din", f"={OTHER_DIN}00", OLIVIA, T0, TERMINAL)
    (found,) = by_category(findings(batch), Category.DEVIATION)
    assert (found.key, found.by_closure, found.phase) == (f"deviation:{D1}", True, "check_bag")
    assert found.title == f"Deviation {D1} — chain of identity mismatch"


def test_findings_are_listed_most_serious_first():
    batch = counted("60.0", "Sample re-counted: 61 %")
    sign(batch, Action.ABORT, SAM, T0 + H, reason="Patient withdrew consent")
    found = findings(batch, chain_problem="entry 3: its content does not match its hash")
    assert [f.category for f in found] == [
        Category.CHAIN,
        Category.DEVIATION,
        Category.ACTION_LIMIT,
        Category.COMMENT,
        Category.COMMENT,
    ]


# --- what cannot be reviewed away ------------------------------------------------------------


def test_a_chain_problem_and_pending_entries_block_release_and_cannot_be_marked_reviewed():
    batch = counted("92.0")  # in progress: the rest of the record has not arrived
    problem = "entry 4: its content does not match its hash: it was edited"
    review = open_review(batch, chain_problem=problem)
    chain, pending = review.findings[:2]
    assert (chain.key, chain.category, chain.blocking, chain.detail) == (
        "chain",
        Category.CHAIN,
        True,
        problem,
    )
    assert (pending.key, pending.category, pending.blocking) == ("pending", Category.PENDING, True)
    assert (
        pending.detail
        == pending_reason(batch)
        == (
            f"The hub holds entries 1–{batch.state.last_seq} and the batch is in progress at SPK1: "
            "the rest of the record has not arrived."
        )
    )
    advice = {
        "chain": "A record that fails verification is not released: investigate at the spoke "
        "(a copy that verifies can be sent again) or reject the batch.",
        "pending": "Wait for the spoke's next sync: it clears itself when the whole record has "
        "arrived.",
    }
    for key, finding in (("chain", chain), ("pending", pending)):
        err = refuses(review, InvalidInput, mark, review, key)
        assert err.message == f"'{finding.title}' cannot be marked reviewed: {finding.detail}"
        assert err.what_to_do == advice[key]
    assert unreviewed(review.findings, review.state) == []  # blocking is not "to review"
    assert release_blockers(batch, review.state, review.findings) == [
        f"The record fails verification: {problem}",
        f"The record is not complete: {pending.detail}",
    ]
    err = refuses(review, ReleaseRefused, decide, review, Decision.RELEASED)
    assert problem in err.message and pending.detail in err.message
    err = refuses(review, ReleaseRefused, decide, review, Decision.REJECTED, "Contaminated")
    assert err.message == f"Batch {NUMBER} cannot be decided yet: {pending.detail}"
    assert qa_state(batch, review.state) is QaState.AT_SPOKE


def test_a_deviation_is_settled_by_closure_only():
    review = open_review(with_deviation())
    err = refuses(review, InvalidInput, mark, review, f"deviation:{D1}")
    assert err.message == (
        f"Deviation {D1} — value outside action limits is settled by closing the deviation, "
        "not by marking it reviewed."
    )
    assert f"deviation:{D1}" not in [f.key for f in unreviewed(review.findings, review.state)]
    assert open_deviations(review.batch, review.state) == [D1]
    assess(review, D1, **COMPLETE_INVESTIGATION)
    close(review, D1)
    assert open_deviations(review.batch, review.state) == []


def test_a_value_that_raised_a_deviation_is_settled_by_closing_it():
    batch = with_deviation()
    review = open_review(batch)
    (value,) = by_category(review.findings, Category.ACTION_LIMIT)
    (deviation,) = by_category(review.findings, Category.DEVIATION)
    assert value.seq == deviation.seq - 1  # the deviation is raised in the very next entry
    assert value.by_closure is True
    assert value.detail.endswith(
        f" It raised deviation {D1}: settled when that deviation is closed."
    )
    waiting = unreviewed(review.findings, review.state)
    assert value.key not in [f.key for f in waiting]
    # It cannot be marked reviewed: the excursion is judged once, in the deviation's investigation.
    err = refuses(review, InvalidInput, mark, review, value.key)
    assert err.message == (
        "Viability = 60.0 % in 'Count cells' is settled by closing the deviation, "
        "not by marking it reviewed."
    )
    assert err.what_to_do == "Investigate and close the deviation."
    # The other exceptions reviewed: only the open deviation stands in the way of release.
    for f in waiting:
        mark(review, f.key)
    assert unreviewed(review.findings, review.state) == []
    assert release_blockers(batch, review.state, review.findings) == [
        f"1 deviation is still open: {D1}. Close each with its investigation first."
    ]
    refuses(review, ReleaseRefused, decide, review, Decision.RELEASED)
    assess(review, D1, **COMPLETE_INVESTIGATION)
    close(review, D1)
    assert release_blockers(batch, review.state, review.findings) == []
    decide(review, Decision.RELEASED)
    assert qa_state(batch, review.state) is QaState.RELEASED
    # No "reviewed" signature was ever asked of the value: its deviation's closure settled it.
    assert value.key not in review.state.reviewed
    kinds = [e.body["kind"] for e in review.new_entries]
    assert kinds.count(ReviewKind.EXCEPTION_REVIEWED) == len(waiting) == 4


def test_an_exception_is_reviewed_once_and_an_unknown_one_not_at_all():
    review = open_review(with_deviation())
    key = unreviewed(review.findings, review.state)[0].key
    mark(review, key, note="Seen: re-counted")
    err = refuses(review, InvalidInput, mark, review, key)
    assert err.message.endswith(f"was already reviewed by Quinn Tester at {local(QA_AT)}.")
    err = refuses(review, InvalidInput, mark, review, "value:999")
    assert err.message == f"Batch {NUMBER} has no exception 'value:999' (any more)."


# --- the review chain ------------------------------------------------------------------------


def worked_review() -> tuple[Batch, Review]:
    """A batch with a deviation, every exception reviewed, the deviation closed, released."""
    batch = with_deviation()
    review = open_review(batch)
    for f in unreviewed(review.findings, review.state):
        mark(review, f.key, note=f"Checked {f.key}")
    assess(review, D1, **COMPLETE_INVESTIGATION)
    assess(review, D1, at=QA_AT + MIN, classification="major", capa="CAPA-2026-014")
    close(review, D1, at=QA_AT + 2 * MIN)
    decide(review, Decision.RELEASED, at=QA_AT + 3 * MIN)
    return batch, review


def test_each_review_action_is_an_entry_sealed_by_the_hub_and_replay_gives_the_same_state():
    batch, review = worked_review()
    entries = review.new_entries
    kinds = [e.body["kind"] for e in entries]
    assert kinds == [ReviewKind.EXCEPTION_REVIEWED] * 4 + [
        ReviewKind.DEVIATION_ASSESSED,
        ReviewKind.DEVIATION_ASSESSED,
        ReviewKind.DEVIATION_CLOSED,
        ReviewKind.BATCH_RELEASED,
    ]
    assert verify_chain(entries, HUB_KEY.public) == len(entries)
    with pytest.raises(ChainBroken):
        verify_chain(entries, batch.key.public)  # the spoke's key did not seal them
    assert {e.body["batch"] for e in entries} == {batch.state.id}
    assert {e.body["site"] for e in entries} == {HUB}
    assert {e.body["terminal"] for e in entries} == {QA_DESK}
    assert all(e.body["actor"] == QUINN.actor.as_dict() for e in entries)
    replayed = replay_review(batch.state.id, stored_copy(entries))
    assert replayed == review.state
    assert (replayed.last_seq, replayed.last_hash) == (len(entries), entries[-1].hash)
    assert (replayed.decision, replayed.decided_by, replayed.decided_at) == (
        Decision.RELEASED,
        QUINN.actor,
        utc_text(QA_AT + 3 * MIN),
    )
    # A review opened again from the stored chain carries on where it was.
    again = open_review(batch, stored_copy(entries))
    assert again.state == review.state
    assert unreviewed(again.findings, again.state) == []


def test_an_edited_review_entry_fails_verification():
    _batch, review = worked_review()
    entries = list(review.new_entries)
    body = json.loads(canonical_json(dict(entries[1].body)))
    body["payload"]["note"] = "Nothing to see"
    entries[1] = SealedEntry(body, entries[1].hash, entries[1].signature)
    with pytest.raises(ChainBroken) as caught:
        verify_chain(entries, HUB_KEY.public)
    assert caught.value.seq == 2
    forged = list(review.new_entries)
    forged[1] = seal(body, SiteKey.generate())
    with pytest.raises(ChainBroken) as caught:
        verify_chain(forged, HUB_KEY.public)
    assert caught.value.seq == 2


def test_the_decision_records_the_manifestation_bound_to_both_heads():
    batch, review = worked_review()
    release = review.new_entries[-1].body
    signed = release["payload"]["manifestation"]
    assert signed == {
        "record_type": REVIEW_RECORD_TYPE,
        "record_id": batch.state.id,
        "record_hash": content_hash(release["payload"]["record"]),
        "signer_id": QUINN.user_id,
        "username": "quinn",
        "printed_name": "Quinn Tester",
        "meaning": "released",
        "at": utc_text(QA_AT + 3 * MIN),
        "terminal": QA_DESK,
        "site": HUB,
    }
    record = release["payload"]["record"]
    assert record["record_head"] == [batch.state.last_seq, batch.state.last_hash]
    before = review.new_entries[-2]
    assert record["review_head"] == [before.seq, before.hash]
    assert (record["decision"], record["number"], record["reason"]) == ("released", NUMBER, None)


def test_a_deviation_closes_only_once_classified_described_assessed_and_its_root_cause_found():
    review = open_review(with_deviation())
    err = refuses(review, InvalidInput, close, review, D1)
    assert err.message == (
        f"Deviation {D1} cannot be closed yet: Classification, Description, Impact assessment, "
        "Root cause missing."
    )
    steps = list(COMPLETE_INVESTIGATION.items())
    for n, (name, value) in enumerate(steps, start=1):
        assess(review, D1, **{name: value})
        if n < len(steps):
            err = refuses(review, InvalidInput, close, review, D1)
            assert "cannot be closed yet" in err.message
    close(review, D1)  # a minor deviation needs no CAPA
    closed = review.state.deviations[D1]
    assert (closed.closed, closed.closed_by, closed.closed_at) == (
        True,
        QUINN.actor,
        utc_text(QA_AT),
    )
    assert closed.signature["meaning"] == "closed"
    err = refuses(review, InvalidInput, close, review, D1)
    assert err.message == f"Deviation {D1} was already closed by Quinn Tester at {local(QA_AT)}."
    err = refuses(review, InvalidInput, assess, review, D1, impact="Changed my mind")
    assert err.message == f"Deviation {D1} is closed; its record stays as it is."


def test_each_missing_part_of_the_investigation_is_named():
    review = open_review(with_deviation())
    assess(review, D1, classification="minor", impact="None")
    err = refuses(review, InvalidInput, close, review, D1)
    assert err.message == (f"Deviation {D1} cannot be closed yet: Description, Root cause missing.")
    assert err.what_to_do == "Complete the investigation, then close it."


@pytest.mark.parametrize("classification", ["major", "critical", "MAJOR"])
def test_a_major_or_critical_deviation_needs_a_capa_reference_to_close(classification):
    review = open_review(with_deviation())
    assess(review, D1, **{**COMPLETE_INVESTIGATION, "classification": classification})
    err = refuses(review, InvalidInput, close, review, D1)
    assert err.message == (
        f"Deviation {D1} cannot be closed yet: CAPA reference (required for a major or "
        "critical deviation) missing."
    )
    assess(review, D1, capa="CAPA-2026-014")
    close(review, D1)
    assert review.state.deviations[D1].classification == classification.lower()
    assert review.new_entries[-1].body["payload"]["record"]["assessment"]["capa"] == "CAPA-2026-014"


def test_assessments_record_each_change_before_and_after():
    review = open_review(with_deviation())
    assert assess(review, D1, classification="minor", description="Low viability") is True
    assert assess(review, D1, at=QA_AT + H, classification="Major", description="Low viability")
    assert assess(review, D1, at=QA_AT + 2 * H, classification="major", description=" ") is True
    # Nothing new: no entry.
    entries = len(review.new_entries)
    assert assess(review, D1, at=QA_AT + 3 * H, classification="major") is False
    assert len(review.new_entries) == entries
    dev = review.state.deviations[D1]
    assert dev.history == [
        {
            "at": utc_text(QA_AT),
            "by": QUINN.actor,
            "changes": {"classification": [None, "minor"], "description": [None, "Low viability"]},
        },
        {
            "at": utc_text(QA_AT + H),
            "by": QUINN.actor,
            "changes": {"classification": ["minor", "major"]},
        },
        {
            "at": utc_text(QA_AT + 2 * H),
            "by": QUINN.actor,
            "changes": {"description": ["Low viability", None]},
        },
    ]
    assert (dev.classification, dev.description) == (Classification.MAJOR, None)
    assert (dev.assessed_by, dev.assessed_at) == (QUINN.actor, utc_text(QA_AT + 2 * H))
    assert replay_review(review.batch.state.id, review.new_entries).deviations[D1] == dev


def test_an_unknown_classification_or_deviation_is_refused():
    review = open_review(with_deviation())
    err = refuses(review, InvalidInput, assess, review, D1, classification="serious")
    assert err.message == "'serious' is not a deviation classification."
    assert err.what_to_do == "Use minor, major or critical."
    err = refuses(review, InvalidInput, assess, review, f"{NUMBER}-D9", impact="None")
    assert err.message == f"Batch {NUMBER} has no deviation '{NUMBER}-D9'."
    refuses(review, InvalidInput, close, review, f"{NUMBER}-D9")


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_rejection_needs_a_reason(reason):
    review = open_review(clean_batch())
    err = refuses(review, InvalidInput, decide, review, Decision.REJECTED, reason)
    assert err.message == "A rejection needs a reason."
    decide(review, Decision.REJECTED, "  Bag label damaged beyond reading  ")
    assert (review.state.decision, review.state.reason) == (
        Decision.REJECTED,
        "Bag label damaged beyond reading",
    )
    assert review.new_entries[-1].body["kind"] == ReviewKind.BATCH_REJECTED
    assert review.state.decision_signature["meaning"] == "rejected"


@pytest.mark.parametrize(
    ("decision", "reason"), [(Decision.RELEASED, None), (Decision.REJECTED, "Out of spec")]
)
def test_nothing_more_is_recorded_after_the_decision(decision, reason):
    batch = with_deviation()
    review = open_review(batch)
    key = unreviewed(review.findings, review.state)[0].key
    if decision is Decision.RELEASED:
        for f in unreviewed(review.findings, review.state):
            mark(review, f.key)
        assess(review, D1, **COMPLETE_INVESTIGATION)
        close(review, D1)
    decide(review, decision, reason)
    closed = open_review(batch, review.new_entries)  # opened again from the chain
    for subject in (review, closed):
        says = f"Batch {NUMBER} is already {decision.value} (by Quinn Tester at {local(QA_AT)})."
        for action, args in (
            (mark, (subject, key)),
            (assess, (subject, D1)),
            (close, (subject, D1)),
            (decide, (subject, Decision.RELEASED)),
            (decide, (subject, Decision.REJECTED, "Second thoughts")),
        ):
            err = refuses(subject, ReviewClosed, action, *args)
            assert err.message == says
            assert err.what_to_do == "Nothing more can be recorded in its review."


def test_a_reviewed_signature_is_bound_to_the_content_of_the_finding():
    batch = with_deviation()
    review = open_review(batch)
    finding = unreviewed(review.findings, review.state)[0]
    mark(review, finding.key, note="  Looked at the raw data  ")
    payload = review.new_entries[-1].body["payload"]
    head = (batch.state.last_seq, batch.state.last_hash)
    assert (
        payload["record"]
        == finding.record(batch.state.id, head)
        == {
            "type": REVIEW_RECORD_TYPE,
            "batch": batch.state.id,
            "exception": finding.key,
            "title": finding.title,
            "detail": finding.detail,
            "record_head": list(head),
        }
    )
    assert payload["manifestation"]["record_hash"] == content_hash(payload["record"])
    assert payload["manifestation"]["meaning"] == "reviewed"
    assert signature_binds(payload["manifestation"], payload["record"])
    changed = {**payload["record"], "detail": finding.detail + " (edited)"}
    assert not signature_binds(payload["manifestation"], changed)
    assert (payload["exception"], payload["title"], payload["note"]) == (
        finding.key,
        finding.title,
        "Looked at the raw data",
    )
    item = review.state.reviewed[finding.key]
    assert (item.by, item.at, item.note) == (QUINN.actor, utc_text(QA_AT), "Looked at the raw data")


def test_a_signature_made_over_another_record_or_with_another_meaning_is_refused():
    review = open_review(with_deviation())
    first, second = unreviewed(review.findings, review.state)[:2]
    other = manifestation(review.exception_record(second.key), Meaning.REVIEWED)
    refuses(review, NotAuthorised, review.mark_reviewed, first.key, None, other, QUINN.actor,
            QA_AT, QA_DESK)  # fmt: skip
    wrong_meaning = manifestation(review.exception_record(first.key), Meaning.APPROVED)
    refuses(review, NotAuthorised, review.mark_reviewed, first.key, None, wrong_meaning,
            QUINN.actor, QA_AT, QA_DESK)  # fmt: skip


def test_a_correction_after_review_is_a_new_finding_needing_its_own_review():
    batch = counted("80.0")  # alert
    review = open_review(batch)
    (alert,) = unreviewed(review.findings, review.state)
    mark(review, alert.key)
    hub_chain = list(review.new_entries)
    assert unreviewed(open_review(batch, hub_chain).findings, review.state) == []
    # The spoke corrects the value afterwards (still outside the alert limits).
    correction = {"value": "viability", "new": "82.0", "reason": "Transcription error"}
    sign(batch, Action.CORRECT, SUE, T0 + 30 * MIN, phase_id="count_cells", correction=correction)
    corrected = seq_of(batch, "value_corrected", value="viability")
    again = open_review(batch, hub_chain)
    waiting = unreviewed(again.findings, again.state)
    assert sorted(f.key for f in waiting) == sorted(
        [f"correction:{corrected}", f"value:{corrected}"]
    )
    assert alert.key in again.state.reviewed  # the first review stands, for what it saw
    first_signed = again.state.reviewed[alert.key].signature
    record_now = again.finding(alert.key).record(batch.state.id, again.record_head)
    assert not signature_binds(first_signed, record_now)  # it was bound to the record as it was
    for f in waiting:
        mark(again, f.key, who=QUENTIN, at=QA_AT + H)
    assert unreviewed(again.findings, again.state) == []
    assert verify_chain([*hub_chain, *again.new_entries], HUB_KEY.public) == 3


def test_release_blockers_name_every_reason_at_once():
    batch = with_deviation()
    review = open_review(batch)
    waiting = unreviewed(review.findings, review.state)
    titles = [f.title for f in waiting]
    # The value outside action limits is not among them: closing its deviation settles it.
    assert [f.category for f in waiting] == [
        Category.RUBBER_STAMP,
        Category.COMMENT,
        Category.COMMENT,
        Category.COMMENT,
    ]
    blockers = release_blockers(batch, review.state, review.findings)
    assert blockers == [
        f"1 deviation is still open: {D1}. Close each with its investigation first.",
        f"4 exceptions are not reviewed: {'; '.join(titles[:3])} and 1 more.",
    ]
    err = refuses(review, ReleaseRefused, decide, review, Decision.RELEASED)
    assert err.message == f"Batch {NUMBER} cannot be released: " + " ".join(blockers)
    assert err.what_to_do == "Settle each point on the review page, then release."
    for f in waiting[:-1]:
        mark(review, f.key)
    assert release_blockers(batch, review.state, review.findings)[1] == (
        f"1 exception is not reviewed: {waiting[-1].title}."
    )
    assert qa_state(batch, review.state) is QaState.UNDER_REVIEW
    mark(review, waiting[-1].key)
    assess(review, D1, **COMPLETE_INVESTIGATION)
    close(review, D1)
    assert release_blockers(batch, review.state, review.findings) == []
    decide(review, Decision.RELEASED)
    assert qa_state(batch, review.state) is QaState.RELEASED


def test_an_aborted_batch_can_only_be_rejected():
    batch = new_batch()
    check_bag(batch)
    sign(batch, Action.ABORT, SAM, T0 + H, reason="Patient withdrew consent")
    review = open_review(batch)
    (abort,) = unreviewed(review.findings, review.state)
    mark(review, abort.key)
    assert release_blockers(batch, review.state, review.findings) == [
        "The batch was aborted at the spoke: it can only be rejected."
    ]
    refuses(review, ReleaseRefused, decide, review, Decision.RELEASED)
    decide(review, Decision.REJECTED, "Aborted at the spoke")
    assert qa_state(batch, review.state) is QaState.REJECTED


def test_a_verification_seconds_after_a_correction_is_a_rubber_stamp_too():
    batch = new_batch()
    check_bag(batch, verified_after=5 * MIN)
    assert by_category(findings(batch), Category.RUBBER_STAMP) == []
    corrected_at = T0 + 60 * MIN
    correction = {"value": "bag_intact", "new": "no", "reason": "Leak seen at the port"}
    sign(batch, Action.CORRECT, SUE, corrected_at, phase_id="check_bag", correction=correction)
    sign(batch, Action.VERIFY, SAM, corrected_at + 5 * SEC, phase_id="check_bag")
    verified = batch.new_entries[-1].seq
    (found,) = by_category(findings(batch), Category.RUBBER_STAMP)
    assert (found.key, found.title) == (
        f"rubber-stamp:{verified}",
        "'Check the bag' verified 5 s after it was performed",
    )


def local(at: datetime) -> str:
    """A time as the refusals say it: at the batch's site (Berlin), with the zone."""
    return local_text(at, "Europe/Berlin")
