"""A batch's ledger as people read it: who did what, when, where, and why — in words.

Each entry becomes one line: "Olivia Operator recorded Viability = 92.0 % (within limits) in
'Count cells'". Corrections show the value before and after and the reason; signatures show
their manifestation; refused scans say what was refused and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mes.core.batch import DEVIATION_CATEGORY_TITLES, Batch, EntryKind
from mes.core.clock import local_text, parse_utc_text
from mes.core.esign import Meaning
from mes.core.ledger import SealedEntry
from mes.core.limits import STATUS_TITLES, LimitStatus
from mes.web.operator.pages import shown_value

ACTION_WORDS = {
    "start": "started the batch",
    "perform": "signed as performed",
    "verify": "signed as verified",
    "correct": "signed the correction of",
    "acknowledge": "acknowledged deviation",
    "complete": "signed the batch complete",
    "abort": "aborted the batch",
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
                "text": _text(batch, body),
            }
        )
    return lines


def _phase_name(batch: Batch, phase_id: str | None) -> str:
    if not phase_id:
        return ""
    plan = batch.procedure.phases.get(phase_id)
    return f"'{plan.name}'" if plan else phase_id


def _value_label(batch: Batch, payload: dict[str, Any]) -> tuple[str, Any]:
    plan = batch.procedure.phases.get(payload["phase"])
    spec = plan.value_spec(payload["value"]) if plan else None
    return (spec or {}).get("label", payload["value"]), spec


def _status(status: str | None) -> str:
    return f" ({STATUS_TITLES[LimitStatus(status)].lower()})" if status else ""


def _text(batch: Batch, body: dict[str, Any]) -> str:
    kind = EntryKind(body["kind"])
    p = body["payload"]
    zone = batch.time_zone
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
        return f"started {_phase_name(batch, p['phase'])}"
    if kind in (EntryKind.VALUE_RECORDED, EntryKind.CALCULATED):
        label, spec = _value_label(batch, p)
        verb = "calculated" if kind is EntryKind.CALCULATED else "recorded"
        how = f" from {p['expression']}" if kind is EntryKind.CALCULATED else ""
        return (
            f"{verb} {label} = {shown_value(p['recorded'], spec, zone)}{_status(p.get('status'))}"
            f"{how} in {_phase_name(batch, p['phase'])}"
        )
    if kind is EntryKind.VALUE_CORRECTED:
        label, spec = _value_label(batch, p)
        return (
            f"corrected {label} to {shown_value(p['recorded'], spec, zone)}"
            f"{_status(p.get('status'))} in {_phase_name(batch, p['phase'])} — corrects entry "
            f"{p['corrects']}; reason: {p['reason']}"
        )
    if kind is EntryKind.MATERIAL_USED:
        return (
            f"used lot {p['lot']} of {p['material_name']} ({p['material']}), {p['quantity']} "
            f"{p['unit']}, expiry {p['expiry']}, in {_phase_name(batch, p['phase'])}"
        )
    if kind is EntryKind.EQUIPMENT_USED:
        due = f", calibration due {p['calibration_due']}" if p.get("calibration_due") else ""
        return (
            f"used {p['equipment']} ({p['equipment_name']}){due} in "
            f"{_phase_name(batch, p['phase'])}"
        )
    if kind is EntryKind.IDENTITY_CHECKED:
        result = "matches" if p["match"] else "DOES NOT MATCH"
        return (
            f"scanned '{p['scanned']}' for {p['check']} in {_phase_name(batch, p['phase'])}: "
            f"{result} the chain of identity ({p['matches']})"
        )
    if kind is EntryKind.SCAN_REFUSED:
        return (
            f"scan of '{p['scanned']}' for {p['for']} refused in {_phase_name(batch, p['phase'])}: "
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
        subject = f" {_phase_name(batch, record['phase'])}"
    elif record.get("deviation"):
        subject = f" {record['deviation']}"
    reason = f"; reason: {record['reason']}" if record.get("reason") else ""
    return (
        f"e-signature — {words}{subject}{reason} — {m['printed_name']} ({m['username']}), "
        f"meaning '{Meaning(m['meaning']).value}', bound to record hash {m['record_hash'][:12]}…"
    )
