"""The audit trail viewer's read model: plain selects (:func:`mes.services.audit.read_audit_trail`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from mes.core.access import normalise_username
from mes.core.clock import utc_text
from mes.store.models import (
    AuditEntry,
    Batch,
    Equipment,
    InstalledRecipe,
    MaterialLot,
    RecipeVersion,
    Terminal,
    User,
)


@dataclass(frozen=True)
class AuditFilter:
    """What the reviewer asked for; empty fields do not filter."""

    record_type: str | None = None
    record_id: str | None = None
    username: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # actions left out (the sign-ins, when the reviewer hides them)
    hidden_actions: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class AuditPage:
    """One page of entries, newest first."""

    entries: list[AuditEntry]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.per_page))


def audit_page(session: Session, flt: AuditFilter, page: int = 1, per_page: int = 50) -> AuditPage:
    """Entries matching the filter, newest first, one page."""
    conditions = []
    if flt.record_type:
        conditions.append(AuditEntry.record_type == flt.record_type)
    if flt.record_id:
        # the record as typed, or any record people know by that name (a batch number)
        ids = {flt.record_id, *record_ids_named(session, flt.record_id)}
        conditions.append(AuditEntry.record_id.in_(sorted(ids)))
    if flt.username:
        conditions.append(AuditEntry.actor_username == normalise_username(flt.username))
    if flt.since:
        conditions.append(AuditEntry.at >= utc_text(flt.since))
    if flt.until:
        conditions.append(AuditEntry.at < utc_text(flt.until))
    if flt.hidden_actions:
        conditions.append(AuditEntry.action.not_in(sorted(flt.hidden_actions)))
    total = session.execute(
        select(func.count()).select_from(AuditEntry).where(*conditions)
    ).scalar_one()
    page = max(1, page)
    rows = session.execute(
        select(AuditEntry)
        .where(*conditions)
        .order_by(AuditEntry.seq.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).scalars()
    return AuditPage(list(rows), total, page, per_page)


def record_types(session: Session) -> list[str]:
    """The record types present in the audit trail (for the filter's choices)."""
    return list(
        session.execute(
            select(AuditEntry.record_type).distinct().order_by(AuditEntry.record_type)
        ).scalars()
    )


# --- the records an entry is about, by their business identity ----------------------------------


@dataclass(frozen=True)
class RecordName:
    """How people know a record: 'CART-CD19-FRESH v2', a batch number, a username.

    ``batch_id``: the batch the record belongs to, for a link to its events.
    """

    text: str
    batch_id: str | None = None


Namer = Callable[[Session, Collection[str]], dict[str, RecordName]]


def _named(
    session: Session, query: Select, name: Callable[..., str], batch: bool = False
) -> dict[str, RecordName]:
    return {
        row[0]: RecordName(name(*row[1:]), row[0] if batch else None)
        for row in session.execute(query)
    }


def _code_and_version(
    session: Session, table: type[RecipeVersion | InstalledRecipe], ids: Collection[str]
) -> dict[str, RecordName]:
    """A recipe version (master or installed) as its code and version: 'CART-CD19-FRESH v2'."""
    query = select(table.id, table.recipe_code, table.version).where(table.id.in_(ids))
    return _named(session, query, lambda code, version: f"{code} v{version}")


def recipe_version_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A master recipe version as its code and version: 'CART-CD19-FRESH v2'."""
    return _code_and_version(session, RecipeVersion, ids)


def installed_recipe_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A recipe version installed at a spoke: 'CART-CD19-FRESH v2'."""
    return _code_and_version(session, InstalledRecipe, ids)


def batch_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A batch (or its review) by its batch number, linked to the batch."""
    query = select(Batch.id, Batch.number).where(Batch.id.in_(ids))
    return _named(session, query, lambda number: number, batch=True)


def lot_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A material lot by its lot number and material: 'LOT-001 (MAT-IL2)'."""
    query = select(MaterialLot.id, MaterialLot.lot_number, MaterialLot.material_code).where(
        MaterialLot.id.in_(ids)
    )
    return _named(session, query, lambda lot, material: f"{lot} ({material})")


def user_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A user (by internal ID) by their user ID (username)."""
    query = select(User.id, User.username).where(User.id.in_(ids))
    return _named(session, query, lambda username: username)


def terminal_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """A terminal by its name."""
    query = select(Terminal.id, Terminal.name).where(Terminal.id.in_(ids))
    return _named(session, query, lambda name: name)


def equipment_names(session: Session, ids: Collection[str]) -> dict[str, RecordName]:
    """An instrument by its equipment ID and name: 'BSC-01 (Biosafety cabinet)'."""
    query = select(Equipment.id, Equipment.id, Equipment.name).where(Equipment.id.in_(ids))
    return _named(session, query, lambda code, name: f"{code} ({name})")


def record_names(
    session: Session, entries: Collection[AuditEntry], namers: dict[str, Namer]
) -> dict[tuple[str, str], RecordName]:
    """The business identity of each record the entries are about, by (record type, ID).

    ``namers``: how each record type is named (a record type without one keeps its ID, which
    for users, spokes and settings is already the name people know). One query per record type.
    """
    wanted: dict[str, set[str]] = {}
    for entry in entries:
        wanted.setdefault(entry.record_type, set()).add(entry.record_id)
    names: dict[tuple[str, str], RecordName] = {}
    for record_type, ids in wanted.items():
        namer = namers.get(record_type)
        found = namer(session, ids) if namer is not None else {}
        for record_id in ids:
            names[(record_type, record_id)] = found.get(record_id, RecordName(record_id))
    return names


_CODE_VERSION = re.compile(r"^(\S+) v(\d{1,9})$")


def record_ids_named(session: Session, name: str) -> set[str]:
    """The IDs of the records people know as ``name``, the other way round from the namers.

    A batch number, a lot number, a user ID (their attestations), 'CODE vN' (a recipe version,
    at the hub or installed at a spoke): so the reviewer filters the trail by what a record is
    called, not by its internal ID.
    """
    ids: set[str] = set()
    for query in (
        select(Batch.id).where(Batch.number == name),
        select(MaterialLot.id).where(MaterialLot.lot_number == name),
        select(User.id).where(User.username == normalise_username(name)),
        select(Terminal.id).where(Terminal.name == name),
    ):
        ids.update(session.execute(query).scalars())
    match = _CODE_VERSION.match(name)
    if match:
        code, version = match.group(1), int(match.group(2))
        for model in (RecipeVersion, InstalledRecipe):
            ids.update(
                session.execute(
                    select(model.id).where(model.recipe_code == code, model.version == version)
                ).scalars()
            )
    return ids


def batch_named(session: Session, name: str) -> RecordName | None:
    """The batch whose number is ``name`` (for a link to its events), if any."""
    batch_id = session.execute(select(Batch.id).where(Batch.number == name)).scalar()
    return RecordName(name, batch_id) if batch_id is not None else None


def plain_rows(session: Session, query: Any) -> list[tuple[Any, ...]]:
    """The rows of a select as the driver's plain tuples (tens of thousands: no Row objects).

    For columns whose driver types are already the Python ones (text, float, integer), in the
    session's transaction.
    """
    connection = session.connection()
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    params: Any = compiled.params
    if compiled.positional:  # SQLite's "?" style
        params = tuple(params[name] for name in compiled.positiontup or ())
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()
