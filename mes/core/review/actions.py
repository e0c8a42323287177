"""What QA does with a batch, declared once, and the :class:`Review` that checks and seals it.

:data:`REVIEW_ACTIONS` names each action's subject (an exception, a deviation, the batch), the
meaning of its signature, the entry it appends, its button and the message when done; the
:class:`Review` checks each action's rules and binds the signature to its record (11.70).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from mes.core.access import Role
from mes.core.actions import ActionRule, Subject
from mes.core.after_release import (
    AfterRelease,
    after_release_state,
    certification_record,
    check_may_sign,
    notification_payload,
    result_payload,
)
from mes.core.audit import Actor
from mes.core.batch import (
    Batch,
    BatchStatus,
)
from mes.core.canonical import content_hash
from mes.core.chronology import latest_after, when
from mes.core.clock import local_text, parse_utc_text, utc_text
from mes.core.entry import EntryBody
from mes.core.errors import InvalidInput, NotAuthorised
from mes.core.esign import Manifestation, Meaning
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry, next_link, seal
from mes.core.lookback import DISPOSITION_FIELDS, check_not_disposed, disposition_reason
from mes.core.review.chain import (
    ASSESSMENT_FIELDS,
    ASSESSMENT_TITLES,
    REVIEW_RECORD_TYPE,
    Classification,
    Decision,
    ReleasePrecedesRecord,
    ReleaseRefused,
    ReviewClosed,
    ReviewKind,
    apply_entry,
    assessment_text,
    note_text,
    replay_review,
)
from mes.core.review.findings import (
    Category,
    Finding,
    ReviewSettings,
    find_exceptions,
    pending_reason,
    release_blockers,
)
from mes.core.text import free_text

_QA = frozenset({Role.QA})
MAX_EXCEPTIONS_TOGETHER = 200  # one signature's record stays readable in the printed record

# What QA does with a batch, one rule each (the shape of mes.core.actions): the entry it
# appends, what it is taken on, its button and message, and the meaning of its signature.
REVIEW_ACTIONS: dict[ReviewKind, ActionRule] = {
    ReviewKind.EXCEPTION_REVIEWED: ActionRule(
        Subject.EXCEPTION, "Mark reviewed", "Signed: reviewed.", _QA, meaning=Meaning.REVIEWED
    ),
    ReviewKind.EXCEPTIONS_REVIEWED: ActionRule(
        Subject.EXCEPTION,
        "Mark the selected reviewed",
        "Signed: {count} reviewed with one signature.",
        _QA,
        meaning=Meaning.REVIEWED,
    ),
    ReviewKind.DEVIATION_ASSESSED: ActionRule(
        Subject.DEVIATION,
        "Save the investigation",
        "Deviation {deviation}: investigation saved.",
        _QA,
    ),
    ReviewKind.DEVIATION_CLOSED: ActionRule(
        Subject.DEVIATION,
        "Close deviation {deviation}",
        "Deviation {deviation} closed.",
        _QA,
        meaning=Meaning.CLOSED,
    ),
    ReviewKind.BATCH_RELEASED: ActionRule(
        Subject.BATCH,
        "Release the batch",
        "Batch {number} released.",
        _QA,
        meaning=Meaning.RELEASED,
    ),
    ReviewKind.BATCH_REJECTED: ActionRule(
        Subject.BATCH, "Reject the batch", "Batch {number} rejected.", _QA, meaning=Meaning.REJECTED
    ),
    # after release (mes.core.after_release)
    ReviewKind.RESULT_RECORDED: ActionRule(
        Subject.BATCH, "Enter the result", "Result entered.", frozenset({Role.QC})
    ),
    ReviewKind.PHYSICIAN_NOTIFIED: ActionRule(
        Subject.BATCH,
        "Record the physician's notification",
        "The physician's notification is recorded.",
        _QA,
        meaning=Meaning.NOTIFIED,
    ),
    ReviewKind.BATCH_CERTIFIED_FINAL: ActionRule(
        Subject.BATCH,
        "Sign the final certification",
        "Batch {number} certified final.",
        _QA,
        meaning=Meaning.CERTIFIED_FINAL,
    ),
    # QA's signature that it judged the batch in a look-back (the disposition is in the record)
    ReviewKind.LOOKBACK_DISPOSITION: ActionRule(
        Subject.BATCH,
        "Sign the disposition",
        "Batch {number}: look-back disposition signed.",
        _QA,
        meaning=Meaning.REVIEWED,
    ),
}
DECISION_KINDS = {
    Decision.RELEASED: ReviewKind.BATCH_RELEASED,
    Decision.REJECTED: ReviewKind.BATCH_REJECTED,
}


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

    def after_release(self) -> AfterRelease:
        """The batch after release, from the spoke's record and this review chain."""
        return after_release_state(
            self.batch.procedure, [e.body for e in self.record], self.state.followups
        )

    def _may_sign(self, *, notifying: bool = False) -> None:
        """The physician-notification gate (one rule, in mes.core.after_release)."""
        check_may_sign(self.after_release(), self.batch.state.number, notifying=notifying)

    def _after_release_open(self) -> None:
        """Results and notifications: once the whole record is in, and not after a rejection."""
        why = pending_reason(self.batch)
        if self.batch.state.status is not BatchStatus.COMPLETE or why:
            raise InvalidInput(
                f"Batch {self.batch.state.number} is not complete at the hub yet"
                + (f": {why}" if why else "."),
                what_to_do="Results after release are entered once the whole record has arrived.",
            )
        if self.state.decision is not None and self.state.decision is not Decision.RELEASED:
            self._open()

    def _open(self, deviation_id: str | None = None) -> None:
        if (
            deviation_id is not None
            and self.state.decision is Decision.RELEASED
            and self.state.decided_head is not None
            and (dev := self.batch.state.deviations.get(deviation_id)) is not None
            and dev.seq > self.state.decided_head[0]
        ):
            return  # raised after release (a result, a bedside mismatch): worked after release
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
        self._may_sign()
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

    def exceptions_record(self, seen: Mapping[str, str]) -> dict[str, Any]:
        """What marking several exceptions reviewed under one signature signs (11.70).

        ``seen``: each exception's key and the digest of its content as the reviewer saw it
        (:attr:`Finding.digest`). The record lists the content of each, so the one signature
        is bound to every one of them. Refused as a whole — nothing is signed — when none is
        chosen, when any one cannot be marked reviewed (blocking, settled by a deviation's
        closure, already reviewed; :meth:`exception_record`), or when any one's content is no
        longer what the reviewer saw.
        """
        self._open()
        if not seen:
            raise InvalidInput(
                "No exception was chosen.",
                what_to_do="Tick the exceptions to mark reviewed, or use a category's "
                '"Mark all reviewed".',
            )
        if len(seen) > MAX_EXCEPTIONS_TOGETHER:
            raise InvalidInput(
                f"{len(seen)} exceptions were chosen; one signature reviews at most "
                f"{MAX_EXCEPTIONS_TOGETHER}.",
                what_to_do="Review them in smaller sets, e.g. one category at a time.",
            )
        listed = []
        for key, digest in seen.items():
            self.exception_record(key)  # each one's own rules, with its own refusal
            finding = self.finding(key)
            if finding.digest != digest:
                raise InvalidInput(
                    f"'{finding.title}' has changed since you opened the page: it now reads "
                    f'"{finding.detail}".',
                    what_to_do="Reload the page and review it as it reads now.",
                )
            listed.append(finding.content)
        return {
            "type": REVIEW_RECORD_TYPE,
            "batch": self.batch.state.id,
            "exceptions": listed,
            "record_head": list(self.record_head),
        }

    def closure_record(self, deviation_id: str) -> dict[str, Any]:
        """What closing a deviation signs; refused until its investigation is complete."""
        self._open(deviation_id)
        self._may_sign()
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
        self._may_sign()
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
        self._append_signed(
            ReviewKind.EXCEPTION_REVIEWED,
            {"exception": key, "title": record["title"], "note": note_text(note)},
            record,
            manifestation,
            actor,
            at,
            terminal,
        )

    def mark_reviewed_together(
        self,
        seen: Mapping[str, str],
        note: str | None,
        manifestation: Manifestation,
        actor: Actor,
        at: datetime,
        terminal: str | None,
    ) -> None:
        """Record that several exceptions were reviewed, under one signature listing each."""
        record = self.exceptions_record(seen)
        self._append_signed(
            ReviewKind.EXCEPTIONS_REVIEWED,
            {
                "exceptions": [
                    {"exception": item["exception"], "title": item["title"]}
                    for item in record["exceptions"]
                ],
                "note": note_text(note),
            },
            record,
            manifestation,
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
        self._open(deviation_id)
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
        self._append_signed(
            ReviewKind.DEVIATION_CLOSED,
            {"deviation": deviation_id},
            record,
            manifestation,
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
        self._append_signed(
            DECISION_KINDS[decision],
            {"decision": decision.value, "reason": record["reason"]},
            record,
            manifestation,
            actor,
            at,
            terminal,
        )

    # -- after release (mes.core.after_release) -----------------------------------------------

    def record_result(
        self, fields: Mapping[str, Any], actor: Actor, at: datetime, terminal: str | None
    ) -> dict[str, Any]:
        """The hub's QC enters a result the recipe declared pending at release.

        Unsigned, like a value entered at the spoke: attributable to the person, sealed by
        the hub. Out of specification, it is an open after-release event: the physician's
        notification is due before anything else is signed on the batch.
        """
        self._after_release_open()
        payload = result_payload(self.after_release(), self.batch.state.number, **fields)
        self._append(ReviewKind.RESULT_RECORDED, payload, actor, at, terminal)
        return payload

    def notification_record(self, at: datetime, **fields: str) -> dict[str, Any]:
        """What recording the physician's notification signs (who was told, when, how)."""
        self._after_release_open()
        self._may_sign(notifying=True)
        notification = notification_payload(
            self.after_release(),
            self.batch.state.number,
            time_zone=self.batch.time_zone,  # as the review page shows times (:meth:`_when`)
            now=at,
            **fields,
        )
        return {
            "type": REVIEW_RECORD_TYPE,
            "batch": self.batch.state.id,
            "number": self.batch.state.number,
            "notification": notification,
        }

    def notify_physician(
        self,
        record: Mapping[str, Any],
        manifestation: Manifestation,
        actor: Actor,
        at: datetime,
        terminal: str | None,
    ) -> None:
        """Append QA's signed record of the physician's notification."""
        self._append_signed(
            ReviewKind.PHYSICIAN_NOTIFIED,
            dict(record["notification"]),
            record,
            manifestation,
            actor,
            at,
            terminal,
        )

    def certification_record(self) -> dict[str, Any]:
        """What QA's final certification signs (refused as mes.core.after_release says)."""
        self._may_sign()
        return certification_record(
            self.after_release(), self.batch.state.id, self.batch.state.number
        )

    def certify_final(
        self, manifestation: Manifestation, actor: Actor, at: datetime, terminal: str | None
    ) -> None:
        """Append QA's signed final certification."""
        record = self.certification_record()
        self._append_signed(
            ReviewKind.BATCH_CERTIFIED_FINAL, {}, record, manifestation, actor, at, terminal
        )

    def lookback_record(
        self, lookback: Mapping[str, str], disposition: str, reason: str | None
    ) -> dict[str, Any]:
        """What a look-back disposition of this batch signs; refused before any signature.

        ``lookback``: its ``id``, ``subject_kind``, ``subject`` and ``reason``. Allowed whatever
        QA decided (a look-back often comes long after release or rejection) and before; once
        per batch per look-back, "no action" with a reason (:mod:`mes.core.lookback`), and not
        while the physician's notification of a result out of specification is pending.
        """
        self._may_sign()
        chosen, why = disposition_reason(disposition, reason)
        self._may_sign()
        check_not_disposed(self.batch.state.number, lookback["id"], self.state.lookbacks)
        self._may_sign()  # nothing else is signed while the physician's notification is due
        return {
            "type": REVIEW_RECORD_TYPE,
            "batch": self.batch.state.id,
            "number": self.batch.state.number,
            "lookback": lookback["id"],
            "subject_kind": lookback["subject_kind"],
            "subject": lookback["subject"],
            "lookback_reason": lookback["reason"],
            "disposition": chosen.value,
            "reason": why,
            "record_head": list(self.record_head),
        }

    def dispose_lookback(
        self,
        record: Mapping[str, Any],
        manifestation: Manifestation,
        actor: Actor,
        at: datetime,
        terminal: str | None,
    ) -> None:
        """Append the signed disposition of ``record`` (:meth:`lookback_record`)."""
        payload = {k: record[k] for k in DISPOSITION_FIELDS}
        self._append_signed(
            ReviewKind.LOOKBACK_DISPOSITION, payload, record, manifestation, actor, at, terminal
        )

    def _append_signed(
        self,
        kind: ReviewKind,
        payload: dict[str, Any],
        record: Mapping[str, Any],
        m: Manifestation,
        actor: Actor,
        at: datetime,
        terminal: str | None,
    ) -> None:
        """Append ``kind``'s entry with the signature, bound to ``record`` with its meaning.

        Every signed entry passes the physician-notification gate here too (each ``*_record``
        asks it first, before any password is checked; this keeps a new signed kind from
        slipping past it).
        """
        self._may_sign(notifying=kind is ReviewKind.PHYSICIAN_NOTIFIED)
        meaning = REVIEW_ACTIONS[kind].meaning
        if m.record_hash != content_hash(dict(record)) or meaning is None or m.meaning != meaning:
            raise NotAuthorised(  # pragma: no cover - services sign exactly the record asked for
                "The signature was made over another record or with another meaning."
            )
        payload = {**payload, "record": record, "manifestation": m.as_dict()}
        self._append(kind, payload, actor, at, terminal)

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
        apply_entry(self.state, entry)
        self.new_entries.append(entry)
