"""Materials: the lot scanned for each material a phase uses, checked before it is recorded.

A lot that is unknown, of another material, rejected, quarantined or expired is refused at the
scan, and the refused scan is kept in the record.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from mes.core.batch.machines import EntryKind
from mes.core.batch.state import LotInfo, Outcome
from mes.core.errors import (
    LotExpired,
    LotQuarantined,
    LotRejected,
    MesError,
    NotFound,
    UnknownLot,
    WrongMaterial,
)
from mes.core.materials import LotStatus
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
from mes.core.phases.words import quantity, quoted
from mes.core.recipe.parts import listed, repeated
from mes.core.recipe.problems import Path

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

    from mes.core.batch import Batch, Operator, PhasePlan, PhaseState
    from mes.core.recipe.checker import PhaseInfo, RecipeChecker


@dataclass(frozen=True)
class MaterialLine:
    """A lot used in a phase."""

    code: str
    name: str
    lot: str
    quantity: str
    expiry: str
    lot_status: str
    by: str
    at_text: str
    css = ""
    changes = ()

    @property
    def text(self) -> str:
        """The lot as the printed record shows it."""
        status = f", {self.lot_status}" if self.lot_status else ""
        return (
            f"Material {self.name} ({self.code}): lot {self.lot}, {self.quantity}, expiry "
            f"{self.expiry}{status} — {self.by}, {self.at_text}"
        )


def use_material(
    batch: Batch,
    phase_id: str,
    material_code: str,
    lot: LotInfo | None,
    scanned: str,
    who: Operator,
    at: datetime,
    terminal: str | None,
    today: date,
) -> Outcome:
    """Record the lot scanned for one of the phase's materials, or refuse it.

    Refused (and the refused scan kept in the record): unknown, of another material,
    rejected, quarantined, expired.
    """
    plan, _phase = batch._in_progress(phase_id)
    batch._performer_checks(plan, who, f"record materials in '{plan.name}'")
    spec = next((m for m in plan.spec["materials"] if m["code"] == material_code), None)
    if spec is None:
        raise NotFound(f"'{plan.name}' uses no material {material_code}.")
    return scanned_or_refused(
        batch,
        phase_id,
        ("material", material_code, lot_refusal(spec, lot, scanned, today)),
        scanned,
        (
            EntryKind.MATERIAL_USED,
            lambda: {
                "phase": phase_id,
                "material": material_code,
                "material_name": spec["name"],
                "lot": lot.lot_number,
                "expiry": lot.expiry.isoformat(),
                "lot_status": lot.status,
                "quantity": spec["quantity"],
                "unit": spec["unit"],
            },
        ),
        who,
        at,
        terminal,
    )


def lot_refusal(spec: Spec, lot: LotInfo | None, scanned: str, today: date) -> MesError | None:
    """Why a scanned lot may not be used for the material ``spec`` (None: it may)."""
    name = f"{spec['name']} ({spec['code']})"
    if lot is None:
        return UnknownLot(
            f"No lot '{scanned.strip()}' is registered at this site.",
            what_to_do=f"Scan the lot label of {name}, or ask for the lot to be registered.",
        )
    if lot.material_code != spec["code"]:
        return WrongMaterial(
            f"Lot {lot.lot_number} is {lot.material_name} ({lot.material_code}), not {name}.",
            what_to_do=f"Take a lot of {name}.",
        )
    if lot.status == LotStatus.REJECTED:
        return LotRejected(
            f"Lot {lot.lot_number} of {name} was rejected by QA.",
            what_to_do="Do not use it; take a released lot.",
        )
    if lot.status != LotStatus.RELEASED:
        return LotQuarantined(
            f"Lot {lot.lot_number} of {name} is in quarantine (not released by QA).",
            what_to_do="Take a released lot, or ask QA.",
        )
    if lot.expiry < today:
        return LotExpired(
            f"Lot {lot.lot_number} of {name} expired on {lot.expiry.isoformat()}.",
            what_to_do="Take a lot within its expiry date.",
        )
    return None


class Materials(Scans):
    """The lots a phase uses: one per material, scanned and checked."""

    key = "materials"
    title = "Materials"
    field = "lot"
    argument = "lots"
    entry_kinds = frozenset({EntryKind.MATERIAL_USED})
    looks_up = "lot"
    on_screen = 30
    compiled_always = True
    signed_as = "materials"
    payload_slot = "material"

    def check(self, checker: RecipeChecker, phase_path: Path, phase: Spec, info: PhaseInfo) -> None:
        """Each material's unit is known and its code listed once (with its total quantity)."""
        codes: set[str] = set()
        for path, material in listed(phase_path, phase, "materials"):
            checker.unit(path, material["unit"], (*path, "unit"))
            if repeated(codes, material["code"]):
                checker.problem(
                    path,
                    f"material {material['code']} is listed twice: give its total quantity once",
                    at=(*path, "code"),
                )

    def compile(self, phase: Spec) -> list[dict[str, Any]]:
        """The phase's materials."""
        return [
            {"code": m["code"], "name": m["name"], "quantity": m["quantity"], "unit": m["unit"]}
            for m in phase.get("materials", [])
        ]

    def recorded(self, phase: PhaseState) -> dict[Any, Any]:
        return phase.materials

    def scan(
        self, batch: Batch, phase_id: str, slot: Hashable, scanned: str, acting: Acting
    ) -> Outcome:
        lot = acting.site.lookup("lot", scanned)
        who, at, terminal = acting.who, acting.at, acting.terminal
        return use_material(
            batch, phase_id, str(slot), lot, scanned, who, at, terminal, acting.site.today
        )

    def touched(self, payload: Mapping[str, Any]) -> str:
        return f"used lot {payload['lot']}"

    def missing(self, batch: Batch, plan: PhasePlan, phase: PhaseState) -> list[str]:
        return [
            Missing(
                f"no lot of {spec['name']} ({spec['code']}) is scanned",
                self.field_key(spec["code"]),
            )
            for spec in self.items(plan.spec)
            if spec["code"] not in phase.materials
        ]

    def signed(self, plan: PhasePlan, phase: PhaseState) -> Any:
        return {c: m["lot"] for c, m in sorted(phase.materials.items())}

    def entry_text(self, batch: Batch, kind: str, payload: Mapping[str, Any]) -> str:
        p = payload
        return (
            f"used lot {p['lot']} of {p['material_name']} ({p['material']}), {p['quantity']} "
            f"{p['unit']}, expiry {p['expiry']}, in {phase_name(batch, p['phase'])}"
        )

    def page(self, batch: Batch, plan: PhasePlan, phase: PhaseState, form: PageForm) -> Items:
        return [
            {
                **item,
                **self.scan_field(form, item["code"]),
                "used": phase.materials.get(item["code"]),
            }
            for item in self.items(plan.spec)
        ]

    def printed(self, batch: Batch, plan: PhasePlan, phase: PhaseState, how: Printing) -> Lines:
        return tuple(
            MaterialLine(
                code=m["material"],
                name=m["material_name"],
                lot=m["lot"],
                quantity=f"{m['quantity']} {m['unit']}",
                expiry=m["expiry"],
                lot_status=m.get("lot_status") or "",
                by=who_text(m["by"]),
                at_text=local_at(m["at"], how.time_zone),
            )
            for _code, m in sorted(phase.materials.items())
        )

    def lines(self, batch: Batch, plan: PhasePlan, phase: PhaseState, zone: str) -> list[str]:
        return [
            f"      Material {use.get('material_name', code)} ({code}): lot {use['lot']}, "
            f"{use['quantity']} {use['unit']}"
            for code, use in phase.materials.items()
        ]

    def in_words(self, phase: dict[str, Any], names: Any) -> None:
        for material in phase[self.key]:
            material["quantity_text"] = f"{quantity(material['quantity'], None)} {material['unit']}"

    def batchml_parameters(self, element: ET.Element, phase: Spec) -> None:
        from mes.core import batchml as bml

        for material in self.items(phase):
            parameter = bml._child(element, "Parameter")
            bml._text(parameter, "ID", material["code"])
            bml._text(parameter, "Description", material["name"])
            bml._text(parameter, "ParameterType", "ProcessInput")
            bml._text(parameter, "ParameterSubType", "material")
            bml._value(
                parameter,
                [bml._number(material["quantity"])],
                "Constant",
                "decimal",
                material["unit"],
            )

    def diff(self, differ: Any, place: Any, before: list[Spec], after: list[Spec]) -> None:
        for old, new in differ.paired(before, after, lambda m: m["code"]):
            material = new or old
            name = f"material '{material['name']}' ({material['code']})"
            amount = quantity(material["quantity"], material["unit"])
            text = f"{place.subject}: {name} {{kind}} ({amount})."
            if whole_item(differ, place, name, old, new, amount, text):
                continue
            differ.simple(place, f"{name} name", f"{name}: name", old["name"], new["name"], quoted)
            differ.value(
                place,
                f"{name} quantity",
                f"{name}: quantity",
                (old["quantity"], old["unit"]),
                (new["quantity"], new["unit"]),
                quantity(old["quantity"], old["unit"]),
                quantity(new["quantity"], new["unit"]),
            )
        differ.order(
            place,
            "materials order",
            "materials",
            before,
            after,
            lambda m: m["code"],
        )
