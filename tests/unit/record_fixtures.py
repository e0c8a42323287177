"""A small executed batch with every kind of record content, and its record in words.

The BATCH-TEST batch of :mod:`batch_fixtures`, run to completion in Berlin time with: a value
outside its alert limits, a correction after signing (with its reason), a lot, two instruments,
two identity labels, a deviation reported by a person, acknowledged at the spoke and assessed
and closed by QA at the hub, an exception reviewed, and QA's release — the content the printed
record must show (:func:`sample_record`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from batch_fixtures import (
    OLIVIA,
    QUINN,
    SAM,
    SITE,
    T0,
    TERMINAL,
    Action,
    do_check_bag,
    do_culture,
    do_simple,
    fill_count,
    new_batch,
    sign,
)

from mes.core.batch import Batch
from mes.core.canonical import canonical_json, content_hash
from mes.core.clock import utc_text
from mes.core.esign import Manifestation, Meaning
from mes.core.record import BatchRecord, batch_audit_lines, build_record
from mes.core.review import Decision, DeviationReview, ReviewedItem, ReviewState

ZONE = "Europe/Berlin"
SITE_NAME = "Spoke One, Suite A"
QUINN_ACTOR = QUINN.actor
CORRECTION_REASON = "misread the scale"
DEVIATION_TEXT = "Sampling syringe dropped on the floor; a new one was used."


def executed_batch() -> Batch:
    """BATCH-TEST run to completion with an alert value, a correction and a deviation."""
    batch = new_batch()
    do_check_bag(batch, T0 + timedelta(minutes=1))
    at = T0 + timedelta(minutes=10)
    fill_count(batch, at, {"volume": "200", "viability": "80.0", "viable_conc": "5.00"})
    sign(batch, Action.PERFORM, OLIVIA, at, phase_id="count_cells")
    batch.report_deviation(DEVIATION_TEXT, OLIVIA, at, TERMINAL, phase_id="count_cells")
    deviation = next(iter(batch.state.deviations))
    sign(batch, Action.ACKNOWLEDGE, SAM, at + timedelta(minutes=2), deviation_id=deviation)
    sign(
        batch,
        Action.CORRECT,
        OLIVIA,
        at + timedelta(minutes=5),
        phase_id="count_cells",
        correction={"value": "volume", "new": "210", "reason": CORRECTION_REASON},
    )
    do_culture(batch, at + timedelta(minutes=20))
    do_simple(batch, "harvest", {"harvested": "yes"}, at + timedelta(hours=3))
    sign(batch, Action.COMPLETE, SAM, at + timedelta(hours=3, minutes=5))
    return batch


def _manifestation(meaning: Meaning, record: dict[str, Any], minutes: int) -> dict[str, Any]:
    return Manifestation.for_record(
        record_type="batch-review",
        record_id="b-0001",
        record=record,
        signer_id=QUINN.user_id or "",
        username=QUINN_ACTOR.username,
        printed_name=QUINN_ACTOR.name,
        meaning=meaning,
        at=T0 + timedelta(hours=5, minutes=minutes),
        terminal="QA desk 2",
        site="HUB",
    ).as_dict()


def review_of(batch: Batch) -> ReviewState:
    """QA's review at the hub: the deviation assessed and closed, one exception, the release."""
    deviation = next(iter(batch.state.deviations))
    at = T0 + timedelta(hours=5)
    assessed = utc_text(at)
    workflow = DeviationReview(
        deviation=deviation,
        classification="minor",
        description=DEVIATION_TEXT,
        impact="None: the sample was taken with a sterile replacement.",
        root_cause="Handling",
        capa="CAPA-2026-017",
        assessed_by=QUINN_ACTOR,
        assessed_at=assessed,
        history=[
            {"at": assessed, "by": QUINN_ACTOR, "changes": {"classification": [None, "minor"]}}
        ],
        closed=True,
        closed_by=QUINN_ACTOR,
        closed_at=utc_text(at + timedelta(minutes=3)),
        signature=_manifestation(Meaning.REVIEWED, {"deviation": deviation}, 3),
    )
    reviewed = ReviewedItem(
        key="alert_limit:count_cells:viability",
        title="Viability 80.0 % outside alert limits",
        by=QUINN_ACTOR,
        at=utc_text(at + timedelta(minutes=4)),
        note="Within action limits; trend noted.",
        signature=_manifestation(Meaning.REVIEWED, {"exception": "viability"}, 4),
    )
    return ReviewState(
        batch="b-0001",
        last_seq=4,
        last_hash="f" * 64,
        reviewed={reviewed.key: reviewed},
        deviations={deviation: workflow},
        decision=Decision.RELEASED,
        decided_by=QUINN_ACTOR,
        decided_at=utc_text(at + timedelta(minutes=5)),
        reason=None,
        decision_signature=_manifestation(Meaning.RELEASED, {"decision": "released"}, 5),
    )


def ledger_json(batch: Batch) -> bytes:
    """The batch's ledger as canonical JSON: what the printed record carries as its source."""
    return canonical_json([entry.body for entry in batch.new_entries])


def sample_record(batch: Batch | None = None) -> BatchRecord:
    """The executed batch record of :func:`executed_batch`, reviewed and released."""
    batch = batch or executed_batch()
    review = review_of(batch)
    return build_record(
        batch,
        review,
        time_zone=ZONE,
        site_name=SITE_NAME,
        audit=batch_audit_lines(batch, batch.new_entries, ZONE),
        record_hash=content_hash([entry.body for entry in batch.new_entries]),
        generated_at=T0 + timedelta(hours=6),
        ledger=batch.new_entries,
    )


__all__ = ["SITE", "executed_batch", "ledger_json", "review_of", "sample_record"]
