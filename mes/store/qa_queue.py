"""The QA queue at the hub, a read model: every batch received, where it stands for QA, filtered.

Plain selects over the batches and their dispositions; who may read it, and the exception
counts taken from each listed batch's record, are the service's (:func:`mes.services.review.qa_queue`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.core.review import QaState, qa_state_of
from mes.store.models import Batch, BatchReview

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
    """A batch the filters match, with its disposition, QA state and age in days."""

    batch: Batch
    review: BatchReview | None
    qa_state: QaState
    age_days: int


@dataclass(frozen=True)
class QueueSelection:
    """The matching batches in queue order, the counts over every batch, the filter choices."""

    batches: list[QueuedBatch]
    counts: dict[str, int]
    sites: list[str]
    products: list[str]


def qa_queue_selection(session: Session, now: datetime, flt: QueueFilter) -> QueueSelection:
    """Every batch received, its QA state and age (from ``now``), filtered and in queue order.

    Counts are over all batches, whatever the filters.
    """
    rows = session.execute(
        select(Batch, BatchReview)
        .outerjoin(BatchReview, BatchReview.batch_id == Batch.id)
        .order_by(Batch.created_at)
    ).all()
    counts = {s.value: 0 for s in QaState}
    sites, products = set(), set()
    chosen = []
    for batch, review in rows:
        qs = qa_state_of(
            batch.status, review.decision if review else None, bool(review and review.last_seq)
        )
        counts[qs.value] += 1
        sites.add(batch.site)
        products.add(batch.recipe_code)
        since = batch.completed_at or batch.created_at
        age = max(0, (now - datetime.fromisoformat(since.replace("Z", "+00:00"))).days)
        if flt.site and batch.site != flt.site:
            continue
        if flt.product and batch.recipe_code != flt.product:
            continue
        if flt.state and qs.value != flt.state:
            continue
        if flt.min_age_days is not None and age < flt.min_age_days:
            continue
        chosen.append(QueuedBatch(batch, review, qs, age))
    chosen.sort(key=lambda c: c.batch.created_at, reverse=True)
    chosen.sort(key=lambda c: QUEUE_ORDER.index(c.qa_state))
    return QueueSelection(chosen, counts, sorted(sites), sorted(products))
