"""Recording changes in, verifying and reading the site's audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mes.core.audit import Actor, EntryKind
from mes.core.ledger import verify_chain
from mes.services.context import Context
from mes.store.audit import append_audit, audit_head, sealed_entries
from mes.store.uow import UnitOfWork


def verify_audit_trail(uow: UnitOfWork) -> int:
    """Recompute the whole chain: every hash, link and site signature, and the recorded head.

    Returns the number of entries; raises :class:`~mes.core.errors.ChainBroken` naming the first
    bad entry (21 CFR 11.10(a), (e)).
    """
    head = audit_head(uow.session)
    return verify_chain(sealed_entries(uow.session), uow.site.key.public, head)


def record_change(
    uow: UnitOfWork,
    ctx: Context,
    actor: Actor,
    action: str,
    record_type: str,
    record_id: str,
    *,
    old: Mapping[str, Any] | None = None,
    new: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Append one change of a site record (who, what, before → after, why) to the audit trail."""
    append_audit(
        uow.session,
        uow.site,
        at=ctx.at,
        actor=actor,
        terminal=ctx.terminal,
        kind=EntryKind.CHANGE,
        action=action,
        record_type=record_type,
        record_id=record_id,
        old=old,
        new=new,
        reason=reason,
    )
