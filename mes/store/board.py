"""The board of a site, a read model: batches in progress (or all), what is due, and QA's word.

Plain selects over the projection tables; who may read it is checked by the service that wraps
it (:func:`mes.services.batches.board`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes.core.after_release import EVENT
from mes.core.identity import identity_text
from mes.store.models import Batch, BatchPhase, BatchReview, Deviation


@dataclass(frozen=True)
class BoardRow:
    """One batch on the board of a site."""

    id: str
    number: str
    recipe: str
    status: str
    identity: str
    started_at: str | None
    current: list[dict[str, Any]]
    next_due: str | None
    overdue: list[str]
    open_deviations: int
    # QA's disposition at the hub, as its review chain (synced back to the spoke) says
    decision: str | None = None  # released / rejected
    decided_by: str | None = None
    decided_at: str | None = None
    decision_reason: str | None = None
    # what a released batch still awaits (mes.core.after_release): "provisional" or "event"
    after_release: str | None = None


def board_rows(
    session: Session, statuses: Iterable[str], active: Iterable[str], now: str
) -> list[BoardRow]:
    """The batches in ``statuses``, newest first, as the board shows them at ``now`` (UTC text).

    For each: the phases in progress, ready or awaiting verification, the next timer due, any
    timer overdue (only while the batch is in one of the ``active`` statuses), the number of
    open deviations, and QA's release or rejection at the hub.
    """
    active = tuple(active)
    listed = _batches_with_phases(session, list(statuses))
    decided = _dispositions(session, [batch.id for batch, _p, _d in listed])
    rows = []
    for batch, phases, open_deviations in listed:
        running = batch.status in active
        current = [
            {"id": p.phase_id, "name": p.name, "status": p.status} for p in phases if p.current
        ]
        waiting = [p for p in phases if running and p.status in ("locked", "ready")]
        due = sorted(
            p.earliest_start for p in waiting if p.earliest_start and p.earliest_start > now
        )
        overdue = [p.name for p in waiting if p.latest_start and p.latest_start < now]
        coi = batch.chain_of_identity
        identity = " · ".join(identity_text(v) for v in list(coi.values())[:2])
        review = decided.get(batch.id)
        rows.append(
            BoardRow(
                id=batch.id,
                number=batch.number,
                recipe=f"{batch.recipe_code} v{batch.recipe_version}",
                status=batch.status,
                identity=identity,
                started_at=batch.started_at,
                current=current,
                next_due=due[0] if due else None,
                overdue=overdue,
                open_deviations=open_deviations,
                decision=review.decision if review else None,
                decided_by=review.decided_by if review else None,
                decided_at=review.decided_at if review else None,
                decision_reason=review.reason if review else None,
                after_release=review.after_release if review else None,
            )
        )
    return rows


def _batches_with_phases(
    session: Session, statuses: list[str]
) -> list[tuple[Batch, list[BatchPhase], int]]:
    """Batches in ``statuses``, newest first, each with its phases in order and open deviations."""
    batches = list(
        session.execute(
            select(Batch)
            .where(
                # a result out of specification after release keeps its batch on the board
                Batch.status.in_(statuses)
                | Batch.id.in_(
                    select(BatchReview.batch_id).where(BatchReview.after_release == EVENT)
                )
            )
            .order_by(Batch.created_at.desc())
        ).scalars()
    )
    if not batches:
        return []
    ids = [b.id for b in batches]
    phases: dict[str, list[BatchPhase]] = {i: [] for i in ids}
    for phase in session.execute(
        select(BatchPhase)
        .where(BatchPhase.batch_id.in_(ids))
        .order_by(BatchPhase.batch_id, BatchPhase.position)
    ).scalars():
        phases[phase.batch_id].append(phase)
    open_counts = dict(
        session.execute(
            select(Deviation.batch_id, func.count())
            .where(Deviation.batch_id.in_(ids), Deviation.status == "open")
            .group_by(Deviation.batch_id)
        ).all()
    )
    return [(b, phases[b.id], open_counts.get(b.id, 0)) for b in batches]


def _dispositions(session: Session, batch_ids: list[str]) -> dict[str, BatchReview]:
    """QA's disposition rows of these batches, by batch ID."""
    if not batch_ids:
        return {}
    return {
        row.batch_id: row
        for row in session.execute(
            select(BatchReview).where(BatchReview.batch_id.in_(batch_ids))
        ).scalars()
    }


@dataclass(frozen=True)
class AfterReleaseAlert:
    """An open deviation raised on a complete batch (after release: a bedside mismatch…)."""

    batch_id: str
    number: str
    deviation: str
    category: str
    description: str
    raised_at: str


def after_release_alerts(session: Session) -> list[AfterReleaseAlert]:
    """Open deviations of complete batches, newest first: what the board shows at its top."""
    return [
        AfterReleaseAlert(batch.id, batch.number, d.id, d.category, d.description, d.raised_at)
        for d, batch in session.execute(
            select(Deviation, Batch)
            .join(Batch, Batch.id == Deviation.batch_id)
            .where(Deviation.status == "open", Batch.status == "complete")
            .order_by(Deviation.raised_at.desc())
        ).all()
    ]
