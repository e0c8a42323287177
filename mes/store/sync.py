"""Persisting sync state: the spoke's outbox marks, the hub's nonces, and the sync log.

The outbox row of a batch is written in the same transaction as the batch's new ledger entries
(:func:`touch_outbox`), so an entry can never be recorded without being queued for the hub.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mes.store.models import HubLink, Spoke, SyncEvent, SyncNonce, SyncOutbox


def _upsert(session: Session):
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def touch_outbox(session: Session, batch_id: str, last_seq: int, *, priority: bool) -> None:
    """Queue a batch's entries up to ``last_seq`` for the hub (a deviation makes it urgent)."""
    statement = _upsert(session)(SyncOutbox).values(
        batch_id=batch_id,
        last_seq=last_seq,
        acked_seq=0,
        acked_hash=None,
        pending=True,
        priority=priority,
        state="pending",
    )
    excluded = statement.excluded
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[SyncOutbox.batch_id],
            set_={
                "last_seq": excluded.last_seq,
                "pending": True,
                "priority": SyncOutbox.priority | excluded.priority,
                # New entries on a synced batch wait again; a refusal stays shown until resolved.
                "state": case((SyncOutbox.state == "refused", "refused"), else_="pending"),
            },
        )
    )


def pending_batches(session: Session, limit: int = 500) -> list[SyncOutbox]:
    """Batches with entries the hub has not acknowledged: urgent ones (deviations) first.

    Reads only the pending rows through their index, so an idle round costs the same whatever
    the history.
    """
    return list(
        session.execute(
            select(SyncOutbox)
            .where(SyncOutbox.pending.is_(True))
            .order_by(SyncOutbox.priority.desc(), SyncOutbox.batch_id)
            .limit(limit)
        ).scalars()
    )


def urgent_refused_at(session: Session) -> list[datetime | None]:
    """When the hub last refused each urgent batch still waiting (None: not refused).

    Reads the pending rows through their index, like :func:`pending_batches`: cheap enough to
    ask several times a second between sync rounds.
    """
    return list(
        session.execute(
            select(
                case((SyncOutbox.state == "refused", SyncOutbox.attempted_at), else_=None)
            ).where(SyncOutbox.pending.is_(True), SyncOutbox.priority.is_(True))
        ).scalars()
    )


def move_mark(
    session: Session, batch_id: str, acked_seq: int, acked_hash: str, at: datetime
) -> None:
    """The hub acknowledged the batch up to ``acked_seq``: move the mark (never backwards)."""
    session.execute(
        update(SyncOutbox)
        .where(SyncOutbox.batch_id == batch_id, SyncOutbox.acked_seq <= acked_seq)
        .values(
            acked_seq=acked_seq,
            acked_hash=acked_hash,
            acked_at=at,
            attempted_at=at,
            pending=SyncOutbox.last_seq > acked_seq,
            priority=(SyncOutbox.last_seq > acked_seq) & SyncOutbox.priority,
            state="pending",
            refusal=None,
            refusal_code=None,
        )
    )
    session.execute(
        update(SyncOutbox)
        .where(SyncOutbox.batch_id == batch_id, SyncOutbox.last_seq == SyncOutbox.acked_seq)
        .values(state="synced")
    )


def mark_refused(session: Session, batch_id: str, code: str, reason: str, at: datetime) -> None:
    """The hub refused the batch's entries: keep them pending, with why."""
    session.execute(
        update(SyncOutbox)
        .where(SyncOutbox.batch_id == batch_id)
        .values(state="refused", refusal=reason, refusal_code=code, attempted_at=at)
    )


def last_link_event(session: Session) -> SyncEvent | None:
    """The newest line of the sync log about the link itself: the hub unreachable, or back.

    Those lines name no batch, so the batch index finds them among the few such lines.
    """
    return session.execute(
        select(SyncEvent)
        .where(SyncEvent.batch_id.is_(None), SyncEvent.action == "round")
        .order_by(SyncEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def remember_nonce(
    session: Session, site: str, nonce: str, at: datetime, keep: timedelta, *, prune: bool = True
) -> bool:
    """Record a request nonce; False if it was seen before (a replay).

    ``prune``: forget nonces older than ``keep`` (a request that old is refused for its
    timestamp anyway).
    """
    if prune:
        session.execute(delete(SyncNonce).where(SyncNonce.seen_at < at - keep))
    # RETURNING, not rowcount: SQLAlchemy reports -1 (unknown) for this INSERT on PostgreSQL,
    # which would let every replay through; a row comes back only when the nonce is new.
    inserted = session.execute(
        _upsert(session)(SyncNonce)
        .values(site=site, nonce=nonce, seen_at=at)
        .on_conflict_do_nothing()
        .returning(SyncNonce.nonce)
    ).first()
    return inserted is not None


def note_contact(
    session: Session, site: str, at: datetime, clock_offset: float | None = None
) -> None:
    """The spoke's last contact, at most once a second (so pushes do not queue on its row).

    ``clock_offset``: its clock as measured from the request (timestamp minus ``at``), kept
    with the contact — and at once when the last measurement came from a refusal (:func:`note_clock`),
    so a clock set right stops being shown as wrong with the spoke's first good request.
    """
    values: dict[str, object] = {"last_seen_at": at}
    if clock_offset is not None:
        values.update(clock_offset_seconds=clock_offset, clock_measured_at=at)
    session.execute(
        update(Spoke)
        .where(
            Spoke.code == site,
            (Spoke.last_seen_at.is_(None))
            | (Spoke.last_seen_at < at - timedelta(seconds=1))
            | (Spoke.clock_measured_at > Spoke.last_seen_at),
        )
        .values(values)
    )


def note_clock(session: Session, site: str, at: datetime, clock_offset: float) -> None:
    """The spoke's clock as measured at ``at`` from a request refused for it (not a contact)."""
    session.execute(
        update(Spoke)
        .where(Spoke.code == site)
        .values(clock_offset_seconds=clock_offset, clock_measured_at=at)
    )


def log_event(
    session: Session,
    *,
    at: datetime,
    action: str,
    outcome: str,
    peer: str | None = None,
    via: str = "network",
    batch_id: str | None = None,
    item: str | None = None,
    first_seq: int | None = None,
    last_seq: int | None = None,
    stored: int = 0,
    duplicates: int = 0,
    code: str | None = None,
    reason: str | None = None,
) -> None:
    """Append one line to the sync log."""
    session.execute(
        insert(SyncEvent).values(
            at=at,
            action=action,
            outcome=outcome,
            peer=peer,
            via=via,
            batch_id=batch_id,
            item=(item or "")[:200] or None,
            first_seq=first_seq,
            last_seq=last_seq,
            stored=stored,
            duplicates=duplicates,
            code=code,
            reason=reason,
        )
    )


def receipt_times(session: Session, batch_id: str) -> dict[int, datetime]:
    """When the hub first received each entry of a spoke's batch (seq → time), from the sync log.

    Each accepted ingest names the seqs of its chunk; an entry was received by the first accepted
    ingest that covered it (entries are stored in order, so each later ingest adds only seqs
    beyond those before it). Empty where nothing was received (a spoke's own batches).
    """
    received: dict[int, datetime] = {}
    held = 0
    for at, first, last in session.execute(
        select(SyncEvent.at, SyncEvent.first_seq, SyncEvent.last_seq)
        .where(
            SyncEvent.batch_id == batch_id,
            SyncEvent.action == "ingest",
            SyncEvent.outcome == "accepted",
        )
        .order_by(SyncEvent.id)
    ).all():
        if first is None or last is None or last <= held:
            continue
        for seq in range(max(first, held + 1), last + 1):
            received[seq] = at
        held = last
    return received


def hub_link(session: Session) -> HubLink | None:
    """At a spoke: the hub it enrolled with, if any."""
    return session.get(HubLink, 1)


def outbox_row(session: Session, batch_id: str) -> SyncOutbox | None:
    """The outbox row of a batch, if it was ever queued."""
    return session.get(SyncOutbox, batch_id)


def outbox_rows(session: Session, batch_ids: list[str]) -> list[SyncOutbox]:
    """The outbox rows of these batches (those ever queued)."""
    return list(
        session.execute(select(SyncOutbox).where(SyncOutbox.batch_id.in_(batch_ids))).scalars()
    )


def recent_events(session: Session, limit: int) -> list[SyncEvent]:
    """The last ``limit`` lines of the sync log, newest first."""
    return list(
        session.execute(select(SyncEvent).order_by(SyncEvent.id.desc()).limit(limit)).scalars()
    )


def handled_bundle_hashes(session: Session) -> set[str]:
    """The bundles the sync log records as installed or refused here (by hash)."""
    items = session.execute(
        select(SyncEvent.item).where(
            SyncEvent.action == "install", SyncEvent.outcome.in_(("accepted", "refused"))
        )
    ).scalars()
    return {item for item in items if item}


def last_event(
    session: Session, action: str, *, batch_id: str | None = None, peer: str | None = None
) -> SyncEvent | None:
    """The sync log's last line of this action (on the batch, with the peer, if named), if any."""
    conditions = [SyncEvent.action == action]
    if batch_id is not None:
        conditions.append(SyncEvent.batch_id == batch_id)
    if peer is not None:
        conditions.append(SyncEvent.peer == peer)
    return session.execute(
        select(SyncEvent).where(*conditions).order_by(SyncEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
