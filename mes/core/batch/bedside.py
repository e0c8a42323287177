"""After release, at the clinic: the bedside identity check and the infusion.

The product goes to one patient only. At the bedside a clinician scans the patient's wristband
(the patient identifier the batch was made for) and the product bag's label (its ISBT 128 DIN
with flags and check character, and the chain-of-identity code); each scan is compared with
the batch's chain of identity as recorded at its start (:func:`mes.core.identity.scan_matches`).

* A match is recorded signed (badge + PIN; 21 CFR 11.50, 11.200): ``bedside_checked``. It
  starts the infusion timer the recipe declares (procedure ``bedside: {timer: …}``: from the
  thaw, the fill or the check; the infusion must start within ``max_minutes``).
* A mismatch is a hard stop: ``bedside_mismatch`` and a deviation (category identity) are
  appended together; the infusion cannot start until a later check matches. The chain of
  identity is closed by the LAST identity check.
* The infusion's start and end are recorded signed (``infusion_started``,
  ``infusion_ended``); a start after the timer's maximum raises a timer deviation.

These are batch actions after completion (rows of :data:`~mes.core.batch.actions.BATCH_ACTIONS`
allowed in status complete), allowed only while QA's release at the hub — provisional or
final, synced back in the review chain — stands
(:func:`mes.core.after_release.check_may_be_infused`).
Each signed entry carries its manifestation bound to its record's hash (its own signature).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mes.core.after_release import check_may_be_infused
from mes.core.audit import Actor
from mes.core.batch.aggregate import Aggregate
from mes.core.batch.machines import (
    BATCH_STATUS_TITLES,
    Action,
    BatchStatus,
    DeviationCategory,
    EntryKind,
    format_duration,
)
from mes.core.batch.plan import Procedure
from mes.core.clock import as_utc, parse_utc_text, utc_text
from mes.core.errors import BedsideMismatch, InvalidInput, NotFound, NotReleasedForInfusion
from mes.core.esign import Manifestation
from mes.core.identity import identity_text, parse_din, scan_matches
from mes.core.ledger import SealedEntry
from mes.core.text import one_line

if TYPE_CHECKING:
    from mes.core.batch.actions import Ask
    from mes.core.batch.state import Operator

BEDSIDE_RECORD_TYPE = "batch-bedside"
TIMER_STARTS = ("thaw", "fill", "check")
_PATIENT = "patient_id"
_COI = "coi_id"


@dataclass(frozen=True)
class BedsideScan:
    """One thing scanned at the bedside: its form field, its words, the identifier it must equal."""

    field: str  # wristband | bag_din | bag_coi
    label: str
    identifier: str  # the chain-of-identity id of the batch it is compared with
    kind: str  # the identifier's kind (isbt128_din, identifier, date)


def bedside_scans(procedure: Procedure) -> list[BedsideScan]:
    """What the clinician scans, in the order they scan it: the bag's label, then the wristband.

    As the recipe's ``bedside:`` names them (``bag:`` identifiers, ``wristband:`` one), else:
    on the bag its DIN (the first ISBT 128 DIN identifier) and its chain-of-identity code
    (``coi_id``); on the wristband the patient identifier (``patient_id``). The bag's first DIN
    is the form field ``bag_din``, its first other identifier ``bag_coi`` (the page's first
    scan finds the product by either), any more ``bag_<id>``.
    """
    by_id = {spec["id"]: spec for spec in procedure.chain_of_identity}
    declared = procedure.compiled.get("bedside") or {}
    bag = list(declared.get("bag") or ())
    if not bag:
        din = next(
            (s["id"] for s in procedure.chain_of_identity if s["kind"] == "isbt128_din"), None
        )
        bag = [i for i in (din, _COI) if i is not None and i in by_id]
    wristband = declared.get("wristband") or _PATIENT
    if not bag or wristband not in by_id:
        raise NotFound(
            f"{procedure.recipe_code} v{procedure.version} does not say which identifiers the "
            "bedside check compares (on the bag, on the wristband).",
            what_to_do="Check the product against its paper label and call the manufacturing site.",
        )
    scans: list[BedsideScan] = []
    for ident in bag:
        spec = by_id[ident]
        taken = {s.field for s in scans}
        main = "bag_din" if spec["kind"] == "isbt128_din" else "bag_coi"
        field_ = main if main not in taken else f"bag_{ident}"
        scans.append(BedsideScan(field_, f"{spec['label']} on the bag label", ident, spec["kind"]))
    spec = by_id[wristband]
    scans.append(
        BedsideScan("wristband", f"{spec['label']} on the wristband", wristband, spec["kind"])
    )
    return scans


def infusion_timer(procedure: Procedure) -> dict[str, Any] | None:
    """The infusion timer the recipe declares (compiled ``bedside.timer``), or None."""
    bedside = procedure.compiled.get("bedside") or {}
    return bedside.get("timer")


# --- the guards of the table (BATCH_ACTIONS) ---------------------------------------------------


def released_for_infusion(batch: Bedside, ask: Ask) -> None:
    """The batch is complete and QA released it at the hub (provisional or final)."""
    number = batch.state.number
    if batch.state.status is not BatchStatus.COMPLETE:
        raise NotReleasedForInfusion(
            f"Batch {number} is {BATCH_STATUS_TITLES[batch.state.status].lower()}, not "
            "complete and released: its product may not be infused.",
            what_to_do="Do not infuse. Keep the bag and call the manufacturing site.",
        )
    check_may_be_infused(batch.after_release(), number)


def checkable(batch: Bedside, ask: Ask) -> None:
    """A product is checked at the bedside until its infusion starts."""
    released_for_infusion(batch, ask)
    if batch.state.bedside.infusion_started_at is not None:
        raise InvalidInput(
            f"The infusion of batch {batch.state.number} started at "
            f"{batch.state.bedside.infusion_started_at}: the identity check is closed.",
            what_to_do="Record the end of the infusion.",
        )


def infusion_startable(batch: Bedside, ask: Ask) -> None:
    """The infusion starts after an identity check that matched, the last one, once."""
    checkable(batch, ask)
    last = batch.state.bedside.last_check
    if last is None or not last["matched"]:
        raise BedsideMismatch(
            f"The product of batch {batch.state.number} has "
            + ("no bedside identity check" if last is None else "a mismatch as its last check")
            + ": the infusion cannot start.",
            what_to_do="Scan the patient's wristband and the bag's label first.",
        )


def infusion_endable(batch: Bedside, ask: Ask) -> None:
    """The infusion ends once, after it started."""
    record = batch.state.bedside
    if record.infusion_started_at is None:
        raise InvalidInput(
            f"The infusion of batch {batch.state.number} has not started.",
            what_to_do="Record its start first.",
        )
    if record.infusion_ended_at is not None:
        raise InvalidInput(
            f"The infusion of batch {batch.state.number} already ended at "
            f"{record.infusion_ended_at}."
        )


# --- the aggregate's part ------------------------------------------------------------------------


class Bedside(Aggregate):
    """The bedside check and the infusion (a part of :class:`~mes.core.batch.Batch`)."""

    def compare_at_bedside(self, scanned: Mapping[str, str]) -> list[dict[str, Any]]:
        """Each bedside scan compared with the chain of identity: what was scanned, what matched.

        A DIN is read with its flags and check character (a wrong check character does not
        match); an empty scan, or one holding a control character, is refused before anything
        is compared.
        """
        coi = self.state.chain_of_identity
        compared = []
        for scan in bedside_scans(self.procedure):
            text = one_line(scanned.get(scan.field), scan.label)  # a control character: refused
            if not text:
                raise InvalidInput(f"{scan.label}: nothing was scanned.", what_to_do="Scan it.")
            if len(text) > 100:
                raise InvalidInput(f"{scan.label}: the scan is longer than 100 characters.")
            expected = coi.get(scan.identifier)
            compared.append(
                {
                    "field": scan.field,
                    "label": scan.label,
                    "scanned": text,
                    "expected": identity_text(expected),
                    "matched": expected is not None and scan_matches(scan.kind, expected, text),
                }
            )
        return compared

    def record_bedside_mismatch(
        self, compared: list[dict[str, Any]], who: Operator, at: datetime, terminal: str | None
    ) -> BedsideMismatch:
        """The hard stop: the mismatch and its deviation appended together; the refusal to show.

        The rules of the check apply first (released, role): a product that may not be checked
        is refused before anything is written. Not the physician-notification gate: a mismatch
        is not a signature, and the hard stop is recorded and alerted whatever else is pending.
        """
        from mes.core.batch.actions import Ask

        self._check(  # type: ignore[attr-defined]
            Action.CHECK_AT_BEDSIDE, Ask(who, at), unsigned=True
        )
        wrong = [c for c in compared if not c["matched"]]
        what = "; ".join(f"{c['label']} '{c['scanned']}' is not {c['expected']}" for c in wrong)
        self._append(
            EntryKind.BEDSIDE_MISMATCH,
            {"scans": compared, "mismatches": [c["field"] for c in wrong]},
            who.actor,
            at,
            terminal,
        )
        deviation = self._raise_deviation(
            DeviationCategory.IDENTITY,
            f"Bedside identity check of batch {self.state.number}: {what}. Not infused.",
            who.actor,
            at,
            terminal,
            None,
        )
        return BedsideMismatch(
            f"Do not infuse: {what}.",
            what_to_do="Keep the bag sealed, check that this is the right patient and the right "
            f"bag, and call the pharmacy and QA. Deviation {deviation} is recorded.",
            deviation=deviation,
        )

    def prepare_bedside(
        self,
        action: Action,
        who: Operator,
        at: datetime,
        *,
        compared: list[dict[str, Any]] | None = None,
        thawed_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Check every rule of a bedside action and return the record its signature binds to."""
        from mes.core.batch.actions import Ask

        self._check(action, Ask(who, at))  # type: ignore[attr-defined]
        record: dict[str, Any] = {
            "type": BEDSIDE_RECORD_TYPE,
            "action": action.value,
            "batch": self.state.id,
            "number": self.state.number,
        }
        if action is Action.CHECK_AT_BEDSIDE:
            assert compared is not None and all(c["matched"] for c in compared)
            record["scans"] = compared
            timer = self._timer_from(at, thawed_at)
            if timer is not None:
                record["timer"] = timer
        return record

    def _timer_from(self, at: datetime, thawed_at: datetime | None) -> dict[str, Any] | None:
        declared = infusion_timer(self.procedure)
        if declared is None:
            return None
        starts_at = declared["starts_at"]
        if starts_at == "check":
            since = as_utc(at)
        elif starts_at == "thaw":
            if thawed_at is None:
                raise InvalidInput(
                    "When was the thaw finished? The infusion timer starts there.",
                    what_to_do="Enter the time the bag came out of the thawer.",
                )
            since = as_utc(thawed_at)
            if since > as_utc(at) + timedelta(minutes=1):
                raise InvalidInput(
                    "The thaw cannot finish after now.", what_to_do="Enter the time it finished."
                )
        else:  # fill: the fill phase's performed signature
            phase = self.state.phases.get(declared.get("phase") or "")
            if phase is None or phase.performed_at is None:
                raise NotFound(
                    f"The fill of batch {self.state.number} is not recorded: the infusion timer "
                    "cannot start.",
                    what_to_do="Call the manufacturing site.",
                )
            since = parse_utc_text(phase.performed_at)
        deadline = since + timedelta(minutes=declared["max_minutes"])
        return {
            "label": declared["label"],
            "starts_at": starts_at,
            "from": utc_text(since),
            "max_minutes": declared["max_minutes"],
            "deadline": utc_text(deadline),
        }

    def bedside_signed(
        self,
        action: Action,
        record: Mapping[str, Any],
        manifestation: Manifestation,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> SealedEntry:
        """Append the signed entry of a bedside action; a late infusion start raises a deviation."""
        kind = {
            Action.CHECK_AT_BEDSIDE: EntryKind.BEDSIDE_CHECKED,
            Action.START_INFUSION: EntryKind.INFUSION_STARTED,
            Action.END_INFUSION: EntryKind.INFUSION_ENDED,
        }[action]
        payload = {"record": dict(record), "manifestation": manifestation.as_dict()}
        entry = self._append(kind, payload, who.actor, at, terminal)
        timer = self.state.bedside.timer
        if action is Action.START_INFUSION and timer is not None:
            late = (as_utc(at) - parse_utc_text(timer["deadline"])).total_seconds()
            if late > 0:
                self._raise_deviation(
                    DeviationCategory.TIMER,
                    f"The infusion of batch {self.state.number} started {format_duration(late)} "
                    f"after the limit: {timer['label']} ({timer['max_minutes']} min from the "
                    f"{timer['starts_at']}).",
                    who.actor,
                    at,
                    terminal,
                    None,
                )
        return entry

    # -- applying (live and replay) -----------------------------------------------------------

    def _on_bedside_checked(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        record = payload["record"]
        bedside = self.state.bedside
        bedside.checks += 1
        bedside.first_match_at = bedside.first_match_at or at
        bedside.last_check = {
            "seq": entry.seq,
            "at": at,
            "by": actor,
            "matched": True,
            "scans": record["scans"],
        }
        if record.get("timer"):
            bedside.timer = dict(record["timer"])

    def _on_bedside_mismatch(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        bedside = self.state.bedside
        bedside.checks += 1
        bedside.mismatches += 1
        bedside.last_check = {
            "seq": entry.seq,
            "at": at,
            "by": actor,
            "matched": False,
            "scans": payload["scans"],
        }

    def _on_infusion_started(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        self.state.bedside.infusion_started_at = at
        self.state.bedside.infusion_started_by = actor

    def _on_infusion_ended(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        self.state.bedside.infusion_ended_at = at
        self.state.bedside.infusion_ended_by = actor


def bedside_words(kind: str, payload: Mapping[str, Any]) -> str:
    """A bedside entry in words, for the audit trail and the printed record."""
    if kind == EntryKind.BEDSIDE_MISMATCH:
        wrong = [s for s in payload["scans"] if not s["matched"]]
        what = "; ".join(f"{s['label']} '{s['scanned']}' is not {s['expected']}" for s in wrong)
        return f"bedside identity check: MISMATCH, not infused — {what}"
    record = payload["record"]
    signer = payload["manifestation"].get("printed_name", "")
    if kind == EntryKind.BEDSIDE_CHECKED:
        scans = ", ".join(f"{s['label']} {s['scanned']}" for s in record["scans"])
        timer = record.get("timer")
        started = (
            f"; {timer['label']}: infuse by {timer['deadline']} ({timer['max_minutes']} min "
            f"from the {timer['starts_at']})"
            if timer
            else ""
        )
        return f"bedside identity check matched ({scans}), signed by {signer}{started}"
    if kind == EntryKind.INFUSION_STARTED:
        return f"infusion started, signed by {signer}"
    return f"infusion ended, signed by {signer}"


BEDSIDE_ENTRY_KINDS = frozenset(
    {
        EntryKind.BEDSIDE_CHECKED,
        EntryKind.BEDSIDE_MISMATCH,
        EntryKind.INFUSION_STARTED,
        EntryKind.INFUSION_ENDED,
    }
)


def read_din(text: str) -> str:
    """The 13 characters of a scanned DIN (its check character read; refused when wrong)."""
    return parse_din(text).din
