"""Training records as stored (append-only: a withdrawal is a new record)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.core import training as rules
from mes.store.models import TrainingRecord


def training_history(session: Session, user_id: str) -> list[rules.TrainingRecord]:
    """A user's training records, oldest first, as the core reads them."""
    rows = session.execute(
        select(TrainingRecord)
        .where(TrainingRecord.user_id == user_id)
        .order_by(TrainingRecord.recorded_at, TrainingRecord.id)
    ).scalars()
    return [
        rules.TrainingRecord(
            procedure=r.procedure,
            qualified_on=r.qualified_on,
            expires_on=r.expires_on,
            withdrawn=r.withdrawn,
            recorded_at=r.recorded_at,
        )
        for r in rows
    ]
