"""Appending to and reading the site's audit chain, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.core.audit import AuditEvent, EntryKind, entry_body
from mes.core.heads import SignedHead, audit_chain, sign_head
from mes.core.ledger import ChainHead as CoreChainHead
from mes.core.ledger import SealedEntry, next_link, seal
from mes.core.site import Site
from mes.store.checkpoint import checkpoint_after_commit
from mes.store.models import AuditEntry, ChainHead

AUDIT_CHAIN = "audit"


def _locked_head(session: Session, chain: str) -> ChainHead:
    head = session.execute(
        select(ChainHead).where(ChainHead.chain == chain).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = ChainHead(chain=chain, last_seq=0, last_hash=None)
        session.add(head)
        session.flush()
    return head


def lock_audit_chain(session: Session) -> None:
    """Hold the audit chain's head for the rest of the transaction (read-then-append safely)."""
    _locked_head(session, AUDIT_CHAIN)


def append_audit(session: Session, site: Site, event: AuditEvent) -> AuditEntry:
    """Append one sealed entry to the audit chain in the session's transaction.

    The head moves with the site's signature of it (and, where the site keeps a checkpoint
    file, the signed head is appended to it once the transaction commits).
    """
    head = _locked_head(session, AUDIT_CHAIN)
    seq, prev = next_link(head.last_seq, head.last_hash)
    body = entry_body(seq=seq, prev=prev, site=site.code, event=event)
    sealed = seal(body, site.key)
    row = AuditEntry(
        seq=seq,
        prev=prev,
        at=body["at"],
        site=site.code,
        terminal=event.terminal,
        actor_id=event.actor.user_id,
        actor_username=event.actor.username,
        actor_name=event.actor.name,
        kind=body["kind"],
        action=event.action,
        record_type=event.record_type,
        record_id=event.record_id,
        old=body["old"],
        new=body["new"],
        reason=event.reason,
        hash=sealed.hash,
        signature=sealed.signature,
    )
    session.add(row)
    signed = sign_head(site.key, audit_chain(site.code), seq, sealed.hash, body["at"])
    head.last_seq, head.last_hash = seq, sealed.hash
    head.at, head.signature = signed.at, signed.signature
    session.flush()
    if site.checkpoint_path is not None:
        checkpoint_after_commit(session, site.checkpoint_path, signed)
    return row


def sealed_entries(session: Session, batch_size: int = 2000) -> Iterator[SealedEntry]:
    """Every audit entry in seq order, streamed, as the core verifies them."""
    result = session.execute(
        select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch_size)
    )
    for row in result.scalars():
        yield SealedEntry(body=row.body(), hash=row.hash, signature=row.signature)
        session.expunge(row)


def audit_head(session: Session) -> CoreChainHead:
    """What the site recorded as the audit chain's end."""
    head = session.get(ChainHead, AUDIT_CHAIN)
    if head is None:
        return CoreChainHead(last_seq=0, last_hash=None)
    return CoreChainHead(last_seq=head.last_seq, last_hash=head.last_hash)


def signed_audit_head(session: Session, site: str) -> SignedHead:
    """What the site recorded (and signed) as the audit chain's end."""
    head = session.get(ChainHead, AUDIT_CHAIN)
    if head is None:
        return SignedHead(audit_chain(site), 0, None, None, None)
    return SignedHead(audit_chain(site), head.last_seq, head.last_hash, head.at, head.signature)


def latest_change(session: Session, record_type: str, record_id: str) -> AuditEntry | None:
    """The newest audit entry about a record, or None."""
    return session.execute(
        select(AuditEntry)
        .where(AuditEntry.record_type == record_type, AuditEntry.record_id == record_id)
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).scalar_one_or_none()


def signature_bodies(session: Session, record_type: str, record_id: str) -> list[dict[str, Any]]:
    """The manifestations of every signature applied to a record, in order."""
    rows = session.execute(
        select(AuditEntry.new)
        .where(
            AuditEntry.kind == EntryKind.SIGNATURE.value,
            AuditEntry.record_type == record_type,
            AuditEntry.record_id == record_id,
        )
        .order_by(AuditEntry.seq)
    ).scalars()
    return [row for row in rows if row]
