"""Master recipes (ISA-88): load a YAML file, validate it precisely, compile it to its identity.

A master recipe is procedure → unit procedures → operations → phases; a phase is what an
operator executes and signs. :func:`load_recipe` reads the YAML text, checks it against the
published JSON Schema (``schema/recipe.schema.json``, also at ``recipes/schema/``), then checks
the rules a schema cannot express (unique IDs, references only to earlier phases, no cycles,
limits in order, known units, parseable calculations), and compiles it.

Every problem names the line, column and path in the recipe, e.g.
``car-t.yaml:118:9 unit_procedures[2].operations[0].phases[3].inputs.viability: action_low 80
is above alert_low 70``; all problems are reported at once, and no input — however malformed —
raises anything but :class:`RecipeInvalid`.

The compiled form is plain JSON data with every default filled in (durations in seconds,
inputs as ordered lists); the SHA-256 of its RFC 8785 canonical JSON is the version's content
identity, the same whatever the order of a mapping's fields, the whitespace or the YAML style of
the file. The order of inputs, calculations and chain-of-identity fields is content (it is the
order the operator sees), so reordering them is a change.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cache, cached_property
from importlib import resources
from typing import Any

import fastjsonschema
import jsonschema
import yaml

from mes.core import expressions
from mes.core.canonical import canonical_json
from mes.core.errors import MesError
from mes.core.patterns import pattern_problem
from mes.core.text import free_text_problem, line_problem
from mes.core.units import is_known_unit, suggest_unit

FORMAT = "gmp-mes/recipe/1"
MAX_SOURCE_BYTES = 2_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64

NUMERIC_INPUTS = ("number", "integer")
LIMIT_FIELDS = ("target", "alert_low", "alert_high", "action_low", "action_high")
DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(s|min|h|d)$")
SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
MAX_DURATION = "3650 d"  # ten years: longer is a typing error (and no longer exact in JSON)
MAX_SAFE_INTEGER = 2**53 - 1  # the largest integer canonical JSON (RFC 8785) represents exactly
# Texts that may span lines (a line break, a tab); every other text of a recipe is one line.
FREE_TEXT_FIELDS = frozenset({"description", "instructions", "change_reason", "help"})


class PhaseOrdering(StrEnum):
    """How the phases of an operation may run (the recipe's ``ordering``, ISA-88 procedural)."""

    SEQUENCE = "sequence"
    ANY_ORDER = "any_order"
    PARALLEL = "parallel"


@dataclass(frozen=True)
class OrderingWords:
    """How an ordering is said: in a sentence, as an operation's heading, in a list of changes."""

    running: str  # the operator's page and the batch record: "phases one after another"
    heading: str  # the recipe as shown: "Phases in this order"
    change: str  # the changes between two versions, and the command line: "in sequence"


ORDERING_WORDS = {
    PhaseOrdering.SEQUENCE: OrderingWords(
        "one after another", "Phases in this order", "in sequence"
    ),
    PhaseOrdering.ANY_ORDER: OrderingWords(
        "in any order, one at a time", "Phases in any order", "in any order"
    ),
    PhaseOrdering.PARALLEL: OrderingWords("at the same time", "Phases in parallel", "in parallel"),
}

Path = tuple[str | int, ...]


# --- problems -----------------------------------------------------------------------------


def path_text(path: Path) -> str:
    """``('unit_procedures', 2, 'operations', 0)`` → ``unit_procedures[2].operations[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not (part.isprintable() and _PLAIN_KEY.fullmatch(part)):
            text += f"[{_shown(part)}]"  # a misspelt key with a space, dot or line break
        else:
            text += f".{part}" if text else part
    return text


_PLAIN_KEY = re.compile(r"[^\s.\[\]'\"]+")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a recipe file, where it is (1-based line and column) and what."""

    line: int
    column: int
    path: Path = field(compare=False)
    message: str = field(compare=False)

    def text(self, source_name: str) -> str:
        """``file:line:col path: message``, as editors and CI logs understand it."""
        where = f"{source_name}:{self.line}:{self.column}"
        path = path_text(self.path)
        return f"{where} {path}: {self.message}" if path else f"{where}: {self.message}"


class RecipeInvalid(MesError):
    """The recipe file breaks the format or its rules; ``problems`` lists every one."""

    http_status = 422

    def __init__(self, source_name: str, problems: list[Problem]) -> None:
        self.source_name = source_name
        self.problems = sorted(problems)
        count = len(self.problems)
        super().__init__(
            f"{source_name} is not a valid recipe ({count} problem{'s' * (count != 1)}): "
            + "; ".join(p.text(source_name) for p in self.problems[:3])
            + ("; …" if count > 3 else ""),
            what_to_do="Correct every problem listed and validate again.",
        )

    def lines(self) -> list[str]:
        """One line per problem, in file order."""
        return [p.text(self.source_name) for p in self.problems]


# --- YAML with positions ------------------------------------------------------------------


class _Repeated(Exception):
    """An anchor or an alias: refused where it is written, before anything is repeated."""

    def __init__(self, event: yaml.Event) -> None:
        self.position = (event.start_mark.line + 1, event.start_mark.column + 1)
        if isinstance(event, yaml.AliasEvent):
            what = f"the alias *{event.anchor}"
        else:
            what = f"the anchor &{event.anchor}"
        self.message = (
            f"{what}: anchors and aliases are not allowed in a recipe; write each value out "
            "where it is used"
        )


class _NoRepeats(yaml.composer.Composer):
    """Composes the document refusing anchors and aliases (``&name``, ``*name``).

    A recipe needs neither, and an alias repeats a part of the document without its size
    showing in the file (a 517-byte file of nested aliases and merge keys expanded to gigabytes
    in older PyYAML releases). The refusal names the anchor or alias and where it is written.
    """

    depth = 0  # of the node being composed (the document's root is 1)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Repeated(event)
        if self.depth > MAX_DEPTH:  # refused here, before Python's recursion limit is reached
            raise _TooLarge((event.start_mark.line + 1, event.start_mark.column + 1))
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Loader(_NoRepeats, yaml.SafeLoader):
    """Safe YAML without anchors or aliases; reads ``1e9`` as a number (YAML 1.2)."""


if yaml.__with_libyaml__:

    class _CLoader(_NoRepeats, yaml.CSafeLoader):
        """The same on libyaml's C parser: about seven times faster.

        The nodes are composed in Python (libyaml's composer would accept aliases); a file it
        refuses is read again with the Python parser, whose messages are the ones we explain.
        """

        def __init__(self, stream: str) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            yaml.composer.Composer.__init__(self)


_FastLoader: type[yaml.SafeLoader] = _CLoader if yaml.__with_libyaml__ else _Loader  # type: ignore[assignment]

for _loader in {_Loader, _FastLoader}:
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


@dataclass
class _Positions:
    """Where each value (and each mapping key) of the document starts, by path."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """The nearest known position of ``path`` (its key's, when asked and known)."""
        if key and path in self.keys:
            return self.keys[path]
        probe = path
        while probe not in self.values and probe:
            probe = probe[:-1]
        return self.values.get(probe, (1, 1))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


class _Builder:
    """Turns composed YAML nodes into plain data, recording positions and duplicate keys."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.positions = _Positions()
        self.problems: list[Problem] = []
        self.count = 0

    def build(self, node: yaml.Node, path: Path, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            raise _TooLarge(_mark(node))
        self.positions.values.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: Path) -> Any:
        """The value of a scalar; a value PyYAML cannot build (a 13th month) is a problem here."""
        try:
            # Most scalars are plain text (every key): taken as is, skipping the constructor.
            value = (
                node.value if node.tag == _STR else self.loader.construct_object(node, deep=True)
            )
        except (ValueError, TypeError, OverflowError) as error:
            self.problems.append(Problem(*_mark(node), path, f"unreadable value: {error}"))
            return str(node.value)
        if isinstance(value, str) and not _is_unicode(value):
            self.problems.append(
                Problem(
                    *_mark(node),
                    path,
                    "the text contains an unpaired surrogate (an escape such as \\ud800), "
                    "which is not a valid character",
                )
            )
            return _printable(value)
        return value

    def mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        # Merge keys (``<<``) are refused, never expanded (no ``flatten_mapping``).
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self.problems.append(
                    Problem(
                        *_mark(key_node),
                        path,
                        "merge keys (<<) are not allowed in a recipe; write the fields out",
                    )
                )
                continue
            key = self.build_key(key_node, path)
            if key is None:
                continue
            key_path = (*path, key)
            if key in result:
                line, _ = self.positions.keys[key_path]
                self.problems.append(
                    Problem(
                        *_mark(key_node),
                        key_path,
                        f"duplicate key {_shown(key)} (first given on line {line})",
                    )
                )
                continue
            self.positions.keys[key_path] = _mark(key_node)
            result[key] = self.build(value_node, key_path, depth + 1)
        return result

    def build_key(self, key_node: yaml.Node, path: Path) -> str | None:
        key = self.scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
        if isinstance(key, str):
            return key
        shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
        self.problems.append(
            Problem(
                *_mark(key_node),
                path,
                f"key {shown!r} is not text: keys must be names such as 'inputs' or 'viability'",
            )
        )
        return None


def _is_unicode(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (from a YAML escape), which JSON cannot hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _TooLarge(Exception):
    def __init__(self, position: tuple[int, int]) -> None:
        self.position = position


_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _yaml_problem(error: yaml.YAMLError, source: str) -> Problem:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if isinstance(error, yaml.reader.ReaderError):
        # A character YAML forbids (NUL, other control characters): no mark, an offset.
        breaks = list(_LINE_BREAK.finditer(source, 0, error.position))
        line = len(breaks) + 1
        column = error.position - (breaks[-1].end() if breaks else 0) + 1
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    text = f"{context}, {problem}" if context else str(problem)
    return Problem(line, column, (), f"not valid YAML: {text}")


def parse_yaml(text: str | bytes, *, fast: bool = True) -> tuple[Any, _Positions, list[Problem]]:
    """Parse one YAML document into data + positions; problems instead of exceptions.

    ``fast`` uses libyaml's parser when PyYAML has it; whatever it refuses is parsed again with
    the Python parser, so problems are always described the same way.
    """
    if fast and _FastLoader is not _Loader:
        parsed = _parse(text, _FastLoader)
        if parsed[0] is not None and not parsed[2]:
            return parsed
    return _parse(text, _Loader)


def _parse(
    text: str | bytes, loader_class: type[yaml.SafeLoader]
) -> tuple[Any, _Positions, list[Problem]]:
    if isinstance(text, bytes):
        if len(text) > MAX_SOURCE_BYTES:
            return None, _Positions(), [_too_big()]
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            line = text.count(b"\n", 0, error.start) + 1
            start_of_line = text.rfind(b"\n", 0, error.start) + 1
            column = len(text[start_of_line : error.start].decode("utf-8", "replace")) + 1
            return (
                None,
                _Positions(),
                [Problem(line, column, (), f"the file is not UTF-8 text (byte {error.start + 1})")],
            )
    if len(text) > MAX_SOURCE_BYTES:
        return None, _Positions(), [_too_big()]
    try:
        loader = loader_class(text)
    except yaml.YAMLError as error:
        return None, _Positions(), [_yaml_problem(error, text)]
    builder = _Builder(loader)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, builder.positions, [Problem(1, 1, (), "the file is empty")]
        data = builder.build(node, ())
    except yaml.YAMLError as error:
        return None, builder.positions, [_yaml_problem(error, text)]
    except _Repeated as refusal:
        return None, builder.positions, [Problem(*refusal.position, (), refusal.message)]
    except _TooLarge as error:
        return (
            None,
            builder.positions,
            [
                Problem(
                    *error.position,
                    (),
                    "the document is too large or nested too deeply "
                    f"(over {MAX_NODES} values or {MAX_DEPTH} levels)",
                )
            ],
        )
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        # PyYAML's constructors raise these for values such as a timestamp out of range.
        return None, builder.positions, [Problem(1, 1, (), f"unreadable value: {error}")]
    finally:
        loader.dispose()
    return data, builder.positions, builder.problems


def _too_big() -> Problem:
    return Problem(1, 1, (), f"the file is larger than {MAX_SOURCE_BYTES // 1000} kB")


# --- schema -------------------------------------------------------------------------------


@cache
def recipe_schema() -> dict[str, Any]:
    """The published JSON Schema of the recipe format."""
    text = resources.files("mes.core").joinpath("schema/recipe.schema.json").read_text("utf-8")
    return json.loads(text)


def _pattern(
    validator: jsonschema.protocols.Validator, pattern: str, instance: Any, _schema: Any
) -> Iterator[jsonschema.ValidationError]:
    """``pattern`` with ECMA-262's ``$`` (the very end), not Python's (also before a last newline)."""
    if validator.is_type(instance, "string") and not re.search(_ecma(pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _ecma(pattern: str) -> str:
    return (
        pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    )


@cache
def _validator() -> jsonschema.protocols.Validator:
    checker = jsonschema.validators.extend(
        jsonschema.Draft202012Validator, validators={"pattern": _pattern}
    )
    return checker(recipe_schema())


@cache
def _fast_check() -> Any:
    """The schema compiled to Python code (fastjsonschema): a quick yes for a valid file."""
    return fastjsonschema.compile(recipe_schema())


def _schema_problems(data: Any, positions: _Positions) -> list[Problem]:
    """Every schema violation, explained.

    A valid file is confirmed by the compiled check (milliseconds); only an invalid one is
    walked by jsonschema, which lists every problem (a test checks both agree).
    """
    try:
        _fast_check()(data)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        return []
    problems = []
    for error in _validator().iter_errors(data):
        problems.extend(_explain(error, positions))
    return problems


def _explain(error: jsonschema.ValidationError, positions: _Positions) -> Iterator[Problem]:
    path: Path = tuple(error.absolute_path)
    keyword = error.validator
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        for extra in (k for k in error.instance if k not in known):
            where = (*path, extra)
            allowed = ", ".join(sorted(known))
            yield Problem(
                *positions.of(where, key=True),
                where,
                f"unknown field {_shown(extra)} (allowed here: {allowed})",
            )
        return
    if keyword == "required":
        yield Problem(*positions.of(path), path, f"{error.message.replace(' property', ' field')}")
        return
    if keyword in ("anyOf", "oneOf") and error.schema.get(keyword):
        choices = [" and ".join(alt.get("required", [])) for alt in error.schema[keyword]]
        if all(choices):
            verb = "one of" if keyword == "oneOf" else "at least one of"
            yield Problem(*positions.of(path), path, f"give {verb}: {', '.join(choices)}")
            return
    if "propertyNames" in error.relative_schema_path:
        # The error is about a key (``error.instance``), not about the mapping holding it.
        where = (*path, error.instance) if isinstance(error.instance, str) else path
        yield Problem(
            *positions.of(where, key=True),
            where,
            f"{_shown(error.instance)} is not a valid ID: use lower-case letters, digits and '_', "
            "starting with a letter",
        )
        return
    message = error.message
    if keyword == "pattern":
        described = error.schema.get("description")
        message = f"{_shown(error.instance)} is not allowed here" + (
            f": {described}" if described else ""
        )
    elif (
        keyword == "type"
        and isinstance(error.instance, str)
        and error.validator_value
        in (
            "number",
            "integer",
        )
    ):
        message = f"{_shown(error.instance)} is text, not a number"
    elif len(message) > 300:
        message = message[:300] + "…"
    yield Problem(*positions.of(path), path, message)


def _shown(value: Any) -> str:
    """``repr`` of a value from the file, cut short when long (a message is one line)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"


# --- semantic rules -----------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """'48 h' → 172800.0 seconds (the schema has already checked the form)."""
    return float(_exact_seconds(text))


def _exact_seconds(text: str) -> Decimal:
    """Decimal arithmetic: '2.3 d' and '55.2 h' are the same 198720 s (binary floats differ)."""
    match = DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return Decimal(match.group(1)) * SECONDS[match.group(2)]


def _seconds(text: str) -> int | float:
    value = _exact_seconds(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _decimal_places(value: float) -> int:
    """How many decimals a number is written with: 95.25 → 2, 80 → 0, 1e-07 → 7."""
    exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _number_text(value: float) -> str:
    """A limit as the author wrote it: 80 (not 80.0), 85.25, 1e-07."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass
class _PhaseInfo:
    id: str
    index: int
    path: Path
    operation: str
    ordering: str
    values: dict[str, str]  # input/calculation id → type ("calculation" for calculations)
    options: dict[str, list[Any]]
    optional: frozenset[str] = frozenset()  # inputs that may be left empty
    conditional: bool = False  # runs only when its condition holds (may be skipped)


class _Checker:
    """The rules a JSON Schema cannot express; each problem points at the offending field."""

    def __init__(
        self, data: dict[str, Any], positions: _Positions, reported: frozenset[Path] = frozenset()
    ) -> None:
        self.data = data
        self.positions = positions
        self.reported = reported  # paths the schema already found wrong: not reported twice
        self.problems: list[Problem] = []
        self.phases: dict[str, _PhaseInfo] = {}
        self.sibling_edges: dict[str, set[str]] = {}

    def problem(self, path: Path, message: str, *, at: Path | None = None) -> None:
        """Report ``message`` about ``path``, positioned at ``at`` (a field) when given."""
        target = at if at is not None else path
        self.problems.append(Problem(*self.positions.of(target, key=at is not None), path, message))

    def run(self, shape_ok: bool) -> list[Problem]:
        """Every rule, each on its own.

        When the file's shape is wrong (schema problems already reported), a rule that cannot
        read its part of the file is skipped, not crashed on.
        """
        guard = _Guard(shape_ok)
        self.check_numbers(self.data, ())
        self.check_texts(self.data, ())
        with guard:
            self.duration(("expected_duration",), self.data.get("expected_duration"))
        with guard:
            self.index_elements()
        with guard:
            self.check_chain_of_identity()
        for phase_path, phase, info in self.each_phase():
            for check in (
                self.check_inputs,
                self.check_calculations,
                self.check_timers,
                self.check_condition,
                self.check_phase_resources,
            ):
                with guard:
                    check(phase_path, phase, info)
        with guard:
            self.check_sibling_cycles()
        return self.problems

    # numbers and durations -------------------------------------------------------------

    def check_numbers(self, value: Any, path: Path) -> None:
        """Every number can be recorded and hashed: finite, integers exact in JSON."""
        if isinstance(value, dict):
            for key, item in value.items():
                self.check_numbers(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.check_numbers(item, (*path, index))
        elif isinstance(value, float) and not math.isfinite(value):
            self.problem(path, f"{value} is not a finite number")
        elif (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER
        ):
            self.problem(path, f"{value} is too large: whole numbers go up to {MAX_SAFE_INTEGER}")

    def check_texts(self, value: Any, path: Path) -> None:
        """Names, labels, units and options are one line; free texts hold no other control.

        The fields in :data:`FREE_TEXT_FIELDS` (descriptions, instructions, the change reason,
        help) may hold line breaks and tabs; every other text of a recipe is one line
        (:mod:`mes.core.text`): it is shown in headers, lists and the printed record.
        """
        if isinstance(value, dict):
            for key, item in value.items():
                self.check_texts(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.check_texts(item, (*path, index))
        elif isinstance(value, str) and path not in self.reported:
            free = bool(path) and path[-1] in FREE_TEXT_FIELDS
            problem = free_text_problem(value, len(value)) if free else line_problem(value)
            if problem is not None:
                self.problem(path, f"the text {problem}")

    def duration(self, path: Path, text: Any, name: str | None = None) -> None:
        """A duration (already of the right form) of at most :data:`MAX_DURATION`."""
        if isinstance(text, str) and parse_duration(text) > parse_duration(MAX_DURATION):
            where = (*path, name) if name else path
            shown = text if len(text) <= 40 else text[:40] + "…"
            said = f"{name} {shown}" if name else shown
            self.problem(path, f"{said} is longer than {MAX_DURATION}", at=where)

    # elements and their order ---------------------------------------------------------

    def each_phase(self) -> Iterator[tuple[Path, dict[str, Any], _PhaseInfo]]:
        """The phases indexed by :meth:`index_elements` (unique IDs, readable shape)."""
        for info in self.phases.values():
            _, u, _, o, _, p = info.path
            yield info.path, self.data["unit_procedures"][u]["operations"][o]["phases"][p], info

    def index_elements(self) -> None:
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
                    values = {k: v["type"] for k, v in phase.get("inputs", {}).items()}
                    for calc_id in phase.get("calculations", {}):
                        if calc_id in values:
                            self.problem(
                                (*phase_path, "calculations", calc_id),
                                f"'{calc_id}' is already the ID of an input of this phase",
                                at=(*phase_path, "calculations", calc_id),
                            )
                        else:
                            values[calc_id] = "calculation"
                    options = {
                        k: list(v.get("options", [])) for k, v in phase.get("inputs", {}).items()
                    }
                    self.phases[phase["id"]] = _PhaseInfo(
                        phase["id"],
                        index,
                        phase_path,
                        path_text(op_path),  # not its ID, which may be a duplicate
                        operation.get("ordering", PhaseOrdering.SEQUENCE.value),
                        values,
                        options,
                        frozenset(
                            k
                            for k, v in phase.get("inputs", {}).items()
                            if isinstance(v, dict) and v.get("required") is False
                        ),
                        phase.get("when") is not None,
                    )
                    index += 1

    def unique_id(self, seen: dict[str, Path], path: Path, element_id: str) -> bool:
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

    def reference(self, path: Path, at: Path, info: _PhaseInfo, target: str, what: str) -> bool:
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
        reported: set[frozenset[str]] = set()
        for start in sorted(self.sibling_edges):
            cycle = _find_cycle(start, self.sibling_edges)
            if cycle and frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                info = self.phases[start]
                self.problem(
                    info.path,
                    "phases wait for each other in a cycle: " + " → ".join([*cycle, cycle[0]]),
                    at=(*info.path, "id"),
                )

    # chain of identity -------------------------------------------------------------------

    def check_chain_of_identity(self) -> None:
        for key, spec in self.data["chain_of_identity"].items():
            path: Path = ("chain_of_identity", key)
            if "pattern" in spec:
                if spec["kind"] != "identifier":
                    self.problem(
                        path, "a pattern applies only to kind 'identifier'", at=(*path, "pattern")
                    )
                else:
                    self.regex(path, spec["pattern"], (*path, "pattern"))

    def regex(self, path: Path, pattern: str, at: Path) -> None:
        """A pattern RE2 compiles, so that every scan is matched in linear time."""
        problem = pattern_problem(pattern)
        if problem is not None:
            self.problem(path, problem, at=at)

    # inputs and limits -------------------------------------------------------------------

    def check_inputs(self, phase_path: Path, phase: dict[str, Any], _info: _PhaseInfo) -> None:
        for input_id, spec in phase.get("inputs", {}).items():
            path: Path = (*phase_path, "inputs", input_id)
            kind = spec["type"]
            if not _known_type(kind):
                continue  # the schema names the unknown type; rules by type would only echo it
            if kind == "number" and "unit" not in spec:
                self.problem(path, "a number input needs a unit", at=(*path, "type"))
            if "unit" in spec:
                self.unit(path, spec["unit"], (*path, "unit"))
            if kind not in NUMERIC_INPUTS:
                for name in (*LIMIT_FIELDS, "decimals", "unit"):
                    if name in spec:
                        self.problem(
                            path,
                            f"{name} applies only to number and integer inputs, not {kind}",
                            at=(*path, name),
                        )
            elif kind == "integer" and "decimals" in spec:
                self.problem(path, "an integer input has no decimals", at=(*path, "decimals"))
            self.limits(path, spec)
            if kind in NUMERIC_INPUTS:
                self.precision(path, spec, kind)
            if kind == "choice":
                options = spec.get("options")
                if not options:
                    self.problem(path, "a choice input needs options", at=(*path, "type"))
                elif len(set(options)) != len(options):
                    self.problem(path, "options are repeated", at=(*path, "options"))
            elif "options" in spec:
                self.problem(
                    path, f"options apply only to choice inputs, not {kind}", at=(*path, "options")
                )
            if "pattern" in spec:
                if kind not in ("text", "barcode"):
                    self.problem(
                        path,
                        f"a pattern applies only to text and barcode inputs, not {kind}",
                        at=(*path, "pattern"),
                    )
                else:
                    self.regex(path, spec["pattern"], (*path, "pattern"))

    def unit(self, path: Path, unit: str, at: Path) -> None:
        if not is_known_unit(unit):
            suggestion = suggest_unit(unit)
            hint = (
                f"; did you mean '{suggestion}'?"
                if suggestion
                else ("; use a unit from the list in docs/recipe-format.md")
            )
            self.problem(path, f"unknown unit {_shown(unit)}{hint}", at=at)

    def limits(self, path: Path, spec: Mapping[str, Any]) -> None:
        """Alert limits inside action limits; low below high; target inside the limits."""

        def get(name: str) -> Any:
            value = spec.get(name)  # a limit that is not a number is a schema problem
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None

        def above(low: str, high: str, relation: str = "above") -> None:
            if get(low) is not None and get(high) is not None and get(low) > get(high):
                self.problem(
                    path,
                    f"{low} {_number_text(get(low))} is {relation} {high} {_number_text(get(high))}",
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
                f"action_high {_number_text(get('action_high'))} is below alert_high "
                f"{_number_text(get('alert_high'))}",
                at=(*path, "action_high"),
            )
        target = get("target")
        if target is None:
            return
        for kind in ("alert", "action"):
            low, high = get(f"{kind}_low"), get(f"{kind}_high")
            if (low is not None and target < low) or (high is not None and target > high):
                bounds = f"{_number_text(low) if low is not None else '−∞'} to " + (
                    f"{_number_text(high) if high is not None else '∞'}"
                )
                self.problem(
                    path,
                    f"target {_number_text(target)} is outside the {kind} limits ({bounds})",
                    at=(*path, "target"),
                )
                return

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
                    f"{name} {_number_text(value)} is not a whole number, but the input is an "
                    "integer",
                    at=(*path, name),
                )
            elif decimals is not None and _decimal_places(value) > decimals:
                self.problem(
                    path,
                    f"{name} {_number_text(value)} has more decimals than the {decimals} the "
                    "value is recorded with",
                    at=(*path, name),
                )

    # calculations ------------------------------------------------------------------------

    def check_calculations(self, phase_path: Path, phase: dict[str, Any], info: _PhaseInfo) -> None:
        calculations = phase.get("calculations", {})
        local_refs: dict[str, set[str]] = {}
        for calc_id, spec in calculations.items():
            path: Path = (*phase_path, "calculations", calc_id)
            if "unit" in spec:
                self.unit(path, spec["unit"], (*path, "unit"))
            self.limits(path, spec)
            self.precision(path, spec, "calculation")
            try:
                parsed = expressions.parse(spec["expression"])
            except expressions.ExpressionError as error:
                self.problem(
                    path,
                    f"the expression {spec['expression']!r} cannot be read: {error.message}",
                    at=(*path, "expression"),
                )
                continue
            local_refs[calc_id] = set()
            for name in parsed.names:
                self.calculation_name(path, info, calc_id, name, local_refs[calc_id])
        for calc_id in calculations:
            cycle = _find_cycle(calc_id, local_refs)
            if cycle and cycle[0] == min(cycle):
                path = (*phase_path, "calculations", calc_id)
                self.problem(
                    path,
                    "calculations depend on each other in a cycle: "
                    + " → ".join([*cycle, cycle[0]]),
                    at=(*path, "expression"),
                )

    def calculation_name(
        self, path: Path, info: _PhaseInfo, calc_id: str, name: str, local: set[str]
    ) -> None:
        at = (*path, "expression")
        if "." not in name:
            if name not in info.values:
                self.problem(path, f"the calculation refers to unknown input '{name}'", at=at)
            elif name == calc_id:
                self.problem(path, f"the calculation '{calc_id}' refers to itself", at=at)
            elif info.values[name] not in (*NUMERIC_INPUTS, "calculation") and _known_type(
                info.values[name]
            ):
                self.problem(path, f"'{name}' is a {info.values[name]} input, not a number", at=at)
            elif info.values[name] == "calculation":
                local.add(name)
            elif name in info.optional:
                self.optional_read(path, at, name)
            return
        phase_id, value_id = name.split(".", 1)
        if not self.reference(path, at, info, phase_id, "the calculation"):
            return
        referred = self.phases[phase_id]
        if referred.conditional:
            self.problem(
                path,
                f"the calculation reads '{name}', but phase '{phase_id}' runs only when its "
                "condition holds, so the value may never be recorded",
                at=at,
            )
            return
        if value_id not in referred.values:
            self.problem(path, f"the calculation refers to unknown input '{name}'", at=at)
        elif referred.values[value_id] not in (*NUMERIC_INPUTS, "calculation") and _known_type(
            referred.values[value_id]
        ):
            self.problem(
                path, f"'{name}' is a {referred.values[value_id]} input, not a number", at=at
            )
        elif value_id in referred.optional:
            self.optional_read(path, at, name)

    def optional_read(self, path: Path, at: Path, name: str) -> None:
        self.problem(
            path,
            f"the calculation reads '{name}', which is optional: a calculation needs required "
            "inputs, or it cannot be worked out when one is left empty",
            at=at,
        )

    # timers and conditions ---------------------------------------------------------------

    def check_timers(self, phase_path: Path, phase: dict[str, Any], info: _PhaseInfo) -> None:
        starts: set[str] = set()
        for t, timer in enumerate(phase.get("timers", [])):
            path: Path = (*phase_path, "timers", t)
            if self.reference(path, (*path, "after"), info, timer["after"], "the timer"):
                if timer["after"] in starts:
                    self.problem(
                        path,
                        f"a second timer after '{timer['after']}': give min and max in one timer",
                        at=(*path, "after"),
                    )
                starts.add(timer["after"])
            for name in ("min", "max"):
                self.duration(path, timer.get(name), name)
            if (
                "min" in timer
                and "max" in timer
                and (parse_duration(timer["min"]) > parse_duration(timer["max"]))
            ):
                self.problem(
                    path, f"min {timer['min']} is above max {timer['max']}", at=(*path, "min")
                )

    def check_condition(self, phase_path: Path, phase: dict[str, Any], info: _PhaseInfo) -> None:
        condition = phase.get("when")
        if condition is None:
            return
        path: Path = (*phase_path, "when")
        at = (*path, "input")
        phase_id, input_id = condition["input"].split(".", 1)
        if not self.reference(path, at, info, phase_id, "the condition"):
            return
        referred = self.phases[phase_id]
        kind = referred.values.get(input_id)
        if kind is None:
            self.problem(
                path, f"the condition refers to unknown input '{condition['input']}'", at=at
            )
            return
        if kind not in ("choice", "yes_no"):
            if kind == "calculation" or _known_type(kind):
                self.problem(
                    path,
                    f"a condition can test a choice or yes/no input; '{condition['input']}' is "
                    f"{kind}",
                    at=at,
                )
            return
        if input_id in referred.optional:
            self.problem(
                path,
                f"'{condition['input']}' is optional: a condition needs a required input, or "
                "the phase is undecided when it is left empty",
                at=at,
            )
        wanted = [condition["equals"]] if "equals" in condition else list(condition["in"])
        field_name = "equals" if "equals" in condition else "in"
        for value in wanted:
            if kind == "yes_no" and not isinstance(value, bool):
                self.problem(
                    path,
                    f"'{condition['input']}' is yes/no: compare it with true or false, not {value!r}",
                    at=(*path, field_name),
                )
            elif kind == "choice" and value not in referred.options[input_id]:
                offered = ", ".join(repr(o) for o in referred.options[input_id])
                self.problem(
                    path,
                    f"{value!r} is not an option of '{condition['input']}' (options: {offered})",
                    at=(*path, field_name),
                )

    def check_phase_resources(
        self, phase_path: Path, phase: dict[str, Any], _info: _PhaseInfo
    ) -> None:
        codes: set[str] = set()
        for m, material in enumerate(phase.get("materials", [])):
            path: Path = (*phase_path, "materials", m)
            self.unit(path, material["unit"], (*path, "unit"))
            if material["code"] in codes:
                self.problem(
                    path,
                    f"material {material['code']} is listed twice: give its total quantity once",
                    at=(*path, "code"),
                )
            codes.add(material["code"])
        instruments: set[tuple[str, str | None]] = set()
        for e, equipment in enumerate(phase.get("equipment", [])):
            key = (equipment["class"], equipment.get("label"))
            if key in instruments:
                path = (*phase_path, "equipment", e)
                how = "with the same label" if key[1] else "without a label"
                self.problem(
                    path,
                    f"equipment '{key[0]}' is listed twice {how}: give each instrument its own "
                    "label",
                    at=(*path, "class"),
                )
            instruments.add(key)
        seen: set[str] = set()
        for c, check in enumerate(phase.get("identity_checks", [])):
            path = (*phase_path, "identity_checks", c)
            if check["id"] in seen:
                self.problem(path, f"duplicate identity check ID '{check['id']}'", at=(*path, "id"))
            seen.add(check["id"])
            if check["matches"] not in self.data["chain_of_identity"]:
                known = ", ".join(self.data["chain_of_identity"])
                self.problem(
                    path,
                    f"'{check['matches']}' is not in the chain of identity (declared: {known})",
                    at=(*path, "matches"),
                )


def _known_type(kind: Any) -> bool:
    """True for an input type of the format (an unknown one is a schema problem)."""
    return isinstance(kind, str) and kind in _input_types()


@cache
def _input_types() -> frozenset[str]:
    return frozenset(recipe_schema()["$defs"]["input"]["properties"]["type"]["enum"])


class _Guard:
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


def _find_cycle(start: str, edges: Mapping[str, set[str]]) -> list[str] | None:
    """A cycle through ``start`` in the directed graph ``edges``, as a list of nodes, or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    visited: set[str] = set()
    while stack:
        node, trail = stack.pop()
        for following in sorted(edges.get(node, ())):
            if following == start:
                return trail
            if following not in visited:
                visited.add(following)
                stack.append((following, [*trail, following]))
    return None


# --- compiling ----------------------------------------------------------------------------


def _text_or_none(text: str | None) -> str | None:
    """Optional text left empty (or only spaces) is the same as absent: one identity."""
    return text if text and text.strip() else None


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


def _compile_phase(phase: Mapping[str, Any]) -> dict[str, Any]:
    inputs = []
    for input_id, spec in phase.get("inputs", {}).items():
        compiled = _value_spec(input_id, spec, spec["type"])
        compiled.update(
            required=spec.get("required", True),
            options=list(spec["options"]) if "options" in spec else None,
            pattern=spec.get("pattern"),
            help=_text_or_none(spec.get("help")),
        )
        inputs.append(compiled)
    calculations = []
    for calc_id, spec in phase.get("calculations", {}).items():
        compiled = _value_spec(calc_id, spec, "calculation")
        compiled["expression"] = spec["expression"]
        calculations.append(compiled)
    condition = phase.get("when")
    return {
        "id": phase["id"],
        "name": phase["name"],
        "instructions": phase["instructions"],
        "perform": phase.get("perform", "operator"),
        "verify": phase.get("verify"),
        "when": None
        if condition is None
        else {
            "input": condition["input"],
            "in": [condition["equals"]] if "equals" in condition else list(condition["in"]),
        },
        "timers": [
            {
                "after": t["after"],
                "min_seconds": _seconds(t["min"]) if "min" in t else None,
                "max_seconds": _seconds(t["max"]) if "max" in t else None,
            }
            for t in phase.get("timers", [])
        ],
        "inputs": inputs,
        "calculations": calculations,
        "materials": [
            {"code": m["code"], "name": m["name"], "quantity": m["quantity"], "unit": m["unit"]}
            for m in phase.get("materials", [])
        ],
        "equipment": [
            {"class": e["class"], "label": e.get("label")} for e in phase.get("equipment", [])
        ],
        "identity_checks": [
            {"id": c["id"], "label": c["label"], "matches": c["matches"]}
            for c in phase.get("identity_checks", [])
        ],
    }


def compile_recipe(data: Mapping[str, Any]) -> dict[str, Any]:
    """The compiled form of a valid recipe: every default filled in, nothing left implicit."""
    duration = data.get("expected_duration")
    return {
        "format": FORMAT,
        "recipe_code": data["recipe_code"],
        "version": data["version"],
        "title": data["title"],
        "description": _text_or_none(data.get("description")),
        "product": {
            "code": data["product"]["code"],
            "name": data["product"]["name"],
            "modality": data["product"]["modality"],
        },
        "expected_duration_seconds": _seconds(duration) if duration else None,
        "change_reason": data["change_reason"],
        "chain_of_identity": [
            {
                "id": key,
                "label": spec["label"],
                "kind": spec["kind"],
                "pattern": spec.get("pattern"),
            }
            for key, spec in data["chain_of_identity"].items()
        ],
        "unit_procedures": [
            {
                "id": unit["id"],
                "name": unit["name"],
                "description": _text_or_none(unit.get("description")),
                "operations": [
                    {
                        "id": op["id"],
                        "name": op["name"],
                        "description": _text_or_none(op.get("description")),
                        "ordering": op.get("ordering", PhaseOrdering.SEQUENCE.value),
                        "phases": [_compile_phase(phase) for phase in op["phases"]],
                    }
                    for op in unit["operations"]
                ],
            }
            for unit in data["unit_procedures"]
        ],
    }


@dataclass(frozen=True)
class CompiledRecipe:
    """A valid recipe in compiled form, with its content identity.

    The canonical bytes (and so the hash) are taken once, when first asked for, and kept:
    treat ``data`` as read-only.
    """

    data: dict[str, Any]

    @cached_property
    def canonical(self) -> bytes:
        """RFC 8785 canonical JSON of the compiled recipe."""
        return canonical_json(self.data)

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON: the version's content identity."""
        return hashlib.sha256(self.canonical).hexdigest()

    @property
    def recipe_code(self) -> str:
        """The recipe's code, stable across versions."""
        return self.data["recipe_code"]

    @property
    def version(self) -> int:
        """The version number."""
        return self.data["version"]

    @property
    def title(self) -> str:
        """The recipe's title."""
        return self.data["title"]

    def phases(self) -> Iterator[dict[str, Any]]:
        """Every phase, in document order."""
        for unit in self.data["unit_procedures"]:
            for operation in unit["operations"]:
                yield from operation["phases"]


def _kind_of(value: Any) -> str:
    if value is None:
        return "an empty document"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def check_recipe(text: str | bytes) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Parse and check a recipe file: (data, []) when valid, (None, problems) otherwise."""
    data, positions, problems = parse_yaml(text)
    if data is None and problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [
            *problems,
            Problem(
                *(positions.of(()) if data is not None else (1, 1)),
                (),
                f"a recipe is a mapping of fields, not {_kind_of(data)}",
            ),
        ]
    schema_problems = _schema_problems(data, positions)
    reported = frozenset(p.path for p in schema_problems)
    checker = _Checker(data, positions, reported)
    problems = [*problems, *schema_problems, *checker.run(not schema_problems)]
    return (None, problems) if problems else (data, [])


def load_recipe(text: str | bytes, source_name: str) -> CompiledRecipe:
    """Validate and compile a recipe file, or raise :class:`RecipeInvalid` listing every problem.

    Schema and semantic problems are reported together, in file order.
    """
    data, problems = check_recipe(text)
    if data is None:
        raise RecipeInvalid(source_name, problems)
    return CompiledRecipe(compile_recipe(data))
