"""Deleting the newest entries of a chain is found, even with the head row rewritten too.

A database superuser (here: raw SQL after dropping the append-only triggers, on SQLite and on
PostgreSQL) deletes the newest audit entry or the batch's last ledger entry and rewrites the
head row to match. The head's signature gives the rewrite away; a superuser who instead puts
back an *older* signed head is caught by a head anchored outside the database: the hub's
checkpoint file (the hub's audit chain), the hub's signed acknowledgement kept by the spoke (a
batch's ledger), the hub's countersignature of the spoke's audit head (the spoke's audit
chain, which the hub also refuses to see go backwards). (21 CFR 11.10(a), (c), (e).)
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime

import httpx
import pytest
from batch_helpers import spoke
from integration_helpers import genuine_audit_trail
from recipe_driver import begin
from sqlalchemy import Engine, select
from sync_sites import CLI, SPOKE, net, recipe_file

from mes.core.errors import ChainBroken
from mes.services import outbox
from mes.services.audit import verify_audit_trail
from mes.services.batches import verify_batch
from mes.services.users import set_roles
from mes.store.engine import session_factory
from mes.store.models import AuditEntry, BatchEntry, SyncEvent
from mes.store.uow import UnitOfWork
from mes.sync.client import HubClient, sync_round

# What this module tests is new: imported where used, so that on the code before it each test
# fails on its own assertion rather than the whole module on an import.


def verify_audit_anchored(uow):
    from mes.services.audit import verify_audit_anchored

    return verify_audit_anchored(uow)


def verify_batch_anchored(uow, ctx, batch_id):
    from mes.services.batches import verify_batch_anchored

    return verify_batch_anchored(uow, ctx, batch_id)


def anchored_heads(engine: Engine, chain: str) -> list:
    from mes.store.models import AnchoredHead

    with session_factory(engine)() as session:
        return list(
            session.execute(select(AnchoredHead).where(AnchoredHead.chain == chain)).scalars()
        )


# --- tampering as a database superuser would ------------------------------------------------


def drop_triggers(engine: Engine, *tables: str) -> None:
    """What a superuser does first: the append-only triggers of ``tables`` are dropped."""
    with engine.connect() as conn:
        for table in tables:
            if engine.dialect.name == "sqlite":
                names = conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                    (table,),
                ).all()
                for (name,) in names:
                    conn.exec_driver_sql(f"DROP TRIGGER {name}")
            else:
                names = conn.exec_driver_sql(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                    "AND tgrelid = %s::regclass",
                    (table,),
                ).all()
                for (name,) in names:
                    conn.exec_driver_sql(f"DROP TRIGGER {name} ON {table}")
        conn.commit()


def sql(engine: Engine, statement: str, *params: tuple) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            statement = statement.replace("?", "%s")
        conn.exec_driver_sql(statement, params[0] if params else ())
        conn.commit()


def audit_head_row(engine: Engine) -> tuple:
    with engine.connect() as conn:
        return tuple(
            conn.exec_driver_sql(
                "SELECT last_seq, last_hash, at, signature FROM chain_heads WHERE chain = 'audit'"
            ).one()
        )


def put_back_audit_head(engine: Engine, head: tuple) -> None:
    """Delete the audit entries after ``head`` and write ``head`` back into the head row."""
    drop_triggers(engine, "audit_entries", "chain_heads")
    sql(engine, "DELETE FROM audit_entries WHERE seq > ?", (head[0],))
    sql(
        engine,
        "UPDATE chain_heads SET last_seq = ?, last_hash = ?, at = ?, signature = ? "
        "WHERE chain = 'audit'",
        head,
    )


def audit_entries(engine: Engine) -> list[AuditEntry]:
    with session_factory(engine)() as session:
        return list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())


def broken(verify) -> ChainBroken:
    with pytest.raises(ChainBroken) as caught:
        verify()
    return caught.value


# --- the audit chain ------------------------------------------------------------------------


@pytest.fixture
def trail(make_uow, create_user, cli_ctx) -> int:
    """Five genuine audit entries; their count."""
    return genuine_audit_trail(make_uow, create_user, cli_ctx)


def test_deleting_the_newest_audit_entry_and_rewriting_the_head_row_is_named(
    engine, make_uow, trail
):
    entries = audit_entries(engine)
    previous = entries[-2]
    drop_triggers(engine, "audit_entries", "chain_heads")
    sql(engine, "DELETE FROM audit_entries WHERE seq = ?", (trail,))
    sql(
        engine,
        "UPDATE chain_heads SET last_seq = ?, last_hash = ? WHERE chain = 'audit'",
        (previous.seq, previous.hash),
    )
    with make_uow() as uow:
        error = broken(lambda: verify_audit_trail(uow))
    assert error.seq == trail - 1
    assert "not signed by TEST" in error.problem
    assert "head row was rewritten" in error.problem


def test_each_audit_head_is_signed_by_the_site_as_it_moves(engine, make_uow, trail, site_key):
    from mes.core.heads import SignedHead, head_signed_by

    seq, last_hash, at, signature = audit_head_row(engine)
    head = SignedHead("audit:TEST", seq, last_hash, at, signature)
    assert seq == trail and head_signed_by(head, site_key.public)
    assert at == audit_entries(engine)[-1].at
    with make_uow() as uow:
        verified = verify_audit_anchored(uow)
    assert verified.summary() == (
        f"{trail} entries; head {trail} signed by TEST; not yet anchored outside this database"
    )


@pytest.fixture
def hub_with_checkpoint(engine, site_key, tmp_path):
    """``make_uow`` for a hub that keeps its checkpoint file in ``tmp_path``."""
    from mes.core.site import Site

    site = Site(
        code="TEST",
        name="Test hub",
        role="hub",
        time_zone="Europe/London",
        key=site_key,
        checkpoint_path=tmp_path / "audit-checkpoints.jsonl",
    )
    sessions = session_factory(engine)
    return lambda: UnitOfWork(sessions, site)


def test_the_hub_checkpoint_file_catches_its_audit_chain_cut_back_to_an_older_signed_head(
    engine, hub_with_checkpoint, cli_ctx, create_user, tmp_path
):
    from mes.services.users import add_user

    for name in ("carol", "dave"):
        with hub_with_checkpoint() as uow:
            add_user(uow, cli_ctx, username=name, full_name=name.title(), roles=["operator"],
                     password="correct horse battery 1")  # fmt: skip
            uow.commit()
    older = audit_head_row(engine)  # a genuine signed head, seq 2
    with hub_with_checkpoint() as uow:
        set_roles(uow, cli_ctx, "carol", ["qa"], "moved to QA")
    newest = audit_head_row(engine)
    assert newest[0] == older[0] + 1
    checkpoint = tmp_path / "audit-checkpoints.jsonl"
    assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in checkpoint.read_text().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, newest[0] + 1))
    with hub_with_checkpoint() as uow:
        assert (
            verify_audit_anchored(uow)
            .summary()
            .startswith(
                f"{newest[0]} entries; head {newest[0]} signed by TEST; anchored: checkpoint file "
                f"seq {newest[0]} at {newest[2]}"
            )
        )

    put_back_audit_head(engine, older)  # the newest entry deleted, an older signed head put back
    with hub_with_checkpoint() as uow:
        error = broken(lambda: verify_audit_trail(uow))
    assert error.seq == newest[0]
    assert error.problem == (
        f"entries {newest[0]}–{newest[0]} missing: checkpoint file seq {newest[0]} at {newest[2]}"
    )


def test_an_edited_checkpoint_line_is_named(engine, hub_with_checkpoint, cli_ctx, trail, tmp_path):
    with hub_with_checkpoint() as uow:
        set_roles(uow, cli_ctx, "carol", ["operator"], "back to the suite")
    checkpoint = tmp_path / "audit-checkpoints.jsonl"
    line = json.loads(checkpoint.read_text())
    line["seq"] += 10
    with checkpoint.open("a") as file:
        file.write(json.dumps(line) + "\n")
    with hub_with_checkpoint() as uow:
        error = broken(lambda: verify_audit_trail(uow))
    assert "line 2 of the checkpoint file" in error.problem
    assert "not a head signed by TEST" in error.problem


# --- a batch's ledger -----------------------------------------------------------------------


def spoke_client(net, hub_app) -> HubClient:
    """The spoke's real sync client, talking to the real hub app in-process."""
    http = httpx.Client(transport=httpx.WSGITransport(app=hub_app), base_url="http://hub.test")
    return HubClient(
        net.runtime("spoke"), "http://hub.test", http=http, clock=lambda: datetime.now(UTC)
    )


@pytest.fixture
def hub_app(net):
    """The real hub app on the hub's database, as site HUB with the hub's key."""
    from mes.app import create_app

    runtime = net.runtime("hub")
    runtime.settings.instance_path.mkdir(parents=True, exist_ok=True)
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    return app


def batch_head(engine: Engine, batch_id: str) -> tuple:
    statement = "SELECT last_seq, last_hash, head_at, head_signature FROM batches WHERE id = ?"
    if engine.dialect.name == "postgresql":
        statement = statement.replace("?", "%s")
    with engine.connect() as conn:
        return tuple(conn.exec_driver_sql(statement, (batch_id,)).one())


def put_back_batch_head(engine: Engine, batch_id: str, head: tuple) -> None:
    drop_triggers(engine, "batch_entries")
    sql(engine, "DELETE FROM batch_entries WHERE batch_id = ? AND seq > ?", (batch_id, head[0]))
    sql(
        engine,
        "UPDATE batches SET last_seq = ?, last_hash = ?, head_at = ?, head_signature = ? "
        "WHERE id = ?",
        (*head, batch_id),
    )


@pytest.fixture
def synced_batch(net, hub_app, tmp_path):
    """SPK1 ran BATCH-TEST to completion and synced it; (batch ID, a signed head before the end)."""
    site = net.connected()
    with net.spoke_uow() as uow:
        outbox.record_enrollment(uow, CLI, "http://hub.test", "HUB", net.hub_key.public.key_id)
    run = begin(site, recipe_file(tmp_path))
    run.run_until()
    before_the_end = batch_head(net.spoke_engine, run.batch_id)
    run.finish()
    report = sync_round(net.runtime("spoke"), spoke_client(net, hub_app))
    assert report.refused == [], report.refused
    return run.batch_id, before_the_end


def test_deleting_the_batchs_last_ledger_entry_and_rewriting_its_head_is_named(net, synced_batch):
    batch_id, _ = synced_batch
    last_seq = batch_head(net.spoke_engine, batch_id)[0]
    with net.spoke_uow() as uow:
        verified = verify_batch_anchored(uow, CLI, batch_id)
    assert verified.summary().startswith(
        f"{last_seq} entries; head {last_seq} signed by SPK1; anchored: the hub HUB "
        f"acknowledged seq {last_seq} at "
    )
    with session_factory(net.spoke_engine)() as session:
        last = session.get(BatchEntry, (batch_id, last_seq))
        assert last.kind == "signature"  # the supervisor's completion signature
        previous = session.get(BatchEntry, (batch_id, last_seq - 1)).hash
    drop_triggers(net.spoke_engine, "batch_entries")
    sql(net.spoke_engine, "DELETE FROM batch_entries WHERE batch_id = ? AND seq = ?",
        (batch_id, last_seq))  # fmt: skip
    sql(net.spoke_engine, "UPDATE batches SET last_seq = ?, last_hash = ? WHERE id = ?",
        (last_seq - 1, previous, batch_id))  # fmt: skip
    with net.spoke_uow() as uow:
        error = broken(lambda: verify_batch_anchored(uow, CLI, batch_id))
    assert error.seq == last_seq
    assert error.problem.startswith(f"entries {last_seq}–{last_seq} missing: the hub HUB acknowledged seq {last_seq} at ")  # fmt: skip


def test_an_older_signed_batch_head_put_back_is_caught_by_the_hubs_acknowledgement(
    net, synced_batch
):
    batch_id, older = synced_batch
    newest = batch_head(net.spoke_engine, batch_id)
    assert newest[0] > older[0]
    put_back_batch_head(net.spoke_engine, batch_id, older)
    with net.spoke_uow() as uow:
        error = broken(lambda: verify_batch_anchored(uow, CLI, batch_id))
    assert error.seq == older[0] + 1
    assert error.problem.startswith(
        f"entries {older[0] + 1}–{newest[0]} missing: the hub HUB acknowledged seq {newest[0]} at "
    )


def test_deleting_the_batchs_last_ledger_entry_and_rewriting_last_seq_and_last_hash_is_named(
    engine, make_uow
):
    site = spoke(make_uow)
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)  # ends with the supervisor's verification signature
    with make_uow("spoke") as uow:
        last_seq = verify_batch(uow, site.ctx("sam"), batch_id)
    with session_factory(engine)() as session:
        assert session.get(BatchEntry, (batch_id, last_seq)).kind == "signature"
        previous = session.get(BatchEntry, (batch_id, last_seq - 1)).hash
    drop_triggers(engine, "batch_entries")
    sql(engine, "DELETE FROM batch_entries WHERE batch_id = ? AND seq = ?", (batch_id, last_seq))
    sql(engine, "UPDATE batches SET last_seq = ?, last_hash = ? WHERE id = ?",
        (last_seq - 1, previous, batch_id))  # fmt: skip
    with make_uow("spoke") as uow:
        error = broken(lambda: verify_batch(uow, site.ctx("sam"), batch_id))
    assert error.seq == last_seq - 1
    assert "not signed by SPK1" in error.problem
    assert "head row was rewritten" in error.problem


# --- the spoke's audit chain, countersigned by the hub ----------------------------------------


def test_the_hub_refuses_a_spoke_audit_head_that_went_backwards(net, synced_batch, hub_app):
    client = spoke_client(net, hub_app)
    countersigned = audit_head_row(net.spoke_engine)
    with net.spoke_uow() as uow:
        verified = verify_audit_anchored(uow)
    assert f"anchored: hub HUB countersigned seq {countersigned[0]} at " in verified.summary()
    kept = anchored_heads(net.hub_engine, f"audit:{SPOKE}")
    assert max(k.seq for k in kept) == countersigned[0]

    # At the spoke: the newest audit entry deleted and an older signed head put back.
    entries = audit_entries(net.spoke_engine)
    older = [e for e in entries if e.seq < countersigned[0]][-1]
    # An older head the spoke itself signed (the signature is the spoke's key's, as it was).
    from mes.core.heads import audit_chain, sign_head

    genuine = sign_head(net.spoke_key, audit_chain(SPOKE), older.seq, older.hash, older.at)
    put_back_audit_head(net.spoke_engine, (older.seq, older.hash, genuine.at, genuine.signature))
    with net.spoke_uow() as uow:
        error = broken(lambda: verify_audit_trail(uow))
    assert error.problem.startswith(
        f"entries {older.seq + 1}–{countersigned[0]} missing: hub HUB countersigned seq "
        f"{countersigned[0]} at "
    )

    report = sync_round(net.runtime("spoke"), client)
    assert any("went backwards" in r for r in report.refused), report.refused
    with net.hub(read_only=True) as uow:
        refusals = list(
            uow.session.execute(
                select(SyncEvent).where(SyncEvent.action == "anchor", SyncEvent.peer == SPOKE)
            ).scalars()
        )
        security = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action == "spoke audit head refused")
        ).scalar_one()
    assert [e.outcome for e in refusals] == ["refused"]
    assert f"Spoke {SPOKE}'s audit chain went backwards" in refusals[0].reason
    assert f"entries {older.seq + 1}–{countersigned[0]} were removed" in security.reason


def test_the_spoke_keeps_the_hubs_audit_head_and_the_hub_sees_its_own_chain_cut_back(
    net, synced_batch, hub_app, engine
):
    hub_head = audit_head_row(engine)
    (seen,) = anchored_heads(net.spoke_engine, "audit:HUB")
    assert (seen.seq, seen.hash) == hub_head[:2]
    # At the hub: its newest audit entries deleted and the head row put back as it was earlier.
    entries = audit_entries(engine)
    from mes.core.heads import audit_chain, sign_head

    older = entries[-3]
    genuine = sign_head(net.hub_key, audit_chain("HUB"), older.seq, older.hash, older.at)
    put_back_audit_head(engine, (older.seq, older.hash, genuine.at, genuine.signature))
    report = sync_round(net.runtime("spoke"), spoke_client(net, hub_app))
    # The spoke sees it too: the hub's head is behind the one it kept.
    assert [r for r in report.refused if "The hub's audit chain went backwards" in r], report
    with net.hub(read_only=True) as uow:
        noted = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action == "hub audit chain behind a spoke")
        ).scalar_one()
    assert f"holds this hub's audit head {hub_head[0]}" in noted.reason
    assert f"ends at {older.seq}" in noted.reason


def test_a_forged_hub_receipt_is_named(net, synced_batch):
    batch_id, _ = synced_batch
    drop_triggers(net.spoke_engine, "hub_receipts")
    sql(net.spoke_engine, "UPDATE hub_receipts SET last_seq = last_seq + 5 WHERE batch_id = ?",
        (batch_id,))  # fmt: skip
    with net.spoke_uow() as uow:
        error = broken(lambda: verify_batch_anchored(uow, CLI, batch_id))
    assert "does not verify with the hub key" in error.problem


__all__ = ["net"]  # the fixture, imported from sync_sites
