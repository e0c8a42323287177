"""Tampering that gets past the database is still found (21 CFR 11.10(a), (e)).

Someone with direct write access drops the append-only triggers and edits, deletes, reorders
or forges audit rows with raw SQL. :func:`verify_audit_trail` must then raise
:class:`ChainBroken` naming the first entry that is no longer what the site wrote.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from integration_helpers import audit_entries, genuine_audit_trail
from sqlalchemy import Engine, insert, update
from support import NOW

from mes.core.audit import SYSTEM, AuditEvent, EntryKind, entry_body
from mes.core.errors import ChainBroken
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry, seal
from mes.services.audit import verify_audit_trail
from mes.store.models import AuditEntry

AUDIT = AuditEntry.__table__


@pytest.fixture
def trail(make_uow, create_user, cli_ctx, engine) -> list[AuditEntry]:
    """Five genuine entries, then the append-only triggers dropped; returns the entries."""
    assert genuine_audit_trail(make_uow, create_user, cli_ctx) == 5
    drop_audit_triggers(engine)
    return audit_entries(make_uow)


def drop_audit_triggers(engine: Engine) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_entries_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_entries_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_entries_append_only ON audit_entries")
        conn.commit()


def tamper(engine: Engine, *statements) -> None:
    with engine.connect() as conn:
        for statement in statements:
            if isinstance(statement, str):
                conn.exec_driver_sql(statement)
            else:
                conn.execute(statement)
        conn.commit()


def broken(make_uow) -> ChainBroken:
    with make_uow() as uow, pytest.raises(ChainBroken) as caught:
        verify_audit_trail(uow)
    return caught.value


def forged(after: AuditEntry, key: SiteKey) -> SealedEntry:
    body = entry_body(
        seq=after.seq + 1,
        prev=after.hash,
        site="TEST",
        event=AuditEvent(
            at=NOW + timedelta(hours=1),
            terminal="command line tester@testhost",
            actor=SYSTEM,
            kind=EntryKind.CHANGE,
            action="roles changed",
            record_type="user",
            record_id="erin",
            old={"roles": ["operator"]},
            new={"roles": ["admin"]},
            reason="approved by QA",
        ),
    )
    return seal(body, key)


def inserting(entry: SealedEntry):
    body = entry.body
    return insert(AUDIT).values(
        seq=body["seq"],
        prev=body["prev"],
        at=body["at"],
        site=body["site"],
        terminal=body["terminal"],
        actor_id=body["actor"]["user_id"],
        actor_username=body["actor"]["username"],
        actor_name=body["actor"]["name"],
        kind=body["kind"],
        action=body["action"],
        record_type=body["record"]["type"],
        record_id=body["record"]["id"],
        old=body["old"],
        new=body["new"],
        reason=body["reason"],
        hash=entry.hash,
        signature=entry.signature,
    )


def test_dropping_the_triggers_alone_leaves_a_verifiable_trail(make_uow, trail):
    with make_uow() as uow:
        assert verify_audit_trail(uow) == len(trail) == 5


def test_an_edited_new_value_is_found_in_the_edited_entry(engine, make_uow, trail):
    tamper(engine, update(AUDIT).where(AUDIT.c.seq == 3).values(new={"username": "mallory"}))
    error = broken(make_uow)
    assert error.seq == 3
    assert "edited" in error.problem


def test_an_edited_reason_is_found_in_the_edited_entry(engine, make_uow, trail):
    tamper(engine, "UPDATE audit_entries SET reason = 'routine tidy-up' WHERE seq = 4")
    error = broken(make_uow)
    assert error.seq == 4
    assert "edited" in error.problem


def test_a_backdated_entry_is_found(engine, make_uow, trail):
    tamper(engine, "UPDATE audit_entries SET at = '2026-01-01T00:00:00.000000Z' WHERE seq = 5")
    assert broken(make_uow).seq == 5


def test_a_deleted_middle_entry_is_named_as_missing(engine, make_uow, trail):
    tamper(engine, "DELETE FROM audit_entries WHERE seq = 3")
    error = broken(make_uow)
    assert error.seq == 3
    assert "missing" in error.problem


def test_a_deleted_last_entry_is_found_against_the_chain_head(engine, make_uow, trail):
    tamper(engine, "DELETE FROM audit_entries WHERE seq = 5")
    error = broken(make_uow)
    assert error.seq == 5
    assert "deleted" in error.problem


def test_two_entries_whose_seq_were_swapped_are_found_at_the_first(engine, make_uow, trail):
    tamper(
        engine,
        "UPDATE audit_entries SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_entries SET seq = 2 WHERE seq = 3",
        "UPDATE audit_entries SET seq = 3 WHERE seq = 1000",
    )
    assert [e.hash for e in audit_entries(make_uow)][1:3] == [trail[2].hash, trail[1].hash]
    assert broken(make_uow).seq == 2


def test_an_inserted_row_signed_with_another_key_is_named(engine, make_uow, trail):
    tamper(engine, inserting(forged(trail[-1], SiteKey.generate())))
    error = broken(make_uow)
    assert error.seq == 6
    assert "signature" in error.problem


def test_an_inserted_row_signed_with_the_site_key_is_found_beyond_the_chain_head(
    engine, make_uow, trail, site_key
):
    # Even an insider holding the site key is caught while the chain head is not moved.
    tamper(engine, inserting(forged(trail[-1], site_key)))
    error = broken(make_uow)
    assert error.seq == 6
    assert "added" in error.problem


def test_an_edited_row_rehashed_without_the_site_key_fails_its_signature(engine, make_uow, trail):
    original = trail[2]
    body = {**original.body(), "reason": "forged reason"}
    resealed = seal(body, SiteKey.generate())
    tamper(
        engine,
        update(AUDIT)
        .where(AUDIT.c.seq == original.seq)
        .values(reason="forged reason", hash=resealed.hash, signature=resealed.signature),
    )
    error = broken(make_uow)
    assert error.seq == 3
    assert "signature" in error.problem
