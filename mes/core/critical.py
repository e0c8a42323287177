"""What a recipe says matters most: critical parameters, milestones and the turnaround target.

A number input (or a calculation) may be marked a critical process parameter, a critical quality
attribute or an in-process control (ICH Q8(R2), Q10); a date-and-time input may name the milestone
of the vein-to-vein timeline it records; the procedure may set the turnaround target, the whole
and per leg. These are read from the COMPILED recipe, where they appear only when declared.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.worded import Worded


class Criticality(Worded):
    """How much a recorded number matters to the product (ICH Q8(R2))."""

    CPP = "cpp", "Critical process parameter"
    CQA = "cqa", "Critical quality attribute"
    IPC = "ipc", "In-process control"


@dataclass(frozen=True)
class Milestone:
    """A point on the vein-to-vein timeline.

    ``source`` is "recipe" when a datetime input of the recipe declares it, "event" when the hub
    derives it from the batch's record (start, completion, release).
    """

    name: str
    title: str
    source: str


RECIPE = "recipe"
EVENT = "event"

MILESTONES: tuple[Milestone, ...] = (
    Milestone("collection_end", "Collection end", RECIPE),
    Milestone("receipt", "Receipt at the spoke", RECIPE),
    Milestone("manufacturing_start", "Manufacturing start", EVENT),  # the batch's started_at
    Milestone("manufacturing_end", "Manufacturing complete", EVENT),  # the batch's completed_at
    Milestone("provisional_certification", "Provisional certification", RECIPE),
    Milestone("dispatch", "Dispatch", RECIPE),
    Milestone("bedside_receipt", "Bedside receipt", RECIPE),
    Milestone("hub_release", "Released by the hub", EVENT),  # the review chain's release
    Milestone("infusion_start", "Infusion start", RECIPE),
)
"""The standard milestones, in vein-to-vein order."""

BEDSIDE_MILESTONES: tuple[str, ...] = ("bedside_receipt", "infusion_start")
"""The milestones the bedside entries record when no datetime input of the recipe does: the
first matching identity check at the bedside, and the infusion's start (where vein to vein
ends) — :func:`mes.core.summary.timeline`."""

RECIPE_MILESTONES: tuple[str, ...] = tuple(m.name for m in MILESTONES if m.source == RECIPE)
"""The milestones a datetime input may declare."""

UNIT_PROCEDURE_END = "up:"
"""Prefix of the point where a unit procedure ends ("up:<unit procedure id>"): an event point."""

CRITICAL_TYPES = ("number", "integer", "calculation")
"""The value types that may carry a criticality."""


def milestone(name: str) -> Milestone | None:
    """The standard milestone ``name`` (None for a unit procedure's end or an unknown name)."""
    return next((m for m in MILESTONES if m.name == name), None)


def point_title(name: str, unit_procedures: Mapping[str, str] | None = None) -> str:
    """A timeline point in words: a milestone's title, or 'End of <unit procedure name>'."""
    known = milestone(name)
    if known is not None:
        return known.title
    if name.startswith(UNIT_PROCEDURE_END):
        unit = name[len(UNIT_PROCEDURE_END) :]
        return f"End of {(unit_procedures or {}).get(unit, unit)}"
    return name


@dataclass(frozen=True)
class CriticalInput:
    """A value the recipe marks critical, with its limits: the key CPV follows across batches."""

    phase_id: str
    value_id: str
    phase_name: str
    label: str
    unit: str | None
    criticality: Criticality
    action_low: float | None
    action_high: float | None
    alert_low: float | None
    alert_high: float | None

    @property
    def parameter(self) -> str:
        """``phase_id.value_id``: the key followed across recipe versions (with the unit)."""
        return f"{self.phase_id}.{self.value_id}"


def _phases(compiled: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for unit in compiled.get("unit_procedures") or ():
        for operation in unit.get("operations") or ():
            yield from operation.get("phases") or ()


def _values(phase: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from phase.get("inputs") or ()
    yield from phase.get("calculations") or ()


def critical_inputs(compiled: Mapping[str, Any]) -> list[CriticalInput]:
    """The values marked critical, in recipe order (a phase's inputs, then its calculations)."""
    found = []
    for phase in _phases(compiled):
        for spec in _values(phase):
            if not spec.get("criticality"):
                continue
            found.append(
                CriticalInput(
                    phase_id=phase["id"],
                    value_id=spec["id"],
                    phase_name=phase["name"],
                    label=spec["label"],
                    unit=spec.get("unit"),
                    criticality=Criticality(spec["criticality"]),
                    action_low=spec.get("action_low"),
                    action_high=spec.get("action_high"),
                    alert_low=spec.get("alert_low"),
                    alert_high=spec.get("alert_high"),
                )
            )
    return found


def milestone_inputs(compiled: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Each milestone a datetime input declares → (phase_id, value_id), in recipe order."""
    found: dict[str, tuple[str, str]] = {}
    for phase in _phases(compiled):
        for spec in phase.get("inputs") or ():
            name = spec.get("milestone")
            if name and name not in found:  # the checker refuses a milestone declared twice
                found[name] = (phase["id"], spec["id"])
    return found


@dataclass(frozen=True)
class Leg:
    """A stretch of the timeline with its own target: from ``start`` to ``end``."""

    start: str
    end: str
    target_hours: float | None


@dataclass(frozen=True)
class Turnaround:
    """The procedure's turnaround target: the whole vein-to-vein time, and per leg.

    The whole runs from collection end to infusion start (a recipe that does not record a
    collection, such as a fill-finish, gives legs only: ``target_hours`` is None).
    """

    target_hours: float | None
    legs: tuple[Leg, ...]


def turnaround_of(compiled: Mapping[str, Any]) -> Turnaround | None:
    """The recipe's turnaround target, or None when it declares none."""
    declared = compiled.get("turnaround")
    if not declared:
        return None
    return Turnaround(
        target_hours=declared.get("target_hours"),
        legs=tuple(
            Leg(leg["from"], leg["to"], leg.get("target_hours"))
            for leg in declared.get("legs") or ()
        ),
    )


def hours_text(hours: float) -> str:
    """336 → '336 h', 12.5 → '12.5 h' (the target as written)."""
    shown = int(hours) if float(hours).is_integer() else hours
    return f"{shown} h"


def turnaround_words(
    turnaround: Turnaround, unit_procedures: Mapping[str, str] | None = None
) -> list[str]:
    """The turnaround target in words: the whole, then each leg ('Collection end → …: 30 h')."""
    lines = []
    if turnaround.target_hours is not None:
        lines.append(f"Vein to vein: {hours_text(turnaround.target_hours)}")
    for leg in turnaround.legs:
        start = point_title(leg.start, unit_procedures)
        end = point_title(leg.end, unit_procedures)
        target = "no target" if leg.target_hours is None else hours_text(leg.target_hours)
        lines.append(f"{start} → {end}: {target}")
    return lines
