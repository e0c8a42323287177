"""What a phase form carries, and what recording it did: the phase kinds' entries at a spoke.

:class:`PhaseData` holds each phase kind's entries (:mod:`mes.core.phases`) by its argument name;
:func:`record_data` hands them to the batch with what the site knows (its date, its registered
lots and instruments) and collects the refusals of scans for their form fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mes.core.batch import Batch, Operator
from mes.core.errors import BatchRefused, MesError
from mes.core.phases import Site
from mes.services.context import Context
from mes.services.equipment import equipment_info
from mes.services.materials import lot_info
from mes.services.recipes import site_today
from mes.store.uow import UnitOfWork


@dataclass
class PhaseResult:
    """What recording a phase's data did: entries kept, and messages for the fields refused."""

    batch: Batch
    recorded: int = 0
    field_errors: dict[str, str] = field(default_factory=dict)
    refusals: list[MesError] = field(default_factory=list)


@dataclass(frozen=True)
class PhaseData:
    """What a phase form carries: each phase kind's entries by its argument name."""

    entries: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(v for k, v in self.entries.items() if k != "comments")


# The site's master data a scan is checked against, by what a phase kind looks up.
LOOKUPS: dict[str, Callable[[UnitOfWork, str], Any]] = {
    "lot": lot_info,
    "equipment": equipment_info,
}


def record_data(
    uow: UnitOfWork, ctx: Context, batch: Batch, who: Operator, phase_id: str, data: PhaseData
) -> PhaseResult:
    """Record ``data`` in a phase in progress; the entries kept and each refused scan's message."""
    result = PhaseResult(batch)
    mark = len(batch.new_entries)
    site = Site(site_today(uow, ctx), lambda what, scanned: LOOKUPS[what](uow, scanned))
    for key, refusal in batch.record(
        phase_id, data.entries, who, ctx.at, ctx.terminal, site
    ).items():
        result.field_errors[key] = str(refusal)
        result.refusals.append(refusal)
    result.recorded = len(batch.new_entries) - mark
    return result


class ScansRefused(BatchRefused):
    """Scans made with a signature were refused (kept in the record); nothing was signed."""

    http_status = 422

    def __init__(self, result: PhaseResult) -> None:
        self.fields = dict(result.field_errors)
        super().__init__(
            "Not signed: " + " ".join(self.fields.values()),
            what_to_do="Scan what is asked for, then sign.",
        )
