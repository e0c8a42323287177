"""What an operator records in a phase in progress, and what the phase needs before it is signed.

Each phase kind (:mod:`mes.core.phases`) records its own entries — values and calculations, lots,
instruments, identity labels — checked and kept as ledger entries (a refused scan too). This part
of the batch walks the kinds: :meth:`Recording.record` for a submitted form,
:meth:`Recording.missing_for_performance` before a performed signature, and the phase record
that signature binds to.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Any

from mes.core import phases
from mes.core.batch.aggregate import Aggregate
from mes.core.batch.machines import DeviationCategory, DeviationStatus, EntryKind, PhaseStatus
from mes.core.batch.state import Operator, PhaseState
from mes.core.errors import MesError
from mes.core.phases.calculations import calculate_all, calculation_problem
from mes.core.phases.equipment import equipment_class_title, use_equipment
from mes.core.phases.identity import check_identity
from mes.core.phases.materials import use_material
from mes.core.phases.values import record_one, record_values

__all__ = ["Recording", "equipment_class_title"]


def carries_entry(data: Mapping[str, Mapping[Hashable, Any]]) -> bool:
    """Whether a phase form carries anything to record: a value or a scan (not only comments)."""
    return any(
        str(entered or "").strip()
        for argument, entries in data.items()
        if argument != "comments"
        for entered in (entries or {}).values()
    )


class Recording(Aggregate):
    """The recording actions of a phase in progress (a part of :class:`~mes.core.batch.Batch`)."""

    def record(
        self,
        phase_id: str,
        data: Mapping[str, Mapping[Hashable, Any]],
        who: Operator,
        at: datetime,
        terminal: str | None,
        site: phases.Site,
    ) -> dict[str, MesError]:
        """Record what a phase form carries, kind by kind, in the recipe's order of kinds.

        ``data``: each kind's entries by its argument name (``values``, ``lots``…; see
        :func:`mes.core.phases.parse_form`). Values are all checked first: if any is malformed
        nothing is recorded and :class:`~mes.core.limits.InvalidValue` names each field. A scan
        refused is kept in the record; its refusal is returned for its form field. On a phase
        not yet started, anything entered starts it first (:meth:`start_with_entry`: the start's
        rules, the same person and time).
        """
        self.procedure.phase(phase_id)  # NotFound for a phase the recipe does not have
        if carries_entry(data):  # the first entry of a phase not yet started starts it
            self.start_with_entry(phase_id, who, at, terminal)  # type: ignore[attr-defined]
        elif self.state.phases[phase_id].status is PhaseStatus.READY:
            return {}  # an empty form on a ready phase: nothing recorded, nothing started
        acting = phases.Acting(who, at, terminal, site)
        refusals: dict[str, MesError] = {}
        for kind in phases.KINDS.values():
            refusals.update(kind.record(self, phase_id, data, acting))  # type: ignore[arg-type]
        return refusals

    # -- each kind's action by name, for callers that know the kind (the kinds' functions) ---------

    record_values = record_values
    use_material = use_material
    use_equipment = use_equipment
    check_identity = check_identity
    calculation_problem = calculation_problem
    _record_one = record_one  # a correction records its value and works out the calculations
    _calculate = calculate_all

    def _refused(
        self,
        phase_id: str,
        what: str,
        slot: str,
        scanned: str,
        refusal: MesError,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> None:
        """Keep a refused scan in the record: what was scanned, for what, and why it was refused."""
        self._append(
            EntryKind.SCAN_REFUSED,
            {
                "phase": phase_id,
                "what": what,
                "for": slot,
                "scanned": (scanned or "").strip()[:200],
                "refusal": type(refusal).__name__,
                "reason": refusal.message,
            },
            who.actor,
            at,
            terminal,
        )

    # -- before signing ------------------------------------------------------------------------

    def missing_for_performance(self, phase_id: str) -> list[str]:
        """What the phase still needs before it can be signed as performed, in words."""
        plan = self.procedure.phase(phase_id)
        phase = self.state.phases[phase_id]
        missing = []
        for kind in phases.KINDS.values():
            missing += kind.missing(self, plan, phase)  # type: ignore[arg-type]
        for deviation in self.state.deviations.values():
            if deviation.phase != phase_id:
                continue
            if deviation.comment is None:
                missing.append(f"deviation {deviation.id} needs a comment")
            if (
                deviation.category == DeviationCategory.IDENTITY
                and deviation.status is DeviationStatus.OPEN
            ):
                missing.append(
                    f"deviation {deviation.id} (identity) must be acknowledged by a supervisor"
                )
        return missing

    def _phase_record(self, phase: PhaseState) -> dict[str, Any]:
        """What a phase signature binds to: each kind's part, and the hashes of its entries."""
        plan = self.procedure.phases[phase.id]
        record: dict[str, Any] = {}
        for kind in phases.KINDS.values():
            part = kind.signed(plan, phase) if kind.signed_as else None
            if part is not None:
                record[str(kind.signed_as)] = part
        record["data"] = list(phase.data)
        return record
