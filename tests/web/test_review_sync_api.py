"""QA's review travels back to the spoke: ``POST /api/v1/sync/reviews`` and the client's pull.

On SQLite and on PostgreSQL (the hub on the test's database, spoke SPK1 on a twin): a batch run
at the spoke is reviewed and released at the hub through the services. The hub answers a signed
request with the review entries of the calling spoke's own batches after the heads it names —
nothing of another spoke's batches, nothing unsigned, nothing for a malformed request. The
spoke's real sync client (``sync_round``, talking to the real hub app in-process) stores the
entries once, verified with its pinned hub key; a tampered or unreadable answer stores nothing
and is logged once. The hub's transfer file carries the same entries to an air-gapped spoke.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

import httpx
import pytest
from review_network import (
    CLI,
    SPOKE,
    batch_at_the_hub,
    decide,
    hub_client,
)
from sqlalchemy import select
from sync_sites import net

from mes.core.keys import SiteKey
from mes.core.review import Decision
from mes.core.sync import sign_request
from mes.services import review
from mes.store.models import BatchReview, BatchReviewEntry, SyncEvent
from mes.store.review import review_ledger
from mes.sync import transfer
from mes.sync.client import sync_round

API = "/api/v1"


@pytest.fixture
def released(net, tmp_path) -> str:
    """A batch of SPK1, released by QA at the hub."""
    batch_id = batch_at_the_hub(net, tmp_path)
    decide(net, batch_id, Decision.RELEASED)
    return batch_id


@pytest.fixture
def hub_app(make_app):
    return make_app("hub")


def signed(key: SiteKey, site: str, body: bytes) -> dict[str, str]:
    headers = sign_request(
        "POST", f"{API}/sync/reviews", body, site=site, key=key,
        at=datetime.now(UTC), nonce=secrets.token_urlsafe(24),
    )  # fmt: skip
    headers["Content-Type"] = "application/json"
    return headers


def ask(hub_app, key: SiteKey, known: dict, site: str = SPOKE, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps({"known": known}).encode()
    return hub_app.test_client().post(
        f"{API}/sync/reviews", data=body, headers=signed(key, site, body)
    )


def hub_chain(net, batch_id: str) -> list:
    with net.hub(read_only=True) as uow:
        return review_ledger(uow.session, batch_id)


def spoke_rows(net) -> list[tuple]:
    with net.spoke_uow() as uow:
        return [
            tuple(r)
            for r in uow.session.execute(
                select(BatchReviewEntry.batch_id, BatchReviewEntry.seq, BatchReviewEntry.hash)
            ).all()
        ]


def review_events(net) -> list[SyncEvent]:
    with net.spoke_uow() as uow:
        rows = list(
            uow.session.execute(
                select(SyncEvent).where(SyncEvent.action == "review").order_by(SyncEvent.id)
            ).scalars()
        )
        uow.session.expunge_all()
        return rows


# --- the API -------------------------------------------------------------------------------------


def test_a_signed_request_gets_its_own_batches_review_entries_after_the_heads_it_names(
    net, released, hub_app
):
    chain = hub_chain(net, released)
    assert len(chain) >= 2 and chain[-1].body["kind"] == "batch_released"
    whole = ask(hub_app, net.spoke_key, {released: 0})
    assert whole.status_code == 200, whole.get_data(as_text=True)
    assert whole.json == {
        "entries": [{"body": dict(e.body), "hash": e.hash, "signature": e.signature} for e in chain]
    }
    after = ask(hub_app, net.spoke_key, {released: 1})
    assert [e["body"]["seq"] for e in after.json["entries"]] == [e.seq for e in chain[1:]]
    assert ask(hub_app, net.spoke_key, {released: len(chain)}).json == {"entries": []}
    assert ask(hub_app, net.spoke_key, {}).json == {"entries": []}  # not named: nothing
    # Another enrolled spoke naming SPK1's batch gets nothing of it.
    other = SiteKey.generate()
    net.enroll("SPK2", other)
    foreign = ask(hub_app, other, {released: 0}, site="SPK2")
    assert foreign.status_code == 200 and foreign.json == {"entries": []}


def test_unsigned_or_wrongly_signed_requests_are_refused_401(net, released, hub_app):
    client = hub_app.test_client()
    body = json.dumps({"known": {released: 0}}).encode()
    unsigned = client.post(f"{API}/sync/reviews", data=body, content_type="application/json")
    assert unsigned.status_code == 401 and unsigned.json["code"] == "unauthenticated"
    stranger = ask(hub_app, SiteKey.generate(), {released: 0})  # SPK1's name, another key
    assert stranger.status_code == 401 and stranger.json["code"] == "unauthenticated"
    assert "entries" not in stranger.json


@pytest.mark.parametrize(
    "raw",
    [
        b'{"known": {',  # not JSON
        pytest.param(b'{"known":' * 100_000 + b"{}" + b"}" * 100_000, id="100000-deep"),
        b"[]",
        b"{}",
        b'{"known": []}',
        b'{"known": {}, "more": 1}',
        json.dumps({"known": {"x" * 37: 0}}).encode(),  # a batch ID longer than 36
        json.dumps({"known": {"01a2\u0000x": 0}}).encode(),  # a NUL: PostgreSQL refuses it
        json.dumps({"known": {"": 0}}).encode(),
        json.dumps({"known": {"b": -1}}).encode(),
        json.dumps({"known": {"b": True}}).encode(),
        json.dumps({"known": {"b": "3"}}).encode(),
        json.dumps({"known": {"b": 1.5}}).encode(),
        json.dumps({"known": {f"b{i}": 0 for i in range(10_001)}}).encode(),
    ],
)
def test_malformed_requests_are_refused_400_json(net, hub_app, raw):
    net.enroll()
    answer = ask(hub_app, net.spoke_key, {}, raw=raw)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    body = answer.json
    assert body["code"] == "invalid-input" and body["error"] and body["what_to_do"]
    assert "entries" not in body


# --- the spoke's client --------------------------------------------------------------------------


def test_the_client_stores_the_hubs_review_once_and_stops_asking_about_decided_batches(
    net, released, hub_app
):
    chain = hub_chain(net, released)
    client = hub_client(net, hub_app)
    with net.spoke_uow() as uow:
        assert review.awaited_reviews(uow) == {released: 0}
    first = sync_round(client.runtime, client)
    assert first.refused == [] and first.reviews_stored == len(chain)
    assert sorted(spoke_rows(net)) == sorted((released, e.seq, e.hash) for e in chain)
    with net.spoke_uow() as uow:
        row = uow.session.get(BatchReview, released)
        assert (row.decision, row.decided_by, row.last_seq) == ("released", "Quinn Hub", len(chain))
        assert review.awaited_reviews(uow) == {}  # decided: not asked about again
    second = sync_round(client.runtime, client)
    assert second.refused == [] and second.reviews_stored == 0
    assert len(spoke_rows(net)) == len(chain)
    events = review_events(net)
    assert [(e.outcome, e.batch_id, e.stored) for e in events] == [
        ("accepted", released, len(chain))
    ]


def test_review_entries_arrive_as_the_hub_adds_them(net, hub_app, tmp_path):
    batch_id = batch_at_the_hub(net, tmp_path)
    client = hub_client(net, hub_app)
    assert sync_round(client.runtime, client).reviews_stored == 0  # QA has done nothing yet
    from review_network import review_all

    review_all(net, batch_id)
    part = len(hub_chain(net, batch_id))
    assert part >= 1
    assert sync_round(client.runtime, client).reviews_stored == part
    decide(net, batch_id, Decision.REJECTED, reason="Sterility test failed")
    assert sync_round(client.runtime, client).reviews_stored == 1
    with net.spoke_uow() as uow:
        row = uow.session.get(BatchReview, batch_id)
        assert (row.decision, row.reason) == ("rejected", "Sterility test failed")


def tampering(hub_app, change) -> httpx.MockTransport:
    """The hub app behind a transport that alters the review answers on the way."""
    real = httpx.WSGITransport(app=hub_app)

    def handle(request: httpx.Request) -> httpx.Response:
        response = real.handle_request(request)
        if request.url.path != f"{API}/sync/reviews":
            return response
        response.read()
        content = change(response.json())
        return httpx.Response(
            200, content=content if isinstance(content, bytes) else json.dumps(content).encode()
        )

    return httpx.MockTransport(handle)


def test_a_tampered_review_entry_is_refused_and_nothing_of_that_batch_is_stored(
    net, released, hub_app
):
    def forge(answer):
        answer["entries"][-1]["body"]["payload"]["reason"] = "forged on the way"
        return answer

    client = hub_client(net, hub_app, tampering(hub_app, forge))
    report = sync_round(client.runtime, client)
    assert report.reviews_stored == 0
    assert spoke_rows(net) == []
    with net.spoke_uow() as uow:
        assert review.disposition_of(uow, released) is None
    events = review_events(net)
    assert [(e.outcome, e.batch_id) for e in events] == [("refused", released)]
    assert "hash" in events[0].reason.lower() or "signature" in events[0].reason.lower()
    # The same refusal again next round is not logged again (once, not every 2 s).
    assert sync_round(client.runtime, client).reviews_stored == 0
    assert [(e.outcome, e.batch_id) for e in review_events(net)] == [("refused", released)]
    # The untouched answer is then accepted in full.
    honest = hub_client(net, hub_app)
    assert sync_round(honest.runtime, honest).reviews_stored == len(hub_chain(net, released))


@pytest.mark.parametrize(
    "change",
    [
        lambda answer: b"<html>not JSON</html>",
        lambda answer: {"entries": "none"},
        lambda answer: {"entries": answer["entries"], "extra": 1},
        lambda answer: {"entries": [{**e, "hash": 7} for e in answer["entries"]]},
        lambda answer: {
            "entries": [{**e, "body": {**e["body"], "batch": "another"}} for e in answer["entries"]]
        },
    ],
    ids=["not-json", "not-a-list", "extra-field", "bad-hash", "batch-not-asked"],
)
def test_an_unreadable_answer_stores_nothing_and_is_logged_once(net, released, hub_app, change):
    client = hub_client(net, hub_app, tampering(hub_app, change))
    for _ in range(3):
        report = sync_round(client.runtime, client)
        assert report.reviews_stored == 0
        assert any("unreadable" in r for r in report.refused), report.refused
    assert spoke_rows(net) == []
    events = review_events(net)
    assert [(e.outcome, e.code) for e in events] == [("refused", "unreadable-answer")]


# --- by file (air-gapped spokes) -----------------------------------------------------------------


def test_the_hubs_transfer_file_carries_the_review_to_the_spoke_once(net, released):
    data, _bundles, _batches = transfer.export_hub(net.runtime("hub"), CLI, SPOKE)
    carried = json.loads(data)["reviews"]
    assert [e["hash"] for e in carried] == [e.hash for e in hub_chain(net, released)]
    first = transfer.import_file(net.runtime("spoke"), CLI, data)
    assert first.refused == [] and first.reviews == len(carried)
    again = transfer.import_file(net.runtime("spoke"), CLI, data)
    assert again.refused == [] and again.reviews == 0
    with net.spoke_uow() as uow:
        assert review.disposition_of(uow, released).decision == "released"
    assert len(spoke_rows(net)) == len(carried)


def test_a_transfer_file_with_an_altered_review_entry_stores_none_of_it(net, released):
    data, _bundles, _batches = transfer.export_hub(net.runtime("hub"), CLI, SPOKE)
    raw = json.loads(data)
    raw["reviews"][0]["body"]["actor"]["name"] = "Mallory"
    report = transfer.import_file(net.runtime("spoke"), CLI, json.dumps(raw).encode())
    assert report.reviews == 0
    assert any("refused" in r for r in report.refused), report.refused
    assert spoke_rows(net) == []


__all__ = ["net"]  # the fixture, imported from sync_sites
