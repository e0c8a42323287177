"""After release: results that arrive later, the physician's notification, final certification.

A fresh cell product is infused before every release test is in (EU GMP Part IV §11.5; the
14-day compendial sterility culture ends after infusion). Its recipe declares, at procedure
level, the results a release may be **provisional** on (``pending_results:``). The record
continues after release in the two chains that already exist: a result entered by the spoke's
QC is a ``result_recorded`` entry of the batch ledger (sealed by the spoke), one entered by the
hub's QC lab a ``result_recorded`` entry of the review chain (sealed by the hub); the
physician's notification is a ``physician_notified`` entry of whichever chain records it;
QA's final certification is ``batch_certified_final`` in the review chain.

:func:`after_release_state` reads both chains into one :class:`AfterRelease`: which results are
still pending, which are in, which are out of specification, whether the treating physician
has been told, and the certification level. Every page, service and both aggregates read it;
nothing else decides these things.

The rules, each refused with a named error saying what to do:

* a result the recipe does not declare (:class:`ResultNotDeclared`);
* a result entered twice — a correction is a new entry that names the entry it corrects and
  gives a reason (:class:`ResultAlreadyRecorded`);
* a second final certification (:class:`AlreadyCertifiedFinal`), final certification before
  release (:class:`NotReleased`) or while a result is pending or out of specification
  (:class:`CertificationRefused`);
* **the physician-notification gate** (:func:`check_may_sign`): while a result out of
  specification has not been notified to the treating physician, every other signature on the
  batch is refused (:class:`PhysicianNotificationPending`). The spoke's
  :class:`~mes.core.batch.Batch` and the hub's :class:`~mes.core.review.Review` both ask it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mes.core.clock import utc_text
from mes.core.dates import parse_local_date_time
from mes.core.errors import InvalidInput, MesError, NotReleasedForInfusion
from mes.core.text import free_text, one_line
from mes.core.worded import Worded, words_of

# Entry kinds (their values are those of the ledger's EntryKind and the review chain's
# ReviewKind; written here so that the core of both chains can read this module).
RESULT_RECORDED = "result_recorded"
PHYSICIAN_NOTIFIED = "physician_notified"
BATCH_CERTIFIED_FINAL = "batch_certified_final"
RESULT_AFTER_RELEASE = "result_after_release"  # the ledger deviation's category
_RELEASED, _REJECTED = "batch_released", "batch_rejected"
_DEVIATION_RAISED, _DEVIATION_CLOSED = "deviation_raised", "deviation_closed"

# The batch ledger's entries that may follow QA's release (the record continues after it).
# The after-release work of the issue adds its kinds here: one list, read by the hub's ingest.
AFTER_RELEASE_LEDGER_KINDS = frozenset(
    {
        RESULT_RECORDED,
        PHYSICIAN_NOTIFIED,
        "custody_transferred",  # the product handed over to the clinic (mes.core.custody)
        # the clinic's (mes.core.batch.bedside)
        "bedside_checked",
        "bedside_mismatch",
        "infusion_started",
        "infusion_ended",
    }
)
# The deviations that work raises: a result out of specification, a bedside mismatch
# (identity), an infusion started after the recipe's window (timer), a shipment's logger
# file attached to a custody transfer outside its window (temperature_excursion).
_AFTER_RELEASE_DEVIATIONS = frozenset(
    {RESULT_AFTER_RELEASE, "identity", "timer", "temperature_excursion"}
)


def follows_release(body: Mapping[str, Any]) -> bool:
    """Whether a ledger entry may be added to a batch QA has released.

    Its kind is one of :data:`AFTER_RELEASE_LEDGER_KINDS`, or it is a deviation that work
    raises (a result out of specification, a bedside mismatch, a late infusion): on the batch,
    on no phase and no value (an identity or timer deviation on a phase is manufacturing's).
    """
    p = body["payload"]
    return body["kind"] in AFTER_RELEASE_LEDGER_KINDS or (
        body["kind"] == _DEVIATION_RAISED
        and p.get("category") in _AFTER_RELEASE_DEVIATIONS
        and p.get("phase") is None
        and p.get("value") is None
    )


# How the physician was told (the words of the form's choices).
NOTIFICATION_WAYS = {
    "phone": "by phone",
    "in_person": "in person",
    "email": "by email",
    "letter": "by letter",
}
SPOKE, HUB = "spoke", "hub"
EVENT, PROVISIONAL = "event", "provisional"  # what a released batch awaits (AfterRelease.awaiting)


class Certification(Worded):
    """How far a batch is certified."""

    NOT_RELEASED = "not_released", "Not released"
    PROVISIONAL = "provisional", "Provisional — results pending"
    FINAL = "final", "Final"
    REJECTED = "rejected", "Rejected"


CERTIFICATION_TITLES = words_of(Certification)


class ResultNotDeclared(InvalidInput):
    """The batch's recipe declares no such pending result."""


class ResultAlreadyRecorded(InvalidInput):
    """The result is already in; a correction is a new entry with a reason."""

    http_status = 409


class AlreadyCertifiedFinal(MesError):
    """The batch already has its final certification."""

    http_status = 409


class NotReleased(MesError):
    """Final certification comes after release."""

    http_status = 409


class CertificationRefused(MesError):
    """A result is pending or out of specification: the certification stays provisional."""

    http_status = 409


class PhysicianNotificationPending(MesError):
    """A result out of specification has not been notified to the treating physician."""

    http_status = 409


@dataclass(frozen=True)
class PendingResult:
    """A result the recipe says a release may be provisional on (``pending_results:``)."""

    id: str
    label: str
    specification: str
    unit: str | None = None
    maximum: float | None = None
    minimum: float | None = None
    accepted: tuple[str, ...] = ()

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> PendingResult:
        """One declared result from the compiled recipe."""
        return cls(
            id=spec["id"],
            label=spec["label"],
            specification=spec["specification"],
            unit=spec.get("unit"),
            maximum=spec.get("maximum"),
            minimum=spec.get("minimum"),
            accepted=tuple(spec.get("accepted") or ()),
        )

    def within(self, value: str) -> bool | None:
        """Whether ``value`` meets the specification, when the recipe says how to tell.

        A number against ``minimum``/``maximum``; a text against the ``accepted`` answers
        (compared without case). None: the recipe gives no rule, and QC states it.
        """
        if self.accepted:
            return value.strip().casefold() in {a.casefold() for a in self.accepted}
        if self.maximum is None and self.minimum is None:
            return None
        number = _number(value)
        if number is None:
            raise InvalidInput(
                f"{self.label}: '{value}' is not a number.",
                what_to_do=f"Enter the result as a number ({self.specification}).",
            )
        return (self.maximum is None or number <= self.maximum) and (
            self.minimum is None or number >= self.minimum
        )


_NUMBER = re.compile(r"^[<>≤≥]?\s*(-?\d+(?:[.,]\d+)?)$")


def _number(value: str) -> float | None:
    match = _NUMBER.match(value.strip())
    return float(match.group(1).replace(",", ".")) if match else None


def declared_results(procedure: Any) -> list[PendingResult]:
    """The results a release of this recipe may be provisional on (empty when none declared).

    ``procedure``: a :class:`~mes.core.batch.Procedure` or the compiled recipe itself.
    """
    compiled = getattr(procedure, "compiled", procedure)
    return [PendingResult.of(spec) for spec in compiled.get("pending_results") or ()]


@dataclass(frozen=True)
class RecordedResult:
    """A result as entered, in either chain."""

    result: str
    label: str
    value: str
    unit: str | None
    within_specification: bool
    specification: str
    reference: str
    method: str | None
    by: str  # the person's name
    at: str
    chain: str  # SPOKE (the batch ledger) or HUB (the review chain)
    seq: int
    corrects: str | None = None
    reason: str | None = None

    @property
    def key(self) -> str:
        """Where it is recorded: 'spoke:12' or 'hub:3'."""
        return f"{self.chain}:{self.seq}"


@dataclass(frozen=True)
class Notification:
    """The treating physician told of a result out of specification: who, by whom, when, how."""

    result: str
    physician: str
    how: str
    told_at: str
    by: str
    at: str
    chain: str


@dataclass(frozen=True)
class OutOfSpecification:
    """A result out of specification after release: the event QA follows until it is closed.

    Closed when the physician has been told and, where the spoke raised a deviation for it,
    QA has closed that deviation at the hub (the existing deviation workflow). An event the
    hub's QC entered has no ledger deviation: it closes with the notification, which QA signs.
    """

    result: RecordedResult
    notification: Notification | None
    deviation: str | None
    deviation_closed: bool

    @property
    def closed(self) -> bool:
        """Nothing more to do for it."""
        return self.notification is not None and (self.deviation is None or self.deviation_closed)


@dataclass(frozen=True)
class AfterRelease:
    """A batch after release, read from both chains (:func:`after_release_state`)."""

    declared: tuple[PendingResult, ...]
    results: tuple[RecordedResult, ...]  # the current one of each result, in order entered
    events: tuple[OutOfSpecification, ...]
    released: bool
    rejected: bool
    certified_by: str | None
    certified_at: str | None

    @property
    def pending(self) -> tuple[PendingResult, ...]:
        """Declared results not entered yet."""
        entered = {r.result for r in self.results}
        return tuple(p for p in self.declared if p.id not in entered)

    @property
    def open_events(self) -> tuple[OutOfSpecification, ...]:
        """Results out of specification not closed yet (top of QA's queue)."""
        return tuple(e for e in self.events if not e.closed)

    @property
    def kept_provisional_by(self) -> list[str]:
        """What keeps a release provisional: each result pending or out of specification."""
        problems = [f"{p.label} is pending" for p in self.pending]
        return problems + [  # every entry out of specification, corrected or not
            f"{e.result.label} is out of specification ({e.result.value}; {e.result.specification})"
            for e in self.events
        ]

    @property
    def ready_for_final(self) -> bool:
        """Provisional with every result in and within specification: QA may certify final."""
        return self.certification is Certification.PROVISIONAL and not self.kept_provisional_by

    @property
    def certification_words(self) -> str:
        """The certification in words, saying what it waits for when every result is in."""
        if self.ready_for_final:
            return "Provisional — every result in: QA to certify final"
        if self.certification is Certification.PROVISIONAL and not self.pending:
            return "Provisional — a result out of specification"
        return CERTIFICATION_TITLES[self.certification]

    @property
    def notification_pending(self) -> tuple[OutOfSpecification, ...]:
        """Results out of specification the treating physician has not been told of."""
        return tuple(e for e in self.events if e.notification is None)

    @property
    def certification(self) -> Certification:
        """Not released, provisional (results pending, or not yet signed final), final, rejected.

        A release with no declared pending results is final at once: nothing is awaited.
        """
        if self.rejected:
            return Certification.REJECTED
        if not self.released:
            return Certification.NOT_RELEASED
        if self.certified_by is not None or not self.declared:
            return Certification.FINAL
        return Certification.PROVISIONAL

    @property
    def awaiting(self) -> str | None:
        """What the batch still awaits after release.

        EVENT: a result out of specification not closed (the top of QA's queue); PROVISIONAL:
        results pending or not yet certified final; None: nothing (not released, rejected, or
        final with every event closed).
        """
        if not self.released or self.rejected:
            return None
        if self.open_events:
            return EVENT
        return PROVISIONAL if self.certification is Certification.PROVISIONAL else None

    def result(self, result_id: str) -> RecordedResult | None:
        """The current entry of one result, or None."""
        return next((r for r in self.results if r.result == result_id), None)


def after_release_state(
    procedure: Any,
    ledger_bodies: Iterable[Mapping[str, Any]],
    review_bodies: Iterable[Mapping[str, Any]],
) -> AfterRelease:
    """Read both chains of a batch into its after-release state.

    ``ledger_bodies``: the batch ledger's entry bodies (the spoke's); ``review_bodies``: the
    review chain's (the hub's). Entries of other kinds are passed over.
    """
    declared = declared_results(procedure)
    labels = {p.id: p.label for p in declared}
    results: dict[str, RecordedResult] = {}
    entries: list[RecordedResult] = []  # every result entry, of both chains
    notified: dict[str, Notification] = {}
    deviations: dict[str, str] = {}  # result id -> deviation id
    closed: set[str] = set()
    released = rejected = False
    certified_by = certified_at = None
    for chain, bodies in ((SPOKE, ledger_bodies), (HUB, review_bodies)):
        for body in bodies:
            kind, p = body["kind"], body["payload"]
            who = body["actor"].get("name") or body["actor"].get("username") or "?"
            if kind == RESULT_RECORDED:
                recorded = RecordedResult(
                    result=p["result"],
                    label=labels.get(p["result"], p["result"]),
                    value=p["value"],
                    unit=p.get("unit"),
                    within_specification=bool(p["within_specification"]),
                    specification=p["specification"],
                    reference=p["reference"],
                    method=p.get("method"),
                    by=who,
                    at=body["at"],
                    chain=chain,
                    seq=int(body["seq"]),
                    corrects=p.get("corrects"),
                    reason=p.get("reason"),
                )
                entries.append(recorded)
                results[p["result"]] = recorded
            elif kind == PHYSICIAN_NOTIFIED:
                notified[p["result"]] = Notification(
                    result=p["result"],
                    physician=p["physician"],
                    how=p["how"],
                    told_at=p["told_at"],
                    by=who,
                    at=body["at"],
                    chain=chain,
                )
            elif kind == _DEVIATION_RAISED and p.get("category") == RESULT_AFTER_RELEASE:
                deviations[str(p.get("result"))] = p["deviation"]
            elif kind == _DEVIATION_CLOSED:
                closed.add(p["deviation"])
            elif kind == _RELEASED:
                released = True
            elif kind == _REJECTED:
                rejected = True
            elif kind == BATCH_CERTIFIED_FINAL:
                certified_by, certified_at = who, body["at"]
    ordered = sorted(results.values(), key=lambda r: r.at)
    # Only a correction naming an entry replaces it: a result out of specification entered
    # at one site stays an event when the same result was also entered at the other (each
    # before the other's chain arrived); and one corrected stays an event until the physician
    # has been told of it (a correction does not lift the gate).
    corrected = {r.corrects for r in entries if r.corrects}
    events = tuple(
        OutOfSpecification(
            result=r,
            notification=notified.get(r.result),
            deviation=deviations.get(r.result),
            deviation_closed=deviations.get(r.result) in closed,
        )
        for r in sorted(entries, key=lambda r: r.at)
        if not r.within_specification and (r.key not in corrected or r.result not in notified)
    )
    return AfterRelease(
        declared=tuple(declared),
        results=tuple(ordered),
        events=events,
        released=released,
        rejected=rejected,
        certified_by=certified_by,
        certified_at=certified_at,
    )


# --- the rules ----------------------------------------------------------------------------


def check_may_sign(state: AfterRelease, number: str, *, notifying: bool = False) -> None:
    """THE physician-notification gate: no other signature while a notification is pending.

    A result out of specification after release is told to the treating physician before
    anything else is signed on the batch (the patient may already have been infused).
    ``notifying``: the signature is that notification itself, which the gate lets through.
    """
    pending = state.notification_pending
    if pending and not notifying:
        labels = ", ".join(e.result.label for e in pending)
        raise PhysicianNotificationPending(
            f"Batch {number}: {labels} is out of specification and the treating physician's "
            "notification is not recorded; nothing else can be signed on this batch until it is.",
            what_to_do="Tell the treating physician now and record who was told, when and how "
            '("Record the physician\'s notification").',
        )


INFUSIBLE = frozenset({Certification.PROVISIONAL, Certification.FINAL})
"""The certifications under which the product may be infused: a provisional release is a
release (EU GMP Part IV §11.5); not released or rejected, it may not."""


def check_may_be_infused(state: AfterRelease, number: str) -> None:
    """The product may be infused only under QA's release, provisional or final.

    Read at the bedside from the review chain as synced back to the spoke.
    """
    if state.certification not in INFUSIBLE:
        why = (
            "was rejected by QA"
            if state.certification is Certification.REJECTED
            else "is not released by QA yet"
        )
        raise NotReleasedForInfusion(
            f"Batch {number} {why}: its product may not be infused.",
            what_to_do="Do not infuse. Keep the bag and call the manufacturing site; if QA "
            "released it just now, wait for the spoke to receive the release and scan again.",
        )


def result_payload(
    state: AfterRelease,
    number: str,
    *,
    result: str,
    value: str,
    reference: str,
    within_specification: bool | None = None,
    method: str | None = None,
    corrects: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The payload of a ``result_recorded`` entry (same in both chains), or refused.

    The recipe must declare the result; a result already in is refused unless this is its
    correction (``corrects``: the key of the entry it corrects, with a reason). Whether it
    meets the specification is computed where the recipe gives the rule, else stated by QC.
    """
    spec = next((p for p in state.declared if p.id == result), None)
    if spec is None:
        declared = ", ".join(f"'{p.id}'" for p in state.declared) or "none"
        raise ResultNotDeclared(
            f"Batch {number}'s recipe declares no pending result '{result}' "
            f"(it declares: {declared}).",
            what_to_do="Enter only the results the recipe lists as pending at release; any "
            "other finding is reported as a deviation.",
        )
    current = state.result(result)
    correction: dict[str, Any] = {}
    if current is not None:
        if corrects is None:
            raise ResultAlreadyRecorded(
                f"{spec.label} of batch {number} is already recorded: {current.value} "
                f"(by {current.by}, report {current.reference}).",
                what_to_do="A result is entered once. To correct it, enter a correction that "
                "names the entry it corrects and gives the reason.",
            )
        if corrects != current.key:
            raise InvalidInput(
                f"The correction names entry {corrects}; the current {spec.label} is "
                f"entry {current.key}.",
                what_to_do="Reload the page and correct the result as it stands.",
            )
        why = free_text(reason, "The reason")
        if len(why) < 3:
            raise InvalidInput(
                "A correction of a result needs a reason.", what_to_do="Say why it is corrected."
            )
        correction = {"corrects": corrects, "reason": why}
    text = one_line(value, spec.label, max_length=200)
    if not text:
        raise InvalidInput(f"{spec.label}: no result entered.", what_to_do="Enter the result.")
    ref = one_line(reference, "The lab reference", max_length=100)
    if not ref:
        raise InvalidInput(
            "The lab sample or report reference is missing.",
            what_to_do="Enter the reference of the report the result comes from.",
        )
    within = spec.within(text)
    if within is None:
        if within_specification is None:
            raise InvalidInput(
                f"{spec.label}: say whether the result meets the specification "
                f"({spec.specification}).",
                what_to_do="Choose within or out of specification.",
            )
        within = within_specification
    return {
        "result": spec.id,
        "value": text,
        "unit": spec.unit,
        "within_specification": within,
        "specification": spec.specification,
        "reference": ref,
        "method": one_line(method, "The method", max_length=200) or None,
        **correction,
    }


def notification_payload(
    state: AfterRelease,
    number: str,
    *,
    result: str,
    physician: str,
    how: str,
    told_at: str,
    time_zone: str = "UTC",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The payload of a ``physician_notified`` entry (who was told, when, how), or refused.

    ``told_at``: when the physician was told, as typed at the site (``time_zone``; an ISO time
    with its offset is read as it says); not later than ``now``. By whom is the entry's signer.
    Only a result out of specification not yet notified is notified.
    """
    event = next((e for e in state.events if e.result.result == result), None)
    if event is None:
        raise InvalidInput(
            f"Batch {number} has no result '{result}' out of specification to notify.",
            what_to_do="Pick the result out of specification from the batch's page.",
        )
    if event.notification is not None:
        n = event.notification
        raise InvalidInput(
            f"The notification of {event.result.label} was already recorded: "
            f"{n.physician} told {NOTIFICATION_WAYS.get(n.how, n.how)} by {n.by}.",
            what_to_do="Nothing more to record for it.",
        )
    name = one_line(physician, "The physician's name", max_length=200)
    if len(name) < 3:
        raise InvalidInput(
            "Name the treating physician who was told.",
            what_to_do="Enter the physician's full name.",
        )
    if how not in NOTIFICATION_WAYS:
        raise InvalidInput(
            f"'{how}' is not a way of telling the physician.",
            what_to_do="Choose " + ", ".join(NOTIFICATION_WAYS.values()) + ".",
        )
    moment = parse_local_date_time(told_at or "", time_zone, label="When the physician was told")
    if now is not None and moment > now:
        raise InvalidInput(
            f"The physician cannot have been told at {told_at}: that is later than now.",
            what_to_do="Enter when the physician was told.",
        )
    return {"result": result, "physician": name, "how": how, "told_at": utc_text(moment)}


def certification_record(state: AfterRelease, batch_id: str, number: str) -> dict[str, Any]:
    """What QA's final certification signs, or refused (21 CFR 11.50; EU GMP Annex 16).

    After release, once; with every declared result in and within specification and every
    out-of-specification event closed.
    """
    if state.rejected:
        raise NotReleased(f"Batch {number} was rejected: it is not certified.")
    if not state.released:
        raise NotReleased(
            f"Batch {number} is not released: final certification comes after release.",
            what_to_do="Release the batch first (provisionally, while results are pending).",
        )
    if state.certified_by is not None or (not state.declared and state.released):
        by = f" by {state.certified_by}" if state.certified_by else " at release"
        raise AlreadyCertifiedFinal(
            f"Batch {number} is already certified final{by}.",
            what_to_do="Nothing more to sign: a certification is given once.",
        )
    problems = state.kept_provisional_by
    if problems:
        raise CertificationRefused(
            f"Batch {number} cannot be certified final: " + "; ".join(problems) + ".",
            what_to_do="Wait for every pending result; a result out of specification leaves "
            "the batch provisional while its deviation is investigated.",
        )
    return {
        "type": "batch-review",
        "batch": batch_id,
        "number": number,
        "certification": Certification.FINAL.value,
        "results": [{"result": r.result, "value": r.value, "entry": r.key} for r in state.results],
    }


def result_words(payload: Mapping[str, Any]) -> str:
    """A ``result_recorded`` entry in words (audit trail, printed record)."""
    unit = f" {payload['unit']}" if payload.get("unit") else ""
    verdict = "within specification" if payload["within_specification"] else "OUT OF SPECIFICATION"
    corrects = (
        f"; corrects entry {payload['corrects']}: {payload['reason']}"
        if payload.get("corrects")
        else ""
    )
    return (
        f"result {payload['result']} = {payload['value']}{unit} ({verdict}; specification "
        f"{payload['specification']}; report {payload['reference']}){corrects}"
    )


def notification_words(payload: Mapping[str, Any]) -> str:
    """A ``physician_notified`` entry in words."""
    how = NOTIFICATION_WAYS.get(payload["how"], payload["how"])
    return (
        f"treating physician {payload['physician']} told {how} at {payload['told_at']} of "
        f"result {payload['result']}"
    )


def awaiting_words(state: AfterRelease) -> list[str]:
    """Why a released batch is still in QA's sight, one line each (the QA queue's row).

    "Result out of specification after release: Sterility — notify the treating physician"
    for each open event; otherwise, while provisional, "Provisional: awaiting <results>".
    Empty when the batch awaits nothing (:attr:`AfterRelease.awaiting`).
    """
    if state.awaiting == EVENT:
        return [
            f"Result out of specification after release: {e.result.label} — "
            + (
                "notify the treating physician"
                if e.notification is None
                else f"close deviation {e.deviation}"
            )
            for e in state.open_events
        ]
    if state.awaiting != PROVISIONAL:
        return []
    if state.pending:
        return ["Provisional: awaiting " + ", ".join(p.label for p in state.pending)]
    failed = [r.label for r in state.results if not r.within_specification]
    if failed:
        return ["Provisional: " + ", ".join(failed) + " out of specification — not certified final"]
    return ["Provisional: awaiting QA's final certification"]


def pending_words(state: AfterRelease) -> Sequence[str]:
    """'Sterility (14-day culture): pending' for each declared result not in yet."""
    return [f"{p.label}: pending ({p.specification})" for p in state.pending]
