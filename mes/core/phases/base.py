"""What every phase kind says about itself: the contract between a kind and the layers.

A phase kind is one thing a phase asks of the operator — values, calculations, lots, instruments,
identity labels, timers. Its class says, in one place: its key in the recipe, how a submitted
form becomes its entries, how it is recorded (the ledger entries it writes and how they apply),
what is missing before the phase is signed, its part of the signed phase record, how it is shown
on the operator's page, printed and listed, and its BatchML and recipe-comparison words. The
layers iterate :data:`mes.core.phases.KINDS` and never name a kind.

Every method has a default that does nothing, so a kind says only what applies to it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from mes.core.audit import Actor
from mes.core.errors import MesError
from mes.core.phases.words import ADDED, REMOVED

if TYPE_CHECKING:  # the batch and the recipe checker call the kinds: their types only
    from xml.etree import ElementTree as ET

    from mes.core.batch import Batch, Operator, Outcome, PhasePlan, PhaseState
    from mes.core.batch.machines import EntryKind
    from mes.core.ledger import SealedEntry
    from mes.core.recipe.checker import PhaseInfo, RecipeChecker
    from mes.core.recipe.problems import Path

Spec = Mapping[str, Any]
Data = Mapping[str, Mapping[Hashable, Any]]  # each kind's entries, by its argument name
Items = list[dict[str, Any]]  # what the operator's page shows of a kind
Lines = tuple[Any, ...]  # a kind's lines in the printed record


class Missing(str):
    """One thing a phase still needs before it is signed, in words (it is the text itself).

    ``field`` names the form field that fills it (``value:ID``, ``lot:CODE``), so the page can
    tick it off as it is typed; the server judges again when the form is saved.
    """

    field: str | None

    def __new__(cls, text: str, field: str | None = None) -> Missing:
        missing = super().__new__(cls, text)
        missing.field = field
        return missing


@dataclass(frozen=True)
class Site:
    """What the site knows when something is recorded: its date, and its master data.

    ``lookup(what, scanned)``: the registered thing a scan names (``what`` is a kind's
    :attr:`PhaseKind.looks_up`, e.g. ``"lot"``), or None when none is registered.
    """

    today: date
    lookup: Callable[[str, str], Any] = lambda _what, _scanned: None


@dataclass(frozen=True)
class Acting:
    """Who records, when, at which terminal, and what the site knows then."""

    who: Operator
    at: datetime
    terminal: str | None
    site: Site


@dataclass(frozen=True)
class PageForm:
    """What the operator typed on a refused form, the messages per field, and the site's zone."""

    entered: Mapping[str, str] = field(default_factory=dict)
    field_errors: Mapping[str, str] = field(default_factory=dict)
    time_zone: str = "UTC"


@dataclass(frozen=True)
class Printing:
    """What the printed record needs besides the batch: correction reasons, the site's zone."""

    reasons: Mapping[int, tuple[str, int]]  # by entry seq: (reason, the entry it corrects)
    time_zone: str


@dataclass(frozen=True)
class Printed:
    """One kind's lines in the printed record of one phase (in the kind's order)."""

    kind: str
    lines: tuple[Any, ...]  # each with ``text``, ``css`` and ``changes``


class PhaseKind:
    """One kind of thing a phase asks for; subclass it and register it in ``KINDS``."""

    key: ClassVar[str]  # the phase's key in the recipe, and the kind's name in the registry
    title: ClassVar[str] = ""  # its heading on the operator's page
    field: ClassVar[str | None] = None  # its form fields are named ``<field>:<slot>``
    argument: ClassVar[str | None] = None  # the name of its entries in a phase's data
    entry_kinds: ClassVar[frozenset[str]] = frozenset()  # the ledger entries it writes
    looks_up: ClassVar[str | None] = None  # the site's master data its scans are checked against
    on_screen: ClassVar[int] = 100  # its place on the operator's page (scans come first)
    signed_as: ClassVar[str | None] = None  # its name in the signed phase record
    # its part of the recipe format as JSON Schema (None: written in the published schema file)
    schema: ClassVar[Mapping[str, Any] | None] = None
    compiled_always: ClassVar[bool] = False  # compiled (empty) even where a phase does not use it

    # -- the recipe ------------------------------------------------------------------------

    def check(self, checker: RecipeChecker, phase_path: Path, phase: Spec, info: PhaseInfo) -> None:
        """Report what the JSON Schema cannot say about this kind's part of a phase."""

    def compile(self, phase: Spec) -> list[dict[str, Any]]:
        """This kind's part of a compiled phase, every default filled in."""
        return [dict(item) for item in phase.get(self.key) or []]

    def items(self, phase_spec: Spec) -> list[Spec]:
        """What a compiled phase declares of this kind, in order."""
        return list(phase_spec.get(self.key) or [])

    def recorded(self, phase: PhaseState) -> dict[Any, Any]:
        """Where a phase keeps what was recorded of this kind (slot → what)."""
        return phase.kinds.setdefault(self.key, {})

    # -- the form ----------------------------------------------------------------------------

    def parse(self, fields: Mapping[str, str]) -> dict[str, dict[Hashable, str]]:
        """A submitted form's fields ``<field>:<slot>`` as this kind's entries."""
        if self.field is None or self.argument is None:
            return {}
        entries: dict[Hashable, str] = {}
        for key, value in fields.items():
            prefix, _, name = key.partition(":")
            if prefix == self.field and (slot := self.slot(name)) is not None:
                entries[slot] = value
        return {self.argument: entries}

    def slot(self, name: str) -> Hashable | None:
        """The slot a field name stands for (None: not a slot of this kind)."""
        return name

    def field_key(self, slot: Hashable) -> str:
        """The form field of one slot, where its refusal is shown."""
        return f"{self.field}:{slot}"

    # -- recording (the core) ------------------------------------------------------------------

    def record(
        self, batch: Batch, phase_id: str, data: Data, acting: Acting
    ) -> dict[str, MesError]:
        """Record this kind's entries of ``data``; the refusals to show, by form field."""
        return {}

    def apply(
        self, batch: Batch, phase: PhaseState, payload: Mapping[str, Any], entry: SealedEntry
    ) -> str:
        """Apply one of this kind's ledger entries to the phase; what was done, in words."""
        raise NotImplementedError(f"{type(self).__name__} writes no ledger entries")

    def missing(self, batch: Batch, plan: PhasePlan, phase: PhaseState) -> list[str]:
        """What the phase still needs of this kind before it is signed as performed."""
        return []

    def signed(self, plan: PhasePlan, phase: PhaseState) -> Any:
        """This kind's part of the record a phase signature binds to (None: no part)."""
        recorded = self.recorded(phase)
        if not recorded and not self.items(plan.spec):
            return None
        return {str(slot): what for slot, what in sorted(recorded.items())}

    # -- words -----------------------------------------------------------------------------

    def entry_text(self, batch: Batch, kind: str, payload: Mapping[str, Any]) -> str:
        """One of this kind's ledger entries as a line of the audit trail."""
        return f"{kind} in phase {payload.get('phase')}"

    def page(self, batch: Batch, plan: PhasePlan, phase: PhaseState, form: PageForm) -> Items:
        """The items the operator's page shows (its template partial: ``kinds/<key>.html``)."""
        return []

    def printed(self, batch: Batch, plan: PhasePlan, phase: PhaseState, how: Printing) -> Lines:
        """The lines the printed record shows (each with ``text``, ``css`` and ``changes``)."""
        return ()

    def lines(self, batch: Batch, plan: PhasePlan, phase: PhaseState, zone: str) -> list[str]:
        """The lines ``mes batch show`` prints (plain text)."""
        return [
            "      " + line.text for line in self.printed(batch, plan, phase, Printing({}, zone))
        ]

    def in_words(self, phase: dict[str, Any], names: Any) -> None:
        """Add the words people read to a compiled phase (the recipe pages)."""

    # -- BatchML (B2MML) ------------------------------------------------------------------

    def batchml_requirements(self, element: ET.Element, phase: Spec) -> None:
        """Its ``EquipmentRequirement`` elements (they come first in a RecipeElement)."""

    def batchml_parameters(self, element: ET.Element, phase: Spec) -> None:
        """Its ``Parameter`` elements."""

    def batchml_information(self, element: ET.Element, phase: Spec) -> None:
        """What BatchML has no element for, as ``OtherInformation``."""

    # -- comparing two recipe versions ----------------------------------------------------------

    def diff(self, differ: Any, place: Any, before: list[Spec], after: list[Spec]) -> None:
        """The changes a reviewer signs between the old and new items of this kind."""


class Scans(PhaseKind):
    """A kind whose entries are labels scanned into slots, each recorded or refused (and kept)."""

    payload_slot: ClassVar[str]  # the payload's key naming the slot

    def scan(
        self, batch: Batch, phase_id: str, slot: Hashable, scanned: str, acting: Acting
    ) -> Outcome:
        """Record or refuse one label scanned for ``slot``."""
        raise NotImplementedError

    def scan_field(self, form: PageForm, slot: Hashable) -> dict[str, Any]:
        """A scan field on the page: its name, its refusal, and what was typed in it."""
        key = self.field_key(slot)
        return {
            "key": key,
            "error": form.field_errors.get(key),
            "prefill": form.entered.get(key, ""),
        }

    def touched(self, payload: Mapping[str, Any]) -> str:
        """What a scan did, in words (for a page that went stale)."""
        raise NotImplementedError

    def record(
        self, batch: Batch, phase_id: str, data: Data, acting: Acting
    ) -> dict[str, MesError]:
        refusals = {}
        for slot, scanned in (data.get(str(self.argument)) or {}).items():
            if not (scanned or "").strip():
                continue
            outcome = self.scan(batch, phase_id, slot, scanned, acting)
            if outcome.refusal is not None:
                refusals[self.field_key(slot)] = outcome.refusal
        return refusals

    def apply(
        self, batch: Batch, phase: PhaseState, payload: Mapping[str, Any], entry: SealedEntry
    ) -> str:
        slot = self.slot(str(payload[self.payload_slot]))
        self.recorded(phase)[slot] = {
            **payload,
            "seq": entry.seq,
            "at": entry.body["at"],
            "by": Actor.from_dict(entry.body["actor"]),
        }
        return self.touched(payload)


def scanned_or_refused(
    batch: Batch,
    phase_id: str,
    refused: tuple[str, str, MesError | None],
    scanned: str,
    used: tuple[EntryKind, Callable[[], dict[str, Any]]],
    who: Operator,
    at: datetime,
    terminal: str | None,
) -> Outcome:
    """Keep a refused scan with its refusal, or record an accepted one; the entries written.

    ``refused``: what was scanned for, its slot, and why it is refused (None: it is not);
    ``used``: the entry an accepted scan writes, and its payload.
    """
    from mes.core.batch.state import Outcome

    what, slot, refusal = refused
    mark = len(batch.new_entries)
    if refusal is not None:
        batch._refused(phase_id, what, slot, scanned, refusal, who, at, terminal)
    else:
        kind, payload = used
        batch._append(kind, payload(), who.actor, at, terminal)
    return Outcome(tuple(batch.new_entries[mark:]), refusal)


def whole_item(
    differ: Any,
    place: Any,
    field: str,
    old: Spec | None,
    new: Spec | None,
    shown: str | None,
    text: str,
) -> bool:
    """An item added or removed between two recipe versions (False: it is in both).

    ``text``: the sentence, with ``{kind}`` where "added" or "removed" goes.
    """
    if old is not None and new is not None:
        return False
    kind = ADDED if old is None else REMOVED
    before, after = (None, shown) if old is None else (shown, None)
    differ.add(kind, place, field, before, after, text.replace("{kind}", kind))
    return True
