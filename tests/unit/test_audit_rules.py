"""The system audit trail's entries (21 CFR 11.10(e), Annex 11 §9): who, what, when (UTC),
where, old and new values, and why."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mes.core.audit import (
    Actor,
    AuditEvent,
    EntryKind,
    FieldChange,
    describe_changes,
    entry_body,
    require_reason,
)
from mes.core.errors import InvalidInput


@pytest.mark.parametrize("reason", [None, "", "   \n"])
def test_a_change_without_a_reason_is_refused(reason):
    with pytest.raises(InvalidInput) as caught:
        require_reason(reason, "deactivate a user")
    assert caught.value.message == "A reason is required to deactivate a user."


def test_the_reason_is_kept_without_surrounding_space():
    assert require_reason("  left the company \n", "deactivate a user") == "left the company"


def test_an_entry_records_who_what_when_in_utc_where_old_new_and_why():
    body = entry_body(
        seq=7,
        prev="a" * 64,
        site="TEST",
        event=AuditEvent(
            at=datetime(2026, 11, 21, 10, 0, tzinfo=timezone(timedelta(hours=1))),
            terminal="Bench 1",
            actor=Actor(user_id="u-1", username="admin1", name="Ada Admin"),
            kind=EntryKind.CHANGE,
            action="roles changed",
            record_type="user",
            record_id="alice",
            old={"roles": ["operator"]},
            new={"roles": ["operator", "qa"]},
            reason="promoted",
        ),
    )
    assert body == {
        "seq": 7,
        "prev": "a" * 64,
        "at": "2026-11-21T09:00:00.000000Z",
        "site": "TEST",
        "terminal": "Bench 1",
        "actor": {"user_id": "u-1", "username": "admin1", "name": "Ada Admin"},
        "kind": "change",
        "action": "roles changed",
        "record": {"type": "user", "id": "alice"},
        "old": {"roles": ["operator"]},
        "new": {"roles": ["operator", "qa"]},
        "reason": "promoted",
    }


def test_described_changes_list_only_the_fields_that_changed():
    changes = describe_changes(
        {"roles": ["operator"], "active": True, "gone": 1},
        {"roles": ["qa"], "active": True, "added": 2},
    )
    assert changes == [
        FieldChange("added", None, 2),
        FieldChange("gone", 1, None),
        FieldChange("roles", ["operator"], ["qa"]),
    ]


def test_a_creation_is_described_from_nothing():
    assert describe_changes(None, {"name": "x"}) == [FieldChange("name", None, "x")]
