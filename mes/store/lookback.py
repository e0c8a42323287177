"""Look-back queries at the hub (and the notifications a spoke holds): plain selects.

Every batch that used a subject is read from the ``batch_usages`` read model by its index
(kind, identifier), joined to the batch's summary (status, QA decision, dates) and its chain of
identity (the patient) — never a ledger. The dispositions are entries of the review chains.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes.core.lookback import LookBackDisposition, disposition_of_entry
from mes.core.review import ReviewKind
from mes.store.models import (
    Batch,
    BatchReview,
    BatchReviewEntry,
    BatchSummary,
    BatchUsage,
    LookBack,
)
from mes.store.models.batches import chain_body
from mes.store.queries import RecordName


@dataclass(frozen=True)
class UsedBy:
    """A batch that used the subject: where, whose, where it stands, when."""

    batch_id: str
    site: str
    number: str
    recipe: str
    detail: str | None
    chain_of_identity: dict[str, Any]
    status: str
    qa_state: str
    created_at: str
    completed_at: str | None
    decided_at: str | None


def batches_using(
    session: Session, kind: str, identifier: str, *, limit: int | None = None, offset: int = 0
) -> list[UsedBy]:
    """The received batches that used ``identifier`` (of ``kind``), by site then start.

    ``limit`` and ``offset``: one page of them (None: every one).
    """
    u, s, b = BatchUsage, BatchSummary, Batch
    rows = session.execute(
        select(
            u.batch_id,
            s.site,
            s.number,
            s.recipe_code,
            s.recipe_version,
            u.detail,
            b.chain_of_identity,
            s.status,
            s.qa_state,
            s.created_at,
            s.completed_at,
            s.decided_at,
        )
        .join(s, s.batch_id == u.batch_id)
        .join(b, b.id == u.batch_id)
        .where(u.kind == kind, u.identifier == identifier)
        .order_by(s.site, s.created_at, s.number)
        .limit(limit)
        .offset(offset or None)
    )
    return [
        UsedBy(
            r.batch_id,
            r.site,
            r.number,
            f"{r.recipe_code} v{r.recipe_version}",
            r.detail,
            dict(r.chain_of_identity or {}),
            r.status,
            r.qa_state,
            r.created_at,
            r.completed_at,
            r.decided_at,
        )
        for r in rows
    ]


def used_count(session: Session, kind: str, identifier: str) -> int:
    """How many received batches used ``identifier`` (of ``kind``)."""
    u = BatchUsage
    return int(
        session.scalar(select(func.count()).where(u.kind == kind, u.identifier == identifier)) or 0
    )


def used_by(session: Session, kind: str, identifier: str, batch_id: str) -> bool:
    """Whether the batch used ``identifier`` (of ``kind``)."""
    return (
        session.get(BatchUsage, {"batch_id": batch_id, "kind": kind, "identifier": identifier})
        is not None
    )


def lookback(session: Session, lookback_id: str) -> LookBack | None:
    """One look-back by its ID."""
    return session.get(LookBack, lookback_id)


def recent_lookbacks(session: Session, limit: int = 50) -> list[LookBack]:
    """The look-backs opened most recently, newest first."""
    return list(
        session.scalars(
            select(LookBack).order_by(LookBack.opened_at.desc(), LookBack.id).limit(limit)
        )
    )


def lookback_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A look-back by its subject: 'Look-back on lot L-123'."""
    query = select(LookBack.id, LookBack.subject_kind, LookBack.subject).where(LookBack.id.in_(ids))
    return {
        i: RecordName(f"Look-back on {kind.replace('_', ' ')} {subject}")
        for i, kind, subject in session.execute(query)
    }


def dispositions(
    session: Session, batch_ids: Collection[str] | None = None, lookback_id: str | None = None
) -> list[tuple[str, str, LookBackDisposition]]:
    """(batch ID, batch number, disposition) of each look-back disposition held, newest first.

    ``batch_ids``: of these batches only; ``lookback_id``: of that look-back only.
    """
    e = BatchReviewEntry
    query = (
        select(e, Batch.number)
        .join(Batch, Batch.id == e.batch_id)
        .where(e.kind == ReviewKind.LOOKBACK_DISPOSITION.value)
        .order_by(e.at.desc(), e.batch_id)
    )
    if batch_ids is not None:
        query = query.where(e.batch_id.in_(list(batch_ids)))
    if lookback_id is not None:
        query = query.where(e.payload["lookback"].as_string() == lookback_id)
    return [
        (entry.batch_id, number, disposition_of_entry(chain_body(entry).as_dict()))
        for entry, number in session.execute(query)
    ]


def decided_review_heads(session: Session, after: str, limit: int) -> dict[str, int]:
    """Spoke: the review head of up to ``limit`` decided batches, by batch ID after ``after``."""
    return {
        batch_id: seq
        for batch_id, seq in session.execute(
            select(BatchReview.batch_id, BatchReview.last_seq)
            .where(BatchReview.decision.is_not(None), BatchReview.batch_id > after)
            .order_by(BatchReview.batch_id)
            .limit(limit)
        )
    }
