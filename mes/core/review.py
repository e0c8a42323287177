"""QA review by exception, deviation investigation and batch disposition (at the hub).

A batch's record is the spoke's ledger: it is never written to at the hub. What QA does with it —
each exception marked reviewed, each deviation classified, investigated and closed, the release
or rejection — is a second hash chain per batch, the **review chain**, sealed with the hub's
key. Its entries have exactly the shape of a batch ledger entry (``batch, seq, prev, at, site,
terminal, actor, kind, payload``), so the same code verifies, stores and ships them; they sync
back to the spoke, whose board then shows the decision.

**Review by exception.** :func:`find_exceptions` reads the spoke's record and lists what a
reviewer must judge, most serious first:

* the record cannot be trusted yet — its chain fails verification, or entries are still
  pending from the spoke (these block release outright; they cannot be "reviewed" away);
* times that cannot be true (mes.core.chronology) — entries dated later than the hub received
  them, or earlier than an entry before them, beyond the allowed clock skew; these block release
  too: a record whose times are false is investigated at the spoke and rejected, never reviewed
  away by one signature;
* deviations (worked and closed in their own workflow, not by marking them reviewed);
* values outside action or alert limits; corrections, with the original, the new value and the
  reason; phases signed late (the performer's signature more than a margin after the phase's
  last data); verifications signed within seconds of the performance (a rubber-stamp
  pattern); phases that needed a second person and were not verified; comments, holds and the
  reason of an abort; scans the rules refused.

Every other exception needs a "reviewed" e-signature naming its key — except a value outside its
action limits that raised a deviation: that excursion is judged once, in the deviation's
investigation, and settled by its closure. The signature is bound to
the exception's content (21 CFR 11.70), so a later correction, which is a new exception, needs its
own review.

**Release** (EU GMP Annex 16; 21 CFR 211.192; 11.50): QA signs "released" or "rejected" (a reason
is required to reject). Release is refused while the chain fails, entries are pending, a
deviation is open or an exception is not reviewed — :func:`release_blockers` says which — and
while any entry of the record or of its review is dated later than the release itself
(:class:`ReleasePrecedesRecord`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from mes.core.audit import Actor
from mes.core.batch import (
    DEVIATION_CATEGORY_TITLES,
    Batch,
    BatchStatus,
    EntryKind,
    PhaseStatus,
)
from mes.core.canonical import content_hash
from mes.core.chronology import dated_ahead, dated_backwards, latest_after, when
from mes.core.clock import local_text, parse_utc_text, utc_text
from mes.core.entry import EntryBody
from mes.core.errors import InvalidInput, MesError, NotAuthorised
from mes.core.esign import Manifestation, Meaning
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, SealedEntry, next_link, seal
from mes.core.limits import LimitStatus
from mes.core.text import MAX_LONG_TEXT, free_text, one_line

REVIEW_RECORD_TYPE = "batch-review"


class ReviewKind(StrEnum):
    """What an entry of the review chain records."""

    EXCEPTION_REVIEWED = "exception_reviewed"
    DEVIATION_ASSESSED = "deviation_assessed"
    DEVIATION_CLOSED = "deviation_closed"
    BATCH_RELEASED = "batch_released"
    BATCH_REJECTED = "batch_rejected"


class Classification(StrEnum):
    """How serious a deviation is (EU GMP Part I §1.4(xiv); ICH Q9 risk)."""

    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class Decision(StrEnum):
    """QA's disposition of a batch."""

    RELEASED = "released"
    REJECTED = "rejected"


class QaState(StrEnum):
    """Where a batch stands for QA (what the queue filters on)."""

    AT_SPOKE = "at_spoke"  # still being made, or its last entries have not arrived
    AWAITING_REVIEW = "awaiting_review"  # complete or aborted; nobody has reviewed anything yet
    UNDER_REVIEW = "under_review"
    RELEASED = "released"
    REJECTED = "rejected"


QA_STATE_TITLES = {
    QaState.AT_SPOKE: "At the spoke",
    QaState.AWAITING_REVIEW: "Awaiting review",
    QaState.UNDER_REVIEW: "Under review",
    QaState.RELEASED: "Released",
    QaState.REJECTED: "Rejected",
}


class Category(StrEnum):
    """Kinds of exception, in the order a reviewer should read them."""

    CHAIN = "chain"
    PENDING = "pending"
    CLOCK = "clock"
    DEVIATION = "deviation"
    ACTION_LIMIT = "action_limit"
    ALERT_LIMIT = "alert_limit"
    CORRECTION = "correction"
    LATE_SIGNATURE = "late_signature"
    RUBBER_STAMP = "rubber_stamp"
    MISSING_VERIFICATION = "missing_verification"
    COMMENT = "comment"
    REFUSED_SCAN = "refused_scan"


CATEGORY_TITLES = {
    Category.CHAIN: "Record fails verification",
    Category.PENDING: "Entries pending from the spoke",
    Category.CLOCK: "Times that cannot be true",
    Category.DEVIATION: "Deviation",
    Category.ACTION_LIMIT: "Value outside action limits",
    Category.ALERT_LIMIT: "Value outside alert limits",
    Category.CORRECTION: "Correction",
    Category.LATE_SIGNATURE: "Signed late",
    Category.RUBBER_STAMP: "Verified within seconds",
    Category.MISSING_VERIFICATION: "Verification missing",
    Category.COMMENT: "Comment or reason",
    Category.REFUSED_SCAN: "Refused scan",
}
_ORDER = {c: i for i, c in enumerate(Category)}


class ReleaseRefused(MesError):
    """The batch cannot be released yet; the message lists every reason."""

    http_status = 409


class ReleasePrecedesRecord(ReleaseRefused):
    """A release would be dated before an entry it releases (of the record or of its review)."""


class ReviewClosed(MesError):
    """The batch already has its disposition: nothing more is recorded in its review."""

    http_status = 409


@dataclass(frozen=True)
class ReviewSettings:
    """The configurable thresholds of review by exception."""

    late_signature_minutes: int = 30
    rubber_stamp_seconds: int = 30
    # How far a site's clock may be from the hub's (sync.clock_skew_seconds): an entry dated
    # further ahead of its receipt, or further back than an entry before it, cannot be true.
    clock_skew_seconds: int = 300


@dataclass(frozen=True)
class Finding:
    """One exception a reviewer must look at."""

    key: str  # stable: the same exception has the same key however often it is computed
    category: Category
    title: str
    detail: str
    phase: str | None = None
    seq: int | None = None  # the ledger entry it is about
    blocking: bool = False  # cannot be reviewed away (chain, pending, clock)
    by_closure: bool = False  # settled by closing the deviation, not by "reviewed"
    deviation: str | None = None  # the deviation whose closure settles it (by_closure)

    @property
    def category_title(self) -> str:
        """The category in words."""
        return CATEGORY_TITLES[self.category]

    def record(self, batch_id: str, head: tuple[int, str]) -> dict[str, Any]:
        """What a "reviewed" signature of this exception is bound to (11.70)."""
        return {
            "type": REVIEW_RECORD_TYPE,
            "batch": batch_id,
            "exception": self.key,
            "title": self.title,
            "detail": self.detail,
            "record_head": list(head),
        }


@dataclass
class ReviewedItem:
    """An exception marked reviewed: by whom, when, with what note."""

    key: str
    title: str
    by: Actor
    at: str
    note: str | None
    signature: dict[str, Any]


@dataclass
class DeviationReview:
    """The hub's workflow of one deviation raised at the spoke."""

    deviation: str
    classification: str | None = None
    description: str | None = None
    impact: str | None = None
    root_cause: str | None = None
    capa: str | None = None
    assessed_by: Actor | None = None
    assessed_at: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    closed_by: Actor | None = None
    closed_at: str | None = None
    signature: dict[str, Any] | None = None


ASSESSMENT_FIELDS = ("classification", "description", "impact", "root_cause", "capa")
ASSESSMENT_ONE_LINE = {"classification": 20, "capa": 200}  # the rest: free text (MAX_LONG_TEXT)
ASSESSMENT_TITLES = {
    "classification": "Classification",
    "description": "Description",
    "impact": "Impact assessment",
    "root_cause": "Root cause",
    "capa": "CAPA reference",
}


def note_text(note: str | None) -> str | None:
    """A reviewer's note as kept: free text of at most ``MAX_FREE_TEXT`` characters, or None.

    A longer note is refused naming the limit, never cut (ALCOA+ complete).
    """
    return free_text(note, "The note") or None


def assessment_text(name: str, value: str | None) -> str | None:
    """One field of a deviation's investigation as kept (None when empty), or refused.

    Classification and CAPA reference are one line; description, impact and root cause are free
    text of at most ``MAX_LONG_TEXT`` characters, refused (not cut) when longer.
    """
    title = ASSESSMENT_TITLES[name]
    if name in ASSESSMENT_ONE_LINE:
        return one_line(value, title, max_length=ASSESSMENT_ONE_LINE[name]) or None
    return free_text(value, title, max_length=MAX_LONG_TEXT) or None


@dataclass
class ReviewState:
    """A batch's review chain, replayed."""

    batch: str
    last_seq: int = 0
    last_hash: str = GENESIS
    reviewed: dict[str, ReviewedItem] = field(default_factory=dict)
    deviations: dict[str, DeviationReview] = field(default_factory=dict)
    decision: Decision | None = None
    decided_by: Actor | None = None
    decided_at: str | None = None
    reason: str | None = None
    decision_signature: dict[str, Any] | None = None
    decided_head: tuple[int, str] | None = None  # the spoke's record as released or rejected

    def deviation(self, deviation_id: str) -> DeviationReview:
        """The workflow of a deviation (a fresh one if QA has not touched it yet)."""
        return self.deviations.get(deviation_id) or DeviationReview(deviation=deviation_id)


# --- finding the exceptions --------------------------------------------------------------------


_DATA_KINDS = frozenset(
    {
        EntryKind.PHASE_STARTED,
        EntryKind.VALUE_RECORDED,
        EntryKind.CALCULATED,
        EntryKind.MATERIAL_USED,
        EntryKind.EQUIPMENT_USED,
        EntryKind.IDENTITY_CHECKED,
    }
)


def _phase_name(batch: Batch, phase_id: str | None) -> str:
    plan = batch.procedure.phases.get(phase_id) if phase_id else None
    return f"'{plan.name}'" if plan else (phase_id or "the batch")


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min"


def find_exceptions(
    batch: Batch,
    entries: Iterable[SealedEntry],
    settings: ReviewSettings,
    *,
    chain_problem: str | None = None,
    pending: str | None = None,
    received: Mapping[int, datetime] | None = None,
) -> list[Finding]:
    """Everything in a batch's record that needs a reviewer's judgement, most serious first.

    ``chain_problem``: why the record fails verification (None when it verifies);
    ``pending``: what is still to come from the spoke (None when the record is whole);
    ``received``: when the hub received each entry, by seq (None or empty where the record was
    written, or no receipt is known).
    """
    entries = list(entries)
    found: list[Finding] = list(clock_findings(entries, received or {}, settings))
    if chain_problem:
        found.append(
            Finding(
                "chain",
                Category.CHAIN,
                "The record fails verification",
                chain_problem,
                blocking=True,
            )
        )
    if pending:
        found.append(
            Finding(
                "pending", Category.PENDING, "The record is not complete", pending, blocking=True
            )
        )
    s = batch.state
    for dev in s.deviations.values():
        category = DEVIATION_CATEGORY_TITLES.get(dev.category, dev.category)  # type: ignore[call-overload]
        found.append(
            Finding(
                f"deviation:{dev.id}",
                Category.DEVIATION,
                f"Deviation {dev.id} — {category.lower()}",
                dev.description + (f" — comment: {dev.comment}" if dev.comment else ""),
                phase=dev.phase,
                seq=dev.seq,
                by_closure=True,
                deviation=dev.id,
            )
        )
    last_data: dict[str, tuple[datetime, int]] = {}
    performed: dict[str, tuple[datetime, int]] = {}
    recorded: dict[int, Any] = {}  # entry seq → the value it recorded (for corrections)
    # A value outside its action limits raises its deviation in the very next entry.
    raised_by_value = {d.seq - 1: d.id for d in s.deviations.values() if d.value_id}
    late = timedelta(minutes=settings.late_signature_minutes)
    stamp = timedelta(seconds=settings.rubber_stamp_seconds)
    for entry in entries:
        body = entry.body
        kind, p, seq = body["kind"], body["payload"], int(body["seq"])
        at = parse_utc_text(body["at"])
        who = f"{body['actor']['name']} ({body['actor']['username']})"
        if kind in _DATA_KINDS:
            last_data[p["phase"]] = (at, seq)
        if kind in (EntryKind.VALUE_RECORDED, EntryKind.CALCULATED, EntryKind.VALUE_CORRECTED):
            recorded[seq] = p["recorded"]
            status = p.get("status")
            if status in (LimitStatus.ACTION, LimitStatus.ALERT):
                plan = batch.procedure.phases.get(p["phase"])
                spec = (plan.value_spec(p["value"]) if plan else None) or {}
                label = spec.get("label", p["value"])
                unit = f" {spec['unit']}" if spec.get("unit") else ""
                action = status == LimitStatus.ACTION
                raised = raised_by_value.get(seq)
                found.append(
                    Finding(
                        f"value:{seq}",
                        Category.ACTION_LIMIT if action else Category.ALERT_LIMIT,
                        f"{label} = {p['recorded']}{unit} in {_phase_name(batch, p['phase'])}",
                        f"Outside {'action' if action else 'alert'} limits; recorded by {who}."
                        + (f" It raised deviation {raised}: settled when that deviation is "
                           "closed." if raised else ""),
                        phase=p["phase"],
                        seq=seq,
                        # The excursion is judged once, in its deviation's investigation.
                        by_closure=raised is not None,
                        deviation=raised,
                    )
                )  # fmt: skip
        if kind == EntryKind.VALUE_CORRECTED:
            plan = batch.procedure.phases.get(p["phase"])
            spec = (plan.value_spec(p["value"]) if plan else None) or {}
            label = spec.get("label", p["value"])
            original = recorded.get(int(p["corrects"]))
            was = f" from {original}" if int(p["corrects"]) in recorded else ""
            found.append(
                Finding(
                    f"correction:{seq}",
                    Category.CORRECTION,
                    f"{label} corrected in {_phase_name(batch, p['phase'])}",
                    f"Corrected{was} to {p['recorded']} (corrects entry {p['corrects']}) by "
                    f"{who}; reason: {p['reason']}",
                    phase=p["phase"],
                    seq=seq,
                )
            )
        elif kind == EntryKind.SIGNATURE:
            record = p["record"]
            phase = record.get("phase")
            if record.get("action") == "correct" and phase:
                # A corrected phase is signed again: a verification of the correction is
                # measured from the correction's signature.
                performed[phase] = (at, seq)
            if record.get("action") == "perform" and phase:
                performed[phase] = (at, seq)
                data = last_data.get(phase)
                if data is not None and at - data[0] > late:
                    found.append(
                        Finding(
                            f"late:{seq}",
                            Category.LATE_SIGNATURE,
                            f"{_phase_name(batch, phase)} signed {_minutes(at - data[0])} after "
                            "its last data",
                            f"{who} signed as performed at entry {seq}; the phase's last data "
                            f"was entry {data[1]} (margin {settings.late_signature_minutes} min).",
                            phase=phase,
                            seq=seq,
                        )
                    )
            elif record.get("action") == "verify" and phase and phase in performed:
                gap = at - performed[phase][0]
                if gap < stamp:
                    found.append(
                        Finding(
                            f"rubber-stamp:{seq}",
                            Category.RUBBER_STAMP,
                            f"{_phase_name(batch, phase)} verified {_minutes(gap)} after it was "
                            "performed",
                            f"{who} signed as verified at entry {seq}, "
                            f"{int(gap.total_seconds())} s after the performer's signature "
                            f"(threshold {settings.rubber_stamp_seconds} s).",
                            phase=phase,
                            seq=seq,
                        )
                    )
            if record.get("action") == "abort":
                found.append(
                    Finding(
                        f"comment:{seq}",
                        Category.COMMENT,
                        "The batch was aborted",
                        f"{who}: {record.get('reason', '')}",
                        seq=seq,
                    )
                )
        elif kind in (EntryKind.DEVIATION_COMMENTED, EntryKind.BATCH_HELD, EntryKind.BATCH_RESUMED):
            text = p.get("comment") or p.get("reason") or ""
            what = {
                EntryKind.DEVIATION_COMMENTED: f"Comment on deviation {p.get('deviation')}",
                EntryKind.BATCH_HELD: "The batch was put on hold",
                EntryKind.BATCH_RESUMED: "The batch was resumed",
            }[EntryKind(kind)]
            found.append(
                Finding(
                    f"comment:{seq}",
                    Category.COMMENT,
                    what,
                    f"{who}: {text}",
                    phase=p.get("phase"),
                    seq=seq,
                )
            )
        elif kind == EntryKind.SCAN_REFUSED:
            found.append(
                Finding(
                    f"refused-scan:{seq}",
                    Category.REFUSED_SCAN,
                    f"Scan of '{p['scanned']}' refused in {_phase_name(batch, p['phase'])}",
                    f"For {p['for']}: {p['reason']} (by {who}).",
                    phase=p["phase"],
                    seq=seq,
                )
            )
    for pid, phase in s.phases.items():
        plan = batch.procedure.phases[pid]
        if plan.needs_verification and phase.status is PhaseStatus.PERFORMED:
            found.append(
                Finding(
                    f"unverified:{pid}:{phase.last_seq}",
                    Category.MISSING_VERIFICATION,
                    f"{_phase_name(batch, pid)} was not verified",
                    "The recipe asks for a second person's verification; the record has none.",
                    phase=pid,
                    seq=phase.last_seq,
                )
            )
    found.sort(key=lambda f: (_ORDER[f.category], f.seq or 0))
    return found


CLOCK_WHAT_TO_DO = (
    "Nobody records an event before it happens, and a spoke never dates an entry before the one "
    "it follows: the spoke's clock was wrong or the entries were not written as the record says. "
    "Investigate at the spoke (its clock, and who could sign with its key); a record whose times "
    "are not true is not released — reject the batch."
)


def clock_findings(
    entries: list[SealedEntry], received: Mapping[int, datetime], settings: ReviewSettings
) -> list[Finding]:
    """Blocking findings for times that cannot be true (ALCOA+ contemporaneous, consistent).

    Entries dated more than the allowed clock skew after the hub received them, and entries
    dated more than the skew before an earlier entry of the record (mes.core.chronology), one
    finding per run of consecutive entries, naming them and the worst one in words.
    """
    skew = settings.clock_skew_seconds
    found = [
        Finding(
            f"clock-ahead:{p.first_seq}",
            Category.CLOCK,
            f"{p.entries} dated after the hub received {'it' if p.first_seq == p.last_seq else 'them'}",
            f"{p.ahead_sentence(skew)} {CLOCK_WHAT_TO_DO}",
            seq=p.worst_seq,
            blocking=True,
        )
        for p in dated_ahead(entries, received, skew)
    ]
    found += [
        Finding(
            f"clock-backwards:{p.first_seq}",
            Category.CLOCK,
            f"{p.entries} dated before entry {p.reference_seq}",
            f"{p.backwards_sentence(skew)} {CLOCK_WHAT_TO_DO}",
            seq=p.worst_seq,
            blocking=True,
        )
        for p in dated_backwards(entries, skew)
    ]
    return found


def pending_reason(batch: Batch) -> str | None:
    """What is still to come from the spoke: the record is whole once complete or aborted."""
    status = batch.state.status
    if status in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
        return None
    return (
        f"The hub holds entries 1–{batch.state.last_seq} and the batch is "
        f"{status.value.replace('_', ' ')} at {batch.state.site}: the rest of the record has not "
        "arrived."
    )


# --- the review chain ---------------------------------------------------------------------------


def replay_review(batch_id: str, entries: Iterable[SealedEntry]) -> ReviewState:
    """A batch's review state from its review chain (in seq order)."""
    state = ReviewState(batch=batch_id)
    for entry in entries:
        _apply(state, entry)
    return state


def _apply(state: ReviewState, entry: SealedEntry) -> None:
    body = entry.body
    kind, p = ReviewKind(body["kind"]), body["payload"]
    actor, at = Actor.from_dict(body["actor"]), body["at"]
    if kind is ReviewKind.EXCEPTION_REVIEWED:
        state.reviewed[p["exception"]] = ReviewedItem(
            key=p["exception"],
            title=p["title"],
            by=actor,
            at=at,
            note=p.get("note"),
            signature=p["manifestation"],
        )
    elif kind is ReviewKind.DEVIATION_ASSESSED:
        dev = state.deviation(p["deviation"])
        changes = {}
        for name in ASSESSMENT_FIELDS:
            if name in p["assessment"]:
                old, new = getattr(dev, name), p["assessment"][name]
                if old != new:
                    changes[name] = [old, new]
                setattr(dev, name, new)
        dev.assessed_by, dev.assessed_at = actor, at
        dev.history.append({"at": at, "by": actor, "changes": changes})
        state.deviations[dev.deviation] = dev
    elif kind is ReviewKind.DEVIATION_CLOSED:
        dev = state.deviation(p["deviation"])
        dev.closed, dev.closed_by, dev.closed_at = True, actor, at
        dev.signature = p["manifestation"]
        state.deviations[dev.deviation] = dev
    else:
        state.decision = (
            Decision.RELEASED if kind is ReviewKind.BATCH_RELEASED else Decision.REJECTED
        )
        state.decided_by, state.decided_at = actor, at
        state.reason = p.get("reason")
        state.decision_signature = p["manifestation"]
        head = p["record"]["record_head"]
        state.decided_head = (int(head[0]), str(head[1]))
    state.last_seq, state.last_hash = entry.seq, entry.hash


def qa_state_of(status: str, decision: str | None, reviewed: bool) -> QaState:
    """Where a batch stands for QA.

    From its status at the spoke, QA's decision (if any) and whether QA has recorded anything
    in its review yet.
    """
    if decision:
        return QaState(decision)
    if status not in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
        return QaState.AT_SPOKE  # the record is still arriving (see pending_reason)
    return QaState.UNDER_REVIEW if reviewed else QaState.AWAITING_REVIEW


def qa_state(batch: Batch, review: ReviewState) -> QaState:
    """Where the batch stands for QA."""
    decision = review.decision.value if review.decision else None
    return qa_state_of(batch.state.status.value, decision, bool(review.last_seq))


def open_deviations(batch: Batch, review: ReviewState) -> list[str]:
    """Deviations raised at the spoke and not closed by QA at the hub."""
    return [d for d in batch.state.deviations if not review.deviation(d).closed]


def unreviewed(findings: Iterable[Finding], review: ReviewState) -> list[Finding]:
    """Exceptions still waiting for a "reviewed" signature."""
    return [
        f for f in findings if not f.blocking and not f.by_closure and f.key not in review.reviewed
    ]


def release_blockers(batch: Batch, review: ReviewState, findings: list[Finding]) -> list[str]:
    """Why the batch cannot be released now, one sentence each (empty: it can be)."""
    reasons = [f"{f.title}: {f.detail}" for f in findings if f.blocking]
    if batch.state.status is BatchStatus.ABORTED:
        reasons.append("The batch was aborted at the spoke: it can only be rejected.")
    still_open = open_deviations(batch, review)
    if still_open:
        reasons.append(
            f"{len(still_open)} deviation{'s are' if len(still_open) > 1 else ' is'} still "
            f"open: {', '.join(still_open)}. Close each with its investigation first."
        )
    waiting = unreviewed(findings, review)
    if waiting:
        shown = "; ".join(f.title for f in waiting[:3])
        more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
        reasons.append(
            f"{len(waiting)} exception{'s are' if len(waiting) > 1 else ' is'} not reviewed: "
            f"{shown}{more}."
        )
    return reasons


class Review:
    """The review chain of one batch as QA works on it: checks each action, seals its entry."""

    def __init__(
        self,
        batch: Batch,
        entries: Iterable[SealedEntry],
        *,
        record: Iterable[SealedEntry],
        key: SiteKey,
        site: str,
        settings: ReviewSettings,
        chain_problem: str | None = None,
        received: Mapping[int, datetime] | None = None,
    ) -> None:
        self.batch = batch
        self.key = key
        self.site = site
        self.settings = settings
        self.record = list(record)
        self.entries = list(entries)
        self.state = replay_review(batch.state.id, self.entries)
        self.findings = find_exceptions(
            batch,
            self.record,
            settings,
            chain_problem=chain_problem,
            pending=pending_reason(batch),
            received=received,
        )
        self.new_entries: list[SealedEntry] = []

    @property
    def record_head(self) -> tuple[int, str]:
        """The spoke's record as reviewed: its last entry's seq and hash."""
        return self.batch.state.last_seq, self.batch.state.last_hash

    def finding(self, key: str) -> Finding:
        """One exception by its key, or :class:`InvalidInput`."""
        for f in self.findings:
            if f.key == key:
                return f
        raise InvalidInput(
            f"Batch {self.batch.state.number} has no exception {key!r} (any more).",
            what_to_do="Reload the review page: the record may have changed.",
        )

    def _when(self, at: str | None) -> str:
        """A recorded time as people read it: local to the batch's site, with the zone."""
        return local_text(parse_utc_text(at), self.batch.time_zone) if at else "?"

    def _open(self) -> None:
        if self.state.decision is not None:
            raise ReviewClosed(
                f"Batch {self.batch.state.number} is already {self.state.decision.value} "
                f"(by {self.state.decided_by.name if self.state.decided_by else '?'} at "
                f"{self._when(self.state.decided_at)}).",
                what_to_do="Nothing more can be recorded in its review.",
            )

    # -- the records each signature is bound to ---------------------------------------------

    def exception_record(self, key: str) -> dict[str, Any]:
        """What marking ``key`` reviewed signs; refused when it cannot be reviewed."""
        self._open()
        f = self.finding(key)
        if f.blocking:
            raise InvalidInput(
                f"'{f.title}' cannot be marked reviewed: {f.detail}",
                what_to_do={
                    Category.PENDING: "Wait for the spoke's next sync: it clears itself when "
                    "the whole record has arrived.",
                    Category.CLOCK: "Reject the batch once the spoke's clock is investigated.",
                }.get(
                    f.category,
                    "A record that fails verification is not released: investigate at the "
                    "spoke (a copy that verifies can be sent again) or reject the batch.",
                ),
            )
        if f.by_closure:
            raise InvalidInput(
                f"{f.title} is settled by closing the deviation, not by marking it reviewed.",
                what_to_do="Investigate and close the deviation.",
            )
        if key in self.state.reviewed:
            done = self.state.reviewed[key]
            raise InvalidInput(
                f"'{f.title}' was already reviewed by {done.by.name} at {self._when(done.at)}.",
                what_to_do="Reload the review page.",
            )
        return f.record(self.batch.state.id, self.record_head)

    def closure_record(self, deviation_id: str) -> dict[str, Any]:
        """What closing a deviation signs; refused until its investigation is complete."""
        self._open()
        self._known_deviation(deviation_id)
        dev = self.state.deviation(deviation_id)
        if dev.closed:
            raise InvalidInput(
                f"Deviation {deviation_id} was already closed by "
                f"{dev.closed_by.name if dev.closed_by else '?'} at {self._when(dev.closed_at)}."
            )
        missing = [
            ASSESSMENT_TITLES[n]
            for n in ("classification", "description", "impact", "root_cause")
            if not getattr(dev, n)
        ]
        if dev.classification in (Classification.MAJOR, Classification.CRITICAL) and not dev.capa:
            missing.append("CAPA reference (required for a major or critical deviation)")
        if missing:
            raise InvalidInput(
                f"Deviation {deviation_id} cannot be closed yet: {', '.join(missing)} missing.",
                what_to_do="Complete the investigation, then close it.",
            )
        return {
            "type": REVIEW_RECORD_TYPE,
            "batch": self.batch.state.id,
            "deviation": deviation_id,
            "assessment": {n: getattr(dev, n) for n in ASSESSMENT_FIELDS},
            "record_head": list(self.record_head),
        }

    def decision_record(
        self, decision: Decision, reason: str | None, *, at: datetime | None = None
    ) -> dict[str, Any]:
        """What releasing or rejecting signs; release refused with every reason that blocks it.

        ``at``: when the decision is signed; a release is refused while any entry of the record
        or of its review is dated later (:meth:`release_precedes`).
        """
        self._open()
        why = free_text(reason, "The reason") or None  # refused when too long, never cut
        if decision is Decision.REJECTED:
            if not why:
                raise InvalidInput(
                    "A rejection needs a reason.", what_to_do="Say why the batch is rejected."
                )
            if pending_reason(self.batch):
                raise ReleaseRefused(
                    f"Batch {self.batch.state.number} cannot be decided yet: "
                    f"{pending_reason(self.batch)}",
                    what_to_do="Wait until the spoke has sent the whole record.",
                )
        else:
            blockers = release_blockers(self.batch, self.state, self.findings)
            precedes = self.release_precedes(at) if at is not None else None
            if precedes and at is not None:
                raise ReleasePrecedesRecord(
                    f"Batch {self.batch.state.number} cannot be released at {when(at)}: "
                    + " ".join([precedes, *blockers]),
                    what_to_do="Check the hub's clock (NTP) and the review page, which names "
                    "entries dated in the future; release once every entry is in the past, or "
                    "reject the batch.",
                )
            if blockers:
                raise ReleaseRefused(
                    f"Batch {self.batch.state.number} cannot be released: " + " ".join(blockers),
                    what_to_do="Settle each point on the review page, then release.",
                )
        return {
            "type": REVIEW_RECORD_TYPE,
            "batch": self.batch.state.id,
            "number": self.batch.state.number,
            "decision": decision.value,
            "reason": why,
            "record_head": list(self.record_head),
            "review_head": [self.state.last_seq, self.state.last_hash],
        }

    def release_precedes(self, at: datetime) -> str | None:
        """Why a release at ``at`` would come before what it releases (None: it would not).

        Rule: no entry of the spoke's record or of the hub's review chain is dated later than
        the release (a decision comes after everything it decides on; 21 CFR 11.10(e), 11.50),
        beyond the clock difference allowed between sites (``clock_skew_seconds``).
        """
        allowed = timedelta(seconds=self.settings.clock_skew_seconds)
        late = latest_after(
            {"record": self.record, "review": [*self.entries, *self.new_entries]}, at + allowed
        )
        if late is None:
            return None
        chain, entry = late
        where = "of its record" if chain == "record" else "of its review at the hub"
        dated = parse_utc_text(entry.body["at"])
        return (
            f"entry {entry.seq} {where} is dated {when(dated)}, later than the release: a "
            "release comes after everything it releases."
        )

    def _known_deviation(self, deviation_id: str) -> None:
        if deviation_id not in self.batch.state.deviations:
            raise InvalidInput(
                f"Batch {self.batch.state.number} has no deviation {deviation_id!r}.",
                what_to_do="Pick the deviation from the review page.",
            )

    # -- actions -------------------------------------------------------------------------------

    def mark_reviewed(
        self,
        key: str,
        note: str | None,
        manifestation: Manifestation,
        actor: Actor,
        at: datetime,
        terminal: str | None,
    ) -> None:
        """Record that an exception was reviewed, with the reviewer's signature."""
        record = self.exception_record(key)
        self._require_bound(manifestation, record, Meaning.REVIEWED)
        self._append(
            ReviewKind.EXCEPTION_REVIEWED,
            {
                "exception": key,
                "title": record["title"],
                "note": note_text(note),
                "record": record,
                "manifestation": manifestation.as_dict(),
            },
            actor,
            at,
            terminal,
        )

    def assess_deviation(
        self,
        deviation_id: str,
        assessment: Mapping[str, str | None],
        actor: Actor,
        at: datetime,
        terminal: str | None,
    ) -> bool:
        """Record QA's classification and investigation of a deviation; False if nothing changed."""
        self._open()
        self._known_deviation(deviation_id)
        dev = self.state.deviation(deviation_id)
        if dev.closed:
            raise InvalidInput(f"Deviation {deviation_id} is closed; its record stays as it is.")
        given: dict[str, str | None] = {}
        for name in ASSESSMENT_FIELDS:
            if name not in assessment:
                continue
            value = assessment_text(name, assessment[name])
            if name == "classification" and value is not None:
                try:
                    value = Classification(value.lower()).value
                except ValueError:
                    raise InvalidInput(
                        f"'{value}' is not a deviation classification.",
                        what_to_do="Use minor, major or critical.",
                    ) from None
            if value != getattr(dev, name):
                given[name] = value
        if not given:
            return False
        self._append(
            ReviewKind.DEVIATION_ASSESSED,
            {"deviation": deviation_id, "assessment": given},
            actor,
            at,
            terminal,
        )
        return True

    def close_deviation(
        self,
        deviation_id: str,
        manifestation: Manifestation,
        actor: Actor,
        at: datetime,
        terminal: str | None,
    ) -> None:
        """Close a deviation whose investigation is complete, with QA's signature."""
        record = self.closure_record(deviation_id)
        self._require_bound(manifestation, record, Meaning.CLOSED)
        self._append(
            ReviewKind.DEVIATION_CLOSED,
            {"deviation": deviation_id, "record": record, "manifestation": manifestation.as_dict()},
            actor,
            at,
            terminal,
        )

    def decide(
        self,
        decision: Decision,
        reason: str | None,
        manifestation: Manifestation,
        actor: Actor,
        at: datetime,
        terminal: str | None,
    ) -> None:
        """Release or reject the batch with QA's signature."""
        record = self.decision_record(decision, reason, at=at)
        meaning = Meaning.RELEASED if decision is Decision.RELEASED else Meaning.REJECTED
        self._require_bound(manifestation, record, meaning)
        self._append(
            ReviewKind.BATCH_RELEASED
            if decision is Decision.RELEASED
            else ReviewKind.BATCH_REJECTED,
            {
                "decision": decision.value,
                "reason": record["reason"],
                "record": record,
                "manifestation": manifestation.as_dict(),
            },
            actor,
            at,
            terminal,
        )

    @staticmethod
    def _require_bound(m: Manifestation, record: Mapping[str, Any], meaning: Meaning) -> None:
        if m.record_hash != content_hash(dict(record)) or m.meaning != meaning.value:
            raise NotAuthorised(  # pragma: no cover - services sign exactly the record asked for
                "The signature was made over another record or with another meaning."
            )

    def _append(
        self,
        kind: ReviewKind,
        payload: dict[str, Any],
        actor: Actor,
        at: datetime,
        terminal: str | None,
    ) -> None:
        seq, prev = next_link(
            self.state.last_seq, self.state.last_hash if self.state.last_seq else None
        )
        body = EntryBody(
            batch=self.batch.state.id,
            seq=seq,
            prev=prev,
            at=utc_text(at),
            site=self.site,
            terminal=terminal,
            actor=actor,
            kind=kind,
            payload=payload,
        )
        entry = seal(body.as_dict(), self.key)
        _apply(self.state, entry)
        self.new_entries.append(entry)


def review_entry_text(body: Mapping[str, Any]) -> str:
    """One entry of the review chain in words: what QA did, and the signature's manifestation."""
    kind, p = ReviewKind(body["kind"]), body["payload"]
    m = p.get("manifestation")
    signed = (
        f" — e-signature of {m['printed_name']} ({m['username']}), meaning '{m['meaning']}', "
        f"bound to record hash {m['record_hash'][:12]}…"
        if m
        else ""
    )
    if kind is ReviewKind.EXCEPTION_REVIEWED:
        note = f"; note: {p['note']}" if p.get("note") else ""
        return f"reviewed exception '{p['title']}'{note}{signed}"
    if kind is ReviewKind.DEVIATION_ASSESSED:
        parts = [
            f"{ASSESSMENT_TITLES[name].lower()} = {value if value is not None else '(cleared)'}"
            for name, value in p["assessment"].items()
        ]
        return f"assessed deviation {p['deviation']}: " + "; ".join(parts)
    if kind is ReviewKind.DEVIATION_CLOSED:
        return f"closed deviation {p['deviation']}{signed}"
    reason = f"; reason: {p['reason']}" if p.get("reason") else ""
    return f"{p['decision']} the batch{reason}{signed}"
