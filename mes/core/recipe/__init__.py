"""Master recipes (ISA-88): load a YAML file, validate it precisely, compile it to its identity.

A master recipe is procedure → unit procedures → operations → phases; a phase is what an
operator executes and signs. :func:`load_recipe` reads the YAML text (:mod:`.source`), checks it
against the published JSON Schema (:mod:`.schema`), then checks the rules a schema cannot
express (:mod:`.checker`, with each part of a phase in :mod:`.parts`: unique IDs, references
only to earlier phases, no cycles, limits in order, known units, parseable calculations), and
compiles it (:mod:`.compiled`).

Every problem names the line, column and path in the recipe (:mod:`.problems`), e.g.
``car-t.yaml:118:17 unit_procedures[2].operations[0].phases[3].inputs[1]: action_low 80 is
above alert_low 70``; all problems are reported at once, and no input — however malformed —
raises anything but :class:`RecipeInvalid`.

The compiled form is plain JSON data with every default filled in; the SHA-256 of its RFC 8785
canonical JSON is the version's content identity, the same whatever the order of a mapping's
fields, the whitespace or the YAML style of the file. The order of inputs, calculations and
chain-of-identity fields is content (it is the order the operator sees), so they are written as
lists of items with an ``id``, like phases (:mod:`.items`); the older mapping form is still read,
in the order of its keys, with a warning.
"""

from __future__ import annotations

from typing import Any

from mes.core.recipe.checker import RecipeChecker
from mes.core.recipe.compiled import FORMAT, CompiledRecipe, compile_recipe
from mes.core.recipe.items import ORDERED_ITEMS, Item, items_of
from mes.core.recipe.numbers import parse_duration
from mes.core.recipe.problems import Path, Problem, RecipeInvalid, path_text
from mes.core.recipe.schema import recipe_schema, schema_problems
from mes.core.recipe.source import MAX_DEPTH, MAX_NODES, MAX_SOURCE_BYTES, parse_yaml

__all__ = [
    "FORMAT",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SOURCE_BYTES",
    "ORDERED_ITEMS",
    "CompiledRecipe",
    "Item",
    "Path",
    "Problem",
    "RecipeInvalid",
    "check_recipe",
    "compile_recipe",
    "inspect_recipe",
    "items_of",
    "load_recipe",
    "parse_duration",
    "parse_yaml",
    "path_text",
    "recipe_schema",
    "recipe_warnings",
]


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


def inspect_recipe(
    text: str | bytes,
) -> tuple[dict[str, Any] | None, list[Problem], list[Problem]]:
    """Parse and check a recipe file: its data (None when invalid), problems and warnings.

    A warning (the older mapping form of an ordered field) refuses nothing.
    """
    data, positions, problems = parse_yaml(text)
    if data is None and problems:
        return None, problems, []
    if not isinstance(data, dict):
        return (
            None,
            [
                *problems,
                Problem(
                    *(positions.of(()) if data is not None else (1, 1)),
                    (),
                    f"a recipe is a mapping of fields, not {_kind_of(data)}",
                ),
            ],
            [],
        )
    against_schema = schema_problems(data, positions)
    reported = frozenset(p.path for p in against_schema)
    checker = RecipeChecker(data, positions, reported)
    problems = [*problems, *against_schema, *checker.run(not against_schema)]
    warnings = sorted(checker.warnings)
    return (None, problems, warnings) if problems else (data, [], warnings)


def check_recipe(text: str | bytes) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Parse and check a recipe file: (data, []) when valid, (None, problems) otherwise."""
    data, problems, _ = inspect_recipe(text)
    return data, problems


def load_recipe(text: str | bytes, source_name: str) -> CompiledRecipe:
    """Validate and compile a recipe file, or raise :class:`RecipeInvalid` listing every problem.

    Schema and semantic problems are reported together, in file order; warnings come with the
    compiled recipe (or with the refusal), one line each.
    """
    data, problems, warnings = inspect_recipe(text)
    if data is None:
        raise RecipeInvalid(source_name, problems, warnings)
    return CompiledRecipe(compile_recipe(data), tuple(w.text(source_name) for w in warnings))


def recipe_warnings(text: str | bytes, source_name: str) -> list[str]:
    """The warnings about a recipe file, one line each, whether or not it is valid."""
    return [w.text(source_name) for w in inspect_recipe(text)[2]]
