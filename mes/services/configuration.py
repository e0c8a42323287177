"""Configuration under change control (Annex 11 §10, 21 CFR 11.10(e)).

The configuration lives in ``mes.toml`` and ``MES_*`` variables, outside the application, so the
instance records the effective configuration in the audit trail each time it starts and it
differs from the last one recorded: old → new, by the system, with the reason that it was
changed outside the application.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mes.core.audit import EntryKind
from mes.services.context import Context, system_actor
from mes.services.runtime import safe_url
from mes.settings import Settings
from mes.store.audit import append_audit, lock_audit_chain
from mes.store.models import AuditEntry
from mes.store.uow import UnitOfWork

RECORD_TYPE = "configuration"


def effective_configuration(settings: Settings) -> dict[str, Any]:
    """The settings that matter for GMP, as recorded (no secrets)."""
    return {
        "role": settings.role,
        "site_code": settings.site_code,
        "site_name": settings.site_name,
        "time_zone": settings.time_zone,
        "database": safe_url(settings.database_url),
        "session_timeout_seconds": settings.session_timeout_seconds,
        "session_lifetime_hours": settings.session_lifetime_hours,
        "password_expiry_days": settings.password_expiry_days,
        "proxy_hops": settings.proxy_hops,
        "sync_interval_seconds": settings.sync_interval_seconds,
        "sync_clock_skew_seconds": settings.sync_clock_skew_seconds,
        "sync_chunk_entries": settings.sync_chunk_entries,
        "review_late_signature_minutes": settings.review_late_signature_minutes,
        "review_rubber_stamp_seconds": settings.review_rubber_stamp_seconds,
    }


def record_configuration(uow: UnitOfWork, ctx: Context, settings: Settings) -> bool:
    """Record the configuration if it differs from the last one recorded; True if it did.

    The audit chain is locked first, so two workers starting together record it once.
    """
    current = effective_configuration(settings)
    lock_audit_chain(uow.session)
    last = uow.session.execute(
        select(AuditEntry.new)
        .where(AuditEntry.record_type == RECORD_TYPE, AuditEntry.record_id == settings.site_code)
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last == current:
        return False
    append_audit(
        uow.session,
        uow.site,
        at=ctx.at,
        actor=system_actor(ctx),
        terminal=ctx.terminal,
        kind=EntryKind.CHANGE,
        action="configuration recorded" if last is None else "configuration changed",
        record_type=RECORD_TYPE,
        record_id=settings.site_code,
        old=last,
        new=current,
        reason=None
        if last is None
        else "changed outside the application (mes.toml or MES_* variables)",
    )
    uow.commit()
    return True
