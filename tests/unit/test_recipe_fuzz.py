"""No input file, however malformed, makes the recipe loader crash: arbitrary text and bytes,
arbitrary YAML, and valid recipes mutated at random either compile (and hash) or are refused
with :class:`RecipeInvalid` listing problems that each name a line, a column and a message.
The calculation language likewise only ever raises :class:`ExpressionError`.

Runs are reproducible (``derandomize=True``, no example database) and kept small enough for CI.
"""

from __future__ import annotations

import copy
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_recipe_validation import BASE

from mes.core.expressions import ExpressionError, parse
from mes.core.recipe import RecipeInvalid, check_recipe, load_recipe, parse_yaml
from mes.core.recipe.schema import fast_check, full_validator

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LINE_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def outcome(text: str | bytes) -> str:
    """Check ``text`` as ``mes recipe validate`` does: 'valid' or 'invalid', never an exception.

    A valid recipe must compile and hash; an invalid one must list at least one problem, each
    one line with a position inside the file, the same from ``check_recipe`` and ``load_recipe``.
    """
    try:
        recipe = load_recipe(text, "fuzz.yaml")
    except RecipeInvalid as error:
        assert error.problems, "an invalid recipe must say why"
        lines = error.lines()
        if len(text) < 5000:  # (checking a whole recipe twice would halve the examples run)
            data, problems = check_recipe(text)
            assert data is None
            assert lines == [p.text("fuzz.yaml") for p in sorted(problems)]
        decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        last_line = len(LINE_BREAKS.findall(decoded)) + 1
        for problem, line in zip(error.problems, lines, strict=True):
            assert 1 <= problem.line <= last_line + 1, line
            assert problem.column >= 1, line
            assert problem.message, line
            assert "\n" not in line and "\r" not in line, line
            line.encode("utf-8")  # printable: no lone surrogates
        str(error).encode("utf-8")
        return "invalid"
    assert len(recipe.content_hash) == 64
    assert recipe.canonical.decode("utf-8")
    assert list(recipe.phases())
    return "valid"


# --- (a) arbitrary text and bytes --------------------------------------------------------------

YAMLISH = st.text(
    alphabet=st.sampled_from(list(" \n\t:-?[]{},#&*!|>'\"%@`~.0123456789eE+abcxyz_\\\x00\x85é€")),
    max_size=200,
)


@FUZZ
@given(st.text(max_size=300) | YAMLISH)
def test_any_text_is_refused_or_compiled_never_crashed_on(text):
    event(outcome(text))


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_are_refused_or_compiled_never_crashed_on(data):
    event(outcome(data))


# --- (b) arbitrary YAML documents ---------------------------------------------------------------

FIELDS = [
    "format",
    "recipe_code",
    "version",
    "title",
    "description",
    "product",
    "code",
    "name",
    "modality",
    "expected_duration",
    "change_reason",
    "chain_of_identity",
    "label",
    "kind",
    "pattern",
    "unit_procedures",
    "id",
    "operations",
    "ordering",
    "phases",
    "instructions",
    "perform",
    "verify",
    "when",
    "input",
    "equals",
    "in",
    "timers",
    "after",
    "min",
    "max",
    "inputs",
    "type",
    "required",
    "unit",
    "decimals",
    "target",
    "alert_low",
    "alert_high",
    "action_low",
    "action_high",
    "options",
    "help",
    "calculations",
    "expression",
    "materials",
    "quantity",
    "equipment",
    "class",
    "identity_checks",
    "matches",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["gmp-mes/recipe/1", "30 min", "48 h", "mL", "°C", "a.b", "x * 2", "1e9"])
)
KEYS = st.sampled_from(FIELDS) | st.text(max_size=8)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=40,
)


def dumped(value: Any, style: bool | None) -> str:
    return yaml.safe_dump(value, default_flow_style=style, allow_unicode=True, sort_keys=False)


@FUZZ
@given(DOCUMENTS, st.sampled_from([False, True, None]))
def test_any_yaml_document_is_refused_or_compiled_never_crashed_on(document, style):
    event(outcome(dumped(document, style)))


@settings(FUZZ, max_examples=40)
@given(st.dictionaries(st.sampled_from(FIELDS[:10]), DOCUMENTS, max_size=10))
def test_any_mapping_of_recipe_fields_is_refused_or_compiled_never_crashed_on(document):
    event(outcome(dumped(document, False)))


# --- (c) valid recipes, mutated -------------------------------------------------------------------

SOURCES = {path.name: path.read_text("utf-8") for path in sorted(RECIPES.glob("*.yaml"))}
SOURCES["base (test_recipe_validation)"] = BASE


@cache
def parsed(name: str) -> dict[str, Any]:
    """The data of the valid recipe ``name`` (read once)."""
    data, problems = check_recipe(SOURCES[name])
    assert problems == [], problems
    assert data is not None
    return data


def paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path in ``value`` (the root included)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*path, index))
    return found


def at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def items(value: Any, key: str, kind: type) -> Any:
    """``value[key]`` when ``value`` is a mapping holding a ``kind`` there, else an empty one
    (earlier mutations may have broken any part of the recipe)."""
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, kind) else kind()


def phase_lists(data: dict[str, Any]) -> list[list[Any]]:
    return [
        items(operation, "phases", list)
        for unit in items(data, "unit_procedures", list)
        for operation in items(unit, "operations", list)
        if isinstance(operation, dict) and isinstance(operation.get("phases"), list)
    ]


def phases(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [phase for found in phase_lists(data) for phase in found if isinstance(phase, dict)]


def value_names(all_phases: list[dict[str, Any]]) -> list[str]:
    return [
        f"{phase.get('id')}.{name}"
        for phase in all_phases
        for group in ("inputs", "calculations")
        for name in items(phase, group, dict)
    ]


EXPRESSION_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.0123456789+-*/(), e", max_size=40)
LIMITS = ("target", "alert_low", "alert_high", "action_low", "action_high")
MUTATIONS = (
    "delete",
    "replace",
    "duplicate item",
    "swap phases",
    "move phase",
    "timer after",
    "expression",
    "limits",
    "condition",
    "rename key",
)


def mutate(data: dict[str, Any], draw: st.DataObject) -> None:
    """Apply one random mutation to ``data`` in place."""
    kind = draw.draw(st.sampled_from(MUTATIONS), label="mutation")
    everything = paths(data)[1:]
    all_phases = phases(data)
    ids = [str(phase.get("id")) for phase in all_phases] + ["nowhere"]
    names = value_names(all_phases) or ["a.b"]
    if kind == "delete" and everything:
        path = draw.draw(st.sampled_from(everything), label="path")
        del at(data, path[:-1])[path[-1]]
    elif kind == "replace" and everything:
        path = draw.draw(st.sampled_from(everything), label="path")
        at(data, path[:-1])[path[-1]] = draw.draw(DOCUMENTS, label="value")
    elif kind == "duplicate item":
        lists = [p for p in everything if isinstance(at(data, p), list) and at(data, p)]
        if lists:
            found = at(data, draw.draw(st.sampled_from(lists), label="list"))
            index = draw.draw(st.integers(0, len(found) - 1), label="index")
            found.insert(index, copy.deepcopy(found[index]))
    elif kind == "swap phases":
        lists = phase_lists(data)
        places = [(n, i) for n, found in enumerate(lists) for i in range(len(found))]
        if len(places) > 1:
            (a, i), (b, j) = draw.draw(st.lists(st.sampled_from(places), min_size=2, max_size=2))
            lists[a][i], lists[b][j] = lists[b][j], lists[a][i]
    elif kind == "move phase":
        lists = phase_lists(data)
        sources = [found for found in lists if found]
        if sources:
            source = draw.draw(st.sampled_from(sources), label="from")
            draw.draw(st.sampled_from(lists), label="to").insert(0, source.pop())
    elif kind == "timer after" and all_phases:
        phase = draw.draw(st.sampled_from(all_phases), label="phase")
        timer = {"after": draw.draw(st.sampled_from(ids), label="after"), "max": "2 h"}
        phase["timers"] = [*items(phase, "timers", list), timer]
    elif kind == "expression":
        calculations = [
            calculation
            for phase in all_phases
            for calculation in items(phase, "calculations", dict).values()
            if isinstance(calculation, dict)
        ]
        if calculations:
            calculation = draw.draw(st.sampled_from(calculations), label="calculation")
            name = st.sampled_from(names)
            calculation["expression"] = draw.draw(
                EXPRESSION_TEXT
                | name.map(lambda n: f"round({n} * 2, 1)")
                | name.map(lambda n: n.split(".")[-1] + " / 0")
                | st.tuples(name, name).map(lambda t: f"max({t[0]}, {t[1]}) - 1e9"),
                label="expression",
            )
    elif kind == "limits":
        specs = [
            spec
            for phase in all_phases
            for group in ("inputs", "calculations")
            for spec in items(phase, group, dict).values()
            if isinstance(spec, dict)
        ]
        if specs:
            spec = draw.draw(st.sampled_from(specs), label="input")
            numbers = st.integers(-(2**60), 2**60) | st.floats() | st.sampled_from([0, 1, 80])
            spec.update(
                draw.draw(st.dictionaries(st.sampled_from(LIMITS), numbers), label="limits")
            )
    elif kind == "condition" and all_phases:
        phase = draw.draw(st.sampled_from(all_phases), label="phase")
        phase["when"] = {
            "input": draw.draw(st.sampled_from(names), label="input"),
            "equals": draw.draw(st.booleans() | st.text(max_size=5), label="equals"),
        }
    elif kind == "rename key":
        keyed = [p for p in everything if isinstance(p[-1], str)]
        if keyed:
            path = draw.draw(st.sampled_from(keyed), label="key")
            parent = at(data, path[:-1])
            parent[draw.draw(KEYS, label="new key")] = parent.pop(path[-1])


@pytest.mark.parametrize("name", sorted(SOURCES))
@settings(FUZZ, max_examples=25)
@given(draw=st.data())
def test_a_valid_recipe_mutated_at_random_is_refused_or_compiled_never_crashed_on(name, draw):
    data = copy.deepcopy(parsed(name))
    # The first unit procedures of a valid recipe are a valid recipe, and quicker to check.
    units = data["unit_procedures"]
    del units[draw.draw(st.integers(1, min(2, len(units))), label="unit procedures kept") :]
    for _ in range(draw.draw(st.integers(1, 4), label="mutations")):
        mutate(data, draw)
    event(outcome(dumped(data, draw.draw(st.sampled_from([False, None]), label="style"))))


@pytest.mark.parametrize("name", sorted(SOURCES))
@settings(FUZZ, max_examples=6)
@given(draw=st.data())
def test_a_valid_recipe_with_lines_cut_copied_or_shifted_is_never_crashed_on(name, draw):
    lines = SOURCES[name].split("\n")
    for _ in range(draw.draw(st.integers(1, 3), label="edits")):
        index = draw.draw(st.integers(0, len(lines) - 1), label="line")
        edit = draw.draw(
            st.sampled_from(["delete", "copy", "indent", "dedent", "truncate", "insert"])
        )
        if edit == "delete":
            del lines[index]
        elif edit == "copy":
            lines.insert(index, lines[index])
        elif edit == "indent":
            lines[index] = "  " + lines[index]
        elif edit == "dedent":
            lines[index] = lines[index][2:]
        elif edit == "truncate":
            lines[index] = lines[index][: draw.draw(st.integers(0, len(lines[index])))]
        else:
            lines.insert(index, draw.draw(YAMLISH, label="inserted"))
        if not lines:
            break
    event(outcome("\n".join(lines)))


def test_every_recipe_in_the_repository_and_the_base_recipe_are_valid():
    for name, text in SOURCES.items():
        assert outcome(text) == "valid", name


# --- (d) the calculation language -----------------------------------------------------------------


@FUZZ
@given(st.text(max_size=120) | EXPRESSION_TEXT | st.text(alphabet="()-+*/,1a ", max_size=520))
def test_parsing_any_text_raises_only_an_expression_error_with_a_position(text):
    try:
        expression = parse(text)
    except ExpressionError as error:
        assert error.position is not None
        assert 1 <= error.position <= len(text) + 1
        assert "\n" not in error.message
        return
    assert set(expression.names) <= set(re.findall(r"[A-Za-z_][\w.]*", text))


NUMBERS = st.floats(allow_nan=False, allow_infinity=False).map(repr).filter(
    lambda t: "inf" not in t
) | st.integers(0, 10**6).map(str)
NAMES = st.sampled_from(["a", "b", "count.volume", "x_1"])
EXPRESSIONS = st.recursive(
    NUMBERS | NAMES,
    lambda inner: (
        st.tuples(inner, st.sampled_from("+-*/"), inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
        | inner.map(lambda t: f"-{t}")
        | inner.map(lambda t: f"({t})")
        | st.lists(inner, min_size=2, max_size=3).map(lambda xs: f"min({', '.join(xs)})")
        | st.lists(inner, min_size=2, max_size=3).map(lambda xs: f"max({', '.join(xs)})")
        | st.tuples(inner, st.integers(0, 15)).map(lambda t: f"round({t[0]}, {t[1]})")
        | inner.map(lambda t: f"round({t})")
    ),
    max_leaves=30,
)
VALUES = st.none() | st.floats() | st.integers(-(10**20), 10**20) | st.sampled_from([0, 0.0, -0.0])


@FUZZ
@given(EXPRESSIONS, st.dictionaries(NAMES, VALUES))
def test_evaluating_any_expression_gives_a_finite_number_or_an_expression_error(text, values):
    try:
        expression = parse(text)
    except ExpressionError as error:  # too long or too deep
        assert "longer than" in error.message or "deeper than" in error.message
        return
    try:
        result = expression.evaluate(values)
    except ExpressionError:
        return
    assert isinstance(result, float)
    assert math.isfinite(result)


# --- the fast paths agree with the thorough ones ---------------------------------------------


@FUZZ
@given(st.text(max_size=300) | YAMLISH | DOCUMENTS.map(lambda d: dumped(d, None)))
def test_the_c_parser_reads_every_text_exactly_as_the_python_parser(text):
    fast_data, fast_positions, fast_problems = parse_yaml(text)
    data, positions, problems = parse_yaml(text, fast=False)
    assert (fast_data, fast_problems) == (data, problems)
    assert fast_positions == positions


@pytest.mark.parametrize("name", sorted(SOURCES))
@settings(FUZZ, max_examples=25)
@given(draw=st.data())
def test_the_compiled_schema_check_accepts_exactly_what_jsonschema_accepts(name, draw):
    data = copy.deepcopy(parsed(name))
    del data["unit_procedures"][1:]
    for _ in range(draw.draw(st.integers(0, 3), label="mutations")):
        mutate(data, draw)
    try:
        fast_check()(data)
        fast_accepts = True
    except fastjsonschema.JsonSchemaException:
        fast_accepts = False
    assert fast_accepts == (next(full_validator().iter_errors(data), None) is None)
