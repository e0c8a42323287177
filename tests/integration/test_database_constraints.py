"""Invariants the database enforces itself (CHECK constraints mirroring the core's rules), so a
record written around the services is refused too."""

from __future__ import annotations

from datetime import date

import pytest
from integration_helpers import count_rows
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from support import NOW

from mes.store.models import AuditEntry, TrainingRecord, User, UserRole


def violation(engine, statement) -> str:
    """'refused' when the database rejects ``statement``, else 'accepted'."""
    with engine.connect() as conn:
        try:
            if isinstance(statement, str):
                conn.exec_driver_sql(statement)
            else:
                conn.execute(statement)
            conn.commit()
        except IntegrityError:
            return "refused"
    return "accepted"


@pytest.fixture
def carol_id(create_user) -> str:
    return create_user("carol")


def test_the_database_refuses_rows_that_break_the_core_rules(engine, make_uow, carol_id):
    audit_row = {
        "seq": 99,
        "prev": "p" * 64,
        "at": "2026-11-21T09:00:00.000000Z",
        "site": "TEST",
        "actor_username": "system",
        "actor_name": "System",
        "action": "forged",
        "record_type": "user",
        "record_id": "carol",
        "hash": "h" * 64,
        "signature": "s",
    }
    statements = {
        "upper-case user ID": "UPDATE users SET username = 'Carol'",
        "negative failure count": "UPDATE users SET failed_attempts = -1",
        "unknown role": insert(UserRole.__table__).values(user_id=carol_id, role="superuser"),
        "expiry before qualification": insert(TrainingRecord.__table__).values(
            id="00000000-0000-7000-8000-000000000001",
            user_id=carol_id,
            procedure="SOP-CT-015 Cell counting",
            qualified_on=date(2026, 11, 21),
            expires_on=date(2026, 11, 20),
            withdrawn=False,
            recorded_at=NOW,
        ),
        "unknown entry kind": insert(AuditEntry.__table__).values(**audit_row, kind="gossip"),
        "entry number below 1": insert(AuditEntry.__table__).values(
            **{**audit_row, "seq": 0}, kind="change"
        ),
        "a second user with the same ID": insert(User.__table__).values(
            id="00000000-0000-7000-8000-000000000002",
            username="carol",
            full_name="Carol Impostor",
            password_hash="x",
            password_changed_at=NOW,
            must_change_password=False,
            failed_attempts=0,
            locked=False,
            active=True,
            created_at=NOW,
        ),
    }
    tried = {label: violation(engine, statement) for label, statement in statements.items()}
    assert tried == dict.fromkeys(statements, "refused")
    assert count_rows(make_uow, TrainingRecord) == 0
    assert count_rows(make_uow, User) == 1
    with make_uow() as uow:
        carol = uow.session.execute(select(User)).scalar_one()
        assert (carol.username, carol.failed_attempts, carol.role_names) == (
            "carol",
            0,
            {"operator"},
        )
