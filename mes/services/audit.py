"""Recording changes in, verifying and reading the site's audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.access import Permission
from mes.core.audit import Actor, AuditEvent, EntryKind
from mes.core.heads import AnchoredVerification, verify_anchored
from mes.services.anchors import audit_anchors
from mes.services.context import Context, authorise
from mes.store.audit import append_audit, sealed_entries, signed_audit_head
from mes.store.models import AuditEntry
from mes.store.queries import AuditFilter, AuditPage, audit_page, record_types
from mes.store.uow import UnitOfWork

__all__ = [
    "AuditFilter",
    "AuditPage",
    "AuditTrailPage",
    "read_audit_trail",
    "record_entry",
    "verify_audit_anchored",
    "verify_audit_trail",
]


@dataclass(frozen=True)
class AuditTrailPage:
    """What the audit trail viewer shows: one page of entries and the record types to filter by."""

    page: AuditPage
    record_types: list[str]


def read_audit_trail(
    uow: UnitOfWork, ctx: Context, flt: AuditFilter, page: int = 1
) -> AuditTrailPage:
    """One page of the audit trail matching the filter, newest first.

    Only QA and administrators read it (Permission.READ_AUDIT_TRAIL; 21 CFR 11.10(e), Annex 11
    §9: the trail is available for review by those whose job it is).
    """
    authorise(uow, ctx, Permission.READ_AUDIT_TRAIL)
    return AuditTrailPage(audit_page(uow.session, flt, page), record_types(uow.session))


def verify_audit_trail(uow: UnitOfWork) -> int:
    """Recompute the whole chain: every hash, link and site signature, and the signed head.

    Returns the number of entries; raises :class:`~mes.core.errors.ChainBroken` naming the first
    bad entry (21 CFR 11.10(a), (e)). See :func:`verify_audit_anchored`.
    """
    return verify_audit_anchored(uow).count


def verify_audit_anchored(uow: UnitOfWork) -> AnchoredVerification:
    """Verify the audit chain against its signed head and every head kept outside the database.

    Every hash, link and site signature; the chain reaches each anchor (the hub's checkpoint
    file, or the hub's countersignature of a spoke's head) with the entry it names, else the
    missing range is named; the recorded head carries the site's signature and the chain ends
    there. Raises :class:`~mes.core.errors.ChainBroken` (21 CFR 11.10(a), (e)).
    """
    site = uow.site
    anchors = audit_anchors(uow)
    head = signed_audit_head(uow.session, site.code)
    public = site.key.public
    return verify_anchored(sealed_entries(uow.session), public, head, public, site.code, anchors)


def record_entry(
    uow: UnitOfWork,
    ctx: Context,
    actor: Actor,
    action: str,
    record_type: str,
    record_id: str,
    *,
    kind: EntryKind = EntryKind.CHANGE,
    old: Mapping[str, Any] | None = None,
    new: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one entry (who, what, before → after, why) to the audit trail.

    At the context's time and terminal, in the unit of work's transaction; a change of a site
    record unless `kind` says otherwise.
    """
    event = AuditEvent(
        ctx.at, actor, ctx.terminal, kind, action, record_type, record_id, old, new, reason
    )
    return append_audit(uow.session, uow.site, event)
