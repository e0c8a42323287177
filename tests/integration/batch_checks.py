"""Checks the batch tests share: a sound ledger, and what the database holds before and after.

A refused action must leave the batch ledger whole (seq 1…n, no gap, no duplicate, the chain
verifying, the stored rows equal to the ledger's replay) and must write nothing at all — or,
for refusals that are kept on purpose (a refused scan, a mismatching label), exactly the
entries that record them. :func:`snapshot` captures everything an action could touch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batch_helpers import Spoke
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from mes.core.batch import Batch
from mes.services import batches
from mes.services.batches import procedure_for
from mes.store import batches as store
from mes.store.models import (
    AuditEntry,
    BatchEntry,
    Counter,
    EquipmentLogEntry,
    InstalledRecipe,
    LoggerFile,
    User,
)
from mes.store.models import (
    Batch as BatchRow,
)

KEYS = {
    "phases": ("phase_id",),
    "values": ("phase_id", "value_id"),
    "materials": ("phase_id", "material_code"),
    "equipment": ("phase_id", "slot"),
    "deviations": ("id",),
}


def order_insensitive(projection: dict[str, Any]) -> dict[str, Any]:
    """Each list of rows sorted by its key, so only the rows themselves are compared."""
    return {
        name: sorted(rows, key=lambda r, k=KEYS[name]: tuple(r[c] for c in k))
        if name in KEYS
        else rows
        for name, rows in projection.items()
    }


def replayed_projection(site: Spoke, batch_id: str) -> dict[str, Any]:
    """The projection the batch's ledger replays to (read straight from the stored entries)."""
    with site.uow() as uow:
        row = uow.session.get(BatchRow, batch_id)
        assert row is not None
        installed = uow.session.get(InstalledRecipe, row.installed_recipe_id)
        procedure = procedure_for(installed.content_hash, installed.compiled)
        return store.projection(Batch.replay(procedure, store.ledger(uow.session, batch_id)))


def assert_sound(site: Spoke, batch_id: str) -> int:
    """The ledger has seq 1…n with no gap or duplicate, verifies, and replays to the stored
    rows; returns n."""
    with site.uow() as uow:
        seqs = list(
            uow.session.execute(
                select(BatchEntry.seq)
                .where(BatchEntry.batch_id == batch_id)
                .order_by(BatchEntry.seq)
            ).scalars()
        )
        stored = store.stored_projection(uow.session, batch_id)
        verified = batches.verify_batch(uow, site.ctx("sam"), batch_id)
    assert seqs == list(range(1, len(seqs) + 1)), f"gap or duplicate in the ledger: {seqs}"
    assert verified == stored["batch"]["last_seq"] == len(seqs)
    assert order_insensitive(stored) == order_insensitive(replayed_projection(site, batch_id))
    return len(seqs)


def snapshot(site: Spoke) -> dict[str, Any]:
    """Everything a batch action could write: ledgers, projections, counters, logbooks, audit,
    failed sign-in counts."""
    with site.uow() as uow:
        session = uow.session
        ids = list(session.execute(select(BatchRow.id).order_by(BatchRow.id)).scalars())
        return {
            "entries": [
                (r.batch_id, r.seq, r.kind, r.hash)
                for r in session.execute(
                    select(BatchEntry).order_by(BatchEntry.batch_id, BatchEntry.seq)
                ).scalars()
            ],
            "batches": {i: order_insensitive(store.stored_projection(session, i)) for i in ids},
            "counters": dict(session.execute(select(Counter.name, Counter.value)).all()),
            "equipment_log": session.execute(
                select(func.count()).select_from(EquipmentLogEntry)
            ).scalar_one(),
            "audit": session.execute(select(func.count()).select_from(AuditEntry)).scalar_one(),
            "logger_files": session.execute(
                select(func.count()).select_from(LoggerFile)
            ).scalar_one(),
            "failed_attempts": dict(
                session.execute(select(User.username, User.failed_attempts)).all()
            ),
        }


def entries(site: Spoke, batch_id: str) -> list[BatchEntry]:
    """The batch's ledger rows in seq order (detached, readable afterwards)."""
    with site.uow() as uow:
        return list(
            uow.session.execute(
                select(BatchEntry).where(BatchEntry.batch_id == batch_id).order_by(BatchEntry.seq)
            ).scalars()
        )


def new_entry_kinds(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The kinds of the ledger entries added between two snapshots, in order."""
    old = set(before["entries"])
    return [kind for (_b, _s, kind, _h) in after["entries"] if (_b, _s, kind, _h) not in old]


def refused_by_trigger(engine: Engine, sql: str) -> str:
    """What the database did with raw ``sql``: 'refused by a trigger', 'accepted', or its error."""
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql(sql)
            conn.commit()
        except IntegrityError as error:
            message = str(error.orig)
            if "append-only" in message or "never deleted" in message:
                return "refused by a trigger"
            return message
    return "accepted"


def unchanged_by(site: Spoke, action: Callable[[], object], error: type[Exception]) -> Exception:
    """Run ``action``, which must raise ``error``, and check it wrote nothing; the error."""
    before = snapshot(site)
    try:
        action()
    except error as refusal:
        caught = refusal
    else:
        raise AssertionError(f"{action} was not refused")
    assert snapshot(site) == before, "a refused action wrote something"
    return caught
