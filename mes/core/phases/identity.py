"""Identity checks: a label scanned and compared with the batch's chain of identity.

A label that does not match raises a deviation and blocks the phase until a supervisor
acknowledges it; an unreadable one (a typing error, a torn label) is refused and kept, without a
deviation — it is not evidence of another patient.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mes.core.batch.machines import DeviationCategory, EntryKind
from mes.core.batch.state import Outcome
from mes.core.errors import IdentityMismatch, NotFound
from mes.core.identity import InvalidDin, parse_din, scan_matches
from mes.core.limits import InvalidValue
from mes.core.phases.base import (
    Acting,
    Items,
    Lines,
    Missing,
    PageForm,
    Printing,
    Scans,
    Spec,
    whole_item,
)
from mes.core.phases.value_words import local_at, phase_name, who_text
from mes.core.phases.words import quoted
from mes.core.recipe.items import items_of
from mes.core.recipe.parts import listed, repeated
from mes.core.recipe.problems import Path

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

    from mes.core.batch import Batch, Operator, PhasePlan, PhaseState
    from mes.core.recipe.checker import PhaseInfo, RecipeChecker


@dataclass(frozen=True)
class IdentityLine:
    """A label scanned against the chain of identity."""

    label: str
    scanned: str
    expected: str
    matches: bool
    by: str
    at_text: str
    changes = ()

    @property
    def text(self) -> str:
        """The scan as the printed record shows it."""
        verdict = "matches" if self.matches else "DOES NOT MATCH"
        return (
            f"Identity {self.label}: scanned '{self.scanned}' {verdict} the {self.expected} — "
            f"{self.by}, {self.at_text}"
        )

    @property
    def css(self) -> str:
        """A mismatch stands out in the printed record."""
        return "" if self.matches else " st-action"


def check_identity(
    batch: Batch,
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
    plan, _phase = batch._in_progress(phase_id)
    batch._performer_checks(plan, who, f"scan labels in '{plan.name}'")
    spec = next((c for c in plan.spec["identity_checks"] if c["id"] == check_id), None)
    if spec is None:
        raise NotFound(f"'{plan.name}' has no identity check '{check_id}'.")
    text = (scanned or "").strip()
    if not text:
        raise InvalidValue(f"{spec['label']}: nothing was scanned.", what_to_do="Scan the label.")
    coi = batch.procedure.coi_spec(spec["matches"])
    expected = batch.state.chain_of_identity[spec["matches"]]
    mark = len(batch.new_entries)
    if coi["kind"] == "isbt128_din":
        try:
            parse_din(text)
        except InvalidDin as err:
            # Unreadable (a typing error, a torn label): not evidence of another patient.
            # The refused scan is kept; the operator scans or types it again.
            unreadable = InvalidValue(f"{spec['label']}: {err.message}", what_to_do=err.what_to_do)
            batch._refused(phase_id, "identity", check_id, text, unreadable, who, at, terminal)
            return Outcome(tuple(batch.new_entries[mark:]), unreadable)
    match = scan_matches(coi["kind"], expected, text)
    batch._append(
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
        return Outcome(tuple(batch.new_entries[mark:]))
    batch._raise_deviation(
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
    return Outcome(tuple(batch.new_entries[mark:]), refusal)


class IdentityChecks(Scans):
    """Labels the operator scans against the chain of identity (bag, patient wristband…)."""

    key = "identity_checks"
    title = "Chain of identity"
    field = "identity"
    argument = "identity"
    entry_kinds = frozenset({EntryKind.IDENTITY_CHECKED})
    on_screen = 10
    compiled_always = True
    signed_as = "identity"
    payload_slot = "check"

    def check(self, checker: RecipeChecker, phase_path: Path, phase: Spec, info: PhaseInfo) -> None:
        """Identity check IDs are unique in the phase; each matches a chain-of-identity field."""
        seen: set[str] = set()
        for path, check in listed(phase_path, phase, "identity_checks"):
            if repeated(seen, check["id"]):
                checker.problem(
                    path, f"duplicate identity check ID '{check['id']}'", at=(*path, "id")
                )
            declared = [f.id for f in items_of(checker.data["chain_of_identity"])]
            if check["matches"] not in declared:
                known = ", ".join(declared)
                checker.problem(
                    path,
                    f"'{check['matches']}' is not in the chain of identity (declared: {known})",
                    at=(*path, "matches"),
                )

    def compile(self, phase: Spec) -> list[dict[str, Any]]:
        """The phase's identity checks."""
        return [
            {"id": c["id"], "label": c["label"], "matches": c["matches"]}
            for c in phase.get("identity_checks", [])
        ]

    def recorded(self, phase: PhaseState) -> dict[Any, Any]:
        return phase.identity

    def scan(
        self, batch: Batch, phase_id: str, slot: Hashable, scanned: str, acting: Acting
    ) -> Outcome:
        who, at, terminal = acting.who, acting.at, acting.terminal
        return check_identity(batch, phase_id, str(slot), scanned, who, at, terminal)

    def touched(self, payload: Mapping[str, Any]) -> str:
        return "scanned " + payload["check"]

    def missing(self, batch: Batch, plan: PhasePlan, phase: PhaseState) -> list[str]:
        missing = []
        for spec in self.items(plan.spec):
            scan = phase.identity.get(spec["id"])
            if scan is None:
                missing.append(
                    Missing(f"{spec['label']} is not scanned", self.field_key(spec["id"]))
                )
            elif not scan["match"]:
                missing.append(f"{spec['label']} did not match: scan the right label")
        return missing

    def signed(self, plan: PhasePlan, phase: PhaseState) -> Any:
        return {c: i["match"] for c, i in sorted(phase.identity.items())}

    def entry_text(self, batch: Batch, kind: str, payload: Mapping[str, Any]) -> str:
        p = payload
        result = "matches" if p["match"] else "DOES NOT MATCH"
        return (
            f"scanned '{p['scanned']}' for {p['check']} in {phase_name(batch, p['phase'])}: "
            f"{result} the chain of identity ({p['matches']})"
        )

    def page(self, batch: Batch, plan: PhasePlan, phase: PhaseState, form: PageForm) -> Items:
        return [
            {
                **item,
                **self.scan_field(form, item["id"]),
                "scan": phase.identity.get(item["id"]),
                "expected": batch.procedure.coi_spec(item["matches"])["label"],
            }
            for item in self.items(plan.spec)
        ]

    def printed(self, batch: Batch, plan: PhasePlan, phase: PhaseState, how: Printing) -> Lines:
        checks = {c["id"]: c for c in self.items(plan.spec)}
        return tuple(
            IdentityLine(
                label=checks.get(check, {}).get("label", check),
                scanned=scan["scanned"],
                expected=batch.procedure.coi_spec(scan["matches"])["label"],
                matches=bool(scan["match"]),
                by=who_text(scan["by"]),
                at_text=local_at(scan["at"], how.time_zone),
            )
            for check, scan in phase.identity.items()
        )

    def lines(self, batch: Batch, plan: PhasePlan, phase: PhaseState, zone: str) -> list[str]:
        checks = {c["id"]: c for c in self.items(plan.spec)}
        lines = []
        for check_id, scan in phase.identity.items():
            label = checks.get(check_id, {}).get("label", check_id)
            verdict = "matches" if scan.get("match") else "DOES NOT MATCH"
            lines.append(f"      {label}: scanned {scan['scanned']} — {verdict}")
        return lines

    def in_words(self, phase: dict[str, Any], names: Any) -> None:
        phase["identity_check_texts"] = [
            f"Scan '{check['label']}' — must match "
            f"{names.identity.get(check['matches'], check['matches'])}"
            for check in phase[self.key]
        ]

    def batchml_information(self, element: ET.Element, phase: Spec) -> None:
        from mes.core import batchml as bml

        for check in self.items(phase):
            bml._information(
                element,
                f"identity_check.{check['id']}",
                [check["matches"]],
                description=check["label"],
                interpretation="Reference",
            )

    def diff(self, differ: Any, place: Any, before: list[Spec], after: list[Spec]) -> None:
        for old, new in differ.paired(before, after, lambda c: c["id"]):
            check = new or old
            name = f"identity check '{check['label']}'"
            shown = f"against {differ.identity_field(check['matches'])}"
            if whole_item(
                differ, place, name, old, new, shown, f"{place.subject}: {name} {{kind}} ({shown})."
            ):
                continue
            differ.simple(
                place, f"{name} label", f"{name}: label", old["label"], new["label"], quoted
            )
            differ.simple(
                place,
                f"{name} matches",
                f"{name}: checked against",
                old["matches"],
                new["matches"],
                differ.identity_field,
            )
        differ.order(
            place,
            "identity_checks order",
            "identity checks",
            before,
            after,
            lambda c: c["id"],
            lambda c: quoted(c["label"]) or "",
        )
