"""Cycles among the phases or calculations that wait for, or read, each other."""

from __future__ import annotations

from collections.abc import Mapping


def find_cycle(start: str, edges: Mapping[str, set[str]]) -> list[str] | None:
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
