"""The database itself refuses to change or delete GMP records (21 CFR 11.10(c), (e)):
triggers on SQLite and PostgreSQL, whatever the client, ORM or raw SQL."""

from __future__ import annotations

from datetime import date

import pytest
from integration_helpers import count_rows
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from mes.services.audit import verify_audit_trail
from mes.services.terminals import register_terminal
from mes.services.training import record_training
from mes.services.users import set_roles
from mes.store.models import AuditEntry, PasswordHistory, Terminal, TrainingRecord, User


@pytest.fixture
def populated(make_uow, create_user, cli_ctx) -> int:
    """A user with a role change, training and a terminal; returns the audit entry count."""
    create_user("carol")
    with make_uow() as uow:
        set_roles(uow, cli_ctx, "carol", ["operator", "qa"], "second role")
    with make_uow() as uow:
        record_training(
            uow,
            cli_ctx,
            username="carol",
            procedure="SOP-CT-014 Aseptic gowning",
            qualified_on=date(2026, 11, 1),
            expires_on=None,
        )
    with make_uow() as uow:
        register_terminal(uow, cli_ctx, "Suite A tablet 1")
    return count_rows(make_uow, AuditEntry)


def refused(engine: Engine, sql: str) -> IntegrityError:
    with engine.connect() as conn, pytest.raises(IntegrityError) as caught:
        conn.exec_driver_sql(sql)
        conn.commit()
    return caught.value


def attempt(engine: Engine, sql: str) -> str:
    """What the database did with ``sql``: 'refused by a trigger', 'accepted', or its error."""
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql(sql)
            conn.commit()
        except IntegrityError as error:
            message = str(error.orig)
            if any(
                words in message for words in ("append-only", "never deleted", "only move forward")
            ):
                return "refused by a trigger"
            return message
    return "accepted"


def test_the_database_refuses_raw_sql_that_changes_or_deletes_audit_entries(
    engine, make_uow, populated
):
    statements = [
        "UPDATE audit_entries SET reason = 'edited' WHERE seq = 2",
        "UPDATE audit_entries SET new = NULL WHERE seq = 1",
        "UPDATE audit_entries SET seq = seq + 100",
        "DELETE FROM audit_entries WHERE seq = 2",
        "DELETE FROM audit_entries",
    ]
    tried = {sql: attempt(engine, sql) for sql in statements}
    assert tried == dict.fromkeys(statements, "refused by a trigger")
    assert "audit_entries is append-only" in str(refused(engine, statements[0]).orig)
    with make_uow() as uow:
        assert verify_audit_trail(uow) == populated


def test_the_database_refuses_to_empty_the_audit_table(engine, make_uow, populated):
    if engine.dialect.name == "postgresql":
        emptying = "TRUNCATE audit_entries"
    else:
        emptying = "DELETE FROM audit_entries"
    assert attempt(engine, emptying) == "refused by a trigger"
    assert count_rows(make_uow, AuditEntry) == populated


def test_the_database_refuses_to_change_or_delete_other_gmp_records(engine, make_uow, populated):
    statements = [
        "UPDATE password_history SET password_hash = 'x'",
        "DELETE FROM password_history",
        "UPDATE training_records SET expires_on = qualified_on",
        "UPDATE training_records SET withdrawn = NOT withdrawn",
        "DELETE FROM training_records",
        "DELETE FROM users",
        "DELETE FROM user_roles WHERE role = 'qa'",
        "DELETE FROM terminals",
    ]
    tables = (PasswordHistory, TrainingRecord, User, Terminal)
    before = {t: count_rows(make_uow, t) for t in tables}
    tried = {sql: attempt(engine, sql) for sql in statements}
    assert tried == {
        **dict.fromkeys(statements, "refused by a trigger"),
        # Roles are current state: removing one is allowed (and audited by set_roles).
        "DELETE FROM user_roles WHERE role = 'qa'": "accepted",
    }
    assert {t: count_rows(make_uow, t) for t in tables} == before


def test_users_may_be_updated_but_never_deleted(engine, make_uow, populated):
    assert attempt(engine, "UPDATE users SET full_name = 'Carol Renamed'") == "accepted"
    assert attempt(engine, "DELETE FROM users WHERE username = 'carol'") == "refused by a trigger"
    assert count_rows(make_uow, User) == 1


def test_the_chain_head_only_ever_moves_forward(engine, make_uow, populated):
    statements = [
        "UPDATE chain_heads SET last_seq = last_seq - 1",
        "UPDATE chain_heads SET last_seq = last_seq",
        "UPDATE chain_heads SET last_seq = 0, last_hash = NULL",
        "DELETE FROM chain_heads",
    ]
    tried = {sql: attempt(engine, sql) for sql in statements}
    assert tried == dict.fromkeys(statements, "refused by a trigger")
    with make_uow() as uow:
        assert verify_audit_trail(uow) == populated
