"""The rules of a recipe a JSON Schema cannot express, and the checker that applies them.

:class:`RecipeChecker` walks a recipe that was read and checked against the schema: numbers
and texts everywhere, unique IDs, the order of phases and what a phase may refer to, waits that
form a cycle, and the rules shared by several parts of a phase (units, limits, precision,
patterns). Each part of a phase (inputs, calculations, timers, condition, materials, equipment,
identity checks) and the chain of identity has its own rules in :mod:`mes.core.recipe.parts`;
the checker runs them, each on its own. Every problem points at the offending field.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mes.core import phases
from mes.core.critical import RECIPE_MILESTONES, milestone
from mes.core.ordering import PhaseOrdering
from mes.core.patterns import pattern_problem
from mes.core.recipe import parts
from mes.core.recipe.cycles import find_cycle
from mes.core.recipe.items import ORDERED_ITEMS, Item, items_of, mapping_warning
from mes.core.recipe.numbers import (
    LIMIT_FIELDS,
    MAX_DURATION,
    MAX_SAFE_INTEGER,
    decimal_places,
    number_text,
    parse_duration,
)
from mes.core.recipe.problems import Path, Problem, path_text, shown
from mes.core.recipe.source import Positions
from mes.core.text import free_text_problem, line_problem
from mes.core.units import is_known_unit, suggest_unit

# Texts that may span lines (a line break, a tab); every other text of a recipe is one line.
FREE_TEXT_FIELDS = frozenset({"description", "instructions", "change_reason", "help"})


def phase_rules() -> tuple[parts.PhaseRule, ...]:
    """The checks of a phase's parts, in the order they run (each on its own).

    Each phase kind (:mod:`mes.core.phases`) checks its own part, in the order of ``KINDS``;
    the condition (``when``) is checked after the timers.
    """
    rules: list[parts.PhaseRule] = []
    for kind in phases.KINDS.values():
        rules.append(kind.check)
        if kind.key == "timers":
            rules.append(parts.check_condition)
    return tuple(rules)


@dataclass
class PhaseInfo:
    """What other phases may refer to in a phase: where it is, and the values it declares."""

    id: str
    index: int
    path: Path
    operation: str
    ordering: str
    values: dict[str, str]  # input/calculation id → type ("calculation" for calculations)
    options: dict[str, list[Any]]
    optional: frozenset[str] = frozenset()  # inputs that may be left empty
    conditional: bool = False  # runs only when its condition holds (may be skipped)


class RecipeChecker:
    """The rules a JSON Schema cannot express; each problem points at the offending field."""

    def __init__(
        self, data: dict[str, Any], positions: Positions, reported: frozenset[Path] = frozenset()
    ) -> None:
        self.data = data
        self.positions = positions
        self.reported = reported  # paths the schema already found wrong: not reported twice
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.phases: dict[str, PhaseInfo] = {}
        self.sibling_edges: dict[str, set[str]] = {}
        self.milestones: dict[str, Path] = {}  # milestone → the input declaring it

    def problem(self, path: Path, message: str, *, at: Path | None = None) -> None:
        """Report ``message`` about ``path``, positioned at ``at`` (a field) when given."""
        target = at if at is not None else path
        self.problems.append(Problem(*self.positions.of(target, key=at is not None), path, message))

    def run(self, shape_ok: bool) -> list[Problem]:
        """Every rule, each on its own.

        When the file's shape is wrong (schema problems already reported), a rule that cannot
        read its part of the file is skipped, not crashed on.
        """
        guard = Guard(shape_ok)
        leaves = _leaves(self.data)
        self.check_numbers(leaves)
        self.check_texts(leaves)
        with guard:
            self.duration(("expected_duration",), self.data.get("expected_duration"))
        with guard:
            self.index_elements()
        with guard:
            parts.check_chain_of_identity(self)
        for phase_path, phase, info in self.each_phase():
            for check in phase_rules():
                with guard:
                    check(self, phase_path, phase, info)
        with guard:
            self.check_sibling_cycles()
        with guard:
            parts.check_turnaround(self)
        with guard:
            parts.check_pending_results(self)
            parts.check_bedside(self)
        with guard:
            parts.check_custody(self)
        return self.problems

    # numbers and durations -------------------------------------------------------------

    def check_numbers(self, leaves: list[tuple[Path, Any]]) -> None:
        """Every number can be recorded and hashed: finite, integers exact in JSON."""
        for where, leaf in leaves:
            if isinstance(leaf, float) and not math.isfinite(leaf):
                self.problem(where, f"{leaf} is not a finite number")
            elif (
                isinstance(leaf, int)
                and not isinstance(leaf, bool)
                and abs(leaf) > MAX_SAFE_INTEGER
            ):
                self.problem(
                    where, f"{leaf} is too large: whole numbers go up to {MAX_SAFE_INTEGER}"
                )

    def check_texts(self, leaves: list[tuple[Path, Any]]) -> None:
        """Names, labels, units and options are one line; free texts hold no other control.

        The fields in :data:`FREE_TEXT_FIELDS` (descriptions, instructions, the change reason,
        help) may hold line breaks and tabs; every other text of a recipe is one line
        (:mod:`mes.core.text`): it is shown in headers, lists and the printed record.
        """
        for where, leaf in leaves:
            if isinstance(leaf, str) and where not in self.reported:
                free = bool(where) and where[-1] in FREE_TEXT_FIELDS
                problem = free_text_problem(leaf, len(leaf)) if free else line_problem(leaf)
                if problem is not None:
                    self.problem(where, f"the text {problem}")

    def duration(self, path: Path, text: Any, name: str | None = None) -> None:
        """A duration (already of the right form) of at most :data:`MAX_DURATION`."""
        if isinstance(text, str) and parse_duration(text) > parse_duration(MAX_DURATION):
            where = (*path, name) if name else path
            shown = text if len(text) <= 40 else text[:40] + "…"
            said = f"{name} {shown}" if name else shown
            self.problem(path, f"{said} is longer than {MAX_DURATION}", at=where)

    # elements and their order ---------------------------------------------------------

    def each_phase(self) -> Iterator[tuple[Path, dict[str, Any], PhaseInfo]]:
        """The phases indexed by :meth:`index_elements` (unique IDs, readable shape)."""
        for info in self.phases.values():
            _, u, _, o, _, p = info.path
            yield info.path, self.data["unit_procedures"][u]["operations"][o]["phases"][p], info

    def index_elements(self) -> None:
        """Index every phase (its place, order and values); IDs unique across the recipe."""
        seen: dict[str, Path] = {}
        index = 0
        for u, unit in enumerate(self.data["unit_procedures"]):
            unit_path: Path = ("unit_procedures", u)
            self.unique_id(seen, unit_path, unit["id"])
            for o, operation in enumerate(unit["operations"]):
                op_path: Path = (*unit_path, "operations", o)
                self.unique_id(seen, op_path, operation["id"])
                for p, phase in enumerate(operation["phases"]):
                    phase_path: Path = (*op_path, "phases", p)
                    if not self.unique_id(seen, phase_path, phase["id"]):
                        continue
                    values, options, optional = parts.declared_values(self, phase_path, phase)
                    self.phases[phase["id"]] = PhaseInfo(
                        phase["id"],
                        index,
                        phase_path,
                        path_text(op_path),  # not its ID, which may be a duplicate
                        operation.get("ordering", PhaseOrdering.SEQUENCE.value),
                        values,
                        options,
                        optional,
                        phase.get("when") is not None,
                    )
                    index += 1

    def unique_id(self, seen: dict[str, Path], path: Path, element_id: str) -> bool:
        """True when ``element_id`` is new; otherwise report where it was first used."""
        if element_id in seen:
            first = self.positions.of((*seen[element_id], "id"))
            self.problem(
                path,
                f"duplicate ID '{element_id}' (already used at line {first[0]}, "
                f"{path_text(seen[element_id])})",
                at=(*path, "id"),
            )
            return False
        seen[element_id] = path
        return True

    def reference(self, path: Path, at: Path, info: PhaseInfo, target: str, what: str) -> bool:
        """Check that ``info``'s phase may refer to phase ``target``; note sibling dependencies.

        A phase may refer to a phase that is certainly done before it: any earlier phase of an
        earlier operation, or an earlier phase of the same operation run in sequence. Within an
        operation whose phases run in any order or in parallel, a reference to a sibling makes
        this phase wait for it; such waits must not form a cycle.
        """
        referred = self.phases.get(target)
        if referred is None:
            self.problem(path, f"{what} refers to unknown phase '{target}'", at=at)
            return False
        if target == info.id:
            self.problem(path, f"{what} refers to its own phase '{target}'", at=at)
            return False
        same_group = (
            referred.operation == info.operation and info.ordering != PhaseOrdering.SEQUENCE
        )
        if same_group:
            self.sibling_edges.setdefault(info.id, set()).add(target)
            return True
        if referred.index > info.index:
            self.problem(
                path,
                f"{what} refers to phase '{target}', which comes later "
                f"({path_text(referred.path)}); only earlier phases can be referred to",
                at=at,
            )
            return False
        return True

    def check_sibling_cycles(self) -> None:
        """Phases of an operation in any order or in parallel do not wait for each other in a cycle."""
        reported: set[frozenset[str]] = set()
        for start in sorted(self.sibling_edges):
            cycle = find_cycle(start, self.sibling_edges)
            if cycle and frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                info = self.phases[start]
                self.problem(
                    info.path,
                    "phases wait for each other in a cycle: " + " → ".join([*cycle, cycle[0]]),
                    at=(*info.path, "id"),
                )

    # items with IDs ----------------------------------------------------------------------

    def ordered_items(self, path: Path, container: Any) -> list[Item]:
        """The items of ``container`` (at ``path``), checking how they are written.

        A list item's ID is unique among its siblings; the older mapping form is read with a
        warning, and without an ``id`` field (its keys are the IDs).
        """
        if container is None:
            return []
        name = str(path[-1])
        items = items_of(container, path)
        if isinstance(container, dict):
            self.warnings.append(
                Problem(
                    *self.positions.of(path, key=True),
                    path,
                    mapping_warning(name, items[0].id if items else None),
                    warning=True,
                )
            )
            for item in items:
                if isinstance(item.spec, dict) and "id" in item.spec:
                    self.problem(
                        item.path,
                        f"in the mapping form of {name} the key is the ID: remove 'id', or "
                        f"write {name} as a list",
                        at=(*item.path, "id"),
                    )
            return items
        first: dict[str, Item] = {}
        for item in items:
            if item.id in first:
                line = self.positions.of((*first[item.id].path, "id"))[0]
                self.problem(
                    item.path,
                    f"duplicate {ORDERED_ITEMS[name]} ID '{item.id}' (first given on line {line})",
                    at=(*item.path, "id"),
                )
            first.setdefault(item.id, item)
        return items

    @staticmethod
    def id_at(item: Item) -> Path:
        """Where an item's ID is written: its key (mapping form) or its ``id`` field (list)."""
        return item.path if isinstance(item.path[-1], str) else (*item.path, "id")

    def regex(self, path: Path, pattern: str, at: Path) -> None:
        """A pattern RE2 compiles, so that every scan is matched in linear time."""
        problem = pattern_problem(pattern)
        if problem is not None:
            self.problem(path, problem, at=at)

    # rules shared by several parts of a phase ----------------------------------------------

    def unit(self, path: Path, unit: str, at: Path) -> None:
        """A unit from the closed list (:mod:`mes.core.units`), with a suggestion when close."""
        if not is_known_unit(unit):
            suggestion = suggest_unit(unit)
            hint = (
                f"; did you mean '{suggestion}'?"
                if suggestion
                else ("; use a unit from the list in docs/recipe-format.md")
            )
            self.problem(path, f"unknown unit {shown(unit)}{hint}", at=at)

    def limits(self, path: Path, spec: Mapping[str, Any]) -> None:
        """Alert limits inside action limits; low below high; target inside the limits."""

        def get(name: str) -> Any:
            value = spec.get(name)  # a limit that is not a number is a schema problem
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None

        def above(low: str, high: str, relation: str = "above") -> None:
            if get(low) is not None and get(high) is not None and get(low) > get(high):
                self.problem(
                    path,
                    f"{low} {number_text(get(low))} is {relation} {high} {number_text(get(high))}",
                    at=(*path, low),
                )

        above("alert_low", "alert_high")
        above("action_low", "action_high")
        above("action_low", "alert_low")
        if (
            get("action_high") is not None
            and get("alert_high") is not None
            and (get("action_high") < get("alert_high"))
        ):
            self.problem(
                path,
                f"action_high {number_text(get('action_high'))} is below alert_high "
                f"{number_text(get('alert_high'))}",
                at=(*path, "action_high"),
            )
        target = get("target")
        if target is None:
            return
        for kind in ("alert", "action"):
            low, high = get(f"{kind}_low"), get(f"{kind}_high")
            if (low is not None and target < low) or (high is not None and target > high):
                bounds = f"{number_text(low) if low is not None else '−∞'} to " + (
                    f"{number_text(high) if high is not None else '∞'}"
                )
                self.problem(
                    path,
                    f"target {number_text(target)} is outside the {kind} limits ({bounds})",
                    at=(*path, "target"),
                )
                return

    def milestone(self, path: Path, spec: Mapping[str, Any], kind: str) -> None:
        """A datetime input names a recipe milestone (:mod:`mes.core.critical`), once per recipe."""
        at = (*path, "milestone")
        if at in self.reported:
            return  # not a name at all: the schema said so
        name = spec["milestone"]
        allowed = ", ".join(RECIPE_MILESTONES)
        if kind != "datetime":
            self.problem(path, f"a milestone applies only to datetime inputs, not {kind}", at=at)
        elif name not in RECIPE_MILESTONES:
            known = milestone(name)
            why = (
                f"'{name}' ({known.title}) is taken from the batch's record, not from an input"
                if known is not None
                else f"unknown milestone {shown(name)}"
            )
            self.problem(path, f"{why}; a datetime input may declare: {allowed}", at=at)
        elif name in self.milestones:
            first = self.milestones[name]
            line = self.positions.of((*first, "milestone"), key=True)[0]
            self.problem(
                path,
                f"milestone '{name}' is already declared on line {line} ({path_text(first)}); "
                "a recipe records each milestone once",
                at=at,
            )
        else:
            self.milestones[name] = path

    def precision(self, path: Path, spec: Mapping[str, Any], kind: str) -> None:
        """Limits are written no finer than the value is recorded.

        Whole numbers for integers, and within ``decimals`` when given: a limit of 95.25 on a
        value kept to 0.1 % misleads.
        """
        decimals = spec.get("decimals")
        if not isinstance(decimals, int) or isinstance(decimals, bool):
            decimals = None
        for name in LIMIT_FIELDS:
            value = spec.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if kind == "integer" and not float(value).is_integer():
                self.problem(
                    path,
                    f"{name} {number_text(value)} is not a whole number, but the input is an "
                    "integer",
                    at=(*path, name),
                )
            elif decimals is not None and decimal_places(value) > decimals:
                self.problem(
                    path,
                    f"{name} {number_text(value)} has more decimals than the {decimals} the "
                    "value is recorded with",
                    at=(*path, name),
                )


def _leaves(document: Any) -> list[tuple[Path, Any]]:
    """Every value that is neither a mapping nor a list, with its path, in document order."""
    leaves: list[tuple[Path, Any]] = []
    stack: list[tuple[Path, Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), value[i]) for i in range(len(value) - 1, -1, -1))
        else:
            leaves.append((path, value))
    return leaves


class Guard:
    """Skip a rule whose part of the file has the wrong shape, when that is already reported."""

    def __init__(self, shape_ok: bool) -> None:
        self.shape_ok = shape_ok

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        shape_error = kind is not None and issubclass(
            kind, (KeyError, IndexError, TypeError, AttributeError, ValueError)
        )
        return shape_error and not self.shape_ok
