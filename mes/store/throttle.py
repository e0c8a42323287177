"""Refusal windows as stored: one counter row per kind of attempt and source (mes.services.throttle)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mes.store.models import RefusalWindow


def refusal_window(
    session: Session, attempt: str, source: str, *, lock: bool = False
) -> RefusalWindow | None:
    """The source's counter of refused ``attempt`` (locked when ``lock``), or None."""
    query = select(RefusalWindow).where(
        RefusalWindow.attempt == attempt, RefusalWindow.source == source
    )
    return session.execute(query.with_for_update() if lock else query).scalar_one_or_none()


def open_refusal_window(session: Session, attempt: str, source: str, at: datetime) -> None:
    """Create the source's empty counter starting at ``at``, unless it has one already."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(RefusalWindow)
        .values(attempt=attempt, source=source, started=at, refused=0, turned_away=0, reasons={})
        .on_conflict_do_nothing()
    )


def windows_started_before(session: Session, before: datetime, limit: int) -> list[RefusalWindow]:
    """Up to ``limit`` counters started before ``before``, oldest first, locked.

    Those another transaction holds are skipped (it is closing them).
    """
    return list(
        session.execute(
            select(RefusalWindow)
            .where(RefusalWindow.started <= before)
            .order_by(RefusalWindow.started)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def forget_refusal_window(session: Session, row: RefusalWindow) -> None:
    """Delete a closed counter (its burst was summarised)."""
    session.delete(row)
