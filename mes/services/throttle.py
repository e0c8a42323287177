"""Refused anonymous attempts: counted per source, one record per burst, too many turned away.

21 CFR 11.300(d) (attempts at unauthorised use are detected and reported) without letting a
stranger fill the append-only audit trail and sync log: the rules are in
:mod:`mes.core.throttle`; this module keeps the counters in the database (``refusal_windows``),
so every worker of the hub counts the same attempts, and writes the record of each burst.

Every function works in the caller's unit of work: the count, the record of the refusal and
the refusal itself land in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mes.core import throttle as rules
from mes.core.audit import Actor, AuditEvent, EntryKind
from mes.core.errors import TooManyAttempts
from mes.core.throttle import Attempt, Window
from mes.store import throttle as store
from mes.store.audit import append_audit
from mes.store.models import RefusalWindow
from mes.store.sync import log_event
from mes.store.uow import UnitOfWork

# Closed windows summarised by one refusal at most (the rest by the next ones): a refusal's
# transaction stays short however many sources an attacker uses.
CLOSE_AT_ONCE = 50
RECORD_TYPE = "anonymous source"


def _window(row: RefusalWindow | None) -> Window | None:
    if row is None or row.refused == 0:
        return None
    return Window(row.started, row.refused, row.turned_away, dict(row.reasons or {}))


def _read(uow: UnitOfWork, attempt: Attempt, source: str, *, lock: bool) -> RefusalWindow | None:
    return store.refusal_window(uow.session, attempt.value, source, lock=lock)


def wait_needed(uow: UnitOfWork, attempt: Attempt, source: str, at: datetime) -> int | None:
    """Seconds ``source`` must wait before its next ``attempt`` is heard, or None (reads only)."""
    return rules.retry_after(attempt, _window(_read(uow, attempt, source, lock=False)), at)


def turn_away(uow: UnitOfWork, attempt: Attempt, source: str, at: datetime) -> None:
    """Count a request turned away as one too many, commit, and refuse it with HTTP 429.

    The refusal says when to try again (``TooManyAttempts.retry_after``).
    """
    uow.rollback()
    window = count_refusal(uow, attempt, source, at, rules.TURNED_AWAY, turned_away=True)
    uow.commit()
    wait = rules.retry_after(attempt, window, at) or max(1, int((window.ends - at).total_seconds()))
    message, what_to_do = rules.turned_away_message(attempt, wait)
    raise TooManyAttempts(message, retry_after=wait, what_to_do=what_to_do)


def refuse_if_too_many(uow: UnitOfWork, attempt: Attempt, source: str, at: datetime) -> None:
    """Turn ``source`` away (:func:`turn_away`) if it has been refused too often in its window."""
    if wait_needed(uow, attempt, source, at) is not None:
        turn_away(uow, attempt, source, at)


def count_refusal(
    uow: UnitOfWork,
    attempt: Attempt,
    source: str,
    at: datetime,
    reason: str,
    *,
    turned_away: bool = False,
) -> Window:
    """Count one refusal of ``attempt`` from ``source``; returns the source's window after it.

    ``window.refused == 1`` means this refusal opened the window: the caller records it in full.
    Windows that have closed meanwhile (this source's and others') are summarised first.
    """
    close_windows(uow, at)
    for _ in range(2):  # a concurrent close may delete the row between the insert and the lock
        store.open_refusal_window(uow.session, attempt.value, source, at)
        row = _read(uow, attempt, source, lock=True)
        if row is not None:
            break
    else:  # pragma: no cover - two deletions in a row between insert and lock
        raise RuntimeError("the refusal counter could not be held")
    window, closed = rules.counted(_window(row), at, reason, turned_away=turned_away)
    if closed is not None:
        _summarise(uow, attempt, source, closed, at)
    row.started = window.started
    row.refused = window.refused
    row.turned_away = window.turned_away
    row.reasons = dict(window.reasons)
    uow.flush()
    return window


def close_windows(uow: UnitOfWork, at: datetime) -> int:
    """Summarise and forget the windows closed before ``at``; returns how many were closed."""
    rows = store.windows_started_before(uow.session, at - rules.WINDOW, CLOSE_AT_ONCE)
    for row in rows:
        window = _window(row)
        if window is not None and rules.needs_summary(window):
            _summarise(uow, Attempt(row.attempt), row.source, window, at)
        store.forget_refusal_window(uow.session, row)
    uow.flush()
    return len(rows)


def _summarise(
    uow: UnitOfWork, attempt: Attempt, source: str, window: Window, at: datetime
) -> None:
    """One record of a burst: in the audit trail (login, enrollment) and the sync log (sync)."""
    text = rules.summary(attempt, source, window)
    if attempt in (Attempt.LOGIN, Attempt.ENROLLMENT):
        event = AuditEvent(
            at=at,
            actor=anonymous_actor(source),
            terminal=f"anonymous requests from {source}",
            kind=EntryKind.SECURITY,
            action=f"{rules.WORDS[attempt]} counted",
            record_type=RECORD_TYPE,
            record_id=source,
            new=_counts(window),
            reason=text,
        )
        append_audit(uow.session, uow.site, event)
    if attempt in (Attempt.ENROLLMENT, Attempt.SYNC_REQUEST):
        log_event(
            uow.session,
            at=at,
            action="enroll" if attempt is Attempt.ENROLLMENT else "request",
            outcome="refused",
            item=f"from {source}",
            code="counted",
            reason=text,
        )


def _counts(window: Window) -> dict[str, Any]:
    return {
        "refused": window.refused,
        "turned_away": window.turned_away,
        "by_reason": dict(sorted(window.reasons.items())),
        "from": window.started.isoformat(),
        "until": window.ends.isoformat(),
    }


def anonymous_actor(source: str) -> Actor:
    """Who records a refusal nobody authenticated: the system, naming the source address."""
    return Actor(user_id=None, username="system", name=f"System (requests from {source})")
