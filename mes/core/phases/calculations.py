"""Calculations: values worked out from others with a declared expression (never ``eval``).

A calculation is worked out, in the recipe's order, as soon as every value it names is recorded,
and again after a correction (the new result names the correction's reason); one that cannot be
worked out on the values now recorded (a division by zero) blocks the signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mes.core import expressions
from mes.core.audit import Actor
from mes.core.batch.machines import EntryKind
from mes.core.limits import (
    InvalidValue,
    calculate,
    limits_text,
    numeric,
)
from mes.core.phases.base import (
    Items,
    PageForm,
    Spec,
)
from mes.core.recipe.cycles import find_cycle
from mes.core.recipe.items import items_of
from mes.core.recipe.numbers import NUMERIC_INPUTS
from mes.core.recipe.problems import Path
from mes.core.recipe.schema import known_type

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

    from mes.core.batch import Batch, PhasePlan, PhaseState
    from mes.core.recipe.checker import PhaseInfo, RecipeChecker


from mes.core.phases.value_words import batchml_parameter, recorded_on_page
from mes.core.phases.values import _value_spec, _Values, record_one


def calculate_all(
    batch: Batch,
    plan: PhasePlan,
    actor: Actor,
    at: datetime,
    terminal: str | None,
    comments: Mapping[str, str],
    *,
    correcting: str | None = None,
) -> None:
    """Work out every calculation of the phase whose values are all recorded (in order)."""
    phase = batch.state.phases[plan.id]
    for spec in plan.spec["calculations"]:
        values = calculation_inputs(batch, plan, spec)
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
        record_one(
            batch, plan, spec["id"], value, actor, at, terminal, comments,
            kind=EntryKind.CALCULATED, extra=extra,
        )  # fmt: skip


def calculation_inputs(batch: Batch, plan: PhasePlan, spec: Spec) -> dict[str, float] | None:
    """The numbers a calculation names, once every one of them is recorded."""
    from mes.core.expressions import parse

    values: dict[str, float] = {}
    for name in parse(spec["expression"]).names:
        phase_id, _, value_id = name.rpartition(".")
        source = batch.state.phases[phase_id or plan.id]
        recorded = source.values.get(value_id)
        number = numeric(recorded.value) if recorded is not None else None
        if number is None:
            return None
        values[name] = number
    return values


def calculation_problem(batch: Batch, phase_id: str, calc_id: str) -> str | None:
    """Why a calculation whose values are all recorded cannot be worked out (e.g. ÷ 0)."""
    plan = batch.procedure.phase(phase_id)
    spec = next(c for c in plan.spec["calculations"] if c["id"] == calc_id)
    values = calculation_inputs(batch, plan, spec)
    if values is None:
        return None
    try:
        calculate(spec, values)
    except InvalidValue as err:
        return err.message
    return None


def _calculation_name(
    checker: RecipeChecker, path: Path, info: PhaseInfo, calc_id: str, name: str, local: set[str]
) -> None:
    at = (*path, "expression")
    if "." not in name:
        if name not in info.values:
            checker.problem(path, f"the calculation refers to unknown input '{name}'", at=at)
        elif name == calc_id:
            checker.problem(path, f"the calculation '{calc_id}' refers to itself", at=at)
        elif info.values[name] not in (*NUMERIC_INPUTS, "calculation") and known_type(
            info.values[name]
        ):
            checker.problem(path, f"'{name}' is a {info.values[name]} input, not a number", at=at)
        elif info.values[name] == "calculation":
            local.add(name)
        elif name in info.optional:
            _optional_read(checker, path, at, name)
        return
    phase_id, value_id = name.split(".", 1)
    if not checker.reference(path, at, info, phase_id, "the calculation"):
        return
    referred = checker.phases[phase_id]
    if referred.conditional:
        checker.problem(
            path,
            f"the calculation reads '{name}', but phase '{phase_id}' runs only when its "
            "condition holds, so the value may never be recorded",
            at=at,
        )
        return
    if value_id not in referred.values:
        checker.problem(path, f"the calculation refers to unknown input '{name}'", at=at)
    elif referred.values[value_id] not in (*NUMERIC_INPUTS, "calculation") and known_type(
        referred.values[value_id]
    ):
        checker.problem(
            path, f"'{name}' is a {referred.values[value_id]} input, not a number", at=at
        )
    elif value_id in referred.optional:
        _optional_read(checker, path, at, name)


def _optional_read(checker: RecipeChecker, path: Path, at: Path, name: str) -> None:
    checker.problem(
        path,
        f"the calculation reads '{name}', which is optional: a calculation needs required "
        "inputs, or it cannot be worked out when one is left empty",
        at=at,
    )


def calculation_words(expression: str, decimals: int | None, label: Callable[[str], str]) -> str:
    """A calculation in words: 'Worked out from Bag volume and TNC concentration, to 2 decimals'.

    The values it reads by their labels (``label`` of each name in the expression), in order of
    first use, and the decimals it is recorded to; the formula itself is shown on request beside
    these words.
    """
    try:
        names = [label(name) for name in expressions.parse(expression).names]
    except expressions.ExpressionError:
        return ""  # a recipe that does not compile never reaches a page
    if not names:
        words = "A fixed value"
    elif len(names) == 1:
        words = f"Worked out from {names[0]}"
    else:
        words = f"Worked out from {', '.join(names[:-1])} and {names[-1]}"
    if decimals is not None:
        words += f", to {decimals} decimal{'' if decimals == 1 else 's'}"
    return words + "."


class Calculations(_Values):
    """Values worked out from others with a declared expression (never ``eval``)."""

    key = "calculations"
    title = "Calculated"
    compiled_always = True
    entry_kinds = frozenset({EntryKind.CALCULATED})
    on_screen = 50
    what = "calculation"
    calculated = True

    def check(self, checker: RecipeChecker, phase_path: Path, phase: Spec, info: PhaseInfo) -> None:
        """Each expression reads, refers only to numbers every batch records, and no cycle forms."""
        calculations = checker.ordered_items(
            (*phase_path, "calculations"), phase.get("calculations")
        )
        local_refs: dict[str, set[str]] = {}
        for calc in calculations:
            path, spec, calc_id = calc.path, calc.spec, calc.id
            if "unit" in spec:
                checker.unit(path, spec["unit"], (*path, "unit"))
            checker.limits(path, spec)
            checker.precision(path, spec, "calculation")
            try:
                parsed = expressions.parse(spec["expression"])
            except expressions.ExpressionError as error:
                checker.problem(
                    path,
                    f"the expression {spec['expression']!r} cannot be read: {error.message}",
                    at=(*path, "expression"),
                )
                continue
            local_refs[calc_id] = set()
            for name in parsed.names:
                _calculation_name(checker, path, info, calc_id, name, local_refs[calc_id])
        for calc in calculations:
            cycle = find_cycle(calc.id, local_refs)
            if cycle and cycle[0] == min(cycle):
                path = calc.path
                checker.problem(
                    path,
                    "calculations depend on each other in a cycle: "
                    + " → ".join([*cycle, cycle[0]]),
                    at=(*path, "expression"),
                )

    def compile(self, phase: Spec) -> list[dict[str, Any]]:
        """The phase's calculations, in the order written."""
        calculations = []
        for item in items_of(phase.get("calculations")):
            compiled = _value_spec(item.id, item.spec, "calculation")
            compiled["expression"] = item.spec["expression"]
            calculations.append(compiled)
        return calculations

    def missing(self, batch: Batch, plan: PhasePlan, phase: PhaseState) -> list[str]:
        missing = []
        for spec in self.items(plan.spec):
            # Asked even when a value is recorded: a calculation that fails on the values now
            # recorded keeps its earlier result, which no longer follows from them.
            problem = calculation_problem(batch, plan.id, spec["id"])
            if problem:
                missing.append(f"{spec['label']} cannot be calculated ({problem})")
            elif spec["id"] not in phase.values:
                missing.append(f"{spec['label']} is not calculated yet")
        return missing

    def in_words(self, phase: dict[str, Any], names: Any) -> None:
        super().in_words(phase, names)
        for spec in phase[self.key]:
            spec["words"] = calculation_words(
                spec["expression"],
                spec.get("decimals"),
                lambda name: names.values.get(
                    name if "." in name else f"{phase['id']}.{name}", name
                ),
            )

    def page(self, batch: Batch, plan: PhasePlan, phase: PhaseState, form: PageForm) -> Items:
        def label(name: str) -> str:
            phase_id, _, value_id = name.rpartition(".")
            other = batch.procedure.phases.get(phase_id) if phase_id else plan
            spec = other.value_spec(value_id) if other is not None else None
            return spec["label"] if spec else name

        return [
            {
                **item,
                "words": calculation_words(item["expression"], item.get("decimals"), label),
                "limits": limits_text(item),
                "recorded": None
                if (recorded := phase.values.get(item["id"])) is None
                else recorded_on_page(recorded, item, form.time_zone),
                "problem": calculation_problem(batch, plan.id, item["id"]),
            }
            for item in self.items(plan.spec)
        ]

    def batchml_parameters(self, element: ET.Element, phase: Spec) -> None:
        from mes.core import batchml as bml

        for spec in self.items(phase):
            parameter = batchml_parameter(element, spec, "calculation")
            bml._value(parameter, [spec["expression"]], "Equation", "decimal", spec["unit"])
            bml._specification(parameter, spec)
            bml._critical(parameter, spec)
