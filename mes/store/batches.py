"""Persisting batches: the ledger rows and the projections kept in step with them.

A service loads a batch's ledger (:func:`ledger`), lets the core replay it and decide, then
calls :func:`save`, which inserts the new ledger entries and brings the projection rows of the
batch to what the core's typed :meth:`~mes.core.batch.Batch.projection` says (the rows, with
their column names, are built here: :func:`projection`), writing only the rows that changed —
all in the caller's transaction. :func:`lock_batch` takes the batch row's lock first, so two
terminals acting on one batch are served one after the other.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mes.core.audit import Actor
from mes.core.batch import Batch as BatchAggregate
from mes.core.clock import utc_text
from mes.core.entry import EntryBody
from mes.core.heads import SignedHead, batch_chain, sign_head
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry
from mes.store.models import (
    Base,
    Batch,
    BatchEntry,
    BatchEquipment,
    BatchMaterial,
    BatchPhase,
    BatchValue,
    Counter,
    Deviation,
    chain_body,
    chain_columns,
)


def lock_batch(session: Session, batch_id: str) -> Batch | None:
    """The batch row, locked for the rest of the transaction (None if there is no such batch)."""
    return session.execute(
        select(Batch).where(Batch.id == batch_id).with_for_update()
    ).scalar_one_or_none()


_LEDGER_COLUMNS = (
    BatchEntry.batch_id,
    BatchEntry.seq,
    BatchEntry.prev,
    BatchEntry.at,
    BatchEntry.site,
    BatchEntry.terminal,
    BatchEntry.actor_id,
    BatchEntry.actor_username,
    BatchEntry.actor_name,
    BatchEntry.kind,
    BatchEntry.payload,
    BatchEntry.hash,
    BatchEntry.signature,
)


def _sealed(r: Any) -> SealedEntry:
    return SealedEntry(body=chain_body(r).as_dict(), hash=r.hash, signature=r.signature)


def ledger(session: Session, batch_id: str) -> list[SealedEntry]:
    """Every entry of the batch's ledger in seq order, as the core replays and verifies them.

    Read as plain rows (no ORM objects: a batch has hundreds of entries and every action reads
    them); the body is built by :func:`chain_body`, as :meth:`BatchEntry.body` builds it.
    """
    rows = session.execute(
        select(*_LEDGER_COLUMNS).where(BatchEntry.batch_id == batch_id).order_by(BatchEntry.seq)
    )
    return [_sealed(r) for r in rows]


def entries_after(session: Session, batch_id: str, after_seq: int, limit: int) -> list[SealedEntry]:
    """Up to ``limit`` entries of the batch after ``after_seq``, in seq order (for sync)."""
    rows = session.execute(
        select(*_LEDGER_COLUMNS)
        .where(BatchEntry.batch_id == batch_id, BatchEntry.seq > after_seq)
        .order_by(BatchEntry.seq)
        .limit(limit)
    )
    return [_sealed(r) for r in rows]


def next_number(session: Session, name: str) -> int:
    """The next value of a named counter (row-locked, so no two takers get the same).

    The counter's row is created if missing with ``ON CONFLICT DO NOTHING``: two first takers
    at once (the year's first batches) then wait for each other instead of one failing on the
    primary key.
    """
    dialect = session.get_bind().dialect.name
    insert_new = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert_new(Counter).values(name=name, value=0).on_conflict_do_nothing())
    counter = session.execute(
        select(Counter).where(Counter.name == name).with_for_update()
    ).scalar_one()
    counter.value += 1
    session.flush()
    return counter.value


def raise_counter(session: Session, name: str, value: int) -> None:
    """A named counter continues after ``value`` at least (numbers taken elsewhere)."""
    next_number(session, name)  # the row, locked
    session.execute(
        update(Counter).where(Counter.name == name, Counter.value < value).values(value=value)
    )


def _entry_values(entry: SealedEntry) -> dict[str, Any]:
    return {
        **chain_columns(EntryBody.of(entry.body)),
        "hash": entry.hash,
        "signature": entry.signature,
    }


_COPY_FROM = 32  # on PostgreSQL, this many ledger rows or more go in with COPY


def insert_entries(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert ledger rows: one executemany, or on PostgreSQL for many rows one COPY.

    COPY is how PostgreSQL takes many rows at once (the hub receives a batch's ledger in chunks
    of hundreds of entries); the rows, their types and the triggers are the same.
    """
    if session.get_bind().dialect.name != "postgresql" or len(rows) < _COPY_FROM:
        session.execute(insert(BatchEntry.__table__), rows)
        return
    columns = [c.name for c in BatchEntry.__table__.columns]
    connection = session.connection()
    statement = f"COPY batch_entries ({', '.join(columns)}) FROM STDIN"
    driver = connection.connection.dbapi_connection
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row([json.dumps(row[c]) if c == "payload" else row[c] for c in columns])
    except driver.Error as err:  # type: ignore[union-attr]
        # As SQLAlchemy reports driver errors (IntegrityError etc.), so callers handle them alike.
        raise DBAPIError.instance(statement, None, err, type(driver).Error) from err


_TABLES: tuple[tuple[str, type[Base], tuple[str, ...]], ...] = (
    ("phases", BatchPhase, ("batch_id", "phase_id")),
    ("values", BatchValue, ("batch_id", "phase_id", "value_id")),
    ("materials", BatchMaterial, ("batch_id", "phase_id", "material_code")),
    ("equipment", BatchEquipment, ("batch_id", "phase_id", "slot")),
    ("deviations", Deviation, ("id",)),
)


def projection(batch: BatchAggregate, *, received: bool = False) -> dict[str, Any]:
    """The rows this database keeps for ``batch``, built from its typed projection.

    ``received``: the hub's copy of a spoke's batch. The spoke's installed-recipe ID in the
    ledger names a row of the spoke's database, not the hub's, so the hub's row leaves it empty.
    """
    p = batch.projection()
    row = _columns(p)
    if received:
        row["installed_recipe_id"] = None
    on = {"batch_id": p.id}
    return {
        "batch": row,
        "phases": [_columns(ph, **on) for ph in p.phases],
        "values": [_columns(v, **on, phase_id=ph.phase_id) for ph in p.phases for v in ph.values],
        "materials": [_columns(u, **on, phase_id=ph.phase_id) for ph in p.phases for u in ph.lots],
        "equipment": [
            _columns(u, **on, phase_id=ph.phase_id) for ph in p.phases for u in ph.instruments
        ],
        "deviations": [_columns(d, **on) for d in p.deviations],
    }


# The parts of a projection that are rows of their own tables, not columns.
_NESTED = frozenset({"phases", "deviations", "values", "lots", "instruments"})


def _columns(part: Any, **keys: Any) -> dict[str, Any]:
    """A projected part as its table's row: each field a column of the same name, with ``keys``.

    People are stored by user ID (username), statuses by their value, times as UTC text.
    """
    row = dict(keys)
    for f in fields(part):
        if f.name in _NESTED:
            continue
        value = getattr(part, f.name)
        if isinstance(value, Actor):
            value = value.username
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, datetime):
            value = utc_text(value)
        row[f.name] = value
    return row


def saved_state(batch: BatchAggregate, *, received: bool = False) -> dict[str, Any]:
    """What :func:`save` may assume is stored for a batch just replayed from its ledger.

    The stored rows are the ledger's projection (that is the invariant every save keeps), so a
    replayed batch's own projection says what is in the tables without reading them again.
    """
    return projection(batch, received=received)


def save(
    session: Session,
    batch: BatchAggregate,
    stored: dict[str, Any] | None,
    *,
    key: SiteKey,
    received: bool = False,
) -> dict[str, Any]:
    """Insert the batch's new ledger entries and bring its projection rows up to date.

    ``stored``: the projection as it was stored (from :func:`saved_state`, or the value this
    function returned last time), or None for a new batch. Only rows that changed are written;
    an update that finds no row inserts it. Returns the projection now stored. ``received``:
    the hub storing a spoke's batch (see :func:`projection`). When entries were added, the
    batch's head moves with ``key``'s signature of it (the key of the site storing it).
    """
    rows = projection(batch, received=received)
    if batch.new_entries:
        head = sign_head(
            key,
            batch_chain(batch.state.id),
            batch.state.last_seq,
            batch.state.last_hash,
            batch.state.last_at or "",
        )
        rows["batch"]["head_at"], rows["batch"]["head_signature"] = head.at, head.signature
    old_batch = stored["batch"] if stored else None
    if old_batch is None:
        session.execute(insert(Batch.__table__), [rows["batch"]])
    else:
        changed = {k: v for k, v in rows["batch"].items() if old_batch.get(k) != v}
        if changed:
            session.execute(update(Batch).where(Batch.id == batch.state.id).values(**changed))
    if batch.new_entries:
        # Core inserts of whole rows: one executemany per table (the ORM's bulk insert splits
        # rows into a statement per pattern of empty columns — a dozen round trips per table).
        insert_entries(session, [_entry_values(e) for e in batch.new_entries])
        batch.new_entries.clear()
    for name, model, keys in _TABLES:
        before = {tuple(r[k] for k in keys): r for r in (stored or {}).get(name, [])}
        fresh = []
        for row in rows[name]:
            key = tuple(row[k] for k in keys)
            old = before.get(key)
            if old is None:
                fresh.append(row)
                continue
            changed = {k: v for k, v in row.items() if old.get(k) != v}
            if changed:
                where = [getattr(model, k) == row[k] for k in keys]
                result = session.execute(update(model).where(*where).values(**changed))
                if result.rowcount == 0:  # type: ignore[attr-defined]
                    fresh.append(row)  # not there after all: write it whole
        if fresh:
            session.execute(insert(model.__table__), fresh)  # type: ignore[attr-defined]
    return rows


def batch_head(row: Batch) -> SignedHead:
    """The batch's head as this site recorded and signed it."""
    return SignedHead(
        batch_chain(row.id), row.last_seq, row.last_hash, row.head_at, row.head_signature
    )


def stored_projection(session: Session, batch_id: str) -> dict[str, Any]:
    """The projection rows as stored, in the shape of :func:`projection` (for checks)."""

    def plain(row: Base) -> dict[str, Any]:
        return {c.key: getattr(row, c.key) for c in row.__table__.columns}  # type: ignore[attr-defined]

    batch = session.get(Batch, batch_id)
    if batch is None:
        return {}
    # The head's signature is the holding site's, not part of what the ledger projects.
    head_columns = ("head_at", "head_signature")
    result: dict[str, Any] = {
        "batch": {k: v for k, v in plain(batch).items() if k not in head_columns}
    }
    for name, model, order in (
        ("phases", BatchPhase, BatchPhase.position),
        ("values", BatchValue, BatchValue.entry_seq),
        ("materials", BatchMaterial, BatchMaterial.entry_seq),
        ("equipment", BatchEquipment, BatchEquipment.entry_seq),
        ("deviations", Deviation, Deviation.number),
    ):
        result[name] = [
            plain(r)
            for r in session.execute(
                select(model).where(model.batch_id == batch_id).order_by(order)  # type: ignore[attr-defined]
            ).scalars()
        ]
    return result


def held_hashes(session: Session, batch_id: str, first_seq: int, last_seq: int) -> dict[int, str]:
    """The hashes of the batch's entries held here from ``first_seq`` to ``last_seq``, by seq."""
    if first_seq > last_seq:
        return {}
    return dict(
        session.execute(
            select(BatchEntry.seq, BatchEntry.hash).where(
                BatchEntry.batch_id == batch_id,
                BatchEntry.seq >= first_seq,
                BatchEntry.seq <= last_seq,
            )
        ).all()
    )


def site_holding_number(session: Session, number: str) -> str | None:
    """The site of the batch that has this number here, if any (numbers are network-unique)."""
    return session.execute(select(Batch.site).where(Batch.number == number)).scalar()


def heads_of_site(session: Session, site: str) -> dict[str, tuple[int, str]]:
    """The last seq and hash held of each batch of ``site``, by batch ID."""
    return {
        b: (s, h)
        for b, s, h in session.execute(
            select(Batch.id, Batch.last_seq, Batch.last_hash).where(Batch.site == site)
        ).all()
    }


def batches_newest_first(session: Session) -> list[Batch]:
    """Every batch here, the newest first."""
    return list(session.execute(select(Batch).order_by(Batch.created_at.desc())).scalars())


def entry_hash(session: Session, batch_id: str, seq: int) -> str | None:
    """The hash of the batch's entry ``seq`` as held here, or None."""
    return session.execute(
        select(BatchEntry.hash).where(BatchEntry.batch_id == batch_id, BatchEntry.seq == seq)
    ).scalar_one_or_none()


def batch(session: Session, batch_id: str) -> Batch | None:
    """The batch row with this ID (not locked), or None."""
    return session.get(Batch, batch_id)


def donations_in_use(session: Session) -> list[tuple[str, dict[str, Any]]]:
    """The number and chain of identity of every batch not aborted (a donation feeds one batch)."""
    return [
        (number, coi)
        for number, coi in session.execute(
            select(Batch.number, Batch.chain_of_identity).where(Batch.status != "aborted")
        ).all()
    ]


def batch_id_of(session: Session, reference: str) -> str | None:
    """The ID of the batch with this number (any case) or this ID, or None."""
    return session.execute(
        select(Batch.id).where((Batch.number == reference.upper()) | (Batch.id == reference))
    ).scalar_one_or_none()


def batches_labelled(session: Session, din: str | None, code: str | None) -> list[str]:
    """The IDs of this site's batches whose chain of identity holds the DIN or the code scanned.

    ``din``: the 13 characters of a DIN; ``code``: an identifier as normalised at batch start
    (upper case, no spaces). A bag label's identifiers name at most one batch of a site (one
    donation feeds one batch); an aborted batch is listed too, so its bag is refused by name.
    """
    found = []
    for batch_id, coi in session.execute(select(Batch.id, Batch.chain_of_identity)).all():
        for value in (coi or {}).values():
            if (din and isinstance(value, dict) and value.get("din") == din) or (
                code and value == code
            ):
                found.append(batch_id)
                break
    return found
