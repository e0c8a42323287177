"""The sync fault battery, with real processes and real HTTP (issue 5).

A hub on PostgreSQL under gunicorn with two worker processes, and spokes on SQLite served by
``mes serve``, each its own process with its own database (see ``sync_network``). Each test
breaks the link one way — a spoke killed mid-push, a hub worker killed after it committed and
before it answered, a connection dropped mid-answer, a chunk delivered twice or out of order,
one byte changed in a chunk or a bundle, a stranger's key, a revoked spoke, a replayed request,
a clock an hour off, a USB file imported twice — and then checks that every entry made at the
spoke is at the hub exactly once, that the hub's copy of every chain verifies, and that every
refusal says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sync_network import (
    WAIT_SECONDS,
    Network,
    entry_count,
    events,
    installed_codes,
    ledger_rows,
    mes,
    outbox_of,
    run_phases,
    start_batch,
    wait_for,
)
from sync_proxy import flip_byte

from mes.cli.common import command_context
from mes.core.errors import EnrollmentRefused
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry
from mes.core.sync import make_chunk, sign_request
from mes.services import ingest, spokes
from mes.services.runtime import Runtime
from mes.store.batches import entries_after
from mes.store.models import AuditEntry, InstalledRecipe
from mes.sync.client import HubClient, sync_round

pytestmark = pytest.mark.e2e

CHUNKS = "/api/v1/sync/chunks"
JOSE = "application/jose"


def entries_of(runtime: Runtime, batch: str) -> list[SealedEntry]:
    """The spoke's ledger of ``batch``, as it signed it."""
    with runtime.uow(read_only=True) as uow:
        return entries_after(uow.session, batch, 0, 100_000)


def chunk_of(runtime: Runtime, entries: list[SealedEntry]) -> str:
    """A chunk of ``entries`` signed with the spoke's own key (as 'mes sync' makes them)."""
    return make_chunk(
        entries, site=runtime.site.code, key=runtime.site.key, issued_at=datetime.now(UTC)
    )


def push(network: Network, runtime: Runtime, token: str) -> httpx.Response:
    """POST one chunk to the hub as the spoke, with a freshly signed request."""
    client = HubClient(runtime, network.hub.url or "")
    try:
        return client.request("POST", "/sync/chunks", token.encode("ascii"), JOSE)
    finally:
        client.close()


def refusal(answer: httpx.Response, status: int, code: str) -> str:
    """The refusal's reason and what to do, once its status and code are as expected."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code, body
    assert body["error"], body
    return f"{body['error']} {body['what_to_do']}"


def hub_refusals(network: Network, code: str) -> list[str]:
    """The reasons of the hub's logged refusals with ``code``."""
    return [e.reason or "" for e in events(network.hub.runtime, outcome="refused", code=code)]


def bundle_refusals(runtime: Runtime) -> list[str]:
    """The reasons of the spoke's audited bundle refusals, oldest first."""
    with runtime.uow(read_only=True) as uow:
        return [
            r or ""
            for r in uow.session.execute(
                select(AuditEntry.reason)
                .where(AuditEntry.action == "recipe bundle refused")
                .order_by(AuditEntry.seq)
            ).scalars()
        ]


# --- a process dies, a connection drops ---------------------------------------------------------


def test_a_spoke_killed_mid_push_resends_and_the_hub_keeps_each_entry_once(network):
    spoke = network.settled("SPK2")  # syncs in the background, 5 entries a chunk, via the proxy
    held = network.proxy.arm("POST", CHUNKS, "hold", skip=3)
    run = start_batch(spoke.runtime, phases=4)
    assert held.fired.wait(WAIT_SECONDS), network.proxy.log[-5:]
    at_hub = entry_count(network.hub.runtime, run.batch_id)
    acked = outbox_of(spoke.runtime, run.batch_id).acked_seq
    assert 0 < acked < at_hub  # the hub committed a chunk whose answer the spoke never got

    network.kill_spoke("SPK2")
    held.release.set()
    assert outbox_of(spoke.runtime, run.batch_id).acked_seq == acked
    assert entry_count(network.hub.runtime, run.batch_id) == at_hub
    assert entry_count(spoke.runtime, run.batch_id) > at_hub

    network.serve_spoke("SPK2")
    network.wait_synced("SPK2")
    network.assert_exactly_once("SPK2")
    resent = [
        e
        for e in events(spoke.runtime, action="push", batch_id=run.batch_id)
        if e.last_seq and e.last_seq >= at_hub and e.duplicates
    ]
    assert resent[0].duplicates == at_hub - acked  # acknowledged as held, not stored again


def test_a_hub_worker_killed_after_committing_before_answering(network):
    spoke = network.settled("SPK1")
    run = start_batch(spoke.runtime, phases=3)
    made = entry_count(spoke.runtime, run.batch_id)
    assert made > 20
    workers = set(network.hub_workers())
    marker = network.hub.path / "fault-once"
    marker.write_text("the next worker to commit a chunk dies before answering\n")

    first = mes(spoke.path, "sync", MES_SYNC_CHUNK_ENTRIES="10")
    assert first.returncode == 1, first
    assert "did not answer" in first.stderr and "Nothing was lost" in first.stderr, first.stderr
    assert not marker.exists()
    assert entry_count(network.hub.runtime, run.batch_id) == 10  # committed, never answered
    mark = outbox_of(spoke.runtime, run.batch_id)
    assert (mark.acked_seq, mark.pending) == (0, True)
    respawned = set(network.hub_workers())  # gunicorn replaced the worker that died
    assert len(workers - respawned) == 1 and len(respawned - workers) == 1

    second = mes(spoke.path, "sync", MES_SYNC_CHUNK_ENTRIES="10")
    assert second.returncode == 0, second
    assert f"{made - 10} entries stored at the hub (10 already there)" in second.stdout
    network.assert_exactly_once("SPK1")


def test_a_connection_dropped_mid_answer_is_repaired_by_the_next_round(network):
    spoke = network.settled("SPK2")
    since = max((e.id for e in events(spoke.runtime)), default=0)
    cut = network.proxy.arm("POST", CHUNKS, "cut")
    run = start_batch(spoke.runtime, phases=2)
    assert cut.fired.wait(WAIT_SECONDS)
    network.wait_synced("SPK2")
    network.assert_exactly_once("SPK2")

    assert [e.status for e in network.proxy.log if e.action == "cut"] == [200]
    later = [e for e in events(spoke.runtime) if e.id > since]
    outages = [
        e for e in later if (e.action, e.outcome, e.code) == ("round", "refused", "unreachable")
    ]
    assert len(outages) == 1, [(e.action, e.outcome, e.reason) for e in later]
    assert "did not answer" in (outages[0].reason or "")
    assert "peer closed connection without sending complete message body" in (
        outages[0].reason or ""
    )
    back = [e for e in later if e.action == "round" and e.outcome == "accepted"]
    assert back and back[0].reason == "The hub answers again." and back[0].id > outages[0].id
    resent = [
        e for e in later if e.action == "push" and e.batch_id == run.batch_id and e.duplicates
    ]
    assert resent, "the chunk whose answer was lost was sent again and acknowledged as held"
    assert resent[0].id > outages[0].id


# --- what arrives is not what was sent --------------------------------------------------------


def test_a_chunk_delivered_twice_or_out_of_order(network):
    spoke = network.settled("SPK1")
    run = start_batch(spoke.runtime, phases=2)
    entries = entries_of(spoke.runtime, run.batch_id)
    assert len(entries) > 12
    first, second, rest = (
        chunk_of(spoke.runtime, entries[:5]),
        chunk_of(spoke.runtime, entries[5:10]),
        chunk_of(spoke.runtime, entries[10:]),
    )

    # The first chunk twice at the same moment, on two connections (two workers, likely).
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda t: push(network, spoke.runtime, t), [first, first]))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert sorted((a.json()["stored"], a.json()["duplicates"]) for a in answers) == [(0, 5), (5, 0)]
    again = push(network, spoke.runtime, first).json()
    assert (again["stored"], again["duplicates"], again["last_seq"]) == (0, 5, 5)
    assert again["last_hash"] == entries[4].hash

    gap = push(network, spoke.runtime, rest)
    reason = refusal(gap, 409, "chain-gap")
    assert "holds entries up to 5" in reason and "Send the batch's entries from 6 on" in reason
    assert (gap.json()["last_seq"], gap.json()["last_hash"]) == (5, entries[4].hash)
    assert entry_count(network.hub.runtime, run.batch_id) == 5

    assert push(network, spoke.runtime, second).json()["stored"] == 5
    assert push(network, spoke.runtime, rest).json()["stored"] == len(entries) - 10
    assert push(network, spoke.runtime, second).json()["duplicates"] == 5
    assert any("holds entries up to 5" in r for r in hub_refusals(network, "chain-gap"))

    report = sync_round(spoke.runtime)  # the spoke's own round: all of it is held already
    assert (report.stored, report.duplicates, report.refused) == (0, len(entries), [])
    network.assert_exactly_once("SPK1")


def test_a_chunk_with_one_byte_changed_is_refused_and_nothing_is_stored(network):
    spoke = network.settled("SPK1")
    run = start_batch(spoke.runtime, phases=1)
    entries = entries_of(spoke.runtime, run.batch_id)
    token = chunk_of(spoke.runtime, entries)
    header, payload, _signature = token.split(".")
    flipped = flip_byte(token.encode("ascii"), len(header) + 1 + len(payload) // 2)
    reason = refusal(push(network, spoke.runtime, flipped.decode("ascii")), 422, "chunk-tampered")
    assert "signature does not verify" in reason and "Nothing was stored" in reason

    # One byte of an entry changed and the chunk signed again with the spoke's own key: the
    # chunk's signature verifies, the entry's hash and the spoke's signature of it do not.
    body = dict(entries[3].body)
    body["at"] = flip_byte(body["at"].encode("ascii"), len(body["at"]) - 2).decode("ascii")
    edited = [*entries[:3], SealedEntry(body, entries[3].hash, entries[3].signature), *entries[4:]]
    reason = refusal(
        push(network, spoke.runtime, chunk_of(spoke.runtime, edited)), 422, "chunk-tampered"
    )
    assert f"Entry {entries[3].seq} of batch {run.batch_id} does not match its hash" in reason
    assert entry_count(network.hub.runtime, run.batch_id) == 0
    logged = hub_refusals(network, "chunk-tampered")
    assert any("signature does not verify" in r for r in logged)
    assert any("does not match its hash: it was edited" in r for r in logged)

    report = sync_round(spoke.runtime)
    assert (report.stored, report.refused) == (len(entries), [])
    network.assert_exactly_once("SPK1")


def test_a_bundle_damaged_on_the_way_is_refused_and_the_intact_one_installed(network):
    spoke = network.settled("SPK2")
    before = installed_codes(spoke.runtime)
    flip = network.proxy.arm("GET", "/api/v1/sync/bundles/", "flip")
    code, bundle_hash = network.publish_new_recipe(["SPK2"])
    assert flip.fired.wait(WAIT_SECONDS)
    assert flip.target == f"/api/v1/sync/bundles/{bundle_hash}"
    refused = wait_for(
        "the spoke to log the refusal",
        lambda: [e for e in events(spoke.runtime, outcome="refused") if e.item == bundle_hash],
    )
    assert "signature does not verify" in (refused[0].reason or ""), refused[0].reason
    assert any("signature does not verify" in r for r in bundle_refusals(spoke.runtime))

    installed = wait_for("the intact bundle", lambda: code in installed_codes(spoke.runtime))
    assert installed and installed_codes(spoke.runtime) == {**before, code: bundle_hash}
    with spoke.runtime.uow(read_only=True) as uow:
        row = uow.session.execute(
            select(InstalledRecipe).where(InstalledRecipe.recipe_code == code)
        ).scalar_one()
        assert row.installed_at > refused[0].at  # the damaged bundle never was


# --- requests the hub must refuse ---------------------------------------------------------------


def signed_get(network: Network, site: str, key: SiteKey, *, at: datetime | None = None):
    """GET the bundle list as ``site``, signed with ``key``."""
    path = "/api/v1/sync/bundles"
    headers = sign_request(
        "GET",
        path,
        b"",
        site=site,
        key=key,
        at=at or datetime.now(UTC),
        nonce=secrets.token_urlsafe(24),
    )
    return httpx.get(f"{network.hub.url}{path}", headers=headers, timeout=30)


def test_requests_signed_with_a_key_the_hub_never_enrolled_are_refused(network):
    spoke = network.settled("SPK1")
    stranger = SiteKey.generate()
    reason = refusal(signed_get(network, "SPK1", stranger), 401, "unauthenticated")
    assert f"signed with key '{stranger.public.key_id}', not the key SPK1 enrolled with" in reason

    run = start_batch(spoke.runtime)
    entries = entries_of(spoke.runtime, run.batch_id)
    forged = make_chunk(entries, site="SPK1", key=stranger, issued_at=datetime.now(UTC))
    body = forged.encode("ascii")
    headers = sign_request(
        "POST", CHUNKS, body, site="SPK1", key=stranger, at=datetime.now(UTC),
        nonce=secrets.token_urlsafe(24),
    )  # fmt: skip
    headers["Content-Type"] = JOSE
    answer = httpx.post(f"{network.hub.url}{CHUNKS}", content=body, headers=headers, timeout=30)
    assert "not the key SPK1 enrolled with" in refusal(answer, 401, "unauthenticated")
    # The spoke's own request carrying a chunk signed by another key: refused as tampered.
    reason = refusal(push(network, spoke.runtime, forged), 422, "chunk-tampered")
    assert "not the key SPK1 enrolled with" in reason

    reason = refusal(signed_get(network, "SPK7", stranger), 401, "unauthenticated")
    assert "'SPK7' is not a spoke enrolled at this hub" in reason
    with network.hub.runtime.uow() as uow:
        spokes.add_spoke(uow, command_context(), "SPK8", "Added, not enrolled", "Europe/London")
    reason = refusal(signed_get(network, "SPK8", stranger), 401, "unauthenticated")
    assert "'SPK8' is not a spoke enrolled at this hub" in reason
    unsigned = httpx.get(f"{network.hub.url}/api/v1/sync/bundles", timeout=30)
    assert "The request is not signed" in refusal(unsigned, 401, "unauthenticated")

    logged = hub_refusals(network, "unauthenticated")
    assert any("not the key SPK1 enrolled with" in r for r in logged)
    assert any("'SPK8' is not a spoke enrolled" in r for r in logged)
    assert entry_count(network.hub.runtime, run.batch_id) == 0
    assert sync_round(spoke.runtime).stored == len(entries)
    network.assert_exactly_once("SPK1")


def test_a_suspended_or_revoked_spoke_is_refused_and_its_records_stay_queued(network):
    spoke = network.settled("SPK3")  # enrolled, not served: this is the one that gets revoked
    run = start_batch(spoke.runtime, phases=1)
    made = entry_count(spoke.runtime, run.batch_id)
    with network.hub.runtime.uow() as uow:
        spokes.change_spoke_status(uow, command_context(), "SPK3", "suspend", "Audit of suite C")
    report = sync_round(spoke.runtime)
    assert report.stored == 0
    assert any("SPK3 is suspended at the hub: Audit of suite C" in r for r in report.refused)
    mark = outbox_of(spoke.runtime, run.batch_id)
    assert (mark.state, mark.pending, mark.acked_seq) == ("refused", True, 0)
    assert "suspended" in (mark.refusal or "") and mark.refusal_code == "spoke-not-active"
    with network.hub.runtime.uow() as uow:
        spokes.change_spoke_status(uow, command_context(), "SPK3", "reinstate", "Audit passed")
    assert sync_round(spoke.runtime).stored == made
    network.assert_exactly_once("SPK3")
    held = sorted(ledger_rows(network.hub.runtime, site="SPK3"))

    run_phases(run, 1)
    revoked = mes(network.hub.path, "spoke", "revoke", "SPK3", "--reason", "Suite C closed")
    assert revoked.returncode == 0 and "Spoke SPK3 is now revoked." in revoked.stdout, revoked
    pushed = mes(spoke.path, "sync")
    assert pushed.returncode == 1, pushed
    assert "SPK3 is revoked at the hub: Suite C closed" in pushed.stdout, pushed.stdout
    mark = outbox_of(spoke.runtime, run.batch_id)
    assert (mark.state, mark.pending, mark.acked_seq) == ("refused", True, made)
    assert "revoked" in (mark.refusal or "") and "Suite C closed" in (mark.refusal or "")
    assert sorted(ledger_rows(network.hub.runtime, site="SPK3")) == held
    with network.hub.runtime.uow(read_only=True) as uow:
        assert ingest.verify_received(uow, run.batch_id) == made
    assert any("revoked" in r for r in hub_refusals(network, "spoke-not-active"))
    with network.hub.runtime.uow() as uow, pytest.raises(EnrollmentRefused, match="revoked"):
        spokes.issue_enrollment_code(uow, command_context(), "SPK3")


def test_a_replayed_push_is_refused_by_the_other_worker(network):
    spoke = network.settled("SPK1")
    run = start_batch(spoke.runtime, phases=1)
    entries = entries_of(spoke.runtime, run.batch_id)
    body = chunk_of(spoke.runtime, entries).encode("ascii")
    headers = sign_request(
        "POST", CHUNKS, body, site="SPK1", key=spoke.runtime.site.key, at=datetime.now(UTC),
        nonce=secrets.token_urlsafe(24),
    )  # fmt: skip
    headers["Content-Type"] = JOSE

    def send_on(worker: int, paused: int) -> httpx.Response:
        """Send the request while ``paused`` is stopped, so ``worker`` is the one to answer."""
        os.kill(paused, signal.SIGSTOP)
        try:
            with httpx.Client(timeout=30) as http:
                return http.post(f"{network.hub.url}{CHUNKS}", content=body, headers=headers)
        finally:
            os.kill(paused, signal.SIGCONT)

    one, other = network.hub_workers()
    first = send_on(one, other)
    assert first.status_code == 200 and first.json()["stored"] == len(entries), first.text
    replay = send_on(other, one)
    reason = refusal(replay, 409, "replayed")
    assert "its nonce was used" in reason
    assert entry_count(network.hub.runtime, run.batch_id) == len(entries)
    assert any("nonce was used" in r for r in hub_refusals(network, "replayed"))

    report = sync_round(spoke.runtime)
    assert (report.stored, report.duplicates) == (0, len(entries))
    network.assert_exactly_once("SPK1")


def test_a_spoke_clock_an_hour_off_is_refused_until_it_is_right(network):
    spoke = network.settled("SPK1")
    run = start_batch(spoke.runtime, phases=1)
    for offset, words in ((timedelta(hours=1), "ahead of"), (timedelta(hours=-1), "behind")):
        client = HubClient(
            spoke.runtime, network.hub.url or "", clock=lambda o=offset: datetime.now(UTC) + o
        )
        try:
            report = sync_round(spoke.runtime, client)
        finally:
            client.close()
        assert report.stored == 0
        assert any(f"s {words} the hub's clock" in r and "NTP" in r for r in report.refused)
        mark = outbox_of(spoke.runtime, run.batch_id)
        assert (mark.state, mark.pending, mark.refusal_code) == ("refused", True, "unauthenticated")
        assert f"{words} the hub's clock" in (mark.refusal or "")
    assert entry_count(network.hub.runtime, run.batch_id) == 0
    logged = hub_refusals(network, "unauthenticated")
    assert any("ahead of the hub's clock (at most 300 s" in r for r in logged)
    assert any("behind the hub's clock" in r for r in logged)

    report = sync_round(spoke.runtime)
    assert report.refused == [] and report.stored == entry_count(spoke.runtime, run.batch_id)
    network.assert_exactly_once("SPK1")


# --- air-gapped: the same USB file twice ------------------------------------------------------


def test_a_transfer_file_imported_twice_changes_nothing(network, tmp_path: Path):
    spoke = network.settled("SPK1")
    run = start_batch(spoke.runtime, phases=2)
    made = entry_count(spoke.runtime, run.batch_id)
    code, bundle_hash = network.publish_new_recipe(["SPK1"])

    stick = tmp_path / "from-spk1.mes"
    exported = mes(spoke.path, "export", "--out", str(stick))
    assert exported.returncode == 0 and f"{made} entries of 1 batches" in exported.stdout, exported
    first = mes(network.hub.path, "import", str(stick))
    assert first.returncode == 0 and f"{made} entries stored (0 already held)" in first.stdout
    held = sorted(ledger_rows(network.hub.runtime))
    second = mes(network.hub.path, "import", str(stick))
    assert second.returncode == 0 and f"0 entries stored ({made} already held)" in second.stdout
    assert sorted(ledger_rows(network.hub.runtime)) == held
    assert outbox_of(spoke.runtime, run.batch_id).acked_seq == 0  # no acknowledgement yet

    back = tmp_path / "for-spk1.mes"
    answer = mes(network.hub.path, "export", "--site", "SPK1", "--out", str(back))
    assert answer.returncode == 0, answer
    data = back.read_bytes()
    token = next(
        t
        for t in json.loads(data)["bundles"]
        if hashlib.sha256(t.encode("ascii")).hexdigest() == bundle_hash
    )
    damaged = tmp_path / "damaged.mes"
    damaged.write_bytes(flip_byte(data, data.index(token.encode("ascii")) + len(token) // 2))
    audited = bundle_refusals(spoke.runtime)
    refused = mes(spoke.path, "import", str(damaged))
    assert refused.returncode == 1
    assert "Refused: The bundle's signature does not verify" in refused.stdout, refused
    assert code not in installed_codes(spoke.runtime)
    new_refusals = bundle_refusals(spoke.runtime)[len(audited) :]
    assert len(new_refusals) == 1 and "signature does not verify" in new_refusals[0]
    # The hub's acknowledgements in the file are signed on their own and were intact.
    assert outbox_of(spoke.runtime, run.batch_id).acked_seq == made

    installed = mes(spoke.path, "import", str(back))
    assert installed.returncode == 0 and f"Installed {code} v1." in installed.stdout, installed
    assert installed_codes(spoke.runtime)[code] == bundle_hash
    again = mes(spoke.path, "import", str(back))
    assert again.returncode == 0 and "Nothing new in the file; nothing changed." in again.stdout
    network.assert_exactly_once("SPK1")
