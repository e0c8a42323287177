"""The procedure as execution needs it: the compiled recipe's phases in order, with their operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.errors import NotFound


def training_procedure(recipe_code: str, version: int) -> str:
    """The training a person needs to execute a recipe version (11.10(i)): 'CODE vN'."""
    return f"{recipe_code} v{version}"


@dataclass(frozen=True)
class PhasePlan:
    """One phase of the recipe with where it sits in the procedure."""

    id: str
    position: int  # 0, 1, 2 … in document order
    spec: Mapping[str, Any]
    unit_procedure: Mapping[str, Any]
    operation: Mapping[str, Any]
    operation_index: int
    waits_for: frozenset[str]  # siblings in an any_order/parallel operation it refers to

    @property
    def name(self) -> str:
        """The phase's title."""
        return str(self.spec["name"])

    @property
    def ordering(self) -> str:
        """The ordering of its operation: sequence, any_order or parallel."""
        return str(self.operation["ordering"])

    @property
    def needs_verification(self) -> bool:
        """Whether a second person verifies it."""
        return self.spec.get("verify") is not None

    def input_spec(self, value_id: str) -> Mapping[str, Any] | None:
        """The declared input ``value_id``, if any."""
        return next((i for i in self.spec["inputs"] if i["id"] == value_id), None)

    def value_spec(self, value_id: str) -> Mapping[str, Any] | None:
        """The declared input or calculation ``value_id``, if any."""
        return self.input_spec(value_id) or next(
            (c for c in self.spec["calculations"] if c["id"] == value_id), None
        )


def _references(spec: Mapping[str, Any]) -> set[str]:
    """Phases a phase refers to: timers, conditions and calculation names ``phase.value``."""
    from mes.core.expressions import parse

    refs = {t["after"] for t in spec["timers"]}
    if spec.get("when"):
        refs.add(spec["when"]["input"].split(".", 1)[0])
    for calc in spec["calculations"]:
        for name in parse(calc["expression"]).names:
            if "." in name:
                refs.add(name.split(".", 1)[0])
    return refs


class Procedure:
    """The compiled recipe's phases in order, with their operations; read-only."""

    def __init__(self, compiled: Mapping[str, Any]) -> None:
        self.compiled = compiled
        self.recipe_code: str = compiled["recipe_code"]
        self.version: int = compiled["version"]
        self.chain_of_identity: list[Mapping[str, Any]] = list(compiled["chain_of_identity"])
        self.phases: dict[str, PhasePlan] = {}
        self.operations: list[list[str]] = []
        position = 0
        for unit in compiled["unit_procedures"]:
            for operation in unit["operations"]:
                ids = [p["id"] for p in operation["phases"]]
                siblings = set(ids)
                for phase in operation["phases"]:
                    waits = (
                        frozenset((_references(phase) & siblings) - {phase["id"]})
                        if operation["ordering"] != "sequence"
                        else frozenset()
                    )
                    self.phases[phase["id"]] = PhasePlan(
                        id=phase["id"],
                        position=position,
                        spec=phase,
                        unit_procedure=unit,
                        operation=operation,
                        operation_index=len(self.operations),
                        waits_for=waits,
                    )
                    position += 1
                self.operations.append(ids)

    def phase(self, phase_id: str) -> PhasePlan:
        """The phase ``phase_id``, or :class:`NotFound`."""
        plan = self.phases.get(phase_id)
        if plan is None:
            raise NotFound(
                f"The recipe {self.recipe_code} v{self.version} has no phase '{phase_id}'."
            )
        return plan

    def coi_spec(self, coi_id: str) -> Mapping[str, Any]:
        """The chain-of-identity identifier ``coi_id``."""
        return next(c for c in self.chain_of_identity if c["id"] == coi_id)

    @property
    def training(self) -> str:
        """The training record people need to execute this recipe version."""
        return training_procedure(self.recipe_code, self.version)
