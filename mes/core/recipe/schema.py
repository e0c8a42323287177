"""The published JSON Schema of the recipe format, and its violations explained.

``schema/recipe.schema.json`` (also at ``recipes/schema/``) is what authors' editors read;
a violation is reported with its line, column and path, in words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
import jsonschema

from mes.core.recipe.problems import Path, Problem, shown
from mes.core.recipe.source import Positions


def recipe_schema() -> dict[str, Any]:
    """The recipe format's JSON Schema: the published file, with any phase kind added since.

    A phase kind (:mod:`mes.core.phases`) whose part is not in the published file brings its own
    schema (``PhaseKind.schema``), added to a phase's properties.
    """
    return _schema(_kind_schemas())


def _kind_schemas() -> tuple[tuple[str, str], ...]:
    """(key, JSON Schema as text) of each registered phase kind not in the published file."""
    from mes.core import phases  # the kinds import this module: ask the registry when called

    return tuple(
        (kind.key, json.dumps(kind.schema, sort_keys=True))
        for kind in phases.KINDS.values()
        if kind.schema is not None
    )


@cache
def _schema(kinds: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    text = resources.files("mes.core").joinpath("schema/recipe.schema.json").read_text("utf-8")
    schema = json.loads(text)
    for key, part in kinds:
        schema["$defs"]["phase"]["properties"][key] = json.loads(part)
    return schema


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


def full_validator() -> jsonschema.protocols.Validator:
    """The jsonschema validator of the recipe schema: lists every violation of an invalid file."""
    return _full_validator(_kind_schemas())


@cache
def _full_validator(kinds: tuple[tuple[str, str], ...]) -> jsonschema.protocols.Validator:
    checker = jsonschema.validators.extend(
        jsonschema.Draft202012Validator, validators={"pattern": _pattern}
    )
    return checker(_schema(kinds))


def fast_check() -> Any:
    """The schema compiled to Python code (fastjsonschema): a quick yes for a valid file."""
    return _fast_check(_kind_schemas())


@cache
def _fast_check(kinds: tuple[tuple[str, str], ...]) -> Any:
    return fastjsonschema.compile(_schema(kinds))


def schema_problems(data: Any, positions: Positions) -> list[Problem]:
    """Every schema violation, explained.

    A valid file is confirmed by the compiled check (milliseconds); only an invalid one is
    walked by jsonschema, which lists every problem (a test checks both agree).
    """
    try:
        fast_check()(data)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        return []
    problems = []
    for error in full_validator().iter_errors(data):
        problems.extend(_explain(error, positions))
    return problems


def _explain(error: jsonschema.ValidationError, positions: Positions) -> Iterator[Problem]:
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
                f"unknown field {shown(extra)} (allowed here: {allowed})",
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
            f"{shown(error.instance)} is not a valid ID: use lower-case letters, digits and '_', "
            "starting with a letter",
        )
        return
    message = error.message
    if keyword == "pattern":
        described = error.schema.get("description")
        message = f"{shown(error.instance)} is not allowed here" + (
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
        message = f"{shown(error.instance)} is text, not a number"
    elif len(message) > 300:
        message = message[:300] + "…"
    yield Problem(*positions.of(path), path, message)


def known_type(kind: Any) -> bool:
    """True for an input type of the format (an unknown one is a schema problem)."""
    return isinstance(kind, str) and kind in input_types()


@cache
def input_types() -> frozenset[str]:
    """The input types of the format, as the schema lists them."""
    return frozenset(recipe_schema()["$defs"]["input"]["properties"]["type"]["enum"])
