"""The parts of a phase, and the chain of identity: each part's rules and its compiled form.

A phase's parts are its inputs, calculations, timers, condition (``when``), materials, equipment
and identity checks. Each part has one function that checks it — ``check_<part>(checker,
phase_path, phase, info)``, reporting through the :class:`~mes.core.recipe.checker.RecipeChecker`
(``problem``, and the shared ``unit``, ``limits``, ``precision``, ``regex`` and ``reference``
rules) — and one that compiles it — ``compile_<part>(phase)``, its part of the compiled phase,
every default filled in. :data:`PHASE_RULES` lists the checks in the order they run.

Inputs and calculations share one namespace of values per phase (:func:`declared_values`); a
calculation or a condition of a later phase reads them as ``phase_id.value_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from mes.core.critical import (
    BEDSIDE_MILESTONES,
    MILESTONES,
    RECIPE,
    UNIT_PROCEDURE_END,
    milestone,
)
from mes.core.recipe.items import items_of
from mes.core.recipe.numbers import number_text
from mes.core.recipe.problems import Path, shown
from mes.core.recipe.schema import known_type

if TYPE_CHECKING:
    from mes.core.recipe.checker import PhaseInfo, RecipeChecker


def text_or_none(text: str | None) -> str | None:
    """Optional text left empty (or only spaces) is the same as absent: one identity."""
    return text if text and text.strip() else None


def listed(
    phase_path: Path, phase: Mapping[str, Any], name: str
) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    """Each item of the phase's list ``name`` (timers, materials, …), with its path."""
    for index, item in enumerate(phase.get(name, [])):
        yield (*phase_path, name, index), item


def repeated(seen: set[Any], key: Any) -> bool:
    """True when ``key`` is in ``seen`` already; otherwise add it (a part listed twice)."""
    if key in seen:
        return True
    seen.add(key)
    return False


# --- chain of identity ----------------------------------------------------------------------


def check_chain_of_identity(checker: RecipeChecker) -> None:
    """An identifier's pattern: only for kind 'identifier', and one RE2 compiles."""
    for field_ in checker.ordered_items(("chain_of_identity",), checker.data["chain_of_identity"]):
        path, spec = field_.path, field_.spec
        if "pattern" in spec:
            if spec["kind"] != "identifier":
                checker.problem(
                    path, "a pattern applies only to kind 'identifier'", at=(*path, "pattern")
                )
            else:
                checker.regex(path, spec["pattern"], (*path, "pattern"))


def compile_chain_of_identity(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The chain-of-identity fields, in the order written."""
    return [
        {
            "id": field_.id,
            "label": field_.spec["label"],
            "kind": field_.spec["kind"],
            "pattern": field_.spec.get("pattern"),
        }
        for field_ in items_of(data["chain_of_identity"])
    ]


# --- the results a release may be provisional on (mes.core.after_release) ---------------------


def check_pending_results(checker: RecipeChecker) -> None:
    """Each pending result once; numeric limits in order; limits or accepted answers, not both."""
    seen: set[str] = set()
    for index, result in enumerate(checker.data.get("pending_results") or ()):
        path: Path = ("pending_results", index)
        if repeated(seen, result["id"]):
            checker.problem(
                path, f"pending result '{result['id']}' is listed twice", at=(*path, "id")
            )
        low, high = result.get("minimum"), result.get("maximum")
        if low is not None and high is not None and low > high:
            checker.problem(
                path,
                f"the minimum {number_text(low)} is above the maximum {number_text(high)}",
                at=(*path, "minimum"),
            )
        if result.get("accepted") and (low is not None or high is not None):
            checker.problem(
                path,
                "a pending result is judged by accepted answers or by numeric limits, not both",
                at=(*path, "accepted"),
            )


def compile_pending_results(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pending results as written (only the keys given), in order."""
    keys = ("id", "label", "specification", "unit", "minimum", "maximum", "accepted")
    return [{k: r[k] for k in keys if k in r} for r in data["pending_results"]]


# --- the turnaround target -------------------------------------------------------------------


def check_turnaround(checker: RecipeChecker) -> None:
    """Each leg runs between two different known points of the timeline, once, within the whole.

    A point is a milestone (:data:`mes.core.critical.MILESTONES`) — a recipe milestone only when
    a datetime input of this recipe declares it — or the end of one of the recipe's unit
    procedures, ``up:<id>``.
    """
    turnaround = checker.data.get("turnaround")
    if turnaround is None:
        return
    whole = turnaround.get("target_hours")
    units = {unit["id"] for unit in checker.data["unit_procedures"]}
    seen: dict[tuple[str, str], int] = {}
    for index, leg in enumerate(turnaround.get("legs") or ()):
        path: Path = ("turnaround", "legs", index)
        for end in ("from", "to"):
            if (*path, end) in checker.reported:
                continue  # not a point's name at all: the schema said so
            problem = _point_problem(checker, leg[end], units)
            if problem:
                checker.problem(path, problem, at=(*path, end))
        if leg["from"] == leg["to"]:
            checker.problem(path, f"the leg starts and ends at '{leg['from']}'", at=(*path, "to"))
        key = (leg["from"], leg["to"])
        if key in seen:
            line = checker.positions.of(("turnaround", "legs", seen[key]))[0]
            checker.problem(
                path,
                f"the leg from '{leg['from']}' to '{leg['to']}' is already given on line {line}",
                at=(*path, "from"),
            )
        seen.setdefault(key, index)
        if whole is not None and leg["target_hours"] > whole:
            checker.problem(
                path,
                f"the leg's target {number_text(leg['target_hours'])} h is longer than the "
                f"whole turnaround target {number_text(whole)} h",
                at=(*path, "target_hours"),
            )


def _point_problem(checker: RecipeChecker, point: str, units: set[str]) -> str | None:
    """Why ``point`` cannot end a leg of this recipe (None: it can)."""
    if point.startswith(UNIT_PROCEDURE_END):
        unit = point[len(UNIT_PROCEDURE_END) :]
        return None if unit in units else f"'{point}': the recipe has no unit procedure '{unit}'"
    known = milestone(point)
    if known is None:
        names = ", ".join(m.name for m in MILESTONES)
        return (
            f"unknown milestone {shown(point)}; a leg runs between milestones ({names}) "
            "or unit procedure ends ('up:<unit procedure id>')"
        )
    if point in BEDSIDE_MILESTONES and "bedside" in checker.data:
        return None  # the bedside check and the infusion start record them
    if known.source == RECIPE and point not in checker.milestones:
        return f"no datetime input of this recipe declares the milestone '{point}'"
    return None


# --- after release, at the clinic: the bedside check and its infusion timer --------------------


def check_bedside(checker: RecipeChecker) -> None:
    """The bag and wristband name the chain of identity's identifiers; a fill timer, a phase.

    ``starts_at: fill`` needs ``phase:`` (the phase whose performed signature ends the fill);
    ``thaw`` and ``check`` take none (the thaw is entered at the bedside).
    """
    bedside = checker.data.get("bedside") or {}
    known = {field_.id for field_ in items_of(checker.data["chain_of_identity"])}
    named: list[tuple[Path, str]] = [
        (("bedside", "bag", i), ident) for i, ident in enumerate(bedside.get("bag") or ())
    ]
    if bedside.get("wristband"):
        named.append((("bedside", "wristband"), bedside["wristband"]))
    for at, ident in named:
        if ident not in known:
            checker.problem(at, f"the chain of identity has no identifier '{ident}'")
    timer = bedside.get("timer")
    if not timer:
        return
    path: Path = ("bedside", "timer")
    phase = timer.get("phase")
    if timer.get("starts_at") == "fill":
        if phase is None:
            checker.problem(path, "an infusion timer from the fill names the fill's phase (phase:)")
        elif phase not in checker.phases:
            checker.problem(path, f"the recipe has no phase '{phase}'", at=(*path, "phase"))
    elif phase is not None:
        checker.problem(
            path,
            f"phase: is for a timer from the fill; this one starts at the {timer['starts_at']}",
            at=(*path, "phase"),
        )


def compile_bedside(data: Mapping[str, Any]) -> dict[str, Any]:
    """The bedside part as compiled: what is scanned, and the infusion timer, when declared."""
    compiled: dict[str, Any] = {}
    bedside = data.get("bedside") or {}
    if bedside.get("bag"):
        compiled["bag"] = list(bedside["bag"])
    if bedside.get("wristband"):
        compiled["wristband"] = bedside["wristband"]
    timer = bedside.get("timer")
    if timer:
        compiled["timer"] = {
            "starts_at": timer["starts_at"],
            "max_minutes": timer["max_minutes"],
            "label": timer["label"],
            **({"phase": timer["phase"]} if timer.get("phase") else {}),
        }
    return compiled


def compile_turnaround(data: Mapping[str, Any]) -> dict[str, Any]:
    """The turnaround target: the whole (None when only legs are given) and each leg, in order."""
    turnaround = data["turnaround"]
    return {
        "target_hours": turnaround.get("target_hours"),
        "legs": [
            {"from": leg["from"], "to": leg["to"], "target_hours": leg["target_hours"]}
            for leg in turnaround.get("legs") or ()
        ],
    }


# --- inputs and calculations: the phase's values ----------------------------------------------


def declared_values(
    checker: RecipeChecker, phase_path: Path, phase: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, list[Any]], frozenset[str]]:
    """The values a phase declares: ID → type, options of each input, inputs that may be empty.

    A calculation's type is ``calculation``. Inputs and calculations share one namespace: a calculation with an input's ID is refused.
    """
    inputs = items_of(phase.get("inputs"))
    values = {i.id: i.spec["type"] for i in inputs}
    for calc in items_of(phase.get("calculations"), (*phase_path, "calculations")):
        if calc.id in values:
            checker.problem(
                calc.path,
                f"'{calc.id}' is already the ID of an input of this phase",
                at=checker.id_at(calc),
            )
        else:
            values[calc.id] = "calculation"
    options = {i.id: list(i.spec.get("options", [])) for i in inputs}
    optional = frozenset(
        i.id for i in inputs if isinstance(i.spec, dict) and i.spec.get("required") is False
    )
    return values, options, optional


# --- timers and the condition ---------------------------------------------------------------


def check_condition(
    checker: RecipeChecker, phase_path: Path, phase: Mapping[str, Any], info: PhaseInfo
) -> None:
    """``when`` tests a required choice or yes/no input of an earlier phase, with its values."""
    condition = phase.get("when")
    if condition is None:
        return
    path: Path = (*phase_path, "when")
    at = (*path, "input")
    phase_id, input_id = condition["input"].split(".", 1)
    if not checker.reference(path, at, info, phase_id, "the condition"):
        return
    referred = checker.phases[phase_id]
    kind = referred.values.get(input_id)
    if kind is None:
        checker.problem(
            path, f"the condition refers to unknown input '{condition['input']}'", at=at
        )
        return
    if kind not in ("choice", "yes_no"):
        if kind == "calculation" or known_type(kind):
            checker.problem(
                path,
                f"a condition can test a choice or yes/no input; '{condition['input']}' is {kind}",
                at=at,
            )
        return
    if input_id in referred.optional:
        checker.problem(
            path,
            f"'{condition['input']}' is optional: a condition needs a required input, or "
            "the phase is undecided when it is left empty",
            at=at,
        )
    wanted = [condition["equals"]] if "equals" in condition else list(condition["in"])
    field_name = "equals" if "equals" in condition else "in"
    for value in wanted:
        if kind == "yes_no" and not isinstance(value, bool):
            checker.problem(
                path,
                f"'{condition['input']}' is yes/no: compare it with true or false, not {value!r}",
                at=(*path, field_name),
            )
        elif kind == "choice" and value not in referred.options[input_id]:
            offered = ", ".join(repr(o) for o in referred.options[input_id])
            checker.problem(
                path,
                f"{value!r} is not an option of '{condition['input']}' (options: {offered})",
                at=(*path, field_name),
            )


def compile_condition(phase: Mapping[str, Any]) -> dict[str, Any] | None:
    """The phase's condition, ``equals`` written as an ``in`` list of one."""
    condition = phase.get("when")
    if condition is None:
        return None
    return {
        "input": condition["input"],
        "in": [condition["equals"]] if "equals" in condition else list(condition["in"]),
    }


# --- materials, equipment and identity checks ---------------------------------------------------


PhaseRule = Callable[["RecipeChecker", Path, Mapping[str, Any], "PhaseInfo"], None]


# --- custody: the validated window of a shipment's temperature logger --------------------------


def check_custody(checker: RecipeChecker) -> None:
    """``custody: {window: {low, high, unit, max_minutes_outside}, sampling_minutes}``: low below high."""
    window = (checker.data.get("custody") or {}).get("window")
    if window and window["low"] >= window["high"]:
        checker.problem(
            ("custody", "window", "low"),
            f"the window's low ({window['low']} °C) must be below its high ({window['high']} °C)",
        )


def compile_custody(data: Mapping[str, Any]) -> dict[str, Any]:
    """The custody part as compiled (only when declared: a recipe without it keeps its identity)."""
    custody = data["custody"]
    return {"window": dict(custody["window"]), "sampling_minutes": custody["sampling_minutes"]}
