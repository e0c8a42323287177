"""Phase kinds: each thing a phase can ask of an operator, declared once, in one table.

:data:`KINDS` lists every kind in the order the recipe declares them; every layer iterates it —
the batch (recording, what is missing before signing, the signed phase record, the ledger's
entries), the operator's page and its form, the printed record and ``mes batch show``, BatchML,
the comparison of two recipe versions and the recipe in words. To add a kind, write its class
(:class:`~mes.core.phases.base.PhaseKind`) and its page partial, and add it here
(docs/architecture.md, "Adding a phase kind").
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import mes.core.batch  # noqa: F401 - the kinds build on the batch's states: load the batch first
from mes.core.phases.base import Acting, PageForm, PhaseKind, Printed, Printing, Scans, Site
from mes.core.phases.calculations import Calculations
from mes.core.phases.equipment import Equipment
from mes.core.phases.identity import IdentityChecks
from mes.core.phases.materials import Materials
from mes.core.phases.temperature_log import TemperatureLogs
from mes.core.phases.timers import Timers
from mes.core.phases.values import Inputs

__all__ = [
    "KINDS",
    "Acting",
    "PageForm",
    "PhaseKind",
    "Printed",
    "Printing",
    "Scans",
    "Site",
    "for_entry",
    "on_screen",
    "parse_form",
]

KINDS: dict[str, PhaseKind] = {
    kind.key: kind
    for kind in (
        Timers(),
        Inputs(),
        Calculations(),
        Materials(),
        Equipment(),
        IdentityChecks(),
        TemperatureLogs(),
    )
}


def for_entry(entry_kind: str) -> PhaseKind | None:
    """The kind that writes ledger entries of ``entry_kind`` (None: not a phase kind's entry)."""
    return next((k for k in KINDS.values() if entry_kind in k.entry_kinds), None)


def on_screen() -> list[PhaseKind]:
    """The kinds in the order the operator's page shows them (scans first, then values)."""
    return sorted(KINDS.values(), key=lambda k: k.on_screen)


def parse_form(fields: Mapping[str, str]) -> dict[str, dict[Hashable, str]]:
    """A submitted phase form as each kind's entries, by the kind's argument name."""
    data: dict[str, dict[Hashable, str]] = {}
    for kind in KINDS.values():
        data.update(kind.parse(fields))
    return data
