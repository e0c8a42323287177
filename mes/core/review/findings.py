"""Review by exception: what a reviewer must judge in a batch's record, most serious first."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from mes.core.batch import (
    DEVIATION_CATEGORY_TITLES,
    Batch,
    BatchStatus,
    EntryKind,
    PhaseStatus,
)
from mes.core.canonical import content_hash
from mes.core.chronology import dated_ahead, dated_backwards
from mes.core.clock import parse_utc_text
from mes.core.ledger import SealedEntry
from mes.core.limits import LimitStatus
from mes.core.review.chain import REVIEW_RECORD_TYPE, ReviewState
from mes.core.text import first_few
from mes.core.worded import Worded, words_of


class Category(Worded):
    """Kinds of exception, in the order a reviewer should read them."""

    CHAIN = "chain", "Record fails verification"
    PENDING = "pending", "Entries pending from the spoke"
    CLOCK = "clock", "Times that cannot be true"
    DEVIATION = "deviation", "Deviation"
    ACTION_LIMIT = "action_limit", "Value outside action limits"
    ALERT_LIMIT = "alert_limit", "Value outside alert limits"
    CORRECTION = "correction", "Correction"
    LATE_SIGNATURE = "late_signature", "Signed late"
    RUBBER_STAMP = "rubber_stamp", "Verified within seconds"
    MISSING_VERIFICATION = "missing_verification", "Verification missing"
    COMMENT = "comment", "Comment or reason"
    REFUSED_SCAN = "refused_scan", "Refused scan"


CATEGORY_TITLES = words_of(Category)
_ORDER = {c: i for i, c in enumerate(Category)}


@dataclass(frozen=True)
class ReviewSettings:
    """The configurable thresholds of review by exception."""

    late_signature_minutes: int = 30
    rubber_stamp_seconds: int = 30
    # How far a site's clock may be from the hub's (sync.clock_skew_seconds): an entry dated
    # further ahead of its receipt, or further back than an entry before it, cannot be true.
    clock_skew_seconds: int = 300

    def digest(self) -> str:
        """A short digest of the thresholds: which settings a stored exception count came from."""
        return content_hash(asdict(self))[:16]


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
    entries: tuple[int, ...] = ()  # the ledger entries that are its evidence, oldest first

    @property
    def evidence(self) -> tuple[int, ...]:
        """The seqs of the entries a reviewer judges it by (its own entry when none is named)."""
        return self.entries or ((self.seq,) if self.seq else ())

    @property
    def content(self) -> dict[str, str]:
        """What the reviewer reads of it: a "reviewed" signature is bound to exactly this."""
        return {"exception": self.key, "title": self.title, "detail": self.detail}

    @property
    def digest(self) -> str:
        """The hash of :attr:`content`: a page carries it, so a finding changed since is refused."""
        return content_hash(self.content)

    @property
    def category_title(self) -> str:
        """The category in words."""
        return CATEGORY_TITLES[self.category]

    def record(self, batch_id: str, head: tuple[int, str]) -> dict[str, Any]:
        """What a "reviewed" signature of this exception is bound to (11.70)."""
        return {"type": REVIEW_RECORD_TYPE, "batch": batch_id, **self.content,
                "record_head": list(head)}  # fmt: skip


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
                entries=(dev.seq - 1, dev.seq) if dev.value_id else (dev.seq,),
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
                    entries=(int(p["corrects"]), seq),
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
                            entries=(data[1], seq),
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
                            entries=(performed[phase][1], seq),
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
        shown = first_few([f.title for f in waiting], 3, sep="; ")
        reasons.append(
            f"{len(waiting)} exception{'s are' if len(waiting) > 1 else ' is'} not reviewed: "
            f"{shown}."
        )
    return reasons
