"""Two versions of a master recipe compared: the list of changes a reviewer signs off.

Change control (EU GMP Annex 11 §10, 21 CFR 211.100(a)): a new recipe version is approved
knowing exactly what differs from the version it replaces. :func:`diff_recipes` compares two
*compiled* recipes (:func:`mes.core.recipe.compile_recipe`), so key order, whitespace and YAML
style never show up as changes, and every default is compared as the operator will see it.

Unit procedures, operations and phases are matched by ID across the whole recipe (a phase that
now sits in another operation is *moved*, not removed and added); inputs and calculations by
ID, timers by the phase they count from, materials by code, equipment by class, identity checks
and chain-of-identity fields by ID. Each :class:`Change` carries one sentence a reviewer can sign,
e.g. ``Phase 'Count cells': input 'Viability': action low limit changed from 80 % to 75 %.``

Changes come in the document order of the new recipe; a removed element is listed where it was.
The version number itself is not a change (it is what tells the two versions apart).
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Container, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mes.core import phases
from mes.core.critical import point_title
from mes.core.logger import Window
from mes.core.ordering import ORDERING_WORDS
from mes.core.phases.words import (
    ADDED,
    CHANGED,
    MOVED,
    REMOVED,
    duration,
    hours,
    option,
    quoted,
)

KINDS = (ADDED, REMOVED, CHANGED, MOVED)

ROLES = {"operator": "operator", "supervisor": "supervisor", "qa": "QA"}
SEPARATOR = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "  # between the levels of `where`

Element = Mapping[str, Any]


@dataclass(frozen=True)
class Change:
    """One difference between two recipe versions.

    ``kind`` is added, removed, changed or moved; ``where`` the element's place in the recipe;
    ``field`` what changed inside it (None when the whole element was added, removed or
    moved); ``before``/``after`` display values with units; ``text`` the sentence to sign.
    For instructions and descriptions, ``before``/``after`` hold the two sides of a short
    unified diff (``-`` removed lines, ``+`` added lines, `` `` context, ``…`` between hunks).
    """

    kind: str
    where: str
    field: str | None
    before: str | None
    after: str | None
    text: str


def diff_recipes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every difference from compiled recipe ``old`` to compiled recipe ``new``.

    Identical content gives ``[]``. Changes are in the new recipe's document order, a removal
    where the removed element stood (Annex 11 §10: changes are made under change control, so
    the reviewer must see each one).
    """
    return _Differ(old, new).run()


def summary(changes: Sequence[Change]) -> str:
    """``3 changes: 1 added, 2 changed`` (kinds in the order added, removed, changed, moved)."""
    if not changes:
        return "No changes"
    counts = Counter(change.kind for change in changes)
    parts = [f"{counts[kind]} {kind}" for kind in KINDS if counts[kind]]
    noun = "change" if len(changes) == 1 else "changes"
    return f"{len(changes)} {noun}: " + ", ".join(parts)


# --- display values -------------------------------------------------------------------------


def _condition(when: Mapping[str, Any] | None) -> str | None:
    if when is None:
        return None
    return f"{when['input']} is " + " or ".join(option(v) for v in when["in"])


def _text_diff(before: str, after: str) -> tuple[str, str]:
    """The two sides of a short unified diff of ``before`` → ``after``, line by line."""
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=1)
    lines = list(diff)[2:]  # without the ---/+++ header
    old_side: list[str] = []
    new_side: list[str] = []
    for line in lines:
        if line.startswith("@@"):
            if old_side or new_side:
                old_side.append("…")
                new_side.append("…")
        elif line.startswith("-"):
            old_side.append(line)
        elif line.startswith("+"):
            new_side.append(line)
        else:
            old_side.append(line)
            new_side.append(line)
    if not lines:  # the lines are equal: only line endings differ
        return repr(before), repr(after)
    return "\n".join(old_side), "\n".join(new_side)


# --- pairing --------------------------------------------------------------------------------


def _keyed(
    items: Sequence[Element], key: Callable[[Element], str]
) -> list[tuple[Hashable, Element]]:
    """Items with their matching key; a repeated key is told apart by its occurrence."""
    seen: Counter[str] = Counter()
    keyed: list[tuple[Hashable, Element]] = []
    for item in items:
        base = key(item)
        keyed.append((base if seen[base] == 0 else (base, seen[base]), item))
        seen[base] += 1
    return keyed


def _paired(
    old_items: Sequence[Element],
    new_items: Sequence[Element],
    key: Callable[[Element], str],
    *,
    old_anywhere: Mapping[Hashable, Element] | None = None,
    new_anywhere: Container[Hashable] | None = None,
) -> list[tuple[Element | None, Element | None]]:
    """(old, new) pairs in the new order; a removed item follows the item it followed before.

    ``old_anywhere``/``new_anywhere`` widen the match to the whole recipe, for elements that
    can move between parents: an old item found elsewhere in the new recipe is not removed here,
    and a new item is paired with its old self wherever that was.
    """
    old_keyed = _keyed(old_items, key)
    new_keyed = _keyed(new_items, key)
    old_by_key = old_anywhere if old_anywhere is not None else dict(old_keyed)
    new_here = {k for k, _ in new_keyed}
    still_present = new_anywhere if new_anywhere is not None else new_here
    removed_after: dict[Hashable, list[Element]] = {}
    anchor: Hashable = None
    for k, item in old_keyed:
        if k in new_here:
            anchor = k
        elif k not in still_present:
            removed_after.setdefault(anchor, []).append(item)
    pairs: list[tuple[Element | None, Element | None]] = [
        (item, None) for item in removed_after.get(None, [])
    ]
    for k, item in new_keyed:
        pairs.append((old_by_key.get(k), item))
        pairs.extend((removed, None) for removed in removed_after.get(k, []))
    return pairs


def _moved_within(old_keys: Sequence[Hashable], new_keys: Sequence[Hashable]) -> set[Hashable]:
    """Keys in both lists whose relative order changed (outside a longest common run)."""
    old_set, new_set = set(old_keys), set(new_keys)
    common_old = [k for k in old_keys if k in new_set]
    common_new = [k for k in new_keys if k in old_set]
    if common_old == common_new:
        return set()
    matcher = difflib.SequenceMatcher(a=common_old, b=common_new, autojunk=False)
    kept: set[Hashable] = set()
    for block in matcher.get_matching_blocks():
        kept.update(common_new[block.b : block.b + block.size])
    return set(common_new) - kept


# --- the comparison -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    """Where an element is (for ``Change.where``) and how a sentence names it."""

    where: str
    subject: str


@dataclass(frozen=True)
class _Located:
    """A procedural element with its parents, for messages that name them."""

    element: Element
    unit: Element | None = None
    operation: Element | None = None


def _children(
    field: str,
    old_parent: Mapping[str, Any] | None,
    new_parent: Mapping[str, Any] | None,
    old_located: Mapping[str, _Located] | None = None,
    new_anywhere: Container[Hashable] | None = None,
) -> tuple[list[tuple[Element | None, Element | None]], set[Hashable]]:
    """The ``field`` children of an old and a new parent paired by ID, and the IDs moved within.

    ``old_located``/``new_anywhere`` (every old and new element of that level) let a child be
    paired with its old self wherever that was (:func:`_paired`).
    """
    old_items = old_parent[field] if old_parent else []
    new_items = new_parent[field] if new_parent else []
    moved = _moved_within([c["id"] for c in old_items], [c["id"] for c in new_items])
    old_anywhere = None if old_located is None else {k: v.element for k, v in old_located.items()}
    pairs = _paired(
        old_items,
        new_items,
        lambda c: c["id"],
        old_anywhere=old_anywhere,
        new_anywhere=new_anywhere,
    )
    return pairs, moved


def _index(recipe: Mapping[str, Any]) -> tuple[dict[str, _Located], dict[str, _Located]]:
    """Operations and phases of ``recipe`` by ID, with their parents."""
    operations: dict[str, _Located] = {}
    phases: dict[str, _Located] = {}
    for unit in recipe["unit_procedures"]:
        for operation in unit["operations"]:
            operations[operation["id"]] = _Located(operation, unit)
            for phase in operation["phases"]:
                phases[phase["id"]] = _Located(phase, unit, operation)
    return operations, phases


def _unit_name(unit: Element) -> str:
    return f"Unit procedure '{unit['name']}'"


def _operation_name(operation: Element) -> str:
    return f"Operation '{operation['name']}'"


def _phase_name(phase: Element) -> str:
    return f"Phase '{phase['name']}'"


def _unit_place(unit: Element) -> _Place:
    return _Place(_unit_name(unit), _unit_name(unit))


def _operation_place(unit: Element, operation: Element) -> _Place:
    return _Place(
        _unit_name(unit) + SEPARATOR + _operation_name(operation), _operation_name(operation)
    )


def _phase_place(unit: Element, operation: Element, phase: Element) -> _Place:
    where = SEPARATOR.join(
        (_unit_name(unit), _operation_name(operation), f"{_phase_name(phase)} ({phase['id']})")
    )
    return _Place(where, _phase_name(phase))


class _Differ:
    """Walks the new recipe in document order, comparing each element with its old self."""

    def __init__(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self.old = old
        self.new = new
        self.old_operations, self.old_phases = _index(old)
        self.new_operations, self.new_phases = _index(new)
        self.changes: list[Change] = []

    def run(self) -> list[Change]:
        self.recipe_fields()
        self.turnaround()
        self.pending_results()
        self.bedside()
        self.custody()
        self.chain_of_identity()
        self.unit_procedures()
        return self.changes

    # recording -------------------------------------------------------------------------

    @staticmethod
    def paired(
        old_items: Sequence[Element], new_items: Sequence[Element], key: Callable[[Element], str]
    ) -> list[tuple[Element | None, Element | None]]:
        """(old, new) pairs in the new order (for the phase kinds: :func:`_paired`)."""
        return _paired(old_items, new_items, key)

    def add(
        self,
        kind: str,
        place: _Place,
        field: str | None,
        before: str | None,
        after: str | None,
        text: str,
    ) -> None:
        self.changes.append(Change(kind, place.where, field, before, after, text))

    def value(
        self,
        place: _Place,
        field: str,
        label: str,
        before: Any,
        after: Any,
        show_before: str | None,
        show_after: str | None,
    ) -> None:
        """A changed value; None on one side is an addition or a removal."""
        if before == after:  # 80 == 80.0: the same limit, and the same canonical JSON
            return
        if before is None:
            self.add(
                ADDED,
                place,
                field,
                None,
                show_after,
                f"{place.subject}: {label} {show_after} added.",
            )
        elif after is None:
            self.add(
                REMOVED,
                place,
                field,
                show_before,
                None,
                f"{place.subject}: {label} {show_before} removed.",
            )
        else:
            self.add(
                CHANGED,
                place,
                field,
                show_before,
                show_after,
                f"{place.subject}: {label} changed from {show_before} to {show_after}.",
            )

    def simple(
        self,
        place: _Place,
        field: str,
        label: str,
        before: Any,
        after: Any,
        show: Callable[[Any], str | None],
    ) -> None:
        """A changed value shown the same way on both sides."""
        self.value(place, field, label, before, after, show(before), show(after))

    def text(
        self, place: _Place, field: str, label: str, before: str | None, after: str | None
    ) -> None:
        """A changed free text (instructions, description): a line diff, not the whole text."""
        if before == after:
            return
        if before is None:
            self.add(ADDED, place, field, None, after, f"{place.subject}: {label} added.")
        elif after is None:
            self.add(REMOVED, place, field, before, None, f"{place.subject}: {label} removed.")
        else:
            old_side, new_side = _text_diff(before, after)
            self.add(
                CHANGED, place, field, old_side, new_side, f"{place.subject}: {label} changed."
            )

    def order(
        self,
        place: _Place,
        field: str,
        what: str,
        old_items: Sequence[Element],
        new_items: Sequence[Element],
        key: Callable[[Element], str],
        show: Callable[[Element], str] | None = None,
    ) -> None:
        """The items both versions share now come in another order (shown by ``show``, or key)."""
        show = show or key
        old_keys = [k for k, _ in _keyed(old_items, key)]
        new_keys = [k for k, _ in _keyed(new_items, key)]
        if not _moved_within(old_keys, new_keys):
            return
        new_set, old_set = set(new_keys), set(old_keys)
        before = ", ".join(show(item) for k, item in _keyed(old_items, key) if k in new_set)
        after = ", ".join(show(item) for k, item in _keyed(new_items, key) if k in old_set)
        self.add(
            CHANGED,
            place,
            field,
            before,
            after,
            f"{place.subject}: order of {what} changed from {before} to {after}.",
        )

    # recipe ----------------------------------------------------------------------------

    def recipe_fields(self) -> None:
        old, new = self.old, self.new
        recipe = _Place("Recipe", "Recipe")
        self.simple(
            recipe, "recipe_code", "recipe code", old["recipe_code"], new["recipe_code"], str
        )
        self.simple(recipe, "title", "title", old["title"], new["title"], quoted)
        self.text(recipe, "description", "description", old["description"], new["description"])
        product = _Place("Product", "Product")
        for name, label in (("code", "code"), ("name", "name"), ("modality", "modality")):
            before, after = old["product"][name], new["product"][name]
            show = str if name == "code" else quoted
            self.simple(product, f"product {name}", label, before, after, show)
        self.simple(
            recipe,
            "expected_duration_seconds",
            "expected duration",
            old["expected_duration_seconds"],
            new["expected_duration_seconds"],
            duration,
        )
        self.simple(
            recipe,
            "change_reason",
            "change reason",
            old["change_reason"],
            new["change_reason"],
            quoted,
        )

    def bedside(self) -> None:
        """The infusion timer of the bedside check, in words (one sentence when it changes)."""

        def timer_words(timer: Any) -> str | None:
            if not timer:
                return None
            fill = f" (phase {timer['phase']})" if timer.get("phase") else ""
            return (
                f"{timer['label']}: infuse within {timer['max_minutes']} min of the "
                f"{timer['starts_at']}{fill}"
            )

        self.simple(
            _Place("Recipe", "Recipe"),
            "bedside timer",
            "infusion timer",
            (self.old.get("bedside") or {}).get("timer"),
            (self.new.get("bedside") or {}).get("timer"),
            timer_words,
        )

    def custody(self) -> None:
        """The shipments' temperature window (``custody:``), in words, when it changes."""

        def window_words(custody: Any) -> str | None:
            if not custody:
                return None
            window = Window.from_recipe(custody["window"]).in_words()
            return f"{window}, a reading at least every {custody['sampling_minutes']} min"

        self.simple(
            _Place("Recipe", "Recipe"),
            "custody window",
            "shipment temperature window",
            self.old.get("custody"),
            self.new.get("custody"),
            window_words,
        )

    def turnaround(self) -> None:
        """The turnaround target: the whole, then each leg (matched by where it runs from and to)."""
        old, new = self.old.get("turnaround") or {}, self.new.get("turnaround") or {}
        recipe = _Place("Recipe", "Recipe")
        self.simple(
            recipe,
            "turnaround target_hours",
            "turnaround target",
            old.get("target_hours"),
            new.get("target_hours"),
            hours,
        )
        units = {
            unit["id"]: unit["name"]
            for recipe_ in (self.old, self.new)
            for unit in recipe_["unit_procedures"]
        }

        def key(leg: Element) -> str:
            return f"{leg['from']} {leg['to']}"

        def name(leg: Element) -> str:
            start, end = point_title(leg["from"], units), point_title(leg["to"], units)
            return f"turnaround leg {start} → {end}"

        old_legs, new_legs = old.get("legs") or [], new.get("legs") or []
        for before, after in _paired(old_legs, new_legs, key):
            leg = after or before
            assert leg is not None
            if before is None or after is None:
                kind = ADDED if before is None else REMOVED
                shown = f"{name(leg)} ({hours(leg['target_hours'])})"
                self.add(
                    kind,
                    recipe,
                    f"turnaround leg {key(leg)}",
                    None if before is None else shown,
                    shown if before is None else None,
                    f"Recipe: {shown} {kind}.",
                )
                continue
            self.simple(
                recipe,
                f"turnaround leg {key(leg)} target_hours",
                f"{name(leg)}: target",
                before["target_hours"],
                after["target_hours"],
                hours,
            )
        self.order(
            recipe,
            "turnaround legs order",
            "turnaround legs",
            old_legs,
            new_legs,
            key,
            lambda leg: name(leg).removeprefix("turnaround leg "),
        )

    def pending_results(self) -> None:
        """The results a release may be provisional on, matched by ID."""
        recipe = _Place("Recipe", "Recipe")
        old, new = self.old.get("pending_results") or [], self.new.get("pending_results") or []

        def shown(result: Element) -> str:
            return f"{result['label']} ({result['specification']})"

        for before, after in _paired(old, new, lambda r: str(r["id"])):
            result = after or before
            assert result is not None
            if before is None or after is None:
                kind = ADDED if before is None else REMOVED
                self.add(
                    kind,
                    recipe,
                    f"pending result {result['id']}",
                    None if before is None else shown(before),
                    shown(after) if after is not None else None,
                    f"Recipe: pending result {shown(result)} {kind}.",
                )
                continue
            for name in ("label", "specification", "unit", "minimum", "maximum", "accepted"):
                self.simple(
                    recipe,
                    f"pending result {result['id']} {name}",
                    f"pending result {after['label']}: {name}",
                    before.get(name),
                    after.get(name),
                    lambda v: None if v is None else str(v),
                )

    def chain_of_identity(self) -> None:
        place = _Place("Chain of identity", "Chain of identity")
        old_fields, new_fields = self.old["chain_of_identity"], self.new["chain_of_identity"]

        def describe(spec: Element) -> str:
            pattern = f", pattern {quoted(spec['pattern'])}" if spec["pattern"] else ""
            return f"{spec['kind']}{pattern}"

        for before, after in _paired(old_fields, new_fields, lambda f: f["id"]):
            spec = after or before
            assert spec is not None
            name = f"field '{spec['label']}' ({spec['id']})"
            if before is None or after is None:
                kind, shown = (
                    (ADDED, describe(spec)) if before is None else (REMOVED, describe(spec))
                )
                self.add(
                    kind,
                    place,
                    f"field '{spec['label']}'",
                    None if before is None else shown,
                    shown if before is None else None,
                    f"Chain of identity: {name} {kind} ({shown}).",
                )
                continue
            prefix = f"field '{after['label']}'"
            self.simple(
                place, f"{prefix} label", f"{name}: label", before["label"], after["label"], quoted
            )
            self.simple(
                place, f"{prefix} kind", f"{name}: kind", before["kind"], after["kind"], str
            )
            self.simple(
                place,
                f"{prefix} pattern",
                f"{name}: pattern",
                before["pattern"],
                after["pattern"],
                quoted,
            )
        self.order(
            place,
            "chain_of_identity order",
            "fields",
            old_fields,
            new_fields,
            lambda f: f["id"],
        )

    # procedural elements ---------------------------------------------------------------

    def unit_procedures(self) -> None:
        pairs, moved = _children("unit_procedures", self.old, self.new)
        previous: Element | None = None
        for before, after in pairs:
            if after is None:
                assert before is not None
                place = _unit_place(before)
                self.add(
                    REMOVED, place, None, _unit_name(before), None, f"{place.subject} removed."
                )
                self.operations(before, None)
                continue
            place = _unit_place(after)
            if before is None:
                self.add(ADDED, place, None, None, _unit_name(after), f"{place.subject} added.")
            else:
                if after["id"] in moved:
                    now = _now_after("unit procedure", previous, "the recipe")
                    self.add(MOVED, place, None, None, None, f"{place.subject} moved: {now}.")
                self.simple(place, "name", "name", before["name"], after["name"], quoted)
                self.text(
                    place, "description", "description", before["description"], after["description"]
                )
            self.operations(before, after)
            previous = after

    def operations(self, old_unit: Element | None, new_unit: Element | None) -> None:
        pairs, moved = _children(
            "operations", old_unit, new_unit, self.old_operations, self.new_operations
        )
        previous: Element | None = None
        for before, after in pairs:
            if after is None:
                assert before is not None and old_unit is not None
                place = _operation_place(old_unit, before)
                self.child(REMOVED, place, _lower(_unit_name(old_unit)))
                self.phases(before, None, old_unit)
                continue
            assert new_unit is not None
            place = _operation_place(new_unit, after)
            if before is None:
                self.child(ADDED, place, _lower(_unit_name(new_unit)))
            else:
                was_in = self.old_operations[before["id"]].unit
                assert was_in is not None
                self.moves(
                    place,
                    "operation",
                    (was_in, _lower(_unit_name(was_in)), _operation_place(was_in, before)),
                    (new_unit, _lower(_unit_name(new_unit))),
                    after["id"] in moved,
                    previous,
                )
                self.simple(place, "name", "name", before["name"], after["name"], quoted)
                self.text(
                    place, "description", "description", before["description"], after["description"]
                )
                self.simple(
                    place,
                    "ordering",
                    "ordering",
                    before["ordering"],
                    after["ordering"],
                    lambda ordering: ORDERING_WORDS[ordering].change,
                )
            self.phases(before, after, new_unit)
            previous = after

    def child(self, kind: str, place: _Place, parent: str) -> None:
        """An operation or phase added to or removed from its parent (``parent`` in words)."""
        before, after = (place.where, None) if kind == REMOVED else (None, place.where)
        to = "from" if kind == REMOVED else "to"
        self.add(kind, place, None, before, after, f"{place.subject} {kind} {to} {parent}.")

    def moves(
        self,
        place: _Place,
        what: str,
        old: tuple[Element, str, _Place],
        new: tuple[Element, str],
        moved_within: bool,
        previous: Element | None,
    ) -> None:
        """An operation or phase moved to another parent, or within its own.

        ``old``: the old parent, its name in words and the element's old place; ``new``: the
        new parent and its name in words; ``previous``: the element now before it.
        """
        (old_parent, old_name, old_place), (new_parent, new_name) = old, new
        if old_parent["id"] != new_parent["id"]:
            self.add(
                MOVED,
                place,
                None,
                old_place.where,
                place.where,
                f"{place.subject} moved from {old_name} to {new_name}.",
            )
        elif moved_within:
            now = _now_after(what, previous, new_name)
            self.add(
                MOVED, place, None, None, None, f"{place.subject} moved within {new_name}: {now}."
            )

    def phases(self, old_op: Element | None, new_op: Element | None, unit: Element) -> None:
        """The phases of one operation (``unit`` is the new parent, or the old one if removed)."""
        pairs, moved = _children("phases", old_op, new_op, self.old_phases, self.new_phases)
        previous: Element | None = None
        for before, after in pairs:
            if after is None:
                assert before is not None and old_op is not None
                located = self.old_phases[before["id"]]
                assert located.unit is not None
                place = _phase_place(located.unit, old_op, before)
                self.child(REMOVED, place, _lower(_operation_name(old_op)))
                continue
            assert new_op is not None
            place = _phase_place(unit, new_op, after)
            if before is None:
                self.child(ADDED, place, _lower(_operation_name(new_op)))
            else:
                located = self.old_phases[before["id"]]
                assert located.unit is not None and located.operation is not None
                was_in = located.operation
                self.moves(
                    place,
                    "phase",
                    (
                        was_in,
                        _lower(_operation_name(was_in)),
                        _phase_place(located.unit, was_in, before),
                    ),
                    (new_op, _lower(_operation_name(new_op))),
                    after["id"] in moved,
                    previous,
                )
                self.phase(place, before, after)
            previous = after

    # inside a phase --------------------------------------------------------------------

    def phase(self, place: _Place, before: Element, after: Element) -> None:
        self.simple(place, "name", "name", before["name"], after["name"], quoted)
        self.text(
            place, "instructions", "instructions", before["instructions"], after["instructions"]
        )
        self.simple(
            place, "perform", "performing role", before["perform"], after["perform"], ROLES.get
        )
        self.verification(place, before["verify"], after["verify"])
        self.simple(place, "when", "condition", before["when"], after["when"], _condition)
        for kind in phases.KINDS.values():
            kind.diff(self, place, kind.items(before), kind.items(after))

    def verification(self, place: _Place, before: str | None, after: str | None) -> None:
        if before == after:
            return
        if before is None:
            text = f"{place.subject}: verification by {ROLES[after]} added."
            self.add(ADDED, place, "verify", None, ROLES[after], text)
        elif after is None:
            text = f"{place.subject}: verification by {ROLES[before]} removed."
            self.add(REMOVED, place, "verify", ROLES[before], None, text)
        else:
            self.simple(place, "verify", "verification role", before, after, ROLES.get)

    def phase_reference(self, phase_id: str) -> str:
        located = self.new_phases.get(phase_id) or self.old_phases.get(phase_id)
        return f"phase '{located.element['name']}'" if located else f"phase '{phase_id}'"

    def identity_field(self, field_id: str) -> str:
        for recipe in (self.new, self.old):
            for spec in recipe["chain_of_identity"]:
                if spec["id"] == field_id:
                    return f"'{spec['label']}' ({field_id})"
        return f"'{field_id}'"


def _lower(name: str) -> str:
    """'Operation 'Receive'' → 'operation 'Receive'' inside a sentence."""
    return name[0].lower() + name[1:]


def _now_after(what: str, previous: Element | None, parent: str) -> str:
    if previous is None:
        return f"now first in {parent}"
    return f"now after {what} '{previous['name']}'"
