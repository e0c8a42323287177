"""Persisting anchors of chain heads: the hub's receipts kept by a spoke, and kept audit heads.

Both tables are append-only (triggers). What they hold is signed by another site — the hub's
acknowledgement or countersignature — so a database superuser can delete rows but cannot make
new ones that verify (see :mod:`mes.core.heads`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mes.core.heads import SignedHead
from mes.store.models import AnchoredHead, HubReceipt


def keep_receipt(
    session: Session,
    *,
    batch_id: str,
    last_seq: int,
    last_hash: str,
    hub: str,
    nonce: str,
    signature: str,
    received_at: str,
) -> None:
    """Keep the hub's signed acknowledgement of a batch head (once per head)."""
    dialect = session.get_bind().dialect.name
    insert_new = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert_new(HubReceipt)
        .values(
            batch_id=batch_id,
            last_seq=last_seq,
            last_hash=last_hash,
            hub=hub,
            nonce=nonce,
            signature=signature,
            received_at=received_at,
        )
        .on_conflict_do_nothing()
    )


def latest_receipt(session: Session, batch_id: str) -> HubReceipt | None:
    """The hub's acknowledgement of the batch's furthest head, if any."""
    return session.execute(
        select(HubReceipt)
        .where(HubReceipt.batch_id == batch_id)
        .order_by(HubReceipt.last_seq.desc())
        .limit(1)
    ).scalar_one_or_none()


def keep_head(
    session: Session,
    head: SignedHead,
    *,
    kept_at: str,
    countersigned_by: str | None = None,
    countersigned_at: str | None = None,
    countersignature: str | None = None,
) -> None:
    """Keep a signed head (with the hub's countersignature where there is one)."""
    assert head.hash is not None and head.at is not None and head.signature is not None
    session.add(
        AnchoredHead(
            chain=head.chain,
            seq=head.seq,
            hash=head.hash,
            at=head.at,
            signature=head.signature,
            countersigned_by=countersigned_by,
            countersigned_at=countersigned_at,
            countersignature=countersignature,
            kept_at=kept_at,
        )
    )
    session.flush()


def latest_head(session: Session, chain: str, *, countersigned: bool) -> AnchoredHead | None:
    """The furthest head kept for ``chain`` (only countersigned ones, or only the others)."""
    signed = AnchoredHead.countersignature.is_not(None)
    return session.execute(
        select(AnchoredHead)
        .where(AnchoredHead.chain == chain, signed if countersigned else ~signed)
        .order_by(AnchoredHead.seq.desc(), AnchoredHead.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def as_signed_head(row: AnchoredHead) -> SignedHead:
    """A kept head as the core checks it."""
    return SignedHead(row.chain, row.seq, row.hash, row.at, row.signature)
