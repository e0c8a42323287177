"""What the hub's network page shows, as plain dicts: the same rows for the page and its JSON.

The page is rendered from these rows and the script that keeps it live re-renders from the same
rows fetched as JSON, so both say the same thing in the same words. Nothing here decides a rule.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from mes.core.batch import BATCH_STATUS_TITLES, DEVIATION_CATEGORY_TITLES
from mes.core.chronology import duration
from mes.core.clock import local_text, parse_utc_text
from mes.core.critical import point_title
from mes.core.dates import local_date_text, local_date_time_text
from mes.core.network_board import (
    EXPECTED_CONTACT_WORDS,
    contact_words,
    lag_words,
    lagging,
    overdue,
    timer_words,
)
from mes.core.site import SPOKE_STATUS_WORDS
from mes.core.turnaround import (
    NETWORK,
    LegStats,
    Spread,
    Timeline,
    hours_text,
    slow_legs,
    whole_words,
)
from mes.services.network import (
    BatchSummary,
    DeviationAlert,
    NetworkBoard,
    NetworkView,
    Spoke,
    SpokeOnBoard,
    SpokeSummary,
    SyncEvent,
)
from mes.services.turnaround import RecipeTurnaround, TurnaroundView
from mes.services.turnaround_chart import turnaround_chart_svg

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
    return spoke_clock_text(summary.spoke, summary.clock_beyond_skew, skew_seconds, time_zone)


def spoke_clock_text(spoke: Spoke, beyond_skew: bool, skew_seconds: int, time_zone: str) -> str:
    """A spoke's clock in words (see :func:`clock_text`)."""
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
    if beyond_skew:
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


# --- the live board of batches in progress ---------------------------------------------------


def board_batch_row(
    summary: BatchSummary, now: datetime, time_zone: str, record_url: str | None
) -> dict[str, Any]:
    """One batch in progress: where, which, of what, where it stands, and the hub's lag."""
    recorded = parse_utc_text(summary.newest_entry_at)
    received = parse_utc_text(summary.received_at) if summary.received_at else None
    timer = parse_utc_text(summary.next_timer_at) if summary.next_timer_at else None
    return {
        "id": summary.batch_id,
        "site": summary.site,
        "number": summary.number,
        "record_url": record_url,
        "product": f"{summary.recipe_code} v{summary.recipe_version}",
        "status": summary.status,
        "status_text": BATCH_STATUS_TITLES.get(summary.status, summary.status),  # type: ignore[call-overload]
        "phase": summary.current_phase or "—",
        "timer": timer_words(timer, now),
        "timer_at": local_text(timer, time_zone) if timer else "",
        "timer_due": timer is not None and timer <= now,
        "open_deviations": summary.open_deviations,
        "newest_entry": local_text(recorded, time_zone),
        "lag": lag_words(recorded, received),
        "lag_warning": lagging(recorded, received),
        "demo": summary.demo,
    }


def board_spoke_row(
    item: SpokeOnBoard, now: datetime, time_zone: str, skew_seconds: int
) -> dict[str, Any]:
    """One spoke on the board: its batches in progress, last contact (flagged when overdue), clock."""
    spoke = item.spoke
    late = overdue(spoke.status, spoke.last_seen_at, now)
    return {
        "code": spoke.code,
        "name": spoke.name,
        "status": spoke.status,
        "status_text": SPOKE_STATUS_WORDS[spoke.status],
        "in_progress": item.in_progress,
        "last_seen_at": spoke.last_seen_at.isoformat() if spoke.last_seen_at else None,
        "last_seen": _when(spoke.last_seen_at, time_zone, "never"),
        "contact": contact_words(spoke.status, spoke.last_seen_at, now),
        "overdue": late,
        "clock": spoke_clock_text(spoke, item.clock_beyond_skew, skew_seconds, time_zone),
        "clock_warning": item.clock_beyond_skew,
    }


def demo_only_spokes(view: NetworkBoard, spokes: list[dict[str, Any]]) -> list[str]:
    """The flagged spokes that have never called yet hold batches in progress at the hub.

    A spoke's records reach the hub only when it calls: batches from one that never called were
    stored at the hub itself — the spokes ``mes demo`` makes up for its history. A batch shown
    that is not demo data says otherwise.
    """
    real = {b.site for b in view.batches if not b.demo}
    return [
        s["code"]
        for s in spokes
        if s["overdue"]
        and s["last_seen_at"] is None
        and s["in_progress"] > 0
        and s["code"] not in real
    ]


def board_page(
    view: NetworkBoard,
    time_zone: str,
    as_of: datetime,
    record_url: Callable[[str], str] | None,
) -> dict[str, Any]:
    """Everything the board shows (and its JSON): the batches, the spokes, the filter."""
    spokes = [board_spoke_row(s, as_of, time_zone, view.clock_skew_seconds) for s in view.spokes]
    return {
        "as_of": local_text(as_of, time_zone),
        "site": view.site or "",
        "product": view.product or "",
        "batches": [
            board_batch_row(b, as_of, time_zone, record_url(b.batch_id) if record_url else None)
            for b in view.batches
        ],
        "spokes": spokes,
        "overdue": [s["code"] for s in spokes if s["overdue"]],
        "demo_only": demo_only_spokes(view, spokes),
        "expected_contact": EXPECTED_CONTACT_WORDS,
    }


# --- vein-to-vein turnaround ------------------------------------------------------------------


def _figure(spread: Spread | None) -> dict[str, Any] | None:
    if spread is None:
        return None
    return {
        "n": spread.n,
        "median": hours_text(spread.median),
        "p90": hours_text(spread.p90),
        "over": spread.over_target,
    }


def _leg_column(
    leg: LegStats, slow: set[tuple[str, str, str]], recipe: RecipeTurnaround
) -> dict[str, Any]:
    """One leg (or the whole) as a column of the table: per site and network, slow ones marked."""
    cells = {site: _figure(s) for site, s in leg.by_site.items()}
    for site, cell in cells.items():
        if cell is not None:
            cell["slow"] = (site, leg.start, leg.end) in slow
    return {
        "title": "Whole vein-to-vein" if leg.whole else recipe.point_title(leg.end),
        "span": leg.title,
        "target": hours_text(leg.target) if leg.target is not None else None,
        "whole": leg.whole,
        "consecutive": leg.consecutive,
        "sites": cells,
        "network": _figure(leg.network),
    }


def _chart_in_words(recipe: RecipeTurnaround) -> list[str]:
    """The chart read out: per site and the network, each leg's median and the whole's figures."""
    stats = recipe.stats
    legs = [leg for leg in stats.legs if leg.consecutive]
    lines = []
    for site in [*stats.sites, NETWORK]:
        parts = []
        for leg in legs:
            s = leg.network if site == NETWORK else leg.by_site.get(site)
            if s is not None:
                parts.append(f"{leg.title} {hours_text(s.median)}")
        whole = stats.whole
        s = None
        if whole is not None:
            s = whole.network if site == NETWORK else whole.by_site.get(site)
        text = f"{site}: " + ("; ".join(parts) if parts else "no leg with both ends recorded")
        if s is not None:
            text += (
                f". Whole: median {hours_text(s.median)}, 90th percentile {hours_text(s.p90)} "
                f"({s.n} batch{'es' if s.n != 1 else ''})"
            )
        lines.append(text + ".")
    return lines


def _timeline_row(
    timeline: Timeline, recipe: RecipeTurnaround, time_zone: str, record_url: str | None
) -> dict[str, Any]:
    """One batch's timeline: each standard point after the first, and every point in words."""
    ordered = timeline.ordered()
    first = ordered[0][1]
    return {
        "number": timeline.number,
        "site": timeline.site,
        "record_url": record_url,
        "first": local_date_time_text(first, time_zone),
        "after": {
            name: ("+" + hours_text((at - first).total_seconds() / 3600) if at > first else "+0")
            for name, at in ordered
        },
        "points": [
            {"title": recipe.point_title(name), "at": local_text(at, time_zone)}
            for name, at in ordered
        ],
    }


def _image(svg: str) -> str:
    """An SVG as an image's data URL (``img-src 'self' data:``).

    The page's Content-Security-Policy forbids inline styles, which matplotlib's SVG uses; an
    image's own document may.
    """
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def turnaround_page(
    view: TurnaroundView, time_zone: str, record_url: Callable[[str], str] | None
) -> dict[str, Any]:
    """Everything the turnaround page shows: per recipe the chart, its words, table, timelines."""
    sections = []
    for recipe in view.recipes:
        stats = recipe.stats
        slow = {(s.site, s.leg.start, s.leg.end) for s in slow_legs(stats)}
        legs = sorted(stats.legs, key=lambda leg: not leg.consecutive)  # declared spans last
        columns = [_leg_column(leg, slow, recipe) for leg in legs]
        if stats.whole is not None:
            columns.append(_leg_column(stats.whole, slow, recipe))
        target = recipe.target
        sections.append(
            {
                "code": recipe.recipe_code,
                "version": recipe.version,
                "title": recipe.title or "",
                "batches": stats.batches,
                "demo": recipe.demo_batches,
                "sites": list(stats.sites),
                "target": (
                    hours_text(target.target_hours)
                    if target is not None and target.target_hours is not None
                    else None
                ),
                "whole": whole_words(stats),
                "slowest": list(stats.slowest),
                "chart": _image(turnaround_chart_svg(stats)) if stats.legs else None,
                "chart_words": _chart_in_words(recipe),
                "columns": columns,
                "points": [{"name": p, "title": point_title(p)} for p in stats.points],
                "timelines": [
                    _timeline_row(
                        t, recipe, time_zone, record_url(t.batch_id) if record_url else None
                    )
                    for t in recipe.timelines
                ],
            }
        )
    return {
        "since": local_date_text(view.since, time_zone),
        "until": local_date_text(view.until, time_zone),
        "recipe": view.recipe_code or "",
        "recipes": view.recipe_codes,
        "sections": sections,
        "network": NETWORK,
    }
