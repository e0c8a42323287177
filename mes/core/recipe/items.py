"""Inputs, calculations and chain-of-identity fields: items whose order is content.

Their order is the order shown on screen and in the record, so it is part of the recipe's
content hash. They are written as lists of items with an ``id``; the older mapping of ID →
fields is read in the order of its keys, with a warning, since YAML makes a mapping's key order
a presentation detail that tools may change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.recipe.problems import Path

# The fields whose items are shown in the order written: that order is content.
ORDERED_ITEMS = {
    "chain_of_identity": "chain-of-identity field",
    "inputs": "input",
    "calculations": "calculation",
}


@dataclass(frozen=True)
class Item:
    """One input, calculation or chain-of-identity field: its ID, its fields, where it is written.

    ``path`` is its place in the file: ``(…, 'inputs', 2)`` in a list of items with IDs,
    ``(…, 'inputs', 'viability')`` in the older mapping of ID → fields.
    """

    id: str
    spec: Mapping[str, Any]
    path: Path


def items_of(container: Any, path: Path = ()) -> list[Item]:
    """The items of a list of items with IDs, or of the older mapping ID → fields, in order."""
    if container is None:
        return []
    if isinstance(container, list):
        return [Item(item["id"], item, (*path, i)) for i, item in enumerate(container)]
    return [Item(key, spec, (*path, key)) for key, spec in container.items()]


def mapping_warning(name: str, first: str | None) -> str:
    """The warning about ``name`` written as a mapping; ``first`` is its first key."""
    what = ORDERED_ITEMS[name]
    example = f"- id: {first}" if first else "- id: …"
    return (
        f"{name} is written as a mapping, but the order of its keys is significant: it is the "
        "order shown on screen and in the record, and part of the recipe's content hash, while "
        f"YAML tools may reorder a mapping's keys. Write {name} as a list, one item per {what} "
        f"starting with its ID ({example}, then its fields)"
    )
