"""The executed batch record in words: what a printed record shows an auditor, and nothing else.

One place says how a batch reads: a recorded value with its unit, limits and status; a signature's
manifestation (printed name, user ID, date and time with the site's time zone, meaning — 21 CFR
11.50); a correction with its original value, the new value and the reason (ALCOA+, 11.10(e));
each ledger entry as a line of the audit trail. The operator's pages, the QA pages and the
printed record (:mod:`mes.pdf`) all use these words.

:func:`build_record` turns a batch (its ledger replayed), the hub's review (if any) and the audit
trail into a :class:`BatchRecord`: frozen dataclasses holding only text, in recipe order — unit
procedures, operations, phases — ready for a template. It decides nothing: what happened is what
the ledger says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mes.core import phases
from mes.core.after_release import (
    Certification,
    after_release_state,
    notification_words,
    result_words,
)
from mes.core.batch import (
    BATCH_STATUS_TITLES,
    DEVIATION_CATEGORY_TITLES,
    PHASE_STATUS_TITLES,
    Batch,
    EntryKind,
    PhasePlan,
    PhaseStatus,
)
from mes.core.batch.bedside import BEDSIDE_ENTRY_KINDS, bedside_words
from mes.core.clock import as_utc, local_text, parse_utc_text
from mes.core.custody import transfer_in_words
from mes.core.esign import Meaning
from mes.core.identity import identity_text
from mes.core.ledger import SealedEntry
from mes.core.ordering import ORDERING_WORDS
from mes.core.phases import Printed
from mes.core.phases.equipment import EquipmentLine
from mes.core.phases.identity import IdentityLine
from mes.core.phases.materials import MaterialLine
from mes.core.phases.temperature_log import curve_caption, excursion_import

# Each kind's printed lines live with the kind (mes.core.phases); their names stay importable here.
from mes.core.phases.value_words import (  # noqa: F401 - the line types stay importable here
    ChangeLine,
    ValueLine,
    local_at,
    phase_name,
    shown_value,
    who_text,
)

if TYPE_CHECKING:  # a record without a review (at the spoke) needs nothing of the QA workflow
    from mes.core.review import ReviewState

# --- the words of one value and one signature ---------------------------------------------------


def manifestation_text(signature: Mapping[str, Any], time_zone: str) -> str:
    """'Olivia Operator (olivia) — Performed — 2026-11-21 09:00:00 GMT' (11.50)."""
    return (
        f"{signature['printed_name']} ({signature['username']}) — "
        f"{Meaning(signature['meaning']).value.capitalize()} — "
        f"{local_text(parse_utc_text(signature['at']), time_zone)}"
    )


def witness_words(host: Mapping[str, Any]) -> str:
    """How a signature a witness gave in place reads, wherever it is shown.

    'as a witness at the session of Olivia Operator (olivia)'; ``host`` is the logged-in user,
    the signature entry's ``in_session_of``.
    """
    return f"as a witness at the session of {host['name']} ({host['username']})"


def witness_hosts(ledger: Iterable[SealedEntry]) -> dict[int, Mapping[str, Any]]:
    """The signatures given by a witness in place: their entry's number → the session's user."""
    return {
        e.body["seq"]: e.body["payload"]["in_session_of"]
        for e in ledger
        if e.body["kind"] == EntryKind.SIGNATURE.value and e.body["payload"].get("in_session_of")
    }


# --- the ledger in words ------------------------------------------------------------------------

ACTION_WORDS = {
    "start": "started the batch",
    "perform": "signed as performed",
    "verify": "signed as verified",
    "correct": "signed the correction of",
    "acknowledge": "acknowledged deviation",
    "complete": "signed the batch complete",
    "abort": "aborted the batch",
    "notify_physician": "recorded the physician's notification",
}


def entries_in_words(
    batch: Batch, entries: Iterable[SealedEntry], time_zone: str
) -> list[dict[str, Any]]:
    """One readable line per ledger entry, oldest first, with who, when and where."""
    lines = []
    for entry in entries:
        body = entry.body
        lines.append(
            {
                "seq": body["seq"],
                "at": local_text(parse_utc_text(body["at"]), time_zone),
                "who": f"{body['actor']['name']} ({body['actor']['username']})",
                "terminal": body.get("terminal") or "",
                "kind": body["kind"],
                "text": _entry_text(batch, body),
            }
        )
    return lines


def _entry_text(batch: Batch, body: Mapping[str, Any]) -> str:
    phase_kind = phases.for_entry(body["kind"])
    if phase_kind is not None:
        return phase_kind.entry_text(batch, body["kind"], body["payload"])
    if body["kind"] in AFTER_RELEASE_WORDS or body["kind"] not in _LEDGER_KINDS:
        return after_release_text(body)  # read by its kind's words, never dropped
    kind = EntryKind(body["kind"])
    p = body["payload"]
    if kind in BEDSIDE_ENTRY_KINDS:  # after release, at the clinic
        return bedside_words(kind, p)
    if kind is EntryKind.BATCH_CREATED:
        coi = ", ".join(
            f"{k} {v if not isinstance(v, dict) else v['din']}"
            for k, v in p["chain_of_identity"].items()
        )
        return (
            f"created batch {p['number']} from {p['recipe']['code']} v{p['recipe']['version']} "
            f"(recipe content {p['recipe']['content_hash'][:12]}…) for {coi}"
        )
    if kind is EntryKind.PHASE_STARTED:
        return f"started {phase_name(batch, p['phase'])}"
    if kind is EntryKind.SCAN_REFUSED:
        return (
            f"scan of '{p['scanned']}' for {p['for']} refused in {phase_name(batch, p['phase'])}: "
            f"{p['reason']}"
        )
    if kind is EntryKind.DEVIATION_RAISED:
        category = DEVIATION_CATEGORY_TITLES.get(p["category"], p["category"])  # type: ignore[call-overload]
        return f"deviation {p['deviation']} raised ({category.lower()}): {p['description']}"
    if kind is EntryKind.DEVIATION_COMMENTED:
        return f"commented on deviation {p['deviation']}: {p['comment']}"
    if kind is EntryKind.BATCH_HELD:
        return f"put the batch on hold: {p['reason']}"
    if kind is EntryKind.BATCH_RESUMED:
        return f"resumed the batch: {p['reason']}"
    record = p["record"]
    m = p["manifestation"]
    words = ACTION_WORDS.get(record["action"], record["action"])
    subject = ""
    if record.get("phase"):
        subject = f" {phase_name(batch, record['phase'])}"
    elif record.get("deviation"):
        subject = f" {record['deviation']}"
    reason = f"; reason: {record['reason']}" if record.get("reason") else ""
    host = p.get("in_session_of")
    witness = f" {witness_words(host)}" if host else ""
    return (
        f"e-signature — {words}{subject}{reason} — {m['printed_name']} ({m['username']}){witness}, "
        f"meaning '{Meaning(m['meaning']).value}', bound to record hash {m['record_hash'][:12]}…"
    )


# The ledger kinds :func:`_entry_text` words itself (besides the phase kinds' and signatures).
_LEDGER_KINDS = frozenset(
    {
        EntryKind.BATCH_CREATED,
        EntryKind.PHASE_STARTED,
        EntryKind.SCAN_REFUSED,
        EntryKind.DEVIATION_RAISED,
        EntryKind.DEVIATION_COMMENTED,
        EntryKind.BATCH_HELD,
        EntryKind.BATCH_RESUMED,
        EntryKind.SIGNATURE,
    }
)

# --- after the release decision -----------------------------------------------------------------
# What is appended after QA's decision, in either chain, is read by its kind: a few words per
# kind (what ``mes verify`` says was added; the printed line's lead, then every payload field).
# A kind not in the table is printed by its name and its whole payload: never left out.


AFTER_RELEASE_WORDS: Mapping[str, str] = {
    "result_recorded": "result {result} recorded",
    "physician_notified": "treating physician's notification recorded",
    "batch_certified_final": "final certification",
    "custody_transferred": "custody transferred",
    "logger_imported": "temperature logger file imported",
    "bedside_checked": "identity checked at the bedside",
    "bedside_mismatch": "identity MISMATCH at the bedside",
    "infusion_started": "infusion started",
    "infusion_ended": "infusion ended",
    "lookback_disposition": "look-back disposition",
}
# Payload fields the full line does not repeat: the signature is written out on its own, and
# a signed record's content is what the line already says.
_NOT_REPEATED = frozenset({"manifestation", "record"})


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "—" if value is None else str(value)


def after_release_summary(body: Mapping[str, Any]) -> str:
    """An entry in a few words ('result sterility_final recorded', 'final certification').

    The words of the entry's kind (:data:`AFTER_RELEASE_WORDS`); any other kind by its name.
    """
    kind = str(body["kind"])
    words = AFTER_RELEASE_WORDS.get(kind)
    payload = body.get("payload") or {}
    if words is None:
        signed = payload.get("record") if isinstance(payload.get("record"), Mapping) else {}
        action = f" ({signed['action']})" if signed.get("action") else ""
        return kind.replace("_", " ") + action  # a signature by the action it signed
    try:
        return words.format_map({k: _plain(v) for k, v in payload.items()})
    except (KeyError, ValueError):
        return kind.replace("_", " ")


# The kinds whose whole entry the after-release module words itself (one rule in one place).
_WORDED_BY_KIND = {
    "result_recorded": result_words,
    "physician_notified": notification_words,
    "custody_transferred": transfer_in_words,  # its words name both sides' signatures
}


def after_release_text(body: Mapping[str, Any]) -> str:
    """The whole entry in words: what (its kind's words and every field) and its signature.

    A result and a physician's notification read as :mod:`mes.core.after_release` words them;
    every other kind by its words with each payload field named; then the e-signature's
    manifestation when the entry carries one.
    """
    payload: Mapping[str, Any] = body.get("payload") or {}
    worded = _WORDED_BY_KIND.get(str(body["kind"]))
    try:
        what = worded(payload) if worded is not None else ""
    except (KeyError, TypeError):
        what = ""  # not the payload its words expect: every field named instead
    if not what:
        details = "; ".join(
            f"{name.replace('_', ' ')}: {_plain(value)}"
            for name, value in payload.items()
            if name not in _NOT_REPEATED
        )
        what = after_release_summary(body) + (f" — {details}" if details else "")
    m = payload.get("manifestation")
    signed = (
        f" — e-signature of {m.get('printed_name')} ({m.get('username')}), meaning "
        f"'{m.get('meaning')}', bound to record hash {str(m.get('record_hash'))[:12]}…"
        if isinstance(m, Mapping)
        else ""
    )
    return f"{what}{signed}"


@dataclass(frozen=True)
class AfterReleaseLine:
    """One entry appended after the release decision: where (chain), who, when and what."""

    chain: str  # "batch" (the spoke's ledger) or "review" (the hub's review chain)
    seq: int
    at_utc: str
    at_text: str
    who: str
    terminal: str
    site: str
    kind: str
    summary: str  # :func:`after_release_summary`
    text: str  # :func:`after_release_text`

    @property
    def line(self) -> str:
        """As the record prints it: the chain and entry, time, who (and where), what."""
        chain = "Spoke ledger" if self.chain == "batch" else "Hub review chain"
        where = f" at {self.terminal}" if self.terminal else ""
        return (
            f"{chain} {self.site} entry {self.seq}\t{self.at_text}\t{self.who}{where}: {self.text}"
        )


def _decision(review: Iterable[SealedEntry]) -> tuple[int, int] | None:
    """(review seq, ledger seq decided on) of QA's release decision, or None before it."""
    for entry in review:
        if entry.body["kind"] in ("batch_released", "batch_rejected"):
            head = entry.body["payload"]["record"]["record_head"]
            return entry.seq, int(head[0])
    return None


def after_release_lines(
    ledger: Iterable[SealedEntry], review: Iterable[SealedEntry], time_zone: str
) -> tuple[AfterReleaseLine, ...]:
    """Every entry appended after QA's release decision, from both chains, oldest first.

    After the decision: in the review chain, every entry after the decision's; in the batch
    ledger, every entry after the record the decision was made on (its ``record_head``).
    """
    review = list(review)
    decided = _decision(review)
    if decided is None:
        return ()
    review_seq, ledger_seq = decided
    added = [("batch", e) for e in ledger if e.seq > ledger_seq]
    added += [("review", e) for e in review if e.seq > review_seq]
    added.sort(key=lambda item: (parse_utc_text(item[1].body["at"]), item[0], item[1].seq))
    return tuple(
        AfterReleaseLine(
            chain=chain,
            seq=e.seq,
            at_utc=str(e.body["at"]),
            at_text=local_text(parse_utc_text(e.body["at"]), time_zone),
            who=f"{e.body['actor']['name']} ({e.body['actor']['username']})",
            terminal=e.body.get("terminal") or "",
            site=str(e.body.get("site") or ""),
            kind=str(e.body["kind"]),
            summary=after_release_summary(e.body),
            text=after_release_text(e.body),
        )
        for chain, e in added
    )


def certification_words(certification: Certification, pending: Iterable[Any]) -> str:
    """The certification level as the cover reads it, naming the results still pending."""
    if certification is Certification.PROVISIONAL:
        names = [_pending_name(r) for r in pending]
        waiting = f" — awaiting {', '.join(names)}" if names else ""
        return f"Provisional{waiting}"
    if certification is Certification.FINAL:
        return "Final"
    return certification.words


def _pending_name(result: Any) -> str:
    """A pending result by its label and ID (a recipe's entry, or any object naming them)."""
    if isinstance(result, Mapping):
        label, ident = result.get("label"), result.get("id")
    else:
        label, ident = getattr(result, "label", None), getattr(result, "id", None)
    if label or ident:
        return f"{label} ({ident})" if label and ident and label != ident else str(label or ident)
    return str(result)


@dataclass(frozen=True)
class AuditLine:
    """One entry of an audit trail in words: of the batch's ledger or of the hub's review."""

    seq: int
    at_text: str
    who: str
    terminal: str
    kind: str
    text: str
    chain: str  # "batch" (the spoke's ledger) or "review" (the hub's QA entries)

    @property
    def line(self) -> str:
        """The line as the record prints it: number, time, who (and where) and what, tabbed."""
        where = f" at {self.terminal}" if self.terminal else ""
        return f"{self.seq}\t{self.at_text}\t{self.who}{where}: {self.text}"


def batch_audit_lines(
    batch: Batch, entries: Iterable[SealedEntry], time_zone: str
) -> list[AuditLine]:
    """The batch ledger as audit-trail lines (chain "batch"), oldest first."""
    return [
        AuditLine(
            seq=line["seq"],
            at_text=line["at"],
            who=line["who"],
            terminal=line["terminal"],
            kind=line["kind"],
            text=line["text"],
            chain="batch",
        )
        for line in entries_in_words(batch, entries, time_zone)
    ]


# --- the printable record -----------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureLine:
    """A signature's manifestation (11.50): printed name, user ID, local time with zone, meaning."""

    printed_name: str
    user_id: str
    at_text: str
    meaning: str
    terminal: str
    site: str
    record_hash: str
    text: str  # as :func:`manifestation_text` writes it
    witness: str = ""  # given in place at another user's session: :func:`witness_words`

    @classmethod
    def of(
        cls,
        signature: Mapping[str, Any],
        time_zone: str,
        hosts: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> SignatureLine:
        """The manifestation dict of a signature (``Manifestation.as_dict()``) in words.

        ``hosts``: :func:`witness_hosts` of the batch's ledger, to say which signatures a
        witness gave at another user's session.
        """
        host = (hosts or {}).get(signature.get("seq", -1))
        return cls(
            printed_name=signature["printed_name"],
            user_id=signature["username"],
            at_text=local_at(signature["at"], time_zone),
            meaning=Meaning(signature["meaning"]).value.capitalize(),
            terminal=signature.get("terminal") or "",
            site=signature.get("site") or "",
            record_hash=signature.get("record_hash") or "",
            text=manifestation_text(signature, time_zone),
            witness=witness_words(host) if host else "",
        )


@dataclass(frozen=True)
class PhaseSection:
    """One phase as executed."""

    number: int
    id: str
    name: str
    status_title: str
    instructions: str  # the recipe's CommonMark, whole (the record renders it, never cuts it)
    performed: str
    verified: str
    parts: tuple[Printed, ...]  # each phase kind's lines, in the order of the kinds
    refused_scans: int
    deviations: tuple[str, ...]
    signatures: tuple[SignatureLine, ...]

    def lines_of(self, *kinds: str) -> tuple[Any, ...]:
        """The lines of the phase kinds ``kinds`` (by their recipe key), in order."""
        return tuple(line for part in self.parts if part.kind in kinds for line in part.lines)

    @property
    def values(self) -> tuple[ValueLine, ...]:
        """The values entered and calculated."""
        return self.lines_of("inputs", "calculations")

    @property
    def materials(self) -> tuple[MaterialLine, ...]:
        """The lots used."""
        return self.lines_of("materials")

    @property
    def equipment(self) -> tuple[EquipmentLine, ...]:
        """The instruments used."""
        return self.lines_of("equipment")

    @property
    def identity(self) -> tuple[IdentityLine, ...]:
        """The labels scanned against the chain of identity."""
        return self.lines_of("identity_checks")


@dataclass(frozen=True)
class OperationSection:
    """An operation and its phases, in recipe order."""

    id: str
    name: str
    ordering: str
    phases: tuple[PhaseSection, ...]


@dataclass(frozen=True)
class UnitSection:
    """A unit procedure and its operations, in recipe order."""

    id: str
    name: str
    operations: tuple[OperationSection, ...]


@dataclass(frozen=True)
class DeviationSection:
    """A deviation with its workflow: raised and commented at the spoke, assessed and closed by QA."""

    id: str
    category: str
    phase: str
    description: str
    raised: str
    comment: str
    status: str
    acknowledgement: SignatureLine | None
    assessment: tuple[tuple[str, str], ...]  # (title, text) of QA's assessment
    assessed: str
    history: tuple[str, ...]  # each assessment's changes, in words
    closed: str
    closure: SignatureLine | None
    # a temperature excursion: its logger import (with the compact curve the record draws)
    curve: Mapping[str, Any] | None = None
    curve_caption: str = ""

    @property
    def title(self) -> str:
        """The deviation's heading in the record: its number, category and status."""
        return f"{self.id} — {self.category} — {self.status}"


@dataclass(frozen=True)
class ReviewedLine:
    """An exception QA marked reviewed."""

    key: str
    title: str
    note: str
    signature: SignatureLine


@dataclass(frozen=True)
class Release:
    """QA's disposition of the batch (EU GMP Annex 16)."""

    decision: str  # Released | Rejected
    by: str
    at_text: str
    reason: str
    signature: SignatureLine | None


@dataclass(frozen=True)
class Cover:
    """What the first page shows: the batch, its recipe, its patient's identity, its disposition."""

    product: str
    product_code: str
    batch_number: str
    batch_id: str
    site: str
    site_name: str
    recipe_code: str
    recipe_title: str
    recipe_version: int
    recipe_content_hash: str
    chain_of_identity: tuple[tuple[str, str], ...]  # (label, value as people read it)
    identity_code: str  # what the cover's QR code holds: batch number and chain of identity
    status: str
    status_reason: str
    created: str
    started: str
    finished: str
    batch_signatures: tuple[SignatureLine, ...]  # started, complete, aborted
    release: Release | None
    certification: str = ""  # :func:`certification_words`: provisional (awaiting …) or final


@dataclass(frozen=True)
class BatchRecord:
    """The executed batch record, ready to print."""

    cover: Cover
    units: tuple[UnitSection, ...]
    deviations: tuple[DeviationSection, ...]
    reviewed: tuple[ReviewedLine, ...]
    audit: tuple[AuditLine, ...]
    record_hash: str  # SHA-256 of the canonical JSON ledger attached to the printed record
    time_zone: str
    generated_at: str  # local time of printing, with zone
    generated_utc: datetime  # the same instant (the PDF's creation date)
    after_release: tuple[AfterReleaseLine, ...] = ()  # entries after QA's decision, both chains

    @property
    def phase_count(self) -> int:
        """How many phases the record holds."""
        return sum(len(op.phases) for unit in self.units for op in unit.operations)


def _phase_section(
    batch: Batch,
    plan: PhasePlan,
    reasons: Mapping[int, tuple[str, int]],
    time_zone: str,
    hosts: Mapping[int, Mapping[str, Any]] | None = None,
) -> PhaseSection:
    phase = batch.state.phases[plan.id]
    status_title = PHASE_STATUS_TITLES[phase.status]
    if phase.status is PhaseStatus.PERFORMED and plan.needs_verification:
        status_title = "Performed — not verified"
    parts = tuple(
        phases.Printed(kind.key, lines)
        for kind in phases.KINDS.values()
        if (lines := kind.printed(batch, plan, phase, phases.Printing(reasons, time_zone)))
    )
    return PhaseSection(
        number=plan.position + 1,
        id=plan.id,
        name=plan.name,
        status_title=status_title,
        instructions=str(plan.spec.get("instructions") or "").strip(),
        performed=f"{who_text(phase.performed_by)}, {local_at(phase.performed_at, time_zone)}"
        if phase.performed_by
        else "",
        verified=f"{who_text(phase.verified_by)}, {local_at(phase.verified_at, time_zone)}"
        if phase.verified_by
        else "",
        parts=parts,
        refused_scans=phase.refused_scans,
        deviations=tuple(d.id for d in batch.state.deviations.values() if d.phase == plan.id),
        signatures=tuple(SignatureLine.of(s, time_zone, hosts) for s in phase.signatures),
    )


def _units(
    batch: Batch,
    reasons: Mapping[int, tuple[str, int]],
    time_zone: str,
    hosts: Mapping[int, Mapping[str, Any]],
) -> tuple[UnitSection, ...]:
    units: list[tuple[Mapping[str, Any], list[tuple[Mapping[str, Any], list[PhaseSection]]]]] = []
    for plan in sorted(batch.procedure.phases.values(), key=lambda p: p.position):
        if not units or units[-1][0]["id"] != plan.unit_procedure["id"]:
            units.append((plan.unit_procedure, []))
        operations = units[-1][1]
        if not operations or operations[-1][0]["id"] != plan.operation["id"]:
            operations.append((plan.operation, []))
        operations[-1][1].append(_phase_section(batch, plan, reasons, time_zone, hosts))
    return tuple(
        UnitSection(
            id=unit["id"],
            name=unit["name"],
            operations=tuple(
                OperationSection(
                    id=op["id"],
                    name=op["name"],
                    ordering=ORDERING_WORDS[op["ordering"]].running,
                    phases=tuple(phases),
                )
                for op, phases in operations
            ),
        )
        for unit, operations in units
    )


def _assessment_titles() -> Mapping[str, str]:
    from mes.core.review import ASSESSMENT_TITLES  # the QA workflow's own names for its fields

    return ASSESSMENT_TITLES


def _deviations(
    batch: Batch, review: ReviewState | None, time_zone: str, hosts: Mapping[int, Mapping[str, Any]]
) -> tuple[DeviationSection, ...]:
    sections = []
    titles = _assessment_titles() if review is not None else {}
    for d in batch.state.deviations.values():
        workflow = review.deviations.get(d.id) if review is not None else None
        assessment: list[tuple[str, str]] = []
        history: list[str] = []
        if workflow is not None:
            for name, title in titles.items():
                value = getattr(workflow, name, None)
                if value:
                    assessment.append((title, str(value)))
            for item in workflow.history:
                changed = "; ".join(
                    f"{titles.get(name, name)}: {old or '—'} → {new or '—'}"
                    for name, (old, new) in item.get("changes", {}).items()
                )
                history.append(
                    f"{local_at(item['at'], time_zone)}, {who_text(item['by'])}: {changed}"
                )
        closed = workflow is not None and workflow.closed
        logged = excursion_import(batch, d.id)
        if logged is not None and not logged.get("curve"):
            logged = None  # an entry from before the compact curve: its text is in the phase
        sections.append(
            DeviationSection(
                id=d.id,
                category=DEVIATION_CATEGORY_TITLES.get(d.category, d.category),  # type: ignore[call-overload]
                phase=batch.procedure.phases[d.phase].name if d.phase else "",
                description=d.description,
                raised=f"{who_text(d.raised_by)}, {local_at(d.raised_at, time_zone)}",
                comment=f"{d.comment} — {who_text(d.commented_by)}, {local_at(d.commented_at, time_zone)}"
                if d.comment
                else "",
                status="Closed by QA" if closed else d.status.value.capitalize(),
                acknowledgement=SignatureLine.of(d.signature, time_zone, hosts)
                if d.signature
                else None,
                assessment=tuple(assessment),
                assessed=f"{who_text(workflow.assessed_by)}, {local_at(workflow.assessed_at, time_zone)}"
                if workflow is not None and workflow.assessed_by
                else "",
                history=tuple(history),
                closed=f"{who_text(workflow.closed_by)}, {local_at(workflow.closed_at, time_zone)}"
                if closed and workflow is not None
                else "",
                closure=SignatureLine.of(workflow.signature, time_zone)
                if closed and workflow is not None and workflow.signature
                else None,
                curve=logged,
                curve_caption=curve_caption(logged) if logged is not None else "",
            )
        )
    return tuple(sections)


def _correction_reasons(ledger: Iterable[SealedEntry]) -> dict[int, tuple[str, int]]:
    """Entry seq → (reason, seq corrected), for every entry that corrects another."""
    reasons = {}
    for entry in ledger:
        payload = entry.body.get("payload") or {}
        if entry.body["kind"] in (EntryKind.VALUE_CORRECTED, EntryKind.CALCULATED) and payload.get(
            "corrects"
        ):
            reasons[entry.seq] = (str(payload.get("reason") or ""), int(payload["corrects"]))
    return reasons


def identity_code(batch: Batch) -> str:
    """What the cover's QR code holds: the batch number and every chain-of-identity identifier."""
    parts = [f"BATCH:{batch.state.number}"]
    for spec in batch.procedure.chain_of_identity:
        value = batch.state.chain_of_identity.get(spec["id"])
        if value is not None:
            text = value["din"] if isinstance(value, Mapping) and "din" in value else str(value)
            parts.append(f"{spec['id'].upper()}:{text}")
    return "|".join(parts)


def build_record(
    batch: Batch,
    review: ReviewState | None,
    *,
    time_zone: str,
    site_name: str,
    audit: Sequence[AuditLine],
    record_hash: str,
    generated_at: datetime,
    ledger: Iterable[SealedEntry] = (),
    review_entries: Iterable[SealedEntry] = (),
) -> BatchRecord:
    """The executed batch record of ``batch`` as it is now, in words.

    ``ledger`` is the batch's own ledger (for the reasons of corrections, kept only in the
    correcting entries) and ``review_entries`` the hub's review chain (for what was appended
    after the decision and the certification level); ``audit`` the whole audit trail in words
    (batch and review chains); ``record_hash`` the SHA-256 of the canonical JSON the printed record carries. Every time is
    shown in ``time_zone`` with its abbreviation (11.50: date and time of signing).
    """
    state = batch.state
    compiled = batch.procedure.compiled
    ledger = list(ledger)
    review_entries = list(review_entries)
    reasons = _correction_reasons(ledger)
    level = after_release_state(
        batch.procedure, [e.body for e in ledger], [e.body for e in review_entries]
    )
    hosts = witness_hosts(ledger)
    release = None
    if review is not None and review.decision is not None:
        release = Release(
            decision=str(review.decision.value).capitalize(),
            by=who_text(review.decided_by),
            at_text=local_at(review.decided_at, time_zone),
            reason=review.reason or "",
            signature=SignatureLine.of(review.decision_signature, time_zone)
            if review.decision_signature
            else None,
        )
    recipe = state.recipe
    cover = Cover(
        product=compiled["product"]["name"],
        product_code=compiled["product"].get("code", ""),
        batch_number=state.number,
        batch_id=state.id,
        site=state.site,
        site_name=site_name,
        recipe_code=batch.procedure.recipe_code,
        recipe_title=compiled.get("title", ""),
        recipe_version=batch.procedure.version,
        recipe_content_hash=recipe.get("content_hash", ""),
        chain_of_identity=tuple(
            (spec["label"], identity_text(state.chain_of_identity[spec["id"]]))
            for spec in batch.procedure.chain_of_identity
            if spec["id"] in state.chain_of_identity
        ),
        identity_code=identity_code(batch),
        status=BATCH_STATUS_TITLES[state.status],
        status_reason=state.status_reason or "",
        created=f"{who_text(state.created_by)}, {local_at(state.created_at, time_zone)}",
        started=local_at(state.started_at, time_zone),
        finished=local_at(state.completed_at, time_zone),
        batch_signatures=tuple(SignatureLine.of(s, time_zone, hosts) for s in state.signatures),
        release=release,
        certification=certification_words(level.certification, level.pending)
        if release is not None and level.certification is not Certification.NOT_RELEASED
        else "",  # the review chain read for the level (not given: no level shown)
    )
    reviewed = ()
    if review is not None:
        reviewed = tuple(
            ReviewedLine(
                key=item.key,
                title=item.title,
                note=item.note or "",
                signature=SignatureLine.of(item.signature, time_zone),
            )
            for item in review.reviewed.values()
        )
    return BatchRecord(
        cover=cover,
        units=_units(batch, reasons, time_zone, hosts),
        deviations=_deviations(batch, review, time_zone, hosts),
        reviewed=reviewed,
        audit=tuple(audit),
        record_hash=record_hash,
        time_zone=time_zone,
        generated_at=local_text(generated_at, time_zone),
        generated_utc=as_utc(generated_at),
        after_release=after_release_lines(ledger, review_entries, time_zone),
    )
