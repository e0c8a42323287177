"""Continued process verification (CPV, stage 3 of process validation): the statistics.

Control charts of individuals and moving ranges (:mod:`.control`), the Western Electric / Nelson
run rules that raise signals on them (:mod:`.rules`), process performance Ppk with its interval
(:mod:`.capability`), a site's equivalence with the rest of the network by two one-sided tests
(:mod:`.equivalence`), and each said in words (:mod:`.words`). Pure functions of the values they
are given: no I/O, no clock, deterministic; numpy for whole series, scipy for the distributions.
"""

from mes.core.cpv.capability import Capability, capability, ppk_interval
from mes.core.cpv.control import D2, D4, ControlLimits, imr_limits, moving_ranges
from mes.core.cpv.equivalence import Equivalence, equivalence
from mes.core.cpv.rules import ALL_RULES, DEFAULT_RULES, Direction, Rule, Signal, signals
from mes.core.cpv.words import equivalence_words, signal_words

__all__ = [
    "ALL_RULES",
    "D2",
    "D4",
    "DEFAULT_RULES",
    "Capability",
    "ControlLimits",
    "Direction",
    "Equivalence",
    "Rule",
    "Signal",
    "capability",
    "equivalence",
    "equivalence_words",
    "imr_limits",
    "moving_ranges",
    "ppk_interval",
    "signal_words",
    "signals",
]
