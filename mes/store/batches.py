"""Persisting batches: the ledger rows and the projections kept in step with them.

A service loads a batch's ledger (:func:`ledger`), lets the core replay it and decide, then
calls :func:`save`, which inserts the new ledger entries and brings every projection row of
the batch to what the core's :meth:`~mes.core.batch.Batch.projection` says — all in the
caller's transaction. :func:`lock_batch` takes the batch row's lock first, so two terminals
acting on one batch are served one after the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mes.core.batch import Batch as BatchAggregate
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
)


def lock_batch(session: Session, batch_id: str) -> Batch | None:
    """The batch row, locked for the rest of the transaction (None if there is no such batch)."""
    return session.execute(
        select(Batch).where(Batch.id == batch_id).with_for_update()
    ).scalar_one_or_none()


def ledger(session: Session, batch_id: str) -> list[SealedEntry]:
    """Every entry of the batch's ledger in seq order, as the core replays and verifies them."""
    rows = session.execute(
        select(BatchEntry).where(BatchEntry.batch_id == batch_id).order_by(BatchEntry.seq)
    ).scalars()
    return [SealedEntry(body=row.body(), hash=row.hash, signature=row.signature) for row in rows]


def next_number(session: Session, name: str) -> int:
    """The next value of a named counter (row-locked, so no two takers get the same).

    The counter's row is created if missing with ``ON CONFLICT DO NOTHING``: two first takers
    at once (the year's first batches) then wait for each other instead of one failing on the
    primary key.
    """
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(Counter).values(name=name, value=0).on_conflict_do_nothing())
    counter = session.execute(
        select(Counter).where(Counter.name == name).with_for_update()
    ).scalar_one()
    counter.value += 1
    session.flush()
    return counter.value


def _entry_row(entry: SealedEntry) -> BatchEntry:
    body = entry.body
    actor = body["actor"]
    return BatchEntry(
        batch_id=body["batch"],
        seq=body["seq"],
        prev=body["prev"],
        at=body["at"],
        site=body["site"],
        terminal=body["terminal"],
        actor_id=actor["user_id"],
        actor_username=actor["username"],
        actor_name=actor["name"],
        kind=body["kind"],
        payload=body["payload"],
        hash=entry.hash,
        signature=entry.signature,
    )


_KEYS: dict[type[Base], tuple[str, ...]] = {
    BatchPhase: ("batch_id", "phase_id"),
    BatchValue: ("batch_id", "phase_id", "value_id"),
    BatchMaterial: ("batch_id", "phase_id", "material_code"),
    BatchEquipment: ("batch_id", "phase_id", "slot"),
    Deviation: ("id",),
}


def save(session: Session, batch: BatchAggregate) -> None:
    """Insert the batch's new ledger entries and bring its projection rows up to date."""
    projection = batch.projection()
    row = session.get(Batch, batch.state.id)
    if row is None:
        row = Batch(**projection["batch"])
        session.add(row)
        session.flush()
    else:
        _update(row, projection["batch"])
    for entry in batch.new_entries:
        session.add(_entry_row(entry))
    batch.new_entries.clear()
    for model, rows in (
        (BatchPhase, projection["phases"]),
        (BatchValue, projection["values"]),
        (BatchMaterial, projection["materials"]),
        (BatchEquipment, projection["equipment"]),
        (Deviation, projection["deviations"]),
    ):
        _sync(session, model, batch.state.id, rows)
    session.flush()


def _update(row: Base, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def _sync(
    session: Session, model: type[Base], batch_id: str, rows: Iterable[dict[str, Any]]
) -> None:
    keys = _KEYS[model]
    stored = {
        tuple(getattr(r, k) for k in keys): r
        for r in session.execute(
            select(model).where(model.batch_id == batch_id)  # type: ignore[attr-defined]
        ).scalars()
    }
    for values in rows:
        key = tuple(values[k] for k in keys)
        existing = stored.get(key)
        if existing is None:
            session.add(model(**values))
        else:
            _update(existing, values)


def stored_projection(session: Session, batch_id: str) -> dict[str, Any]:
    """The projection rows as stored, in the shape of ``Batch.projection()`` (for checks)."""

    def plain(row: Base) -> dict[str, Any]:
        return {c.key: getattr(row, c.key) for c in row.__table__.columns}  # type: ignore[attr-defined]

    batch = session.get(Batch, batch_id)
    if batch is None:
        return {}
    result: dict[str, Any] = {"batch": plain(batch)}
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
