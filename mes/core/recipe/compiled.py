"""A recipe compiled: every default filled in, and its content identity.

The compiled form is plain JSON data (durations in seconds, inputs, calculations and
chain-of-identity fields as ordered lists); the SHA-256 of its RFC 8785 canonical JSON is the
version's content identity, the same whatever the key order, whitespace or YAML style of the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mes.core import phases
from mes.core.canonical import canonical_json
from mes.core.ordering import PhaseOrdering
from mes.core.recipe import parts
from mes.core.recipe.numbers import seconds
from mes.core.recipe.parts import text_or_none

FORMAT = "gmp-mes/recipe/1"


def compile_phase(phase: Mapping[str, Any]) -> dict[str, Any]:
    """A phase compiled: its own fields, its condition, then each phase kind's part (:mod:`mes.core.phases`)."""
    return {
        "id": phase["id"],
        "name": phase["name"],
        "instructions": phase["instructions"],
        "perform": phase.get("perform", "operator"),
        "verify": phase.get("verify"),
        "when": parts.compile_condition(phase),
        **{
            kind.key: kind.compile(phase)
            for kind in phases.KINDS.values()
            if kind.key in phase or kind.compiled_always
        },
    }


def compile_recipe(data: Mapping[str, Any]) -> dict[str, Any]:
    """The compiled form of a valid recipe: every default filled in, nothing left implicit."""
    duration = data.get("expected_duration")
    compiled = {
        "format": FORMAT,
        "recipe_code": data["recipe_code"],
        "version": data["version"],
        "title": data["title"],
        "description": text_or_none(data.get("description")),
        "product": {
            "code": data["product"]["code"],
            "name": data["product"]["name"],
            "modality": data["product"]["modality"],
        },
        "expected_duration_seconds": seconds(duration) if duration else None,
        "change_reason": data["change_reason"],
        "chain_of_identity": parts.compile_chain_of_identity(data),
        "unit_procedures": [
            {
                "id": unit["id"],
                "name": unit["name"],
                "description": text_or_none(unit.get("description")),
                "operations": [
                    {
                        "id": op["id"],
                        "name": op["name"],
                        "description": text_or_none(op.get("description")),
                        "ordering": op.get("ordering", PhaseOrdering.SEQUENCE.value),
                        "phases": [compile_phase(phase) for phase in op["phases"]],
                    }
                    for op in unit["operations"]
                ],
            }
            for unit in data["unit_procedures"]
        ],
    }
    if "turnaround" in data:  # only when declared: a recipe without one keeps its identity
        compiled["turnaround"] = parts.compile_turnaround(data)
    if "pending_results" in data:  # likewise: only when declared
        compiled["pending_results"] = parts.compile_pending_results(data)
    if "bedside" in data:  # only when declared, as the turnaround
        compiled["bedside"] = parts.compile_bedside(data)
    if "custody" in data:  # only when declared: the shipments' logger window
        compiled["custody"] = parts.compile_custody(data)
    return compiled


@dataclass(frozen=True)
class CompiledRecipe:
    """A valid recipe in compiled form, with its content identity.

    The canonical bytes (and so the hash) are taken once, when first asked for, and kept:
    treat ``data`` as read-only.
    """

    data: dict[str, Any]
    warnings: tuple[str, ...] = field(default=(), compare=False)  # one line each, file order

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
