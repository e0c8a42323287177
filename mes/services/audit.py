"""Verifying and reading the site's audit trail."""

from __future__ import annotations

from mes.core.ledger import verify_chain
from mes.store.audit import audit_head, sealed_entries
from mes.store.uow import UnitOfWork


def verify_audit_trail(uow: UnitOfWork) -> int:
    """Recompute the whole chain: every hash, link and site signature, and the recorded head.

    Returns the number of entries; raises :class:`~mes.core.errors.ChainBroken` naming the first
    bad entry (21 CFR 11.10(a), (e)).
    """
    head = audit_head(uow.session)
    return verify_chain(sealed_entries(uow.session), uow.site.key.public, head)
