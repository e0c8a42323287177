"""The QA queue at the hub, a read model: every batch received, where it stands for QA, filtered.

Selects over the batch summaries (:mod:`mes.store.read_models`, kept by ingest and review): the
filters, the queue's order and its page in SQL, the counts by one GROUP BY — no batch's record
is read. Who may read it is the service's (:func:`mes.services.review.qa_queue`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from mes.core.after_release import EVENT, AfterRelease
from mes.core.clock import utc_text
from mes.core.review import QaState
from mes.store.models import Batch, BatchReview, BatchSummary
from mes.store.network import after_release_of

# What needs QA first (awaiting, then under review), then what is still arriving, then the
# decided; within each, the newest first — so a long history never hides new work.
QUEUE_ORDER = (
    QaState.AWAITING_REVIEW,
    QaState.UNDER_REVIEW,
    QaState.AT_SPOKE,
    QaState.RELEASED,
    QaState.REJECTED,
)


@dataclass(frozen=True)
class QueueFilter:
    """What QA asked for; empty fields do not filter."""

    site: str | None = None
    product: str | None = None  # the recipe code
    state: str | None = None  # a QaState value
    min_age_days: int | None = None


@dataclass(frozen=True)
class QueuedBatch:
    """A batch the filters match: its summary, who decided it, its QA state and age in days.

    ``after_release``: a released batch that still awaits something (a result out of
    specification not closed, or results pending), read from both chains; else None.
    """

    summary: BatchSummary
    decided_by: str | None
    qa_state: QaState
    age_days: int
    after_release: AfterRelease | None = None


@dataclass(frozen=True)
class QueueSelection:
    """The first matching batches in queue order, how many match, counts, filter choices."""

    batches: list[QueuedBatch]
    matching: int
    counts: dict[str, int]
    sites: list[str]
    products: list[str]


def age_days(summary: BatchSummary, now: datetime) -> int:
    """Whole days since the batch was completed (or created, while it is not), from ``now``."""
    since = datetime.fromisoformat(
        (summary.completed_at or summary.created_at).replace("Z", "+00:00")
    )
    return max(0, (now - since).days)


def qa_queue_selection(
    session: Session, now: datetime, flt: QueueFilter, limit: int
) -> QueueSelection:
    """The first ``limit`` batches the filters match in queue order, and the counts.

    Counts are over all batches, whatever the filters; the age is counted from ``now``.
    """
    s = BatchSummary
    counts = {state.value: 0 for state in QaState}
    sites, products = set(), set()
    matching = 0
    # One pass over the summaries' index: counts by state, the sites and products, what matches.
    for site, product, state, n in session.execute(
        select(s.site, s.recipe_code, s.qa_state, func.count()).group_by(
            s.site, s.recipe_code, s.qa_state
        )
    ).all():
        counts[state] += n
        sites.add(site)
        products.add(product)
        if (
            (not flt.site or site == flt.site)
            and (not flt.product or product == flt.product)
            and (not flt.state or state == flt.state)
        ):
            matching += n
    # Released batches with a result out of specification still open: they need QA too.
    counts[EVENT] = session.execute(
        select(func.count()).select_from(BatchReview).where(BatchReview.after_release == EVENT)
    ).scalar_one()
    conditions: list[Any] = []
    if flt.site:
        conditions.append(s.site == flt.site)
    if flt.product:
        conditions.append(s.recipe_code == flt.product)
    if flt.state:
        conditions.append(s.qa_state == flt.state)
    if flt.min_age_days is not None and flt.min_age_days > 0:
        # age >= n days ⟺ completed (or created) at least n days before now (UTC text compares)
        cutoff = utc_text(now - timedelta(days=flt.min_age_days))
        conditions.append(func.coalesce(s.completed_at, s.created_at) <= cutoff)
        matching = session.execute(
            select(func.count()).select_from(s).where(*conditions)
        ).scalar_one()
    rank = case({state.value: i for i, state in enumerate(QUEUE_ORDER)}, value=s.qa_state)
    rows = session.execute(
        select(s, BatchReview.decided_by, BatchReview.after_release)
        .outerjoin(BatchReview, BatchReview.batch_id == s.batch_id)
        .where(*conditions)
        # A result out of specification after release heads the queue until it is closed.
        .order_by(
            case((BatchReview.after_release == EVENT, 0), else_=1),
            rank,
            s.created_at.desc(),
            s.batch_id,
        )
        .limit(limit)
    ).all()
    # Why a released batch is still here is read for the listed rows that await something.
    awaiting = [summary.batch_id for summary, _, after in rows if after is not None]
    states = {
        batch.id: after_release_of(session, batch)
        for batch in session.scalars(select(Batch).where(Batch.id.in_(awaiting)))
    }
    chosen = [
        QueuedBatch(
            summary,
            decided_by,
            QaState(summary.qa_state),
            age_days(summary, now),
            states.get(summary.batch_id),
        )
        for summary, decided_by, _ in rows
    ]
    return QueueSelection(chosen, matching, counts, sorted(sites), sorted(products))


def awaiting_after_release(
    session: Session, limit: int
) -> list[tuple[BatchSummary, AfterRelease | None]]:
    """Released batches whose record still awaits something after release, with their state.

    Results out of specification not closed first, then the provisional ones, the longest
    released first (their results are due soonest).
    """
    s = BatchSummary
    rows = (
        session.execute(
            select(s)
            .join(BatchReview, BatchReview.batch_id == s.batch_id)
            .where(BatchReview.after_release.is_not(None))
            .order_by(
                case((BatchReview.after_release == EVENT, 0), else_=1),
                BatchReview.decided_at,
                s.batch_id,
            )
            .limit(limit)
        )
        .scalars()
        .all()
    )
    states = {
        batch.id: after_release_of(session, batch)
        for batch in session.scalars(select(Batch).where(Batch.id.in_([r.batch_id for r in rows])))
    }
    return [(summary, states.get(summary.batch_id)) for summary in rows]
