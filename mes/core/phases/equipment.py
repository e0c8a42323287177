"""Equipment: the instrument scanned for each equipment slot of a phase, checked before use.

An instrument that is unknown, of another class, out of service, not clean, past its
calibration due date or in use by another batch is refused at the scan (the refused scan is
kept). Each use goes into the instrument's logbook too (:mod:`mes.services.batches`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from mes.core.batch.machines import EntryKind
from mes.core.batch.state import EquipmentInfo, Outcome
from mes.core.equipment import EquipmentStatus
from mes.core.errors import (
    CalibrationOverdue,
    EquipmentInUse,
    EquipmentNotClean,
    EquipmentOutOfService,
    MesError,
    NotFound,
    UnknownEquipment,
    WrongEquipmentClass,
)
from mes.core.phases.base import (
    Acting,
    Items,
    Lines,
    Missing,
    PageForm,
    Printing,
    Scans,
    Spec,
    scanned_or_refused,
    whole_item,
)
from mes.core.phases.value_words import local_at, phase_name, who_text
from mes.core.phases.words import quoted
from mes.core.recipe.parts import listed, repeated
from mes.core.recipe.problems import Path
from mes.core.text import whole_number

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

    from mes.core.batch import Batch, Operator, PhasePlan, PhaseState
    from mes.core.recipe.checker import PhaseInfo, RecipeChecker


def equipment_class_title(equipment_class: str) -> str:
    """'fridge_2_8c' → 'fridge 2–8 °C' : a class ID as people say it."""
    special = {"fridge_2_8c": "fridge 2–8 °C", "freezer_minus_80": "freezer −80 °C"}
    return special.get(equipment_class, equipment_class.replace("_", " "))


def equipment_title(spec: Spec) -> str:
    """'cell counter', or the recipe's label for the instrument with its class."""
    title = equipment_class_title(str(spec["class"]))
    return f"{spec['label']} ({title})" if spec.get("label") else title


@dataclass(frozen=True)
class EquipmentLine:
    """An instrument used in a phase, with its calibration state when it was scanned."""

    equipment_class: str
    equipment_id: str
    name: str
    calibration: str
    by: str
    at_text: str
    css = ""
    changes = ()

    @property
    def text(self) -> str:
        """The instrument as the printed record shows it."""
        return (
            f"Equipment {self.equipment_class}: {self.equipment_id} ({self.name}), "
            f"{self.calibration} — {self.by}, {self.at_text}"
        )


def use_equipment(
    batch: Batch,
    phase_id: str,
    slot: int,
    equipment: EquipmentInfo | None,
    scanned: str,
    who: Operator,
    at: datetime,
    terminal: str | None,
    today: date,
) -> Outcome:
    """Record the instrument scanned for one of the phase's equipment slots, or refuse it.

    Refused (and the refused scan kept): unknown, another class, out of service, not clean,
    calibration overdue, in use by another batch.
    """
    plan, _phase = batch._in_progress(phase_id)
    batch._performer_checks(plan, who, f"record equipment in '{plan.name}'")
    slots = plan.spec["equipment"]
    if not 0 <= slot < len(slots):
        raise NotFound(f"'{plan.name}' has no equipment slot {slot + 1}.")
    spec = slots[slot]
    return scanned_or_refused(
        batch,
        phase_id,
        (
            "equipment",
            spec["class"],
            equipment_refusal(spec, equipment, scanned, today, batch.state.number),
        ),
        scanned,
        (
            EntryKind.EQUIPMENT_USED,
            lambda: {
                "phase": phase_id,
                "slot": slot,
                "class": spec["class"],
                "equipment": equipment.equipment_id,
                "equipment_name": equipment.name,
                "calibration_due": equipment.calibration_due.isoformat()
                if equipment.calibration_due
                else None,
            },
        ),
        who,
        at,
        terminal,
    )


def equipment_refusal(
    spec: Spec,
    equipment: EquipmentInfo | None,
    scanned: str,
    today: date,
    batch_number: str,
) -> MesError | None:
    """Why a scanned instrument may not be used in the slot ``spec`` (None: it may)."""
    title = equipment_title(spec)
    if equipment is None:
        return UnknownEquipment(
            f"No instrument '{scanned.strip()}' is registered at this site.",
            what_to_do=f"Scan the ID label of the {title}.",
        )
    label = f"{equipment.equipment_id} ({equipment.name})"
    if equipment.equipment_class != spec["class"]:
        return WrongEquipmentClass(
            f"{label} is a {equipment.equipment_class.replace('_', ' ')}, not a {title}.",
            what_to_do=f"Use a {title}.",
        )
    if equipment.status != EquipmentStatus.IN_SERVICE:
        return EquipmentOutOfService(
            f"{label} is out of service.", what_to_do="Use another instrument of the same class."
        )
    if not equipment.clean:
        return EquipmentNotClean(
            f"{label} is not clean.", what_to_do="Clean it and record the cleaning first."
        )
    if equipment.calibration_due is not None and equipment.calibration_due < today:
        return CalibrationOverdue(
            f"{label} was due for calibration on {equipment.calibration_due.isoformat()}.",
            what_to_do="Use a calibrated instrument; have this one calibrated.",
        )
    if equipment.in_use_by is not None and equipment.in_use_by != batch_number:
        return EquipmentInUse(
            f"{label} is in use by batch {equipment.in_use_by}.",
            what_to_do="Use another instrument, or wait until that phase is done.",
        )
    return None


class Equipment(Scans):
    """The instruments a phase uses: one per slot, by class, scanned and checked."""

    key = "equipment"
    title = "Equipment"
    field = "equipment"
    argument = "equipment"
    entry_kinds = frozenset({EntryKind.EQUIPMENT_USED})
    looks_up = "equipment"
    on_screen = 20
    compiled_always = True
    signed_as = "equipment"
    payload_slot = "slot"

    def check(self, checker: RecipeChecker, phase_path: Path, phase: Spec, info: PhaseInfo) -> None:
        """Two pieces of one equipment class in a phase have different labels."""
        instruments: set[tuple[str, str | None]] = set()
        for path, equipment in listed(phase_path, phase, "equipment"):
            key = (equipment["class"], equipment.get("label"))
            if repeated(instruments, key):
                how = "with the same label" if key[1] else "without a label"
                checker.problem(
                    path,
                    f"equipment '{key[0]}' is listed twice {how}: give each instrument its own label",
                    at=(*path, "class"),
                )

    def compile(self, phase: Spec) -> list[dict[str, Any]]:
        """The phase's equipment."""
        return [{"class": e["class"], "label": e.get("label")} for e in phase.get("equipment", [])]

    def recorded(self, phase: PhaseState) -> dict[Any, Any]:
        return phase.equipment

    def slot(self, name: str) -> Hashable | None:
        return whole_number(name, most=10_000)

    def scan(
        self, batch: Batch, phase_id: str, slot: Hashable, scanned: str, acting: Acting
    ) -> Outcome:
        equipment = acting.site.lookup("equipment", scanned)
        who, at, terminal = acting.who, acting.at, acting.terminal
        return use_equipment(
            batch,
            phase_id,
            int(slot),
            equipment,
            scanned,
            who,
            at,
            terminal,
            acting.site.today,  # type: ignore[call-overload]
        )

    def touched(self, payload: Mapping[str, Any]) -> str:
        return f"used {payload['equipment']}"

    def missing(self, batch: Batch, plan: PhasePlan, phase: PhaseState) -> list[str]:
        return [
            Missing(f"no {equipment_title(spec)} is scanned", self.field_key(slot))
            for slot, spec in enumerate(self.items(plan.spec))
            if slot not in phase.equipment
        ]

    def signed(self, plan: PhasePlan, phase: PhaseState) -> Any:
        return {str(s): e["equipment"] for s, e in sorted(phase.equipment.items())}

    def entry_text(self, batch: Batch, kind: str, payload: Mapping[str, Any]) -> str:
        p = payload
        due = f", calibration due {p['calibration_due']}" if p.get("calibration_due") else ""
        return (
            f"used {p['equipment']} ({p['equipment_name']}){due} in {phase_name(batch, p['phase'])}"
        )

    def page(self, batch: Batch, plan: PhasePlan, phase: PhaseState, form: PageForm) -> Items:
        return [
            {
                "slot": slot,
                "title": equipment_class_title(item["class"]),
                "label": item.get("label"),
                **self.scan_field(form, slot),
                "used": phase.equipment.get(slot),
            }
            for slot, item in enumerate(self.items(plan.spec))
        ]

    def printed(self, batch: Batch, plan: PhasePlan, phase: PhaseState, how: Printing) -> Lines:
        return tuple(
            EquipmentLine(
                equipment_class=equipment_class_title(e["class"]),
                equipment_id=e["equipment"],
                name=e["equipment_name"],
                calibration=f"calibration due {e['calibration_due']}"
                if e.get("calibration_due")
                else "no calibration due date",
                by=who_text(e["by"]),
                at_text=local_at(e["at"], how.time_zone),
            )
            for _slot, e in sorted(phase.equipment.items())
        )

    def lines(self, batch: Batch, plan: PhasePlan, phase: PhaseState, zone: str) -> list[str]:
        return [
            f"      Equipment {use['equipment']} ({use.get('equipment_name', '')})"
            for _slot, use in sorted(phase.equipment.items())
        ]

    def batchml_requirements(self, element: ET.Element, phase: Spec) -> None:
        from mes.core import batchml as bml

        for equipment in self.items(phase):
            requirement = bml._child(element, "EquipmentRequirement")
            bml._text(requirement, "ID", equipment["class"])
            if equipment["label"]:
                bml._text(requirement, "Description", equipment["label"])

    def diff(self, differ: Any, place: Any, before: list[Spec], after: list[Spec]) -> None:
        for old, new in differ.paired(before, after, lambda e: e["class"]):
            item = new or old
            name = f"equipment class '{item['class']}'"
            label = f" ({item['label']})" if item["label"] else ""
            text = f"{place.subject}: {name}{label} {{kind}}."
            if whole_item(differ, place, name, old, new, item["class"], text):
                continue
            differ.simple(
                place, f"{name} label", f"{name}: label", old["label"], new["label"], quoted
            )
        differ.order(
            place,
            "equipment order",
            "equipment",
            before,
            after,
            lambda e: e["class"],
        )
