"""The batch's current state, typed: what the current-state tables keep, built from the replay.

The store turns it into rows (:func:`mes.store.batches.projection`); the core names no table or
column. Replaying the ledger and taking the projection must give exactly what is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mes.core.audit import Actor
from mes.core.batch.aggregate import Aggregate
from mes.core.batch.machines import BatchStatus, DeviationStatus, PhaseStatus


@dataclass(frozen=True)
class ValueProjection:
    """A value recorded in a phase, as it stands (after any corrections)."""

    value_id: str
    value: Any
    status: str | None  # its limit class (within, alert, action), if it has limits
    entry_seq: int
    recorded_at: str
    recorded_by: Actor
    corrections: int


@dataclass(frozen=True)
class LotUse:
    """A lot of a material used in a phase."""

    material_code: str
    lot_number: str
    quantity: Any
    unit: str
    entry_seq: int


@dataclass(frozen=True)
class InstrumentUse:
    """An instrument used in a phase's slot; in use while the phase is in progress."""

    slot: int
    equipment_id: str
    entry_seq: int
    in_use: bool


@dataclass(frozen=True)
class PhaseProjection:
    """A phase as it stands: its status and signers, its timer window, what it recorded."""

    phase_id: str
    position: int
    name: str
    status: PhaseStatus
    started_at: str | None
    performed_at: str | None
    performed_by: Actor | None
    verified_at: str | None
    verified_by: Actor | None
    needs_verification: bool
    earliest_start: datetime | None  # the latest of its timers' minimums, if any
    latest_start: datetime | None  # the earliest of its timers' maximums, if any
    corrections: int
    current: bool  # what operators work on now (Batch.current_phases)
    last_seq: int
    values: tuple[ValueProjection, ...]
    lots: tuple[LotUse, ...]
    instruments: tuple[InstrumentUse, ...]


@dataclass(frozen=True)
class DeviationProjection:
    """A deviation as it stands."""

    id: str
    number: int
    phase_id: str | None
    value_id: str | None
    category: str
    description: str
    comment: str | None
    status: DeviationStatus
    raised_at: str
    raised_by: Actor
    acknowledged_at: str | None
    acknowledged_by: Actor | None
    entry_seq: int


@dataclass(frozen=True)
class BatchProjection:
    """The batch as it stands, with its phases in recipe order and its deviations."""

    id: str
    number: str
    site: str
    recipe_code: str
    recipe_version: int
    content_hash: str
    installed_recipe_id: str | None  # the installed recipe row at the site that made it
    chain_of_identity: dict[str, Any]
    status: BatchStatus
    status_reason: str | None
    created_at: str
    created_by: Actor
    started_at: str | None
    completed_at: str | None
    last_seq: int
    last_hash: str
    phases: tuple[PhaseProjection, ...]
    deviations: tuple[DeviationProjection, ...]


class Projection(Aggregate):
    """The batch's typed current state (a part of :class:`~mes.core.batch.Batch`)."""

    def projection(self) -> BatchProjection:
        """The batch as the current-state tables hold it, typed (the store builds the rows).

        Replaying the ledger and calling this must give exactly what is stored.
        """
        s = self.state
        running = s.status in (BatchStatus.IN_PROGRESS, BatchStatus.ON_HOLD)
        current = set(self.current_phases())
        phases = []
        for pid, phase in s.phases.items():
            plan = self.procedure.phases[pid]
            windows = self.timer_windows(pid)
            in_progress = phase.status is PhaseStatus.IN_PROGRESS
            phases.append(
                PhaseProjection(
                    phase_id=pid,
                    position=plan.position,
                    name=plan.name,
                    status=phase.status,
                    started_at=phase.started_at,
                    performed_at=phase.performed_at,
                    performed_by=phase.performed_by,
                    verified_at=phase.verified_at,
                    verified_by=phase.verified_by,
                    needs_verification=plan.needs_verification,
                    earliest_start=max(
                        (w["earliest"] for w in windows if w["earliest"]), default=None
                    ),
                    latest_start=min((w["latest"] for w in windows if w["latest"]), default=None),
                    corrections=phase.corrections,
                    current=pid in current,
                    last_seq=phase.last_seq,
                    values=tuple(
                        ValueProjection(
                            value_id=value_id,
                            value=rec.value,
                            status=rec.status,
                            entry_seq=rec.seq,
                            recorded_at=rec.at,
                            recorded_by=rec.by,
                            corrections=rec.corrections,
                        )
                        for value_id, rec in phase.values.items()
                    ),
                    lots=tuple(
                        LotUse(
                            material_code=code,
                            lot_number=use["lot"],
                            quantity=use["quantity"],
                            unit=use["unit"],
                            entry_seq=use["seq"],
                        )
                        for code, use in phase.materials.items()
                    ),
                    instruments=tuple(
                        InstrumentUse(
                            slot=slot,
                            equipment_id=use["equipment"],
                            entry_seq=use["seq"],
                            in_use=in_progress and running,
                        )
                        for slot, use in phase.equipment.items()
                    ),
                )
            )
        deviations = tuple(
            DeviationProjection(
                id=d.id,
                number=d.number,
                phase_id=d.phase,
                value_id=d.value_id,
                category=d.category,
                description=d.description,
                comment=d.comment,
                status=d.status,
                raised_at=d.raised_at,
                raised_by=d.raised_by,
                acknowledged_at=d.acknowledged_at,
                acknowledged_by=d.acknowledged_by,
                entry_seq=d.seq,
            )
            for d in s.deviations.values()
        )
        return BatchProjection(
            id=s.id,
            number=s.number,
            site=s.site,
            recipe_code=s.recipe["code"],
            recipe_version=s.recipe["version"],
            content_hash=s.recipe["content_hash"],
            installed_recipe_id=s.recipe.get("installed_id"),
            chain_of_identity=s.chain_of_identity,
            status=s.status,
            status_reason=s.status_reason,
            created_at=s.created_at,
            created_by=s.created_by,
            started_at=s.started_at,
            completed_at=s.completed_at,
            last_seq=s.last_seq,
            last_hash=s.last_hash,
            phases=tuple(phases),
            deviations=deviations,
        )
