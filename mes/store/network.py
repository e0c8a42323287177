"""The hub's network overview, a read model: its spokes, the open deviations they raised, refusals.

Plain selects over the batch summaries (:mod:`mes.store.read_models`), the open deviations and
the sync log (indexed by action, outcome, peer and time); who may read it is checked by the
service that wraps it (:func:`mes.services.network.network`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from mes.core.after_release import (
    BATCH_CERTIFIED_FINAL,
    EVENT,
    NOTIFICATION_WAYS,
    PHYSICIAN_NOTIFIED,
    RESULT_AFTER_RELEASE,
    RESULT_RECORDED,
    AfterRelease,
    after_release_state,
)
from mes.core.batch import Procedure
from mes.store.models import (
    Batch,
    BatchEntry,
    BatchPhase,
    BatchReview,
    BatchReviewEntry,
    BatchSummary,
    BatchValue,
    Deviation,
    Spoke,
    SyncEvent,
)
from mes.store.recipes import version_with_content

ACTIVE_BATCH_STATUSES = ("created", "in_progress", "on_hold")


@dataclass(frozen=True)
class SpokeSummary:
    """One spoke on the network page."""

    spoke: Spoke
    batches: int
    in_progress: int
    open_deviations: int
    last_received_at: datetime | None
    clock_beyond_skew: bool = False  # its clock, as last measured, is off by more than the skew


@dataclass(frozen=True)
class DeviationAlert:
    """An open deviation received from a spoke: where, which batch, phase and value."""

    id: str
    site: str
    batch_id: str
    batch_number: str
    phase: str | None
    value: str | None
    category: str
    description: str
    raised_at: str
    raised_by: str


@dataclass(frozen=True)
class NetworkView:
    """The hub's view of its spokes and the open deviations they raised."""

    spokes: list[SpokeSummary]
    alerts: list[DeviationAlert]
    refusals: list[SyncEvent]
    clock_skew_seconds: int = 300


def clock_beyond_skew(spoke: Spoke, clock_skew_seconds: int) -> bool:
    """Whether the spoke's clock, as last measured, is off by more than the allowed skew.

    Then its requests are refused and what it records is dated wrongly.
    """
    offset = spoke.clock_offset_seconds
    return offset is not None and abs(offset) > clock_skew_seconds


def network_overview(
    session: Session, *, clock_skew_seconds: int, alerts_limit: int = 50
) -> NetworkView:
    """Spokes with their batches and open deviations, the newest deviations, recent refusals."""
    # Per site, from the batch summaries' (site, status) index: never the ledgers.
    counts = {
        site: (total, active)
        for site, total, active in session.execute(
            select(
                BatchSummary.site,
                func.count(),
                func.sum(case((BatchSummary.status.in_(ACTIVE_BATCH_STATUSES), 1), else_=0)),
            ).group_by(BatchSummary.site)
        ).all()
    }
    # Counted as the alerts list them: the open deviations, and each result out of
    # specification after release (its ledger deviation, if any, once) until it is closed.
    events = after_release_alerts(session)
    open_by_site = dict(
        session.execute(
            select(Batch.site, func.count())
            .join(Deviation, Deviation.batch_id == Batch.id)
            .where(Deviation.status == "open", Deviation.category != RESULT_AFTER_RELEASE)
            .group_by(Batch.site)
        ).all()
    )
    for event in events:
        open_by_site[event.site] = open_by_site.get(event.site, 0) + 1
    last = dict(
        session.execute(
            select(SyncEvent.peer, func.max(SyncEvent.at))
            .where(SyncEvent.action == "ingest", SyncEvent.outcome == "accepted")
            .group_by(SyncEvent.peer)
        ).all()
    )
    spokes = [
        SpokeSummary(
            spoke=s,
            batches=counts.get(s.code, (0, 0))[0],
            in_progress=int(counts.get(s.code, (0, 0))[1] or 0),
            open_deviations=open_by_site.get(s.code, 0),
            last_received_at=last.get(s.code),
            clock_beyond_skew=clock_beyond_skew(s, clock_skew_seconds),
        )
        for s in session.execute(select(Spoke).order_by(Spoke.code)).scalars()
    ]
    alerts = [
        # Results out of specification after release come first, until each is closed.
        *events,
        *(
            _alert(session, deviation, batch)
            for deviation, batch in session.execute(
                select(Deviation, Batch)
                .join(Batch, Batch.id == Deviation.batch_id)
                .where(Deviation.status == "open", Deviation.category != RESULT_AFTER_RELEASE)
                .order_by(Deviation.raised_at.desc())
                .limit(alerts_limit)
            ).all()
        ),
    ]
    refusals = list(
        session.execute(
            select(SyncEvent)
            .where(SyncEvent.outcome == "refused")
            .order_by(SyncEvent.id.desc())
            .limit(20)
        ).scalars()
    )
    return NetworkView(spokes, alerts, refusals, clock_skew_seconds)


def _alert(session: Session, deviation: Deviation, batch: Batch) -> DeviationAlert:
    """A deviation as the network page shows it: the phase's name, the value with its label."""
    phase_name = None
    value_text = None
    if deviation.phase_id:
        phase_name = session.execute(
            select(BatchPhase.name).where(
                BatchPhase.batch_id == deviation.batch_id, BatchPhase.phase_id == deviation.phase_id
            )
        ).scalar_one_or_none()
        if deviation.value_id:
            value = session.execute(
                select(BatchValue.value).where(
                    BatchValue.batch_id == deviation.batch_id,
                    BatchValue.phase_id == deviation.phase_id,
                    BatchValue.value_id == deviation.value_id,
                )
            ).scalar_one_or_none()
            if value is not None:
                spec = _value_spec(session, batch, deviation.phase_id, deviation.value_id)
                label = str(spec.get("label") or deviation.value_id)
                unit = f" {spec['unit']}" if spec.get("unit") else ""
                value_text = f"{label}: {value}{unit}"
    return DeviationAlert(
        id=deviation.id,
        site=batch.site,
        batch_id=deviation.batch_id,
        batch_number=batch.number,
        phase=phase_name or deviation.phase_id,
        value=value_text,
        category=deviation.category,
        description=deviation.description,
        raised_at=deviation.raised_at,
        raised_by=deviation.raised_by,
    )


def _value_spec(session: Session, batch: Batch, phase_id: str, value_id: str) -> dict[str, Any]:
    """The recipe's declaration of a value (label, unit), from the version the batch ran."""
    version = version_with_content(session, batch.content_hash)
    if version is None:
        return {}
    plan = Procedure(json.loads(version.compiled)).phases.get(phase_id)
    return dict((plan.value_spec(value_id) if plan else None) or {})


# --- results out of specification after release (mes.core.after_release) -----------------------

_LEDGER_FOLLOWUPS = (RESULT_RECORDED, PHYSICIAN_NOTIFIED, "deviation_raised")
_REVIEW_FOLLOWUPS = (
    RESULT_RECORDED,
    PHYSICIAN_NOTIFIED,
    BATCH_CERTIFIED_FINAL,
    "deviation_closed",
    "batch_released",
    "batch_rejected",
)


def after_release_of(session: Session, batch: Batch) -> AfterRelease | None:
    """One batch after release, read from both chains (None: its recipe is not held here)."""
    version = version_with_content(session, batch.content_hash)
    if version is None:
        return None
    ledger = [
        row.body()
        for row in session.execute(
            select(BatchEntry)
            .where(BatchEntry.batch_id == batch.id, BatchEntry.kind.in_(_LEDGER_FOLLOWUPS))
            .order_by(BatchEntry.seq)
        ).scalars()
    ]
    review = [
        row.body()
        for row in session.execute(
            select(BatchReviewEntry)
            .where(
                BatchReviewEntry.batch_id == batch.id, BatchReviewEntry.kind.in_(_REVIEW_FOLLOWUPS)
            )
            .order_by(BatchReviewEntry.seq)
        ).scalars()
    ]
    return after_release_state(json.loads(version.compiled), ledger, review)


def after_release_alerts(session: Session) -> list[DeviationAlert]:
    """Every result out of specification after release not closed yet, newest first.

    Read for the batches with an open event and those with a deviation a result raised: a
    handful, never the whole network (provisional batches are not read).
    """
    candidates = set(
        session.execute(
            select(BatchReview.batch_id).where(BatchReview.after_release == EVENT)
        ).scalars()
    ) | set(
        session.execute(
            select(Deviation.batch_id).where(
                Deviation.category == RESULT_AFTER_RELEASE, Deviation.status == "open"
            )
        ).scalars()
    )
    alerts: list[DeviationAlert] = []
    for batch in session.execute(select(Batch).where(Batch.id.in_(sorted(candidates)))).scalars():
        state = after_release_of(session, batch)
        for event in state.open_events if state is not None else ():
            r, told = event.result, event.notification
            unit = f" {r.unit}" if r.unit else ""
            next_step = (
                f"Physician {told.physician} told {NOTIFICATION_WAYS.get(told.how, told.how)} "
                f"by {told.by}; deviation {event.deviation} to close."
                if told is not None
                else "Notify the treating physician now: nothing else can be signed on this "
                "batch until it is recorded."
            )
            alerts.append(
                DeviationAlert(
                    id=f"{batch.number}:{r.result}",
                    site=batch.site,
                    batch_id=batch.id,
                    batch_number=batch.number,
                    phase=None,
                    value=f"{r.label}: {r.value}{unit}",
                    category=RESULT_AFTER_RELEASE,
                    description=f"Specification {r.specification} (report {r.reference}, "
                    f"entered at the {r.chain}). {next_step}",
                    raised_at=r.at,
                    raised_by=r.by,
                )
            )
    return sorted(alerts, key=lambda a: a.raised_at, reverse=True)
