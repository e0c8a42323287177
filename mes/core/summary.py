"""A received batch as the network's pages read it: its summary, critical values and milestones.

Plain functions of the replayed batch and its review chain — what the hub's read models hold
(:mod:`mes.store.read_models` turns them into rows): the same facts whether ingest keeps them
in step or a rebuild recomputes them from the chains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.batch import Batch, BatchStatus, PhaseStatus
from mes.core.clock import utc_text
from mes.core.critical import (
    BEDSIDE_MILESTONES,
    EVENT,
    RECIPE,
    UNIT_PROCEDURE_END,
    critical_inputs,
    milestone_inputs,
)
from mes.core.limits import numeric
from mes.core.review import (
    Category,
    Finding,
    QaState,
    ReviewState,
    open_deviations,
    qa_state,
    unreviewed,
)

DEMO_PATIENT_PREFIX = "DEMO-"
"""A batch whose chain of identity's patient ID starts with this is demonstration data."""

_DONE = (PhaseStatus.PERFORMED, PhaseStatus.VERIFIED, PhaseStatus.SKIPPED)


@dataclass(frozen=True)
class Summary:
    """One batch where it stands: for the QA queue and the live board."""

    batch_id: str
    site: str
    number: str
    recipe_code: str
    recipe_version: int
    status: BatchStatus
    qa_state: QaState
    current_phase: str | None
    next_timer_at: str | None
    open_deviations: int
    exceptions: int
    blocking: bool
    newest_entry_at: str
    received_at: str | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    decided_at: str | None
    demo: bool


@dataclass(frozen=True)
class ParameterValue:
    """The current value of a critical numeric input or calculation of a batch."""

    phase_id: str
    value_id: str
    parameter: str
    label: str
    unit: str | None
    criticality: str
    value: float
    recorded_at: str  # when the value was first recorded: its place in the series
    corrected_at: str | None  # when it was last changed (corrected): None if never changed
    entry_seq: int  # the ledger entry the value stands on (the correction's, if corrected)


@dataclass(frozen=True)
class TimelinePoint:
    """A point of a batch's vein-to-vein timeline: a milestone or a unit procedure's end."""

    milestone: str
    at: str
    source: str  # "recipe" | "event"


def is_demo(chain_of_identity: Mapping[str, Any]) -> bool:
    """Whether the batch is demonstration data: its patient ID starts with "DEMO-"."""
    patient = chain_of_identity.get("patient_id")
    return isinstance(patient, str) and patient.startswith(DEMO_PATIENT_PREFIX)


def next_timer(batch: Batch) -> str | None:
    """The next bound of a timer window of a phase not started yet (UTC text).

    Each open window (its reference phase performed) of a phase still waiting or ready: its
    earliest and latest start; the first bound after the batch's newest entry, or — every bound
    passed — the last one (a window missed). None when no such phase has a window.
    """
    s = batch.state
    if s.status not in (BatchStatus.IN_PROGRESS, BatchStatus.ON_HOLD):
        return None
    bounds = sorted(
        utc_text(bound)
        for pid, phase in s.phases.items()
        if phase.status in (PhaseStatus.LOCKED, PhaseStatus.READY)
        for window in batch.timer_windows(pid)
        for bound in (window["earliest"], window["latest"])
        if bound is not None
    )
    if not bounds:
        return None
    newest = s.last_at or ""
    return next((b for b in bounds if b > newest), bounds[-1])


def summary(
    batch: Batch, review: ReviewState, findings: list[Finding], *, received_at: str | None
) -> Summary:
    """The batch's summary from its replay, its review chain and the findings of its review.

    ``blocking``: a finding blocks release other than the record still arriving (which every
    batch in progress has): the record fails verification or its times cannot be true.
    """
    s = batch.state
    current = batch.current_phases()
    return Summary(
        batch_id=s.id,
        site=s.site,
        number=s.number,
        recipe_code=batch.procedure.recipe_code,
        recipe_version=batch.procedure.version,
        status=s.status,
        qa_state=qa_state(batch, review),
        current_phase=batch.procedure.phases[current[0]].name if current else None,
        next_timer_at=next_timer(batch),
        open_deviations=len(open_deviations(batch, review)),
        exceptions=len(unreviewed(findings, review)),
        blocking=any(f.blocking and f.category is not Category.PENDING for f in findings),
        newest_entry_at=s.last_at or s.created_at,
        received_at=received_at,
        created_at=s.created_at,
        started_at=s.started_at,
        completed_at=s.completed_at,
        decided_at=review.decided_at,
        demo=is_demo(s.chain_of_identity),
    )


def parameter_values(batch: Batch) -> list[ParameterValue]:
    """The current numeric value of each critical input of the recipe version the batch ran.

    A corrected value is the value as it stands, at the time it was first recorded (a correction
    does not move the batch in a series: ``corrected_at`` says when it was corrected) and on the
    entry that made it so; a value not recorded, or not a number, has none.
    """
    found = []
    for critical in critical_inputs(batch.procedure.compiled):
        phase = batch.state.phases.get(critical.phase_id)
        recorded = phase.values.get(critical.value_id) if phase is not None else None
        value = numeric(recorded.value) if recorded is not None else None
        if recorded is None or value is None:
            continue
        found.append(
            ParameterValue(
                phase_id=critical.phase_id,
                value_id=critical.value_id,
                parameter=critical.parameter,
                label=critical.label,
                unit=critical.unit,
                criticality=critical.criticality.value,
                value=value,
                recorded_at=recorded.history[0]["at"] if recorded.history else recorded.at,
                corrected_at=recorded.at if recorded.history else None,
                entry_seq=recorded.seq,
            )
        )
    return found


def timeline(batch: Batch, review: ReviewState) -> list[TimelinePoint]:
    """The batch's vein-to-vein points known so far.

    The recipe's milestones (the value of the datetime input that declares each); the batch's
    start and completion; the bedside receipt (the first matching identity check) and the
    infusion start from the clinic's entries, where no input of the recipe records them; each
    unit procedure's end (when its last phase was performed or
    verified, once every phase of it is done); and the hub's release.
    """
    s = batch.state
    points = []
    for name, (phase_id, value_id) in milestone_inputs(batch.procedure.compiled).items():
        phase = s.phases.get(phase_id)
        recorded = phase.values.get(value_id) if phase is not None else None
        if recorded is not None and isinstance(recorded.value, str) and recorded.value:
            points.append(TimelinePoint(name, recorded.value, RECIPE))
    declared = {p.milestone for p in points}
    bedside = {
        "bedside_receipt": s.bedside.first_match_at,
        "infusion_start": s.bedside.infusion_started_at,
    }
    for name in BEDSIDE_MILESTONES:  # the clinic's record, unless an input of the recipe says it
        if name not in declared and bedside[name]:
            points.append(TimelinePoint(name, bedside[name], EVENT))
    if s.started_at:
        points.append(TimelinePoint("manufacturing_start", s.started_at, EVENT))
    if s.completed_at and s.status is BatchStatus.COMPLETE:
        points.append(TimelinePoint("manufacturing_end", s.completed_at, EVENT))
    for unit in batch.procedure.compiled["unit_procedures"]:
        ids = [p["id"] for op in unit["operations"] for p in op["phases"]]
        phases = [s.phases[pid] for pid in ids if pid in s.phases]
        if not phases or len(phases) < len(ids) or any(p.status not in _DONE for p in phases):
            continue
        times = [t for p in phases for t in (p.performed_at, p.verified_at) if t]
        if times:
            points.append(TimelinePoint(f"{UNIT_PROCEDURE_END}{unit['id']}", max(times), EVENT))
    if review.decision is not None and review.decision.value == "released" and review.decided_at:
        points.append(TimelinePoint("hub_release", review.decided_at, EVENT))
    return points
