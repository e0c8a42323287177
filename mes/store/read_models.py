"""The hub's read models of received batches: summaries, critical values, milestones, usage.

Projections of each batch's ledger and review chain (the facts are the core's:
:mod:`mes.core.summary`). :func:`refresh_batch` brings one batch's rows to what its chains say,
in the caller's transaction — ingest calls it as it stores a chunk, the review service as QA
acts — and the rebuild (:mod:`mes.services.read_models`) recomputes every batch's rows with the
same function, so a rebuild equals what ingest and review maintained (:func:`differences`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Float, and_, case, cast, delete, func, insert, select
from sqlalchemy.orm import Session

from mes.core.batch import Batch
from mes.core.clock import utc_text
from mes.core.ledger import SealedEntry
from mes.core.limits import numeric
from mes.core.lookback import usage
from mes.core.review import ReviewSettings, ReviewState, find_exceptions, pending_reason
from mes.core.summary import parameter_values, summary, timeline
from mes.store.models import Batch as BatchRow
from mes.store.models import (
    BatchEntry,
    BatchMilestone,
    BatchSummary,
    BatchUsage,
    ParameterResult,
)
from mes.store.sync import receipt_times

TABLES: tuple[tuple[str, type[Any], tuple[str, ...]], ...] = (
    ("batch_summaries", BatchSummary, ("batch_id",)),
    ("parameter_results", ParameterResult, ("batch_id", "phase_id", "value_id")),
    ("batch_milestones", BatchMilestone, ("batch_id", "milestone")),
    ("batch_usages", BatchUsage, ("batch_id", "kind", "identifier")),
)


@dataclass
class Rows:
    """Rows of the read models, by table (one batch's, or many batches')."""

    tables: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {name: [] for name, _, _ in TABLES}
    )

    def add(self, other: Rows) -> None:
        """Take ``other``'s rows too."""
        for name, rows in other.tables.items():
            self.tables[name].extend(rows)

    def counts(self) -> dict[str, int]:
        """How many rows each table has."""
        return {name: len(rows) for name, rows in self.tables.items()}

    def batches(self) -> int:
        """How many batches have a summary."""
        return len(self.tables["batch_summaries"])


def batch_rows(
    batch: Batch,
    record: Sequence[SealedEntry],
    review: ReviewState,
    *,
    settings: ReviewSettings,
    received: Mapping[int, datetime],
) -> Rows:
    """The read-model rows of one batch, from its replay, ledger, review chain and receipts.

    The findings are those of the review page with the record taken as verified (each entry
    was verified as it arrived; the review page and every QA action verify it again).
    """
    findings = find_exceptions(
        batch, record, settings, pending=pending_reason(batch), received=received
    )
    received_at = utc_text(max(received.values())) if received else None
    s = summary(batch, review, findings, received_at=received_at)
    row = asdict(s)
    row["status"], row["qa_state"] = s.status.value, s.qa_state.value
    row["review_digest"] = settings.digest()
    hashes = {entry.seq: entry.hash for entry in record}
    on = {
        "batch_id": s.batch_id,
        "site": s.site,
        "recipe_code": s.recipe_code,
    }
    rows = Rows()
    rows.tables["batch_summaries"].append(row)
    rows.tables["parameter_results"].extend(
        {
            **on,
            **asdict(v),
            "entry_hash": hashes[v.entry_seq],
            "recipe_version": s.recipe_version,
            "number": s.number,
            "demo": s.demo,
        }
        for v in parameter_values(batch)
    )
    rows.tables["batch_milestones"].extend({**on, **asdict(p)} for p in timeline(batch, review))
    rows.tables["batch_usages"].extend(
        {
            "batch_id": s.batch_id,
            "site": s.site,
            "kind": u.kind.value,
            "identifier": u.identifier,
            "detail": u.detail,
        }
        for u in usage(batch)
    )
    return rows


def refresh_batch(
    session: Session,
    batch: Batch,
    record: Sequence[SealedEntry],
    review: ReviewState,
    *,
    settings: ReviewSettings,
) -> list[dict[str, Any]]:
    """Bring one received batch's read-model rows to what its chains say (caller's transaction).

    ``batch``: replayed from ``record``, its whole ledger as held now; ``review``: its review
    chain replayed. The receipt times are read from the sync log (the chunk being stored is
    logged before this is called). Returns the batch's ``parameter_results`` rows that are new
    or whose value or time changed (what continued process verification judges).
    """
    rows = batch_rows(
        batch,
        record,
        review,
        settings=settings,
        received=receipt_times(session, batch.state.id),
    )
    values = rows.tables["parameter_results"]
    held: dict[tuple[str, str], tuple[Any, Any]] = {}
    if values:
        p = ParameterResult
        held = {
            (phase, value_id): (value, at)
            for phase, value_id, value, at in session.execute(
                select(p.phase_id, p.value_id, p.value, p.recorded_at).where(
                    p.batch_id == batch.state.id
                )
            )
        }
    remove(session, [batch.state.id])
    write(session, rows)
    return [
        row
        for row in values
        if held.get((row["phase_id"], row["value_id"])) != (row["value"], row["recorded_at"])
    ]


def summaries_with_other_settings(session: Session, digest: str) -> int:
    """How many batch summaries were computed with review settings other than ``digest``'s."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(BatchSummary)
            .where(BatchSummary.review_digest != digest)
        )
        or 0
    )


def received_batches(session: Session) -> list[tuple[str, str]]:
    """(ID, recipe content hash) of every batch held here, the oldest first."""
    return [
        (batch_id, content_hash)
        for batch_id, content_hash in session.execute(
            select(BatchRow.id, BatchRow.content_hash).order_by(BatchRow.created_at, BatchRow.id)
        ).all()
    ]


def remove(session: Session, batch_ids: Iterable[str] | None = None) -> None:
    """Delete the read-model rows of these batches (of every batch: None)."""
    ids = None if batch_ids is None else list(batch_ids)
    for _name, model, _keys in reversed(TABLES):
        statement = delete(model)
        if ids is not None:
            statement = statement.where(model.batch_id.in_(ids))
        session.execute(statement)


def write(session: Session, rows: Rows) -> None:
    """Insert rows (one executemany per table)."""
    for name, model, _keys in TABLES:
        if rows.tables[name]:
            session.execute(insert(model.__table__), rows.tables[name])


def stored(session: Session) -> Rows:
    """Every stored read-model row, in primary-key order."""
    rows = Rows()
    for name, model, keys in TABLES:
        table = model.__table__
        rows.tables[name] = [
            dict(r)
            for r in session.execute(select(table).order_by(*(table.c[k] for k in keys))).mappings()
        ]
    return rows


def differences(expected: Rows, found: Rows) -> list[str]:
    """How ``found`` (stored) differs from ``expected`` (computed from the chains), in words.

    One line per row missing, extra or different (naming the columns that differ).
    """
    lines = []
    for name, _model, keys in TABLES:
        want = {tuple(r[k] for k in keys): r for r in expected.tables[name]}
        have = {tuple(r[k] for k in keys): r for r in found.tables[name]}
        for key in sorted(want.keys() | have.keys()):
            where = f"{name} {'/'.join(str(k) for k in key)}"
            if key not in have:
                lines.append(f"{where}: missing")
            elif key not in want:
                lines.append(f"{where}: not in the chains")
            else:
                changed = [
                    f"{c} {have[key].get(c)!r} (should be {v!r})"
                    for c, v in want[key].items()
                    if have[key].get(c) != v
                ]
                if changed:
                    lines.append(f"{where}: " + ", ".join(changed))
    return lines


_SAID = 50  # batches whose difference is put in words (the others: that they differ)


class LedgerTie(NamedTuple):
    """A critical value held here and the ledger entry it stands on (for an auditor)."""

    batch_id: str
    number: str
    parameter: str
    entry_seq: int
    entry_hash: str


@dataclass
class LedgerCheck:
    """The critical values of a series checked against their ledger entries."""

    ties: dict[tuple[str, str], LedgerTie] = field(default_factory=dict)  # (batch, parameter)
    differing: dict[str, str] = field(default_factory=dict)  # batch number -> what differs


def _stands_on(row: Any) -> str | None:
    """What is wrong with a value row against its entry's columns (None: it stands on it)."""
    if row.hash is None:
        return f"entry {row.entry_seq} is not in its ledger"
    if row.hash != row.entry_hash:
        return f"entry {row.entry_seq}'s hash differs"
    payload = row.payload if isinstance(row.payload, Mapping) else {}
    if (payload.get("phase"), payload.get("value")) != (row.phase_id, row.value_id):
        return f"entry {row.entry_seq} is not {row.parameter}'s"
    if numeric(payload.get("recorded")) != row.value:
        return (
            f"{row.parameter} is {row.value!r}, entry {row.entry_seq} says "
            f"{payload.get('recorded')!r}"
        )
    return None


def check_against_ledger(
    session: Session,
    recipe_code: str,
    *,
    recorded_from: str | None = None,
    recorded_before: str | None = None,
    parameter: str | None = None,
    unit: str | None = None,
    batch_ids: Collection[str] | None = None,
) -> LedgerCheck:
    """Each critical value of a recipe code (in a period, of one parameter) against its entry.

    One query: each ``parameter_results`` row joined to the ``batch_entries`` row it names
    (batch + seq); the entry's hash must be the row's, and its payload the same phase, value
    and number — compared by the database, so only each row's tie comes back (no payloads).
    A row changed by hand (``UPDATE parameter_results SET value = …``) differs; only those
    are read again, with their entries, to say how. ``unit``: '' for a number without one
    (None: any).
    """
    p, e = ParameterResult, BatchEntry
    same_value = and_(
        e.payload["phase"].as_string() == p.phase_id,
        e.payload["value"].as_string() == p.value_id,
    )
    # The number is read only from an entry of this value (a number, or none: no cast error).
    recorded = case((same_value, cast(e.payload["recorded"].as_string(), Float)), else_=None)
    # Equal as numbers: a text-to-float conversion may differ in the last bit (SQLite's).
    same_number = func.abs(recorded - p.value) <= 1e-9 * (func.abs(p.value) + 1)
    stands = case((and_(e.hash == p.entry_hash, same_value, same_number), True), else_=False)
    where = [p.recipe_code == recipe_code]
    if recorded_from is not None:
        where.append(p.recorded_at >= recorded_from)
    if recorded_before is not None:
        where.append(p.recorded_at < recorded_before)
    if parameter is not None:
        where.append(p.parameter == parameter)
    if unit is not None:
        where.append(func.coalesce(p.unit, "") == unit)
    if batch_ids is not None:
        where.append(p.batch_id.in_(list(batch_ids)))
    joined = and_(e.batch_id == p.batch_id, e.seq == p.entry_seq)
    check = LedgerCheck()
    wrong: list[tuple[str, str, str]] = []
    ties = check.ties
    for batch_id, number, name, seq, entry_hash, ok in session.execute(
        select(p.batch_id, p.number, p.parameter, p.entry_seq, p.entry_hash, stands)
        .outerjoin(e, joined)
        .where(*where)
    ):
        ties[(batch_id, name)] = LedgerTie(batch_id, number, name, seq, entry_hash)
        if not ok:
            wrong.append((batch_id, number, name))
    if wrong:  # how each differs, in words (a handful of rows, read with their entries)
        found = session.execute(
            select(
                p.batch_id,
                p.number,
                p.phase_id,
                p.value_id,
                p.parameter,
                p.value,
                p.entry_seq,
                p.entry_hash,
                e.hash,
                e.payload,
            )
            .outerjoin(e, joined)
            .where(*where, p.batch_id.in_(sorted({b for b, _n, _p in wrong})[:_SAID]))
        )
        said = {(r.batch_id, r.parameter): _stands_on(r) for r in found}
        for batch_id, number, name in wrong:
            check.differing.setdefault(
                number, said.get((batch_id, name)) or f"{name} differs from its entry"
            )
    return check
