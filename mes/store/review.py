"""Persistence of the review chain (mes.core.review): entries as sealed, and the disposition."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from mes.core.batch import BatchStatus
from mes.core.heads import SignedHead, review_chain, sign_head
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry
from mes.core.review import ReviewState
from mes.store.batches import _entry_values, _sealed
from mes.store.models import Batch, BatchReview, BatchReviewEntry

_COLUMNS = tuple(BatchReviewEntry.__table__.columns)


def review_ledger(session: Session, batch_id: str, after_seq: int = 0) -> list[SealedEntry]:
    """The batch's review chain (after ``after_seq``) in seq order."""
    rows = session.execute(
        select(*_COLUMNS)
        .where(BatchReviewEntry.batch_id == batch_id, BatchReviewEntry.seq > after_seq)
        .order_by(BatchReviewEntry.seq)
    )
    return [_sealed(r) for r in rows]


def append_review_entries(session: Session, entries: Iterable[SealedEntry]) -> None:
    """Store sealed review entries exactly as they are."""
    rows = [_entry_values(e) for e in entries]
    if rows:
        session.execute(insert(BatchReviewEntry.__table__), rows)


def save_disposition(
    session: Session,
    state: ReviewState,
    *,
    key: SiteKey,
    at: str,
    after_release: str | bool | None = False,
) -> None:
    """Keep the batch's disposition row in step with its review chain.

    The head moves with ``key``'s signature of it (the site storing it), timed ``at``.
    ``after_release``: what the batch still awaits after release ("event", "provisional" or
    None; mes.core.after_release.AfterRelease.awaiting); False: left as it is.
    """
    row = session.get(BatchReview, state.batch)
    if row is None:
        row = BatchReview(batch_id=state.batch)
        session.add(row)
    row.decision = state.decision.value if state.decision else None
    row.decided_at = state.decided_at
    row.decided_by = state.decided_by.name if state.decided_by else None
    row.reason = state.reason
    if (row.last_seq, row.last_hash) != (state.last_seq, state.last_hash):
        head = sign_head(key, review_chain(state.batch), state.last_seq, state.last_hash, at)
        row.head_at, row.head_signature = head.at, head.signature
    row.last_seq, row.last_hash = state.last_seq, state.last_hash
    if after_release is not False:
        row.after_release = after_release


def set_after_release(session: Session, batch_id: str, awaiting: str | None) -> None:
    """What a decided batch still awaits after release (its disposition row exists)."""
    row = session.get(BatchReview, batch_id)
    if row is not None:
        row.after_release = awaiting


def review_head(row: BatchReview) -> SignedHead:
    """The review chain's head as this site recorded and signed it."""
    return SignedHead(
        review_chain(row.batch_id), row.last_seq, row.last_hash, row.head_at, row.head_signature
    )


def disposition(session: Session, batch_id: str) -> BatchReview | None:
    """The batch's disposition row (QA's decision and the review head), if it has one."""
    return session.get(BatchReview, batch_id)


def review_heads(session: Session, site: str, batch_ids: list[str]) -> list[tuple[str, int]]:
    """The review head (last seq) of each of these batches of ``site``, by batch ID."""
    heads: list[tuple[str, int]] = []
    for start in range(0, len(batch_ids), 500):  # a bounded IN list at a time
        heads += [
            (b, s)
            for b, s in session.execute(
                select(BatchReview.batch_id, BatchReview.last_seq)
                .join(Batch, Batch.id == BatchReview.batch_id)
                .where(Batch.site == site, BatchReview.batch_id.in_(batch_ids[start : start + 500]))
            ).all()
        ]
    return sorted(heads)


def undecided_review_heads(session: Session) -> dict[str, int]:
    """The complete or aborted batches QA has not decided yet, with their review head (0: none).

    With them, the released batches whose review still grows after release (results pending,
    or a result out of specification not closed: ``after_release``).
    """
    rows = session.execute(
        select(Batch.id, BatchReview.last_seq, BatchReview.decision, BatchReview.after_release)
        .outerjoin(BatchReview, BatchReview.batch_id == Batch.id)
        .where(Batch.status.in_((BatchStatus.COMPLETE.value, BatchStatus.ABORTED.value)))
    ).all()
    return {b: (seq or 0) for b, seq, decision, awaits in rows if decision is None or awaits}
