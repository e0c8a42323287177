"""What an operator records in a phase in progress, and what the phase needs before it is signed.

Each phase kind (:mod:`mes.core.phases`) records its own entries — values and calculations, lots,
instruments, identity labels — checked and kept as ledger entries (a refused scan too). This part
of the batch walks the kinds: :meth:`Recording.record` for a submitted form,
:meth:`Recording.missing_for_performance` before a performed signature, and the phase record
that signature binds to.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import date, datetime
from typing import Any

from mes.core import phases
from mes.core.audit import Actor
from mes.core.batch.aggregate import Aggregate
from mes.core.batch.machines import DeviationCategory, DeviationStatus, EntryKind
from mes.core.batch.plan import PhasePlan
from mes.core.batch.state import EquipmentInfo, LotInfo, Operator, Outcome, PhaseState
from mes.core.errors import MesError
from mes.core.phases.equipment import equipment_class_title, use_equipment
from mes.core.phases.identity import check_identity
from mes.core.phases.materials import use_material
from mes.core.phases.values import calculate_all, calculation_problem, record_one, record_values

__all__ = ["Recording", "equipment_class_title"]


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
        refused is kept in the record; its refusal is returned for its form field.
        """
        refusals: dict[str, MesError] = {}
        for kind in phases.KINDS.values():
            refusals.update(kind.record(self, phase_id, data, who, at, terminal, site))  # type: ignore[arg-type]
        return refusals

    # -- each kind's action by name (for callers that know the kind) ------------------------------

    def record_values(
        self,
        phase_id: str,
        raw: Mapping[str, Any],
        who: Operator,
        at: datetime,
        terminal: str | None,
        comments: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Record values entered in a phase in progress (:func:`mes.core.phases.values.record_values`)."""
        return record_values(self, phase_id, raw, who, at, terminal, comments)  # type: ignore[arg-type]

    def use_material(
        self,
        phase_id: str,
        material_code: str,
        lot: LotInfo | None,
        scanned: str,
        who: Operator,
        at: datetime,
        terminal: str | None,
        today: date,
    ) -> Outcome:
        """Record or refuse a lot scanned (:func:`mes.core.phases.materials.use_material`)."""
        return use_material(self, phase_id, material_code, lot, scanned, who, at, terminal, today)  # type: ignore[arg-type]

    def use_equipment(
        self,
        phase_id: str,
        slot: int,
        equipment: EquipmentInfo | None,
        scanned: str,
        who: Operator,
        at: datetime,
        terminal: str | None,
        today: date,
    ) -> Outcome:
        """Record or refuse an instrument scanned (:func:`mes.core.phases.equipment.use_equipment`)."""
        return use_equipment(self, phase_id, slot, equipment, scanned, who, at, terminal, today)  # type: ignore[arg-type]

    def check_identity(
        self,
        phase_id: str,
        check_id: str,
        scanned: str,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> Outcome:
        """Compare a label with the chain of identity (:func:`mes.core.phases.identity.check_identity`)."""
        return check_identity(self, phase_id, check_id, scanned, who, at, terminal)  # type: ignore[arg-type]

    def calculation_problem(self, phase_id: str, calc_id: str) -> str | None:
        """Why a calculation whose values are all recorded cannot be worked out (e.g. ÷ 0)."""
        return calculation_problem(self, phase_id, calc_id)  # type: ignore[arg-type]

    def _record_one(
        self,
        plan: PhasePlan,
        value_id: str,
        value: Any,
        actor: Actor,
        at: datetime,
        terminal: str | None,
        comments: Mapping[str, str],
        **how: Any,
    ) -> None:
        record_one(self, plan, value_id, value, actor, at, terminal, comments, **how)  # type: ignore[arg-type]

    def _calculate(
        self,
        plan: PhasePlan,
        actor: Actor,
        at: datetime,
        terminal: str | None,
        comments: Mapping[str, str],
        *,
        correcting: str | None = None,
    ) -> None:
        calculate_all(self, plan, actor, at, terminal, comments, correcting=correcting)  # type: ignore[arg-type]

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
