"""The batch as the current-state tables hold it: rows built from the replayed state."""

from __future__ import annotations

from typing import Any

from mes.core.batch.aggregate import Aggregate
from mes.core.batch.machines import (
    BatchStatus,
    PhaseStatus,
)
from mes.core.clock import utc_text


class Projection(Aggregate):
    """The rows of a batch for the store (a part of :class:`~mes.core.batch.Batch`)."""

    def projection(self) -> dict[str, Any]:
        """The batch as the current-state tables hold it (rows as plain dicts).

        The database keeps these rows in step with the ledger; replaying the ledger and calling
        this must give exactly the stored rows.
        """
        s = self.state
        batch = {
            "id": s.id,
            "number": s.number,
            "site": s.site,
            "recipe_code": s.recipe["code"],
            "recipe_version": s.recipe["version"],
            "content_hash": s.recipe["content_hash"],
            "installed_recipe_id": s.recipe.get("installed_id"),
            "chain_of_identity": s.chain_of_identity,
            "status": s.status.value,
            "status_reason": s.status_reason,
            "created_at": s.created_at,
            "created_by": s.created_by.username,
            "started_at": s.started_at,
            "completed_at": s.completed_at,
            "last_seq": s.last_seq,
            "last_hash": s.last_hash,
        }
        phases, values, uses, equipment = [], [], [], []
        current = set(self.current_phases())
        for pid, phase in s.phases.items():
            plan = self.procedure.phases[pid]
            windows = self.timer_windows(pid)
            earliest = max((w["earliest"] for w in windows if w["earliest"]), default=None)
            latest = min((w["latest"] for w in windows if w["latest"]), default=None)
            phases.append(
                {
                    "batch_id": s.id,
                    "phase_id": pid,
                    "position": plan.position,
                    "name": plan.name,
                    "status": phase.status.value,
                    "started_at": phase.started_at,
                    "performed_at": phase.performed_at,
                    "performed_by": phase.performed_by.username if phase.performed_by else None,
                    "verified_at": phase.verified_at,
                    "verified_by": phase.verified_by.username if phase.verified_by else None,
                    "needs_verification": plan.needs_verification,
                    "earliest_start": utc_text(earliest) if earliest else None,
                    "latest_start": utc_text(latest) if latest else None,
                    "corrections": phase.corrections,
                    "current": pid in current,
                    "last_seq": phase.last_seq,
                }
            )
            for value_id, rec in phase.values.items():
                values.append(
                    {
                        "batch_id": s.id,
                        "phase_id": pid,
                        "value_id": value_id,
                        "value": rec.value,
                        "status": rec.status,
                        "entry_seq": rec.seq,
                        "recorded_at": rec.at,
                        "recorded_by": rec.by.username,
                        "corrections": rec.corrections,
                    }
                )
            for code, use in phase.materials.items():
                uses.append(
                    {
                        "batch_id": s.id,
                        "phase_id": pid,
                        "material_code": code,
                        "lot_number": use["lot"],
                        "quantity": use["quantity"],
                        "unit": use["unit"],
                        "entry_seq": use["seq"],
                    }
                )
            for slot, use in phase.equipment.items():
                equipment.append(
                    {
                        "batch_id": s.id,
                        "phase_id": pid,
                        "slot": slot,
                        "equipment_id": use["equipment"],
                        "entry_seq": use["seq"],
                        "in_use": phase.status is PhaseStatus.IN_PROGRESS
                        and s.status in (BatchStatus.IN_PROGRESS, BatchStatus.ON_HOLD),
                    }
                )
        deviations = [
            {
                "id": d.id,
                "batch_id": s.id,
                "number": d.number,
                "phase_id": d.phase,
                "value_id": d.value_id,
                "category": d.category,
                "description": d.description,
                "comment": d.comment,
                "status": d.status.value,
                "raised_at": d.raised_at,
                "raised_by": d.raised_by.username,
                "acknowledged_at": d.acknowledged_at,
                "acknowledged_by": d.acknowledged_by.username if d.acknowledged_by else None,
                "entry_seq": d.seq,
            }
            for d in s.deviations.values()
        ]
        return {
            "batch": batch,
            "phases": phases,
            "values": values,
            "materials": uses,
            "equipment": equipment,
            "deviations": deviations,
        }
