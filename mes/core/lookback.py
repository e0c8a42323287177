"""Look-back: what each batch used, and QA's disposition of each batch a suspect item touched.

When a material lot, an instrument, an operator or a recipe version is found wanting after the
fact, QA looks back at every batch that used it, at every spoke (EU GMP Annex 2 / ATMP
guidelines on traceability; 21 CFR 1271.290 tracking). :func:`usage` lists what one batch
used, from its replayed ledger — the hub keeps it as a read model
(:mod:`mes.store.read_models`). QA opens a look-back on one subject with a reason, then signs
one disposition per batch: notify the treating clinic, or no action with a reason. Each
disposition is an entry of that batch's review chain (:data:`LOOKBACK_DISPOSITION`), so it is
sealed by the hub and travels back to the spoke that made the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.batch import Batch
from mes.core.errors import InvalidInput, MesError, NotFound
from mes.core.text import free_text, one_line
from mes.core.worded import Worded, words_of

LOOKBACK_RECORD_TYPE = "look-back"
MAX_IDENTIFIER = 64  # the read model's column
# What a disposition's entry says, each signed in its record too (21 CFR 11.70).
DISPOSITION_FIELDS = (
    "lookback",
    "subject_kind",
    "subject",
    "lookback_reason",
    "disposition",
    "reason",
)


class UsageKind(Worded):
    """What a batch used that a look-back can start from."""

    LOT = "lot", "Material lot"
    INSTRUMENT = "instrument", "Instrument"
    OPERATOR = "operator", "Operator"
    RECIPE_VERSION = "recipe_version", "Recipe version"


USAGE_KIND_TITLES = words_of(UsageKind)


class Disposition(Worded):
    """QA's disposition of one batch in a look-back."""

    NOTIFY = "notify", "Notify the treating clinic"
    NO_ACTION = "no_action", "No action"


DISPOSITION_TITLES = words_of(Disposition)


class UnknownLookBackSubject(NotFound):
    """No batch held here used the subject a look-back was asked for."""


class DispositionAlreadySigned(MesError):
    """The batch already has its disposition in this look-back."""

    http_status = 409


class NoActionWithoutReason(InvalidInput):
    """The disposition 'no action' was chosen without saying why."""


@dataclass(frozen=True)
class Usage:
    """One thing a batch used: its kind, its identifier, and words that say more (or None).

    Lot: the lot number, ``detail`` the material code; instrument: the equipment ID; operator:
    the signer's user name, ``detail`` the printed name; recipe version: "CODE vN".
    """

    kind: UsageKind
    identifier: str
    detail: str | None = None


def recipe_version_name(recipe_code: str, version: int) -> str:
    """How a recipe version is named in a look-back: "CODE vN"."""
    return f"{recipe_code} v{version}"


def _signers(signatures: Iterable[Mapping[str, Any]]) -> Iterable[Usage]:
    for m in signatures:
        if m.get("username"):
            yield Usage(UsageKind.OPERATOR, str(m["username"]), m.get("printed_name"))


def usage(batch: Batch) -> list[Usage]:
    """Everything the batch used, once each, sorted: lots, instruments, signers, recipe version.

    Every signer of the record counts — phases performed, verified or corrected, the batch's
    start, completion or abort, deviations acknowledged (21 CFR 11.50: each signature names
    its signer).
    """
    s = batch.state
    found: dict[tuple[UsageKind, str], Usage] = {}

    def add(item: Usage) -> None:
        found.setdefault((item.kind, item.identifier), item)

    add(
        Usage(
            UsageKind.RECIPE_VERSION,
            recipe_version_name(batch.procedure.recipe_code, batch.procedure.version),
        )
    )
    for phase in s.phases.values():
        for code, use in phase.materials.items():
            add(Usage(UsageKind.LOT, str(use["lot"]), code))
        for use in phase.equipment.values():
            add(Usage(UsageKind.INSTRUMENT, str(use["equipment"])))
        for item in _signers(phase.signatures):
            add(item)
    for item in _signers(s.signatures):
        add(item)
    for deviation in s.deviations.values():
        for item in _signers([deviation.signature] if deviation.signature else []):
            add(item)
    return sorted(found.values(), key=lambda u: (list(UsageKind).index(u.kind), u.identifier))


def subject_of(kind: str, identifier: str | None) -> tuple[UsageKind, str]:
    """A look-back's subject as typed, checked: a known kind and a one-line identifier."""
    try:
        known = UsageKind(kind)
    except ValueError:
        raise InvalidInput(
            f"'{kind}' is not something a look-back starts from.",
            what_to_do="Choose a material lot, an instrument, an operator or a recipe version.",
        ) from None
    text = one_line(identifier, known.words, max_length=MAX_IDENTIFIER)
    if not text:
        raise InvalidInput(
            f"{known.words}: the identifier is missing.",
            what_to_do="Type the identifier as it is printed (a lot number, an equipment ID, "
            "a user name, or 'CODE vN').",
        )
    return known, text


def disposition_reason(disposition: str, reason: str | None) -> tuple[Disposition, str | None]:
    """The disposition and its reason as kept; "no action" needs a reason (refused, not cut)."""
    try:
        chosen = Disposition(disposition)
    except ValueError:
        raise InvalidInput(
            f"'{disposition}' is not a look-back disposition.",
            what_to_do="Choose notify or no action.",
        ) from None
    why = free_text(reason, "The reason") or None
    if chosen is Disposition.NO_ACTION and not why:
        raise NoActionWithoutReason(
            "'No action' needs a reason.",
            what_to_do="Say why this batch needs no action in this look-back.",
        )
    return chosen, why


@dataclass(frozen=True)
class LookBackDisposition:
    """A disposition as its review-chain entry holds it."""

    lookback: str
    kind: str
    subject: str
    lookback_reason: str
    disposition: Disposition
    reason: str | None
    by: str
    at: str
    manifestation: Mapping[str, Any]

    @property
    def subject_words(self) -> str:
        """The subject as people read it: "Material lot L-123"."""
        return f"{UsageKind(self.kind).words} {self.subject}"


def disposition_of_entry(body: Mapping[str, Any]) -> LookBackDisposition:
    """The disposition a review-chain entry of kind ``lookback_disposition`` records."""
    p = body["payload"]
    return LookBackDisposition(
        lookback=p["lookback"],
        kind=p["subject_kind"],
        subject=p["subject"],
        lookback_reason=p["lookback_reason"],
        disposition=Disposition(p["disposition"]),
        reason=p.get("reason"),
        by=body["actor"]["name"],
        at=body["at"],
        manifestation=p["manifestation"],
    )


def check_not_disposed(number: str, lookback: str, held: Mapping[str, LookBackDisposition]) -> None:
    """One disposition per batch per look-back: a second is refused, naming the first."""
    first = held.get(lookback)
    if first is not None:
        raise DispositionAlreadySigned(
            f"Batch {number} already has its disposition in this look-back: "
            f"{first.disposition.words}, signed by {first.by} at {first.at}.",
            what_to_do="A disposition is final; open a new look-back if something changed.",
        )


def disposition_text(p: Mapping[str, Any]) -> str:
    """A disposition entry in words (the review chain's text of it)."""
    reason = f"; reason: {p['reason']}" if p.get("reason") else ""
    return (
        f"look-back {p['lookback'][:8]} on {UsageKind(p['subject_kind']).words.lower()} "
        f"{p['subject']}: {Disposition(p['disposition']).words.lower()}{reason}"
    )
