"""What the hub's network page shows, as plain dicts: the same rows for the page and its JSON.

The page is rendered from these rows and the script that keeps it live re-renders from the same
rows fetched as JSON, so both say the same thing in the same words. Nothing here decides a rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mes.core.batch import DEVIATION_CATEGORY_TITLES
from mes.core.chronology import duration
from mes.core.clock import local_text, parse_utc_text
from mes.core.site import SPOKE_STATUS_WORDS
from mes.services.network import DeviationAlert, NetworkView, SpokeSummary, SyncEvent

# What the hub was asked to do when it refused (the sync log's action).
REFUSED_WHAT = {
    "enroll": "Enrollment",
    "request": "Signed request",
    "ingest": "Batch records",
}


def _when(at: datetime | None, time_zone: str, never: str) -> str:
    return local_text(at, time_zone) if at is not None else never


def alert_row(alert: DeviationAlert, time_zone: str) -> dict[str, Any]:
    """One open deviation: where, which batch, phase and value, what and when."""
    return {
        "id": alert.id,
        "site": alert.site,
        "batch": alert.batch_number,
        "batch_id": alert.batch_id,
        "phase": alert.phase or "—",
        "value": alert.value or "—",
        "category": DEVIATION_CATEGORY_TITLES.get(alert.category, alert.category.replace("_", " ")),
        "description": alert.description,
        "raised_at": alert.raised_at,
        "raised": local_text(parse_utc_text(alert.raised_at), time_zone),
        "raised_by": alert.raised_by,
    }


def clock_text(summary: SpokeSummary, skew_seconds: int, time_zone: str) -> str:
    """The spoke's clock in words: how far from the hub's, when measured, warned past the skew."""
    spoke = summary.spoke
    offset = spoke.clock_offset_seconds
    if offset is None or spoke.clock_measured_at is None:
        return "not measured yet (from its next signed request)"
    if abs(offset) < 1:
        words = "in step with the hub's"
    else:
        words = f"{duration(timedelta(seconds=offset))} {'ahead of' if offset > 0 else 'behind'}"
        words += " the hub's"
    measured = local_text(spoke.clock_measured_at, time_zone)
    text = f"{words} (measured {measured})"
    if summary.clock_beyond_skew:
        text += (
            f" — beyond the {skew_seconds} s allowed: its requests are refused and its records "
            "are dated wrongly. Set its clock right (NTP)."
        )
    return text


def spoke_row(summary: SpokeSummary, time_zone: str, skew_seconds: int = 300) -> dict[str, Any]:
    """One spoke: status, batches, open deviations, when it was last heard from, its clock."""
    spoke = summary.spoke
    return {
        "code": spoke.code,
        "name": spoke.name,
        "time_zone": spoke.time_zone,
        "key_id": spoke.key_id,
        "status": spoke.status,
        "status_text": SPOKE_STATUS_WORDS[spoke.status],
        "status_reason": spoke.status_reason,
        "batches": summary.batches,
        "in_progress": summary.in_progress,
        "open_deviations": summary.open_deviations,
        "last_seen_at": spoke.last_seen_at.isoformat() if spoke.last_seen_at else None,
        "last_seen": _when(spoke.last_seen_at, time_zone, "never"),
        "last_received": _when(summary.last_received_at, time_zone, "nothing yet"),
        "clock_offset_seconds": spoke.clock_offset_seconds,
        "clock": clock_text(summary, skew_seconds, time_zone),
        "clock_warning": summary.clock_beyond_skew,
    }


def refusal_row(event: SyncEvent, time_zone: str) -> dict[str, Any]:
    """One refusal of the sync log, in words: when, from which spoke, what, and why."""
    what = REFUSED_WHAT.get(event.action, event.action.capitalize())
    if event.item:
        what += f" ({event.item})"
    what += " by transfer file" if event.via == "file" else ""
    return {
        "when": local_text(event.at, time_zone),
        "spoke": event.peer or "unknown site",
        "what": what,
        "why": event.reason or "no reason given",
        "code": event.code,
    }


def network_page(view: NetworkView, time_zone: str, as_of: datetime) -> dict[str, Any]:
    """Everything the network page shows (and its JSON): alerts, spokes, refusals, totals."""
    spokes = [spoke_row(s, time_zone, view.clock_skew_seconds) for s in view.spokes]
    return {
        "as_of": local_text(as_of, time_zone),
        "open_deviations": sum(s["open_deviations"] for s in spokes),
        "alerts": [alert_row(a, time_zone) for a in view.alerts],
        "spokes": spokes,
        "refusals": [refusal_row(e, time_zone) for e in view.refusals],
    }
