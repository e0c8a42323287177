"""The hub's read models of received batches: summaries, critical values, milestones.

Projections of each batch's ledger and review chain (the facts are the core's:
:mod:`mes.core.summary`). :func:`refresh_batch` brings one batch's rows to what its chains say,
in the caller's transaction — ingest calls it as it stores a chunk, the review service as QA
acts — and the rebuild (:mod:`mes.services.read_models`) recomputes every batch's rows with the
same function, so a rebuild equals what ingest and review maintained (:func:`differences`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from mes.core.batch import Batch
from mes.core.clock import utc_text
from mes.core.ledger import SealedEntry
from mes.core.review import ReviewSettings, ReviewState, find_exceptions, pending_reason
from mes.core.summary import parameter_values, summary, timeline
from mes.store.models import Batch as BatchRow
from mes.store.models import BatchMilestone, BatchSummary, ParameterResult
from mes.store.sync import receipt_times

TABLES: tuple[tuple[str, type[Any], tuple[str, ...]], ...] = (
    ("batch_summaries", BatchSummary, ("batch_id",)),
    ("parameter_results", ParameterResult, ("batch_id", "phase_id", "value_id")),
    ("batch_milestones", BatchMilestone, ("batch_id", "milestone")),
)


@dataclass
class Rows:
    """Rows of the three read models, by table (one batch's, or many batches')."""

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
            "recipe_version": s.recipe_version,
            "number": s.number,
            "demo": s.demo,
        }
        for v in parameter_values(batch)
    )
    rows.tables["batch_milestones"].extend({**on, **asdict(p)} for p in timeline(batch, review))
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
