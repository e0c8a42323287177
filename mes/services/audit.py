"""Recording changes in, verifying and reading the site's audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mes.core.access import Permission
from mes.core.audit import Actor, AuditEvent, EntryKind
from mes.core.heads import AnchoredVerification, verify_anchored
from mes.services.anchors import audit_anchors
from mes.services.context import Context, authorise
from mes.store.audit import append_audit, sealed_entries, signed_audit_head
from mes.store.models import AuditEntry
from mes.store.queries import (
    AuditFilter,
    AuditPage,
    Namer,
    RecordName,
    audit_page,
    batch_named,
    batch_names,
    equipment_names,
    installed_recipe_names,
    lot_names,
    recipe_version_names,
    record_names,
    record_types,
    terminal_names,
    user_names,
)
from mes.store.uow import UnitOfWork

__all__ = [
    "AuditFilter",
    "AuditPage",
    "AuditTrailPage",
    "RecordName",
    "read_audit_trail",
    "record_entry",
    "verify_audit_anchored",
    "verify_audit_trail",
]


@dataclass(frozen=True)
class AuditTrailPage:
    """What the audit trail viewer shows: one page of entries and the record types to filter by.

    ``names``: each entry's record by its business identity (:func:`name_of`); ``batch``: the
    batch the reviewer filtered by (its number), whose own events are in its record.
    """

    page: AuditPage
    record_types: list[str]
    names: dict[tuple[str, str], RecordName]
    batch: RecordName | None = None

    def name_of(self, entry: AuditEntry) -> RecordName:
        """The record ``entry`` is about, as people know it ('CART-CD19-FRESH v2', a batch)."""
        return self.names.get((entry.record_type, entry.record_id), RecordName(entry.record_id))


def _namers() -> dict[str, Namer]:
    """How each record type of the trail is named; the types are those the services write."""
    # imported here: these services record their changes through this module
    from mes.core.esign import ATTESTATION_RECORD_TYPE
    from mes.core.lookback import LOOKBACK_RECORD_TYPE
    from mes.core.review import REVIEW_RECORD_TYPE
    from mes.core.trends import BASELINE_RECORD_TYPE, MARGIN_RECORD_TYPE, TREND_RECORD_TYPE
    from mes.services import equipment, labels, materials, recipes, terminals
    from mes.store.cpv import baseline_names, margin_names, trend_names
    from mes.store.lookback import lookback_names

    return {
        recipes.RECORD_TYPE: recipe_version_names,
        recipes.INSTALLED_RECORD_TYPE: installed_recipe_names,
        labels.LABEL_RECORD_TYPE: batch_names,
        REVIEW_RECORD_TYPE: batch_names,
        materials.LOT_RECORD_TYPE: lot_names,
        equipment.RECORD_TYPE: equipment_names,
        ATTESTATION_RECORD_TYPE: user_names,
        terminals.RECORD_TYPE: terminal_names,
        BASELINE_RECORD_TYPE: baseline_names,
        MARGIN_RECORD_TYPE: margin_names,
        TREND_RECORD_TYPE: trend_names,
        LOOKBACK_RECORD_TYPE: lookback_names,
    }


def read_audit_trail(
    uow: UnitOfWork, ctx: Context, flt: AuditFilter, page: int = 1, *, hide_sign_ins: bool = False
) -> AuditTrailPage:
    """One page of the audit trail matching the filter, newest first, each record named.

    ``hide_sign_ins`` leaves out the "logged in" entries (at a spoke's panel most of the trail);
    the filter's record may be given by its name (a batch number, 'CODE vN', a lot number).
    Only QA and administrators read it (Permission.READ_AUDIT_TRAIL; 21 CFR 11.10(e), Annex 11
    §9: the trail is available for review by those whose job it is).
    """
    from mes.services.users import SIGN_IN_ACTIONS

    authorise(uow, ctx, Permission.READ_AUDIT_TRAIL)
    if hide_sign_ins:
        flt = replace(flt, hidden_actions=flt.hidden_actions | SIGN_IN_ACTIONS)
    found = audit_page(uow.session, flt, page)
    names = record_names(uow.session, found.entries, _namers())
    batch = batch_named(uow.session, flt.record_id) if flt.record_id else None
    return AuditTrailPage(found, record_types(uow.session), names, batch)


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
