"""Anchoring chain heads outside a site's own database (see :mod:`mes.core.heads`).

- A spoke keeps the hub's signed acknowledgement of each batch head it pushed (its receipt):
  a ledger shorter than a head the hub acknowledged fails :func:`batch_anchors`' check.
- With each sync round a spoke sends its signed audit head; the hub countersigns it
  (:func:`countersign_audit_head`), refuses a head that went backwards, and answers with its
  own signed audit head; the spoke keeps both (:func:`keep_countersigned`).
- The hub appends its signed audit head to a checkpoint file in its instance folder after each
  commit that moves it (:mod:`mes.store.checkpoint`); :func:`audit_anchors` reads it back.

(21 CFR 11.10(a), (c), (e): records protected and alterations — here deletions — detected.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mes.core.audit import AuditEvent, EntryKind
from mes.core.clock import utc_text
from mes.core.errors import ChainBroken, InvalidInput
from mes.core.heads import (
    Anchor,
    AuditHeadRefused,
    SignedHead,
    audit_chain,
    countersign,
    countersigned_by,
    head_signed_by,
    went_backwards,
)
from mes.core.sync import ack_verifies
from mes.services.context import Context, system_actor
from mes.store import spokes
from mes.store.anchors import as_signed_head, keep_head, keep_receipt, latest_head, latest_receipt
from mes.store.audit import append_audit, signed_audit_head
from mes.store.checkpoint import read_checkpoint
from mes.store.models import Batch as BatchRow
from mes.store.sync import hub_link, last_event, log_event
from mes.store.uow import UnitOfWork

# --- what anchors a chain -------------------------------------------------------------------


def audit_anchors(uow: UnitOfWork) -> list[Anchor]:
    """The heads of this site's audit chain kept outside its database, each checked.

    The hub: the furthest head in its checkpoint file. A spoke: its furthest head countersigned
    by the hub. A kept head that does not verify is itself tampering: :class:`ChainBroken`.
    """
    anchors = []
    checkpoint = _checkpoint_anchor(uow)
    if checkpoint is not None:
        anchors.append(checkpoint)
    countersigned = _countersigned_anchor(uow)
    if countersigned is not None:
        anchors.append(countersigned)
    return anchors


def _checkpoint_anchor(uow: UnitOfWork) -> Anchor | None:
    path = uow.site.checkpoint_path
    if path is None:
        return None
    chain, key = audit_chain(uow.site.code), uow.site.key.public
    best: SignedHead | None = None
    for number, data in read_checkpoint(path):
        try:
            head = SignedHead.from_dict(data)
        except ValueError:
            head = None
        if head is None or head.chain != chain or not head_signed_by(head, key):
            seq = data.get("seq") if isinstance(data, dict) else None
            raise ChainBroken(
                seq if type(seq) is int and seq > 0 else 1,
                f"line {number} of the checkpoint file {path} is not a head signed by "
                f"{uow.site.code}: the file was edited",
            )
        if best is None or head.seq > best.seq:
            best = head
    if best is None or best.hash is None:
        return None
    return Anchor(best.seq, best.hash, f"checkpoint file seq {best.seq} at {best.at}")


def _countersigned_anchor(uow: UnitOfWork) -> Anchor | None:
    hub_key = uow.site.hub_key
    if not uow.site.is_spoke or hub_key is None:
        return None
    row = latest_head(uow.session, audit_chain(uow.site.code), countersigned=True)
    if row is None:
        return None
    head = as_signed_head(row)
    if not (
        head_signed_by(head, uow.site.key.public)
        and countersigned_by(head, row.countersigned_at or "", row.countersignature or "", hub_key)
    ):
        raise ChainBroken(
            row.seq,
            "the head the hub countersigned, as kept here, does not verify with the hub key: "
            "the kept countersignature was forged or edited",
        )
    return Anchor(
        row.seq,
        row.hash,
        f"hub {row.countersigned_by} countersigned seq {row.seq} at {row.countersigned_at}",
    )


def batch_anchors(uow: UnitOfWork, row: BatchRow) -> list[Anchor]:
    """At a spoke: the hub's acknowledgement of the batch's furthest head, checked.

    The hub signed it for the push that carried the entries (:func:`mes.core.sync.ack_message`);
    a receipt that does not verify with the pinned hub key is tampering: :class:`ChainBroken`.
    """
    hub_key = uow.site.hub_key
    if not uow.site.is_spoke or hub_key is None or row.site != uow.site.code:
        return []
    receipt = latest_receipt(uow.session, row.id)
    if receipt is None:
        return []
    if not ack_verifies(
        hub_key,
        receipt.signature,
        site=uow.site.code,
        batch=row.id,
        last_seq=receipt.last_seq,
        last_hash=receipt.last_hash,
        nonce=receipt.nonce,
    ):
        raise ChainBroken(
            receipt.last_seq,
            "the hub's acknowledgement kept for this entry does not verify with the hub key: "
            "the receipt was forged or edited",
        )
    return [
        Anchor(
            receipt.last_seq,
            receipt.last_hash,
            f"the hub {receipt.hub} acknowledged seq {receipt.last_seq} at {receipt.received_at}",
        )
    ]


# --- a spoke keeps what the hub signed -------------------------------------------------------


def keep_hub_receipt(
    uow: UnitOfWork,
    at: datetime,
    batch_id: str,
    last_seq: int,
    last_hash: str,
    *,
    nonce: str,
    signature: str,
) -> None:
    """Keep the hub's signed acknowledgement of a batch head (in the caller's transaction)."""
    link = hub_link(uow.session)
    keep_receipt(
        uow.session,
        batch_id=batch_id,
        last_seq=last_seq,
        last_hash=last_hash,
        hub=link.hub_code if link else "hub",
        nonce=nonce,
        signature=signature,
        received_at=utc_text(at),
    )


def own_audit_head(uow: UnitOfWork) -> SignedHead | None:
    """This site's signed audit head, to send to the hub (None while the chain is empty)."""
    head = signed_audit_head(uow.session, uow.site.code)
    return head if head.seq and head.signature else None


def last_hub_head(uow: UnitOfWork) -> SignedHead | None:
    """At a spoke: the hub's signed audit head as last seen (sent back with the next round)."""
    link = hub_link(uow.session)
    if link is None:
        return None
    row = latest_head(uow.session, audit_chain(link.hub_code), countersigned=False)
    return as_signed_head(row) if row is not None else None


def keep_countersigned(
    uow: UnitOfWork, at: datetime, sent: SignedHead, answer: Mapping[str, Any]
) -> str | None:
    """At a spoke: keep the hub's countersignature of ``sent`` and the hub's own signed head.

    Returns why the answer was not kept (None: kept). A hub head behind one seen before means
    the hub's audit chain went backwards: that is logged as a refusal and not kept.
    """
    hub_key = uow.site.hub_key
    link = hub_link(uow.session)
    if hub_key is None or link is None:
        return "This spoke is not enrolled with a hub."
    when, signature = answer.get("countersigned_at"), answer.get("countersignature")
    if not (
        isinstance(when, str)
        and isinstance(signature, str)
        and countersigned_by(sent, when, signature, hub_key)
    ):
        return "The hub's countersignature of this spoke's audit head does not verify."
    kept = latest_head(uow.session, sent.chain, countersigned=True)
    if kept is None or sent.seq > kept.seq:
        keep_head(
            uow.session,
            sent,
            kept_at=utc_text(at),
            countersigned_by=link.hub_code,
            countersigned_at=when,
            countersignature=signature,
        )
    problem = None
    try:
        hub_head = SignedHead.from_dict(answer.get("hub_head"))
    except ValueError:
        hub_head = None
    if hub_head is not None and hub_head.chain == audit_chain(link.hub_code):
        if not head_signed_by(hub_head, hub_key):
            problem = "The hub's audit head in its answer is not signed with the hub key."
        else:
            seen = latest_head(uow.session, hub_head.chain, countersigned=False)
            why = went_backwards(as_signed_head(seen), hub_head) if seen else None
            if why:
                problem = (
                    f"The hub's audit chain went backwards: {why.replace('countersigned', 'seen')}."
                )
            elif seen is None or hub_head.seq > seen.seq:
                keep_head(uow.session, hub_head, kept_at=utc_text(at))
    if problem:
        log_event(
            uow.session, at=at, action="anchor", outcome="refused", peer=link.hub_code,
            code="hub-head", reason=problem,
        )  # fmt: skip
    uow.commit()
    return problem


# --- the hub countersigns ------------------------------------------------------------------


def read_audit_head_request(data: Any) -> tuple[SignedHead, SignedHead | None]:
    """The body of an audit-head request: the spoke's signed head, the hub head it last saw."""
    how = 'Send {"head": {chain, seq, hash, at, signature}, "hub_head_seen": {...} or null}.'
    if not isinstance(data, dict) or not set(data) <= {"head", "hub_head_seen"}:
        raise InvalidInput("The request is not an audit head.", what_to_do=how)
    try:
        head = SignedHead.from_dict(data.get("head"))
        seen_data = data.get("hub_head_seen")
        seen = None if seen_data is None else SignedHead.from_dict(seen_data)
    except ValueError as err:
        raise InvalidInput(f"The request's head is not readable: {err}.", what_to_do=how) from None
    return head, seen


def countersign_audit_head(
    uow: UnitOfWork, at: datetime, site: str, head: SignedHead, seen: SignedHead | None
) -> dict[str, Any]:
    """Hub: countersign an authenticated spoke's signed audit head; answer with our own head.

    Refused (:class:`AuditHeadRefused`, logged, with a security entry in the hub's audit trail)
    when the head is not the spoke's audit chain signed with its key, or goes backwards from the
    head countersigned before. ``seen``: the hub's head as the spoke last saw it; if the hub's
    own chain is now shorter, that is recorded as a security event (the hub's chain went back).
    """
    spoke = spokes.spoke(uow.session, site)
    key = spoke.public_key if spoke is not None else None
    ctx = Context(at=at, user_id=None, terminal=f"sync from {site}")
    try:
        if key is None or head.chain != audit_chain(site) or not head_signed_by(head, key):
            raise AuditHeadRefused(
                f"The audit head sent is not {site}'s audit chain signed with its key.",
                what_to_do="Sync with 'mes sync' at the spoke.",
            )
        held = latest_head(uow.session, head.chain, countersigned=True)
        why = went_backwards(as_signed_head(held), head) if held is not None else None
        if why:
            raise AuditHeadRefused(
                f"Spoke {site}'s audit chain went backwards: {why}.",
                what_to_do="Investigate at the spoke ('mes audit verify') and raise an incident.",
            )
    except AuditHeadRefused as refusal:
        uow.rollback()
        _security(uow, ctx, site, "spoke audit head refused", refusal.message)
        raise
    when, signature = countersign(uow.site.key, head, at)
    if held is None or head.seq > held.seq:
        keep_head(
            uow.session,
            head,
            kept_at=utc_text(at),
            countersigned_by=uow.site.code,
            countersigned_at=when,
            countersignature=signature,
        )
    own = signed_audit_head(uow.session, uow.site.code)
    if _hub_went_back(uow, own, seen):
        assert seen is not None
        _security(
            uow,
            ctx,
            site,
            "hub audit chain behind a spoke",
            f"Spoke {site} holds this hub's audit head {seen.seq} signed at {seen.at}, but "
            f"the hub's audit chain ends at {own.seq}: entries were removed at the hub.",
        )
        own = signed_audit_head(uow.session, uow.site.code)
    uow.commit()
    return {
        "head": head.as_dict(),
        "countersigned_at": when,
        "countersignature": signature,
        "hub_head": own.as_dict() if own.seq else None,
    }


def _hub_went_back(uow: UnitOfWork, own: SignedHead, seen: SignedHead | None) -> bool:
    """True when a spoke saw a head of the hub's audit chain that the chain no longer reaches."""
    if seen is None or seen.chain != own.chain or not head_signed_by(seen, uow.site.key.public):
        return False
    return seen.seq > own.seq or (seen.seq == own.seq and seen.hash != own.hash)


def _security(uow: UnitOfWork, ctx: Context, site: str, action: str, reason: str) -> None:
    # Recorded once while it lasts: the spoke asks again every round, and both the sync log
    # and the audit trail are append-only (a restored spoke must not add an entry a round).
    last = last_event(uow.session, "anchor", peer=site[:12])
    if last is not None and last.reason == reason:
        return
    log_event(
        uow.session, at=ctx.at, action="anchor", outcome="refused", peer=site[:12],
        code="audit-head", reason=reason,
    )  # fmt: skip
    event = AuditEvent(
        at=ctx.at,
        actor=system_actor(ctx),
        terminal=ctx.terminal,
        kind=EntryKind.SECURITY,
        action=action,
        record_type="spoke",
        record_id=site[:200],
        reason=reason,
    )
    append_audit(uow.session, uow.site, event)
    uow.commit()
