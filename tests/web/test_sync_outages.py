"""An outage is not a refusal: only the hub's own 4xx JSON verdict parks a batch (finding 9).

On SQLite and on PostgreSQL: spoke SPK1 (its own database) has a batch waiting, and its real sync
client talks to the real hub app in-process through a transport that, for a while, answers in
its place or fails — a reverse proxy's HTML 502 page, a 500 in the hub's JSON shape (its
database connection dropped), a 500 or a 403 in some other JSON, a proxy's 404 page, a refused
connection, a timeout. None of these is the hub's verdict: the batch is not marked refused and
is offered again next round (also by the background loop, which leaves refused batches alone
for 5 minutes), the sync log says once that the hub is unreachable — whichever process noticed
— and once that it answers again, the board and the sync page say "hub unreachable since …,
retrying", and the first round after the outage delivers the batch. A 4xx verdict in the hub's
JSON shape parks the batch and the board says "refused by the hub: <reason>".
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from batch_helpers import OTHER_DIN
from recipe_driver import begin
from review_network import CLI, hub_client, spoke_app
from sqlalchemy import select
from sync_sites import net, recipe_file
from web_helpers import client_of, login, text

from mes.core.identity import mod37_2
from mes.services import outbox
from mes.store.models import SyncEvent, SyncOutbox
from mes.sync.client import RETRY_REFUSED_SECONDS, HubUnreachable, due, sync_round

CHUNKS = "/api/v1/sync/chunks"
NGINX_502 = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    b"</center><hr><center>nginx</center></body></html>"
)


def answered(status: int, content_type: str, content: bytes) -> Callable[[httpx.Request], None]:
    def fault(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, headers={"Content-Type": content_type}, content=content, request=request
        )

    return fault


def raises(error: type[httpx.HTTPError], words: str) -> Callable[[httpx.Request], None]:
    def fault(request: httpx.Request) -> httpx.Response:
        raise error(words, request=request)

    return fault


HUB_500 = (
    b'{"error": "Internal error: Something went wrong on the server; nothing was saved.", '
    b'"what_to_do": "Try again.", "code": "internal-error"}'
)
OUTAGES = {
    "proxy-502-page": (
        answered(502, "text/html", NGINX_502),
        "answered 502 Bad Gateway (text/html)",
    ),
    "hub-500-json": (
        answered(500, "application/json", HUB_500),
        "answered 500 Internal Server Error",
    ),
    "500-other-json": (
        answered(500, "application/json", b'{"message": "database unavailable"}'),
        "not the hub's own answer",
    ),
    "proxy-404-page": (answered(404, "text/html", b"<h1>Not Found</h1>"), "answered 404 Not Found"),
    "firewall-403-json": (
        answered(403, "application/json", b'{"message": "blocked by policy"}'),
        "answered 403 Forbidden (application/json), not the hub's own answer",
    ),
    "hub-shape-as-text": (
        answered(409, "text/plain", b'{"error": "x", "what_to_do": "", "code": "chain-gap"}'),
        "answered 409 Conflict (text/plain)",
    ),
    "too-many-requests": (
        answered(429, "application/json", b'{"error": "Slow down", "what_to_do": "", "code": "x"}'),
        "answered 429 Too Many Requests: Slow down",
    ),
    "connection-refused": (
        raises(httpx.ConnectError, "[Errno 111] Connection refused"),
        "did not answer (ConnectError: [Errno 111] Connection refused)",
    ),
    "timeout": (raises(httpx.ReadTimeout, "timed out"), "did not answer (ReadTimeout: timed out)"),
}


class Link:
    """The way to the hub app: passes every request, or answers with ``fault`` in its place."""

    def __init__(self, hub_app) -> None:
        self.hub = httpx.WSGITransport(app=hub_app)
        self.fault: Callable[[httpx.Request], httpx.Response | None] | None = None
        self.only: str | None = None  # fail only requests to this path

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            if self.fault is not None and self.only in (None, request.url.path):
                made = self.fault(request)
                if made is not None:
                    return made
            return self.hub.handle_request(request)

        return httpx.MockTransport(handle)


@pytest.fixture
def site(net):
    """Spoke SPK1 enrolled with the hub, BATCH-TEST installed, ready to run batches."""
    spoke = net.connected()
    with net.spoke_uow() as uow:  # the spoke knows its hub (as 'mes spoke enroll' records)
        outbox.record_enrollment(uow, CLI, "http://hub.test", "HUB", net.hub_key.public.key_id)
    return spoke


@pytest.fixture
def waiting(site, tmp_path) -> str:
    """A batch of SPK1 started and its first phases run, none of it at the hub yet."""
    run = begin(site, recipe_file(tmp_path))
    for _ in range(2):
        phase = run.next_phase()
        assert phase is not None
        run.execute(phase)
    return run.batch_id


@pytest.fixture
def link(make_app) -> Link:
    return Link(make_app("hub"))


def row(net, batch_id: str) -> SyncOutbox:
    with net.spoke_uow() as uow:
        found = uow.session.get(SyncOutbox, batch_id)
        uow.session.expunge(found)
        return found


def link_lines(net) -> list[tuple[str, str | None]]:
    """The sync log's lines about the link: (outcome, reason), oldest first."""
    with net.spoke_uow() as uow:
        return [
            (e.outcome, e.reason)
            for e in uow.session.execute(
                select(SyncEvent).where(SyncEvent.action == "round").order_by(SyncEvent.id)
            ).scalars()
        ]


def refused_lines(net) -> list[SyncEvent]:
    with net.spoke_uow() as uow:
        return list(
            uow.session.execute(
                select(SyncEvent).where(SyncEvent.outcome == "refused", SyncEvent.action != "round")
            ).scalars()
        )


def said(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def one_round(net, link: Link):
    """One round by a new client (a new 'mes sync', a restarted spoke): its report or the error."""
    client = hub_client(net, None, link.transport())
    try:
        return sync_round(client.runtime, client)
    except HubUnreachable as err:
        return err
    finally:
        client.close()


@pytest.mark.parametrize("outage", OUTAGES)
def test_an_outage_parks_nothing_is_logged_once_and_the_next_round_delivers(
    net, link, waiting, outage
):
    fault, words = OUTAGES[outage]
    link.fault = fault
    client = hub_client(net, None, link.transport())  # the background loop's client
    for first in (True, False):
        try:
            report = sync_round(client.runtime, client)
        except HubUnreachable as err:  # no answer at all: the round ends
            assert words in err.message and "did not answer" in words
        else:
            assert words in (report.outage or ""), report.outage
            assert (report.stored, report.refused, report.spoke_refused) == (0, [], False)
            assert report.bundles_refused == []
        if first:  # another process (or a restart) meets the same outage: still logged once
            report = one_round(net, link)
    mark = row(net, waiting)
    assert (mark.state, mark.pending, mark.acked_seq, mark.refusal) == ("pending", True, 0, None)
    with net.spoke_uow() as uow:
        offered = due(outbox.pending(uow), datetime.now(UTC), RETRY_REFUSED_SECONDS)
        state = outbox.batch_sync(uow, [waiting])[waiting]
    assert [b.batch_id for b in offered] == [waiting]  # the loop offers it again next round
    assert re.fullmatch(
        r"pending \(\d+ entries\): hub unreachable since [-0-9: ]+ UTC, retrying", state.text
    ), state.text
    [(outcome, reason)] = link_lines(net)
    assert outcome == "refused" and words in (reason or "")
    assert refused_lines(net) == []  # neither the batch, the bundles nor the review refused

    browser = client_of(spoke_app(net))
    assert login(browser, "olivia").status_code == 302
    page = said(text(browser.get("/sync/")))
    assert "Hub unreachable since" in page and "retrying every few seconds" in page
    assert words.split(" (")[0] in page
    assert "0 refused" in page and "Last refusal" not in page
    board = said(text(browser.get("/batches")))
    assert re.search(
        r"At the hub: pending \(\d+ entries\): hub unreachable since .+, retrying", board
    )

    link.fault = None  # the hub answers again: the next round delivers everything
    report = sync_round(client.runtime, client)
    assert report.outage is None and report.refused == [] and report.stored == mark.last_seq
    mark = row(net, waiting)
    assert (mark.state, mark.pending, mark.acked_seq) == ("synced", False, mark.last_seq)
    assert link_lines(net)[1:] == [("accepted", "The hub answers again.")]
    assert "Hub unreachable" not in said(text(browser.get("/sync/")))
    sync_round(client.runtime, client)
    assert len(link_lines(net)) == 2  # logged once, not every round


def test_the_hubs_own_4xx_verdict_parks_the_batch_and_the_board_says_why(net, link, waiting):
    reason = "Entry 3 of the batch differs from the one the hub holds."
    link.only = CHUNKS
    link.fault = answered(
        409,
        "application/json; charset=utf-8",
        (
            f'{{"error": "{reason}", "what_to_do": "Compare the two copies.", '
            '"code": "chain-conflict"}'
        ).encode(),
    )
    client = hub_client(net, None, link.transport())
    report = sync_round(client.runtime, client)
    assert report.outage is None and report.refused == [f"{reason} Compare the two copies."]
    mark = row(net, waiting)
    assert (mark.state, mark.pending, mark.refusal_code) == ("refused", True, "chain-conflict")
    with net.spoke_uow() as uow:
        assert due(outbox.pending(uow), datetime.now(UTC), RETRY_REFUSED_SECONDS) == []  # parked
        assert outbox.batch_sync(uow, [waiting])[waiting].text == (
            f"refused by the hub: {reason} Compare the two copies."
        )
        assert outbox.outage(uow) is None
    assert link_lines(net) == []
    [line] = refused_lines(net)
    assert (line.action, line.code, line.batch_id) == ("push", "chain-conflict", waiting)


def chunk_batch(request: httpx.Request) -> str | None:
    """The batch a pushed chunk carries (read from its JWS payload), or None for other requests."""
    if request.url.path != CHUNKS:
        return None
    payload = request.content.split(b".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))["batch"]


def test_a_batch_the_hub_fails_on_every_time_does_not_hold_the_others_back(
    net, site, link, waiting
):
    others = [
        site.start(din=f"{din} 00 {mod37_2(din)}", patient_id=patient).state.id
        for din, patient in (
            (OTHER_DIN, "PAT-0002"),
            ("A999926111111", "PAT-0003"),
            ("A999926222222", "PAT-0004"),
        )
    ]
    with net.spoke_uow() as uow:
        poison = outbox.pending(uow)[0].batch_id  # the batch the outbox offers first
    fails = answered(500, "application/json", HUB_500)
    link.fault = lambda request: fails(request) if chunk_batch(request) == poison else None
    client = hub_client(net, None, link.transport())
    # Two at a time: the first round sends one batch beside the failing one; in the second the
    # failing batch goes last, so the other two go first and get through.
    for _ in range(2):
        report = sync_round(client.runtime, client)
        assert report.outage and report.refused == []
    states = {b: row(net, b).state for b in (waiting, *others)}
    assert states == {b: "pending" if b == poison else "synced" for b in states}


__all__ = ["net"]  # the fixture, imported from sync_sites
