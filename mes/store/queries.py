"""The audit trail viewer's read model: plain selects (:func:`mes.services.audit.read_audit_trail`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes.core.access import normalise_username
from mes.core.clock import utc_text
from mes.store.models import AuditEntry


@dataclass(frozen=True)
class AuditFilter:
    """What the reviewer asked for; empty fields do not filter."""

    record_type: str | None = None
    record_id: str | None = None
    username: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    """One page of entries, newest first."""

    entries: list[AuditEntry]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.per_page))


def audit_page(session: Session, flt: AuditFilter, page: int = 1, per_page: int = 50) -> AuditPage:
    """Entries matching the filter, newest first, one page."""
    conditions = []
    if flt.record_type:
        conditions.append(AuditEntry.record_type == flt.record_type)
    if flt.record_id:
        conditions.append(AuditEntry.record_id == flt.record_id)
    if flt.username:
        conditions.append(AuditEntry.actor_username == normalise_username(flt.username))
    if flt.since:
        conditions.append(AuditEntry.at >= utc_text(flt.since))
    if flt.until:
        conditions.append(AuditEntry.at < utc_text(flt.until))
    total = session.execute(
        select(func.count()).select_from(AuditEntry).where(*conditions)
    ).scalar_one()
    page = max(1, page)
    rows = session.execute(
        select(AuditEntry)
        .where(*conditions)
        .order_by(AuditEntry.seq.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).scalars()
    return AuditPage(list(rows), total, page, per_page)


def record_types(session: Session) -> list[str]:
    """The record types present in the audit trail (for the filter's choices)."""
    return list(
        session.execute(
            select(AuditEntry.record_type).distinct().order_by(AuditEntry.record_type)
        ).scalars()
    )
