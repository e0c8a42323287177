"""The review chain of a batch: its vocabulary, its entries replayed, and its entries in words.

QA's work on a batch is a second hash chain per batch, sealed with the hub's key
(:mod:`mes.core.review.actions` appends to it); :func:`replay_review` reads it back into a
:class:`ReviewState`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mes.core.after_release import notification_words, result_words
from mes.core.audit import Actor
from mes.core.batch import (
    Batch,
    BatchStatus,
)
from mes.core.errors import ChainBroken, MesError
from mes.core.esign import signature_binds
from mes.core.ledger import GENESIS, SealedEntry
from mes.core.lookback import (
    DISPOSITION_FIELDS,
    LookBackDisposition,
    disposition_of_entry,
    disposition_text,
)
from mes.core.text import MAX_LONG_TEXT, free_text, one_line
from mes.core.worded import Worded, words_of

REVIEW_RECORD_TYPE = "batch-review"


class ReviewKind(StrEnum):
    """What an entry of the review chain records."""

    EXCEPTION_REVIEWED = "exception_reviewed"
    # several exceptions under one signature, its record listing each one's content
    EXCEPTIONS_REVIEWED = "exceptions_reviewed"
    DEVIATION_ASSESSED = "deviation_assessed"
    DEVIATION_CLOSED = "deviation_closed"
    BATCH_RELEASED = "batch_released"
    BATCH_REJECTED = "batch_rejected"
    # after release (mes.core.after_release): the hub's QC result, the physician told of a
    # result out of specification, QA's final certification
    RESULT_RECORDED = "result_recorded"
    PHYSICIAN_NOTIFIED = "physician_notified"
    BATCH_CERTIFIED_FINAL = "batch_certified_final"
    # QA's disposition of the batch in a look-back (mes.core.lookback); recorded after release
    LOOKBACK_DISPOSITION = "lookback_disposition"


class Classification(StrEnum):
    """How serious a deviation is (EU GMP Part I §1.4(xiv); ICH Q9 risk)."""

    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class Decision(StrEnum):
    """QA's disposition of a batch."""

    RELEASED = "released"
    REJECTED = "rejected"


class QaState(Worded):
    """Where a batch stands for QA (what the queue filters on)."""

    # still being made, or its last entries have not arrived
    AT_SPOKE = "at_spoke", "At the spoke"
    # complete or aborted; nobody has reviewed anything yet
    AWAITING_REVIEW = "awaiting_review", "Awaiting review"
    UNDER_REVIEW = "under_review", "Under review"
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"


QA_STATE_TITLES = words_of(QaState)


class ReleaseRefused(MesError):
    """The batch cannot be released yet; the message lists every reason."""

    http_status = 409


class ReleasePrecedesRecord(ReleaseRefused):
    """A release would be dated before an entry it releases (of the record or of its review)."""


class ReviewClosed(MesError):
    """The batch already has its disposition: nothing more is recorded in its review."""

    http_status = 409


@dataclass
class ReviewedItem:
    """An exception marked reviewed: by whom, when, with what note."""

    key: str
    title: str
    by: Actor
    at: str
    note: str | None
    signature: dict[str, Any]
    together: int = 1  # how many exceptions that one signature reviewed (its record lists each)


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
    # after release: the bodies of result_recorded, physician_notified, batch_certified_final
    # and deviation_closed entries (read by mes.core.after_release.after_release_state)
    followups: list[dict[str, Any]] = field(default_factory=list)
    lookbacks: dict[str, LookBackDisposition] = field(default_factory=dict)  # look-back id →

    def deviation(self, deviation_id: str) -> DeviationReview:
        """The workflow of a deviation (a fresh one if QA has not touched it yet)."""
        return self.deviations.get(deviation_id) or DeviationReview(deviation=deviation_id)


# --- the review chain ---------------------------------------------------------------------------


def replay_review(batch_id: str, entries: Iterable[SealedEntry]) -> ReviewState:
    """A batch's review state from its review chain (in seq order)."""
    state = ReviewState(batch=batch_id)
    for entry in entries:
        apply_entry(state, entry)
    return state


def apply_entry(state: ReviewState, entry: SealedEntry) -> None:
    """Apply one sealed entry of the review chain to ``state``."""
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
    elif kind is ReviewKind.EXCEPTIONS_REVIEWED:
        listed = p["exceptions"]
        signed = [item["exception"] for item in p["record"]["exceptions"]]
        if [item["exception"] for item in listed] != signed or not signature_binds(
            p["manifestation"], p["record"]
        ):
            raise ChainBroken(
                entry.seq, "the exceptions it lists are not those its signature is bound to"
            )
        for item in listed:
            state.reviewed[item["exception"]] = ReviewedItem(
                key=item["exception"],
                title=item["title"],
                by=actor,
                at=at,
                note=p.get("note"),
                signature=p["manifestation"],
                together=len(listed),
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
    elif kind in _FOLLOWUPS:
        pass  # read from state.followups by mes.core.after_release
    elif kind is ReviewKind.DEVIATION_CLOSED:
        dev = state.deviation(p["deviation"])
        dev.closed, dev.closed_by, dev.closed_at = True, actor, at
        dev.signature = p["manifestation"]
        state.deviations[dev.deviation] = dev
    elif kind is ReviewKind.LOOKBACK_DISPOSITION:
        said = {k: p[k] for k in DISPOSITION_FIELDS}
        if said != {k: p["record"].get(k) for k in DISPOSITION_FIELDS} or not signature_binds(
            p["manifestation"], p["record"]
        ):
            raise ChainBroken(entry.seq, "the disposition is not the one its signature is bound to")
        state.lookbacks[p["lookback"]] = disposition_of_entry(body)
    else:
        state.decision = (
            Decision.RELEASED if kind is ReviewKind.BATCH_RELEASED else Decision.REJECTED
        )
        state.decided_by, state.decided_at = actor, at
        state.reason = p.get("reason")
        state.decision_signature = p["manifestation"]
        head = p["record"]["record_head"]
        state.decided_head = (int(head[0]), str(head[1]))
    if kind in _FOLLOWUPS or kind in (
        ReviewKind.DEVIATION_CLOSED,
        ReviewKind.BATCH_RELEASED,
        ReviewKind.BATCH_REJECTED,
    ):
        state.followups.append(dict(body))
    state.last_seq, state.last_hash = entry.seq, entry.hash


_FOLLOWUPS = frozenset(
    {ReviewKind.RESULT_RECORDED, ReviewKind.PHYSICIAN_NOTIFIED, ReviewKind.BATCH_CERTIFIED_FINAL}
)


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
    if kind is ReviewKind.EXCEPTIONS_REVIEWED:
        note = f"; note: {p['note']}" if p.get("note") else ""
        titles = "; ".join(f"'{item['title']}'" for item in p["exceptions"])
        return f"reviewed {len(p['exceptions'])} exceptions under one signature: {titles}{note}{signed}"
    if kind is ReviewKind.DEVIATION_ASSESSED:
        parts = [
            f"{ASSESSMENT_TITLES[name].lower()} = {value if value is not None else '(cleared)'}"
            for name, value in p["assessment"].items()
        ]
        return f"assessed deviation {p['deviation']}: " + "; ".join(parts)
    if kind is ReviewKind.DEVIATION_CLOSED:
        return f"closed deviation {p['deviation']}{signed}"
    if kind is ReviewKind.RESULT_RECORDED:
        return result_words(p)
    if kind is ReviewKind.PHYSICIAN_NOTIFIED:
        return f"{notification_words(p)}{signed}"
    if kind is ReviewKind.BATCH_CERTIFIED_FINAL:
        return f"certified the batch final{signed}"
    if kind is ReviewKind.LOOKBACK_DISPOSITION:
        return f"{disposition_text(p)}{signed}"
    reason = f"; reason: {p['reason']}" if p.get("reason") else ""
    return f"{p['decision']} the batch{reason}{signed}"
