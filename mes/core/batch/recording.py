"""What an operator records in a phase in progress, and what the phase needs before it is signed.

Values and calculations, lots, instruments and identity labels: each checked and kept as a ledger
entry (a refused scan too).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from mes.core.audit import Actor
from mes.core.batch.aggregate import Aggregate
from mes.core.batch.machines import (
    DeviationCategory,
    DeviationStatus,
    EntryKind,
)
from mes.core.batch.plan import PhasePlan
from mes.core.batch.state import (
    EquipmentInfo,
    LotInfo,
    Operator,
    Outcome,
    PhaseState,
)
from mes.core.errors import (
    CalibrationOverdue,
    EquipmentInUse,
    EquipmentNotClean,
    EquipmentOutOfService,
    IdentityMismatch,
    InvalidInput,
    LotExpired,
    LotQuarantined,
    LotRejected,
    MesError,
    NotFound,
    UnknownEquipment,
    UnknownLot,
    WrongEquipmentClass,
    WrongMaterial,
)
from mes.core.identity import InvalidDin, parse_din, scan_matches
from mes.core.limits import (
    InvalidValue,
    LimitStatus,
    calculate,
    limit_status,
    limits_text,
    numeric,
    parse_value,
)
from mes.core.text import free_text


class Recording(Aggregate):
    """The recording actions of a phase in progress (a part of :class:`~mes.core.batch.Batch`)."""

    def record_values(
        self,
        phase_id: str,
        raw: Mapping[str, Any],
        who: Operator,
        at: datetime,
        terminal: str | None,
        comments: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Record the values entered for a phase in progress (unchanged ones are not re-recorded).

        Every value is checked for its type first; if any is malformed nothing is recorded and
        :class:`InvalidValue` lists them all. A value outside its action limits is recorded as
        entered and raises a deviation; a comment given with it is attached at once. The
        phase's calculations are worked out when the values they need are there.
        """
        plan, phase = self._in_progress(phase_id)
        self._performer_checks(plan, who, f"record values in '{plan.name}'")
        parsed: dict[str, Any] = {}
        problems: dict[str, str] = {}
        comments = self._comments(plan, comments or {}, problems)
        for spec in plan.spec["inputs"]:
            if spec["id"] not in raw:
                continue
            entered = raw[spec["id"]]
            if (entered is None or entered == "") and spec["id"] not in phase.values:
                continue  # left empty and never recorded: nothing to record yet
            try:
                parsed[spec["id"]] = parse_value(
                    {**spec, "required": True}, entered, at=at, time_zone=self.time_zone
                )
            except InvalidInput as err:
                problems[spec["id"]] = str(err)
        for unknown in sorted(set(raw) - {s["id"] for s in plan.spec["inputs"]}):
            problems[unknown] = f"'{plan.name}' has no input '{unknown}'."
        if problems:
            raise InvalidValue(
                " ".join(problems.values()),
                what_to_do="Nothing was recorded: correct the values shown and save again.",
                fields=problems,
            )
        mark = len(self.new_entries)
        for value_id, value in parsed.items():
            current = phase.values.get(value_id)
            if current is not None and current.value == value:
                continue
            self._record_one(plan, value_id, value, who.actor, at, terminal, comments)
        self._calculate(plan, who.actor, at, terminal, comments)
        return Outcome(tuple(self.new_entries[mark:]))

    def _record_one(
        self,
        plan: PhasePlan,
        value_id: str,
        value: Any,
        actor: Actor,
        at: datetime,
        terminal: str | None,
        comments: Mapping[str, str],
        *,
        kind: EntryKind = EntryKind.VALUE_RECORDED,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        spec = plan.value_spec(value_id)
        assert spec is not None
        status = None
        if spec["type"] in ("number", "integer", "calculation") and value is not None:
            status = limit_status(value, spec).value
        payload = {
            "phase": plan.id,
            "value": value_id,
            "recorded": value,
            "unit": spec.get("unit"),
            "status": status,
            **(extra or {}),
        }
        self._append(kind, payload, actor, at, terminal)
        if status == LimitStatus.ACTION.value:
            unit = f" {spec['unit']}" if spec.get("unit") else ""
            deviation = self._raise_deviation(
                DeviationCategory.ACTION_LIMIT,
                f"{spec['label']} {value}{unit} is outside the action limits "
                f"({limits_text(spec)}).",
                actor,
                at,
                terminal,
                plan.id,
                value_id,
            )
            comment = comments.get(value_id)
            if comment:
                self._append(
                    EntryKind.DEVIATION_COMMENTED,
                    {"deviation": deviation, "comment": comment},
                    actor,
                    at,
                    terminal,
                )

    @staticmethod
    def _comments(
        plan: PhasePlan, comments: Mapping[str, str], problems: dict[str, str]
    ) -> dict[str, str]:
        """The comments given with values, as kept; one too long is a problem, never cut."""
        labels = {spec["id"]: spec["label"] for spec in plan.spec["inputs"]}
        kept = {}
        for value_id, comment in comments.items():
            try:
                kept[value_id] = free_text(
                    comment, f"{labels.get(value_id, value_id)}: the comment"
                )
            except InvalidInput as err:
                problems[value_id] = str(err)
        return kept

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
        """Work out every calculation of the phase whose values are all recorded (in order)."""
        phase = self.state.phases[plan.id]
        for spec in plan.spec["calculations"]:
            values = self._calculation_inputs(plan, spec)
            if values is None:
                continue
            try:
                value = calculate(spec, values)
            except InvalidValue:
                continue  # shown to the operator as "cannot be calculated" (see calculation_problem)
            current = phase.values.get(spec["id"])
            if current is not None and current.value == value:
                continue
            extra = {"from": dict(sorted(values.items())), "expression": spec["expression"]}
            if correcting is not None and current is not None:
                extra["corrects"] = current.seq
                extra["reason"] = correcting
            self._record_one(
                plan, spec["id"], value, actor, at, terminal, comments,
                kind=EntryKind.CALCULATED, extra=extra,
            )  # fmt: skip

    def _calculation_inputs(
        self, plan: PhasePlan, spec: Mapping[str, Any]
    ) -> dict[str, float] | None:
        from mes.core.expressions import parse

        values: dict[str, float] = {}
        for name in parse(spec["expression"]).names:
            phase_id, _, value_id = name.rpartition(".")
            source = self.state.phases[phase_id or plan.id]
            recorded = source.values.get(value_id)
            number = numeric(recorded.value) if recorded is not None else None
            if number is None:
                return None
            values[name] = number
        return values

    def calculation_problem(self, phase_id: str, calc_id: str) -> str | None:
        """Why a calculation whose values are all recorded cannot be worked out (e.g. ÷ 0)."""
        plan = self.procedure.phase(phase_id)
        spec = next(c for c in plan.spec["calculations"] if c["id"] == calc_id)
        values = self._calculation_inputs(plan, spec)
        if values is None:
            return None
        try:
            calculate(spec, values)
        except InvalidValue as err:
            return err.message
        return None

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
        """Record the lot scanned for one of the phase's materials, or refuse it.

        Refused (and the refused scan kept in the record): unknown, of another material,
        rejected, quarantined, expired.
        """
        plan, _phase = self._in_progress(phase_id)
        self._performer_checks(plan, who, f"record materials in '{plan.name}'")
        spec = next((m for m in plan.spec["materials"] if m["code"] == material_code), None)
        if spec is None:
            raise NotFound(f"'{plan.name}' uses no material {material_code}.")
        mark = len(self.new_entries)
        refusal = _lot_refusal(spec, lot, scanned, today)
        if refusal is not None:
            self._refused(phase_id, "material", material_code, scanned, refusal, who, at, terminal)
            return Outcome(tuple(self.new_entries[mark:]), refusal)
        assert lot is not None
        self._append(
            EntryKind.MATERIAL_USED,
            {
                "phase": phase_id,
                "material": material_code,
                "material_name": spec["name"],
                "lot": lot.lot_number,
                "expiry": lot.expiry.isoformat(),
                "lot_status": lot.status,
                "quantity": spec["quantity"],
                "unit": spec["unit"],
            },
            who.actor,
            at,
            terminal,
        )
        return Outcome(tuple(self.new_entries[mark:]))

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
        """Record the instrument scanned for one of the phase's equipment slots, or refuse it.

        Refused (and the refused scan kept): unknown, another class, out of service, not clean,
        calibration overdue, in use by another batch.
        """
        plan, _phase = self._in_progress(phase_id)
        self._performer_checks(plan, who, f"record equipment in '{plan.name}'")
        slots = plan.spec["equipment"]
        if not 0 <= slot < len(slots):
            raise NotFound(f"'{plan.name}' has no equipment slot {slot + 1}.")
        spec = slots[slot]
        mark = len(self.new_entries)
        refusal = _equipment_refusal(spec, equipment, scanned, today, self.state.number)
        if refusal is not None:
            self._refused(phase_id, "equipment", spec["class"], scanned, refusal, who, at, terminal)
            return Outcome(tuple(self.new_entries[mark:]), refusal)
        assert equipment is not None
        self._append(
            EntryKind.EQUIPMENT_USED,
            {
                "phase": phase_id,
                "slot": slot,
                "class": spec["class"],
                "equipment": equipment.equipment_id,
                "equipment_name": equipment.name,
                "calibration_due": equipment.calibration_due.isoformat()
                if equipment.calibration_due
                else None,
            },
            who.actor,
            at,
            terminal,
        )
        return Outcome(tuple(self.new_entries[mark:]))

    def check_identity(
        self,
        phase_id: str,
        check_id: str,
        scanned: str,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> Outcome:
        """Compare a scanned label with the chain of identity.

        A mismatch is recorded, raises a deviation and blocks the phase until a supervisor
        acknowledges it (the refusal is returned for the caller to report after keeping the
        entries).
        """
        plan, _phase = self._in_progress(phase_id)
        self._performer_checks(plan, who, f"scan labels in '{plan.name}'")
        spec = next((c for c in plan.spec["identity_checks"] if c["id"] == check_id), None)
        if spec is None:
            raise NotFound(f"'{plan.name}' has no identity check '{check_id}'.")
        text = (scanned or "").strip()
        if not text:
            raise InvalidValue(
                f"{spec['label']}: nothing was scanned.", what_to_do="Scan the label."
            )
        coi = self.procedure.coi_spec(spec["matches"])
        expected = self.state.chain_of_identity[spec["matches"]]
        mark = len(self.new_entries)
        if coi["kind"] == "isbt128_din":
            try:
                parse_din(text)
            except InvalidDin as err:
                # Unreadable (a typing error, a torn label): not evidence of another patient.
                # The refused scan is kept; the operator scans or types it again.
                unreadable = InvalidValue(
                    f"{spec['label']}: {err.message}", what_to_do=err.what_to_do
                )
                self._refused(phase_id, "identity", check_id, text, unreadable, who, at, terminal)
                return Outcome(tuple(self.new_entries[mark:]), unreadable)
        match = scan_matches(coi["kind"], expected, text)
        self._append(
            EntryKind.IDENTITY_CHECKED,
            {
                "phase": phase_id,
                "check": check_id,
                "matches": spec["matches"],
                "scanned": text[:200],
                "match": match,
            },
            who.actor,
            at,
            terminal,
        )
        if match:
            return Outcome(tuple(self.new_entries[mark:]))
        self._raise_deviation(
            DeviationCategory.IDENTITY,
            f"{spec['label']}: the label scanned ('{text[:80]}') does not match the batch's "
            f"{coi['label']}.",
            who.actor,
            at,
            terminal,
            phase_id,
        )
        refusal = IdentityMismatch(
            f"{spec['label']} does not match this batch's chain of identity. A deviation was "
            "raised and the phase is blocked.",
            what_to_do="Stop. Do not use the material. Quarantine it and call the supervisor.",
        )
        return Outcome(tuple(self.new_entries[mark:]), refusal)

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

    def missing_for_performance(self, phase_id: str) -> list[str]:
        """What the phase still needs before it can be signed as performed, in words."""
        plan = self.procedure.phase(phase_id)
        phase = self.state.phases[phase_id]
        missing = []
        for spec in plan.spec["inputs"]:
            if spec["required"] and spec["id"] not in phase.values:
                missing.append(f"{spec['label']} is not recorded")
        for spec in plan.spec["calculations"]:
            # Asked even when a value is recorded: a calculation that fails on the values now
            # recorded keeps its earlier result, which no longer follows from them.
            problem = self.calculation_problem(phase_id, spec["id"])
            if problem:
                missing.append(f"{spec['label']} cannot be calculated ({problem})")
            elif spec["id"] not in phase.values:
                missing.append(f"{spec['label']} is not calculated yet")
        for spec in plan.spec["materials"]:
            if spec["code"] not in phase.materials:
                missing.append(f"no lot of {spec['name']} ({spec['code']}) is scanned")
        for slot, spec in enumerate(plan.spec["equipment"]):
            if slot not in phase.equipment:
                missing.append(f"no {_equipment_title(spec)} is scanned")
        for spec in plan.spec["identity_checks"]:
            scan = phase.identity.get(spec["id"])
            if scan is None:
                missing.append(f"{spec['label']} is not scanned")
            elif not scan["match"]:
                missing.append(f"{spec['label']} did not match: scan the right label")
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
        return {
            "values": {vid: rec.value for vid, rec in sorted(phase.values.items())},
            "materials": {c: m["lot"] for c, m in sorted(phase.materials.items())},
            "equipment": {str(s): e["equipment"] for s, e in sorted(phase.equipment.items())},
            "identity": {c: i["match"] for c, i in sorted(phase.identity.items())},
            "data": list(phase.data),
        }


def _equipment_title(spec: Mapping[str, Any]) -> str:
    """'cell counter', or the recipe's label for the instrument with its class."""
    title = equipment_class_title(str(spec["class"]))
    return f"{spec['label']} ({title})" if spec.get("label") else title


def equipment_class_title(equipment_class: str) -> str:
    """'fridge_2_8c' → 'fridge 2–8 °C' : a class ID as people say it."""
    special = {"fridge_2_8c": "fridge 2–8 °C", "freezer_minus_80": "freezer −80 °C"}
    return special.get(equipment_class, equipment_class.replace("_", " "))


def _lot_refusal(
    spec: Mapping[str, Any], lot: LotInfo | None, scanned: str, today: date
) -> MesError | None:
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
    if lot.status == "rejected":
        return LotRejected(
            f"Lot {lot.lot_number} of {name} was rejected by QA.",
            what_to_do="Do not use it; take a released lot.",
        )
    if lot.status != "released":
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


def _equipment_refusal(
    spec: Mapping[str, Any],
    equipment: EquipmentInfo | None,
    scanned: str,
    today: date,
    batch_number: str,
) -> MesError | None:
    title = _equipment_title(spec)
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
    if equipment.status != "in_service":
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
