"""What the spoke's sync page shows, in words: the hub, each batch's state, and the sync log.

Nothing here decides a rule: a batch's state is the outbox's (:class:`outbox.BatchSync`), and
each line of the log says in a sentence what the sync log row records.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mes.core.batch import BATCH_STATUS_TITLES
from mes.core.clock import local_text
from mes.core.sync import SYNC_OUTCOME_WORDS
from mes.services.outbox import SyncEvent, SyncOverview

STATE_CLASSES = {"synced": "ok", "pending": "warn", "refused": "bad"}
OUTCOME_CLASSES = {"accepted": "ok", "duplicate": "ok", "refused": "bad"}


def _outage(event: SyncEvent) -> bool:
    """A line saying the hub was unreachable: no verdict of the hub's, nothing refused."""
    return event.action == "round" and event.outcome == "refused"


def _entries(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"


def event_words(event: SyncEvent, numbers: dict[str, str]) -> str:
    """One line of the sync log as a sentence."""
    batch = f"Batch {numbers.get(event.batch_id or '', event.batch_id or '?')}"
    hub = f"hub {event.peer}" if event.peer else "the hub"
    refused = event.outcome == "refused"
    why = f": {event.reason}" if event.reason else "."
    if event.action == "push":
        if refused:
            return f"{batch} was refused by {hub}{why}"
        upto = f" (up to entry {event.last_seq})" if event.last_seq else ""
        if event.outcome == "duplicate" or not event.stored:
            return f"{batch}: {hub} already held every entry sent{upto}."
        held = f"; {event.duplicates} it held already" if event.duplicates else ""
        return f"{batch}: {_entries(event.stored)} stored at {hub}{upto}{held}."
    if event.action == "install":
        if refused:
            return f"A recipe bundle from {hub} was not installed{why}"
        return f"Recipe {event.reason or event.item or ''} installed from {hub}."
    if event.action == "pull":
        return f"Could not ask {hub} for new recipe bundles{why}"
    if event.action == "enroll":
        return f"Enrollment with {hub} refused{why}" if refused else f"Enrolled with {hub}."
    if event.action == "round":
        hub = hub[0].upper() + hub[1:]
        if refused:
            return f"{hub} unreachable (retried every few seconds){why}"
        return event.reason or f"{hub} answers again."
    what = f"{event.action.capitalize()}{' ' + event.item if event.item else ''}"
    return f"{what}{why}" if event.reason else f"{what} ({event.outcome})."


def sync_page(view: SyncOverview, time_zone: str) -> dict[str, Any]:
    """The sync page's rows: the hub link, batches with their state, the log in words."""
    numbers = {b.id: b.number for b, _state in view.batches}
    batches = [
        {
            "id": b.id,
            "number": b.number,
            "recipe": f"{b.recipe_code} v{b.recipe_version}",
            "status": BATCH_STATUS_TITLES[b.status].lower(),
            "state": state.state,
            "text": state.words(time_zone),
            "css": STATE_CLASSES.get(state.state, "warn"),
            "acked": local_text(state.acked_at, time_zone) if state.acked_at else "never",
        }
        for b, state in view.batches
    ]
    counts = Counter(b["state"] for b in batches)
    contacts = [e for e in view.events if e.outcome != "refused"]
    refusals = [e for e in view.events if e.outcome == "refused" and not _outage(e)]
    outage = view.outage
    return {
        "link": view.link,
        "enrolled": local_text(view.link.enrolled_at, time_zone) if view.link else None,
        "counts": {state: counts.get(state, 0) for state in ("synced", "pending", "refused")},
        "last_success": local_text(contacts[0].at, time_zone) if contacts else None,
        "last_refusal": local_text(refusals[0].at, time_zone) if refusals else None,
        "outage": {"since": local_text(outage.since, time_zone), "reason": outage.reason}
        if outage
        else None,
        "batches": batches,
        "events": [
            {
                "when": local_text(e.at, time_zone),
                "words": event_words(e, numbers),
                "outcome": "unreachable"
                if _outage(e)
                else SYNC_OUTCOME_WORDS.get(e.outcome, e.outcome),
                "css": "warn" if _outage(e) else OUTCOME_CLASSES.get(e.outcome, "muted"),
                "via": "transfer file" if e.via == "file" else "network",
                "refused": e.outcome == "refused" and not _outage(e),
            }
            for e in view.events
        ],
        "installed": [
            {
                "recipe": f"{r.recipe_code} v{r.version}",
                "title": r.title,
                "when": local_text(r.installed_at, time_zone),
            }
            for r in view.installed
        ],
    }
