"""Registered terminals as stored (the browsers and tablets from which people sign)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.store.models import Terminal


def terminal(session: Session, terminal_id: str) -> Terminal | None:
    """The terminal with this ID, or None."""
    return session.get(Terminal, terminal_id)


def terminal_name_taken(session: Session, site: str, name: str) -> bool:
    """Whether a terminal of ``site`` already has this name."""
    return (
        session.execute(
            select(Terminal.id).where(Terminal.site == site, Terminal.name == name)
        ).first()
        is not None
    )


def terminals_of(session: Session, site: str) -> list[Terminal]:
    """The site's terminals, active first, by name."""
    return list(
        session.execute(
            select(Terminal)
            .where(Terminal.site == site)
            .order_by(Terminal.active.desc(), Terminal.name)
        ).scalars()
    )
