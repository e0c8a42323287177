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

from mes.core import expressions
from mes.core.recipe.cycles import find_cycle
from mes.core.recipe.items import items_of
from mes.core.recipe.numbers import LIMIT_FIELDS, NUMERIC_INPUTS, parse_duration, seconds
from mes.core.recipe.problems import Path
from mes.core.recipe.schema import known_type

if TYPE_CHECKING:
    from mes.core.recipe.checker import PhaseInfo, RecipeChecker


def text_or_none(text: str | None) -> str | None:
    """Optional text left empty (or only spaces) is the same as absent: one identity."""
    return text if text and text.strip() else None


def _listed(
    phase_path: Path, phase: Mapping[str, Any], name: str
) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    """Each item of the phase's list ``name`` (timers, materials, …), with its path."""
    for index, item in enumerate(phase.get(name, [])):
        yield (*phase_path, name, index), item


def _repeated(seen: set[Any], key: Any) -> bool:
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


def check_inputs(
    checker: RecipeChecker, phase_path: Path, phase: Mapping[str, Any], info: PhaseInfo
) -> None:
    """Each input's fields fit its type; units known; limits in order and no finer than recorded."""
    for item in checker.ordered_items((*phase_path, "inputs"), phase.get("inputs")):
        path, spec = item.path, item.spec
        kind = spec["type"]
        if not known_type(kind):
            continue  # the schema names the unknown type; rules by type would only echo it
        if kind == "number" and "unit" not in spec:
            checker.problem(path, "a number input needs a unit", at=(*path, "type"))
        if "unit" in spec:
            checker.unit(path, spec["unit"], (*path, "unit"))
        if kind not in NUMERIC_INPUTS:
            for name in (*LIMIT_FIELDS, "decimals", "unit"):
                if name in spec:
                    checker.problem(
                        path,
                        f"{name} applies only to number and integer inputs, not {kind}",
                        at=(*path, name),
                    )
        elif kind == "integer" and "decimals" in spec:
            checker.problem(path, "an integer input has no decimals", at=(*path, "decimals"))
        checker.limits(path, spec)
        if kind in NUMERIC_INPUTS:
            checker.precision(path, spec, kind)
        if kind == "choice":
            options = spec.get("options")
            if not options:
                checker.problem(path, "a choice input needs options", at=(*path, "type"))
            elif len(set(options)) != len(options):
                checker.problem(path, "options are repeated", at=(*path, "options"))
        elif "options" in spec:
            checker.problem(
                path, f"options apply only to choice inputs, not {kind}", at=(*path, "options")
            )
        if "pattern" in spec:
            if kind not in ("text", "barcode"):
                checker.problem(
                    path,
                    f"a pattern applies only to text and barcode inputs, not {kind}",
                    at=(*path, "pattern"),
                )
            else:
                checker.regex(path, spec["pattern"], (*path, "pattern"))


def _value_spec(value_id: str, spec: Mapping[str, Any], kind: str) -> dict[str, Any]:
    compiled = {
        "id": value_id,
        "label": spec["label"],
        "type": kind,
        "unit": spec.get("unit"),
        "decimals": spec.get("decimals"),
    }
    compiled.update({name: spec.get(name) for name in LIMIT_FIELDS})
    return compiled


def compile_inputs(phase: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The phase's inputs, in the order written."""
    inputs = []
    for item in items_of(phase.get("inputs")):
        spec = item.spec
        compiled = _value_spec(item.id, spec, spec["type"])
        compiled.update(
            required=spec.get("required", True),
            options=list(spec["options"]) if "options" in spec else None,
            pattern=spec.get("pattern"),
            help=text_or_none(spec.get("help")),
        )
        inputs.append(compiled)
    return inputs


def check_calculations(
    checker: RecipeChecker, phase_path: Path, phase: Mapping[str, Any], info: PhaseInfo
) -> None:
    """Each expression reads, refers only to numbers every batch records, and no cycle forms."""
    calculations = checker.ordered_items((*phase_path, "calculations"), phase.get("calculations"))
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
                "calculations depend on each other in a cycle: " + " → ".join([*cycle, cycle[0]]),
                at=(*path, "expression"),
            )


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


def compile_calculations(phase: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The phase's calculations, in the order written."""
    calculations = []
    for item in items_of(phase.get("calculations")):
        compiled = _value_spec(item.id, item.spec, "calculation")
        compiled["expression"] = item.spec["expression"]
        calculations.append(compiled)
    return calculations


# --- timers and the condition ---------------------------------------------------------------


def check_timers(
    checker: RecipeChecker, phase_path: Path, phase: Mapping[str, Any], info: PhaseInfo
) -> None:
    """A timer counts from an earlier phase, one per phase, with min at most max."""
    starts: set[str] = set()
    for path, timer in _listed(phase_path, phase, "timers"):
        if checker.reference(
            path, (*path, "after"), info, timer["after"], "the timer"
        ) and _repeated(starts, timer["after"]):
            checker.problem(
                path,
                f"a second timer after '{timer['after']}': give min and max in one timer",
                at=(*path, "after"),
            )
        for name in ("min", "max"):
            checker.duration(path, timer.get(name), name)
        if (
            "min" in timer
            and "max" in timer
            and (parse_duration(timer["min"]) > parse_duration(timer["max"]))
        ):
            checker.problem(
                path, f"min {timer['min']} is above max {timer['max']}", at=(*path, "min")
            )


def compile_timers(phase: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The phase's timers, durations in seconds."""
    return [
        {
            "after": t["after"],
            "min_seconds": seconds(t["min"]) if "min" in t else None,
            "max_seconds": seconds(t["max"]) if "max" in t else None,
        }
        for t in phase.get("timers", [])
    ]


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


def check_materials(
    checker: RecipeChecker, phase_path: Path, phase: Mapping[str, Any], info: PhaseInfo
) -> None:
    """Each material's unit is known and its code listed once (with its total quantity)."""
    codes: set[str] = set()
    for path, material in _listed(phase_path, phase, "materials"):
        checker.unit(path, material["unit"], (*path, "unit"))
        if _repeated(codes, material["code"]):
            checker.problem(
                path,
                f"material {material['code']} is listed twice: give its total quantity once",
                at=(*path, "code"),
            )


def compile_materials(phase: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The phase's materials."""
    return [
        {"code": m["code"], "name": m["name"], "quantity": m["quantity"], "unit": m["unit"]}
        for m in phase.get("materials", [])
    ]


def check_equipment(
    checker: RecipeChecker, phase_path: Path, phase: Mapping[str, Any], info: PhaseInfo
) -> None:
    """Two pieces of one equipment class in a phase have different labels."""
    instruments: set[tuple[str, str | None]] = set()
    for path, equipment in _listed(phase_path, phase, "equipment"):
        key = (equipment["class"], equipment.get("label"))
        if _repeated(instruments, key):
            how = "with the same label" if key[1] else "without a label"
            checker.problem(
                path,
                f"equipment '{key[0]}' is listed twice {how}: give each instrument its own label",
                at=(*path, "class"),
            )


def compile_equipment(phase: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The phase's equipment."""
    return [{"class": e["class"], "label": e.get("label")} for e in phase.get("equipment", [])]


def check_identity_checks(
    checker: RecipeChecker, phase_path: Path, phase: Mapping[str, Any], info: PhaseInfo
) -> None:
    """Identity check IDs are unique in the phase; each matches a chain-of-identity field."""
    seen: set[str] = set()
    for path, check in _listed(phase_path, phase, "identity_checks"):
        if _repeated(seen, check["id"]):
            checker.problem(path, f"duplicate identity check ID '{check['id']}'", at=(*path, "id"))
        declared = [f.id for f in items_of(checker.data["chain_of_identity"])]
        if check["matches"] not in declared:
            known = ", ".join(declared)
            checker.problem(
                path,
                f"'{check['matches']}' is not in the chain of identity (declared: {known})",
                at=(*path, "matches"),
            )


def compile_identity_checks(phase: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The phase's identity checks."""
    return [
        {"id": c["id"], "label": c["label"], "matches": c["matches"]}
        for c in phase.get("identity_checks", [])
    ]


PhaseRule = Callable[["RecipeChecker", Path, Mapping[str, Any], "PhaseInfo"], None]

# The checks of a phase's parts, in the order they run (each on its own).
PHASE_RULES: tuple[PhaseRule, ...] = (
    check_inputs,
    check_calculations,
    check_timers,
    check_condition,
    check_materials,
    check_equipment,
    check_identity_checks,
)
