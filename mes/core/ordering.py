"""Phase ordering: how the phases of an operation may run (a recipe's ``ordering``), in words.

ISA-88 procedural control: the phases of an operation run one after another (``sequence``), in
any order one at a time (``any_order``), or at the same time (``parallel``). The recipe declares
it (:mod:`mes.core.recipe`, its JSON Schema lists the same values), the batch applies it
(:mod:`mes.core.batch.ordering`), and every layer says it with :data:`ORDERING_WORDS`. A module
of its own, importing nothing, so the recipe and the batch can both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
