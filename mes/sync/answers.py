"""How a spoke reads what comes back from its hub: the hub's verdict, or an outage.

Only the hub decides about a spoke's records, and it says so in one form: a 4xx answer whose body
is the API's JSON error ``{"error", "what_to_do", "code"}`` (``application/json``; see
``openapi.json``). Such a **verdict** parks what it refuses (a batch the hub refused is offered
again only after a while, and a person reads why) or, when it refuses the spoke itself (401, 403),
makes the loop wait longer and longer.

Everything else is an **outage**, in which nothing was decided: no answer at all (connection
refused, dropped or timed out), any 5xx (a reverse proxy's 502 page, the hub's own 500 when its
database connection drops), a 408/425/429 "try later", and any answer that is not the hub's JSON
error (a proxy's HTML page, a firewall's 403). The records stay queued, the sync log says once
that the hub is unreachable (and once that it answers again), and the next round comes within a
two seconds (:data:`OUTAGE_WAITS`), so a record made during an outage reaches the hub seconds
after it ends. Every sync operation reads its answers here, so the rule lives in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from mes.core.errors import MesError
from mes.services import outbox
from mes.services.runtime import Runtime

# The waits between rounds while the hub is unreachable: the first retry after 0.5 s (a passing
# 502 costs half a second), then 1 s, then every 2 s however long it lasts, so a record made
# meanwhile is sent at most ~2 s (and a round) after the hub answers again.
OUTAGE_WAITS = (0.5, 1.0, 2.0)
# "Try later" statuses: never a verdict on what was sent, whatever the body says.
TRY_LATER = frozenset({408, 425, 429})
HUB_ERROR_CODE = re.compile(r"[a-z][a-z0-9-]{0,31}")
QUEUED = "Nothing was lost: records stay queued and are sent when it answers."


class HubUnreachable(MesError):
    """The hub did not answer (network down, hub stopped): nothing changed; try again later."""

    http_status = 503


class NotTheHubsAnswer(HubUnreachable):
    """An answer came, but not the hub's: a 5xx, a proxy's page, a "try later" (an outage)."""


@dataclass(frozen=True)
class Verdict:
    """The hub's own refusal: its status, stable code, words (with what to do) and JSON body."""

    status: int
    code: str
    message: str
    body: dict[str, Any]

    @property
    def refuses_spoke(self) -> bool:
        """The hub refuses the spoke itself (not enrolled, bad signature, clock, suspended)."""
        return self.status in (401, 403)


def hub_error_body(response: httpx.Response) -> dict[str, Any] | None:
    """The API's JSON error body in ``response``, or None if it is not one (whatever its status)."""
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not (
        isinstance(body, dict)
        and isinstance(body.get("error"), str)
        and body["error"].strip()
        and isinstance(body.get("what_to_do"), str)
        and isinstance(body.get("code"), str)
        and HUB_ERROR_CODE.fullmatch(body["code"])
    ):
        return None
    return body


def verdict_of(response: httpx.Response, *, what_to_do: str = QUEUED) -> Verdict:
    """The hub's verdict in an answer that is not a success; :class:`NotTheHubsAnswer` if none.

    Rule: only a 4xx (other than 408, 425, 429) with the hub's JSON error body is a verdict;
    any other answer is an outage, retried within seconds and never held against a record.
    """
    status = response.status_code
    body = hub_error_body(response)
    if body is not None and 400 <= status < 500 and status not in TRY_LATER:
        message = body["error"].strip()
        if body["what_to_do"].strip():
            message = f"{message} {body['what_to_do'].strip()}"
        return Verdict(status, body["code"], message, body)
    raise NotTheHubsAnswer(outage_words(response, body), what_to_do=what_to_do)


def outage_words(response: httpx.Response, body: dict[str, Any] | None) -> str:
    """Why an answer is an outage, in one sentence (no part of a page that came back)."""
    try:
        url = response.request.url
        where = f" at {url.scheme}://{url.netloc.decode('ascii', 'replace')}"
    except RuntimeError:  # a response made without a request (tests)
        where = ""
    answered = f"The hub{where} answered {response.status_code} {response.reason_phrase}".rstrip()
    if body is not None:
        return f"{answered}: {body['error'].strip()[:300]}"
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip()[:60]
    return (
        f"{answered} ({kind or 'no content type'}), not the hub's own answer: the hub or "
        "something on the way to it is failing."
    )


def outage_wait(outages_in_a_row: int) -> float:
    """Seconds to the next round after this many rounds in a row met an outage (0.5, 1, then 2)."""
    return OUTAGE_WAITS[min(max(outages_in_a_row, 1), len(OUTAGE_WAITS)) - 1]


@dataclass
class LinkState:
    """What this process knows of the link: the outage in progress, learned once from the log.

    The sync log says when the hub became unreachable and when it answered again, once each,
    however many rounds the outage lasts and whichever process (or restart) noticed it first.
    """

    known: bool = False
    outage: outbox.Outage | None = field(default=None)

    def down(self, runtime: Runtime, at: datetime, reason: str) -> None:
        """The hub did not give its answer this round: log it, if this outage is not logged yet."""
        if self.known and self.outage is not None:
            return
        with runtime.uow() as uow:
            self.outage = outbox.hub_unreachable(uow, at, reason)
        self.known = True

    def up(self, runtime: Runtime, at: datetime) -> None:
        """The hub answered every request of a round: log that it answers again, if it did not."""
        if self.known and self.outage is None:
            return
        with runtime.uow() as uow:
            outbox.hub_answers(uow, at)
        self.known, self.outage = True, None


__all__ = [
    "OUTAGE_WAITS",
    "HubUnreachable",
    "LinkState",
    "NotTheHubsAnswer",
    "Verdict",
    "hub_error_body",
    "outage_wait",
    "verdict_of",
]
