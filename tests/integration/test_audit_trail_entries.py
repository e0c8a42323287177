"""The system audit trail (21 CFR 11.10(e), Annex 11 §9, §12.3-12.4): every change made
through a service is exactly one entry naming who, when (server time, in UTC), where, the old
and new values and why; the whole chain verifies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from integration_helpers import attest, audit_entries, sign_phase
from support import NOW, PASSWORD, user_ctx

from mes.core.canonical import content_hash
from mes.core.errors import AccountLocked, AuthenticationFailed, NotAuthorised
from mes.services.audit import AuditFilter, read_audit_trail, verify_audit_trail
from mes.services.badges import enroll_badge, revoke_badge, set_pin
from mes.services.configuration import set_signing_methods
from mes.services.context import Context
from mes.services.terminals import deactivate_terminal, register_terminal
from mes.services.training import record_training, withdraw_training
from mes.services.users import (
    add_user,
    authenticate,
    change_password,
    deactivate_user,
    reset_password,
    set_roles,
    unlock_user,
)
from mes.store.audit import audit_head
from mes.store.uow import UnitOfWork

AT = datetime(2026, 11, 21, 11, 0, tzinfo=timezone(timedelta(hours=2)))  # 09:00 UTC
AT_TEXT = "2026-11-21T09:00:00.000000Z"
TERMINAL = "Admin desk 3"
SOP = "SOP-CT-014 Aseptic gowning"
RECORD = {"batch": "B-0001", "phase": "thaw", "value": 37.0}


def ctx_of(user_id: str, at: datetime = AT) -> Context:
    return user_ctx(user_id, at=at, terminal=TERMINAL)


@dataclass
class Case:
    """A service change, set up and ready to run, and the one entry it must write."""

    change: Callable[[UnitOfWork], Any]
    actor: str
    action: str
    record: tuple[str, str]
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    reason: str | None = None
    kind: str = "change"
    extra: dict[str, Any] = field(default_factory=dict)


def _user(username, roles):
    return {"username": username, "full_name": username.title() + " Tester", "roles": roles}


def adding_a_user(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    return Case(
        lambda uow: add_user(
            uow,
            ctx_of(admin),
            username="bob",
            full_name="Bob Tester",
            roles=["qa", "operator"],
            password=PASSWORD,
        ),
        "admin1",
        "user created",
        ("user", "bob"),
        None,
        {**_user("bob", ["operator", "qa"]), "active": True, "locked": False},
    )


def changing_roles(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    create_user("carol")
    return Case(
        lambda uow: set_roles(uow, ctx_of(admin), "carol", ["supervisor"], "promoted"),
        "admin1",
        "roles changed",
        ("user", "carol"),
        {**_user("carol", ["operator"]), "active": True, "locked": False},
        {**_user("carol", ["supervisor"]), "active": True, "locked": False},
        "promoted",
    )


def deactivating_a_user(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    create_user("carol")
    return Case(
        lambda uow: deactivate_user(uow, ctx_of(admin), "carol", "left the company"),
        "admin1",
        "user deactivated",
        ("user", "carol"),
        {**_user("carol", ["operator"]), "active": True, "locked": False},
        {**_user("carol", ["operator"]), "active": False, "locked": False},
        "left the company",
    )


def unlocking_a_user(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    carol = create_user("carol")
    for _ in range(5):
        with make_uow() as uow, pytest.raises((AuthenticationFailed, AccountLocked)):
            authenticate(uow, user_ctx(carol), "carol", "not-the-Password-9")
    return Case(
        lambda uow: unlock_user(uow, ctx_of(admin), "carol", "identity checked"),
        "admin1",
        "account unlocked",
        ("user", "carol"),
        {**_user("carol", ["operator"]), "active": True, "locked": True},
        {**_user("carol", ["operator"]), "active": True, "locked": False},
        "identity checked",
        kind="security",
    )


def resetting_a_password(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    create_user("carol")
    return Case(
        lambda uow: reset_password(uow, ctx_of(admin), "carol"),
        "admin1",
        "password reset",
        ("user", "carol"),
        None,
        {"must_change_password": True},
        kind="security",
    )


def changing_ones_password(make_uow, create_user) -> Case:
    carol = create_user("carol")
    return Case(
        lambda uow: change_password(uow, ctx_of(carol), PASSWORD, "fresh-Quartz-41-lantern"),
        "carol",
        "password changed",
        ("user", "carol"),
        None,
        None,
        kind="security",
    )


def logging_in(make_uow, create_user) -> Case:
    carol = create_user("carol")
    return Case(
        lambda uow: authenticate(uow, ctx_of(carol), "carol", PASSWORD),
        "carol",
        "logged in",
        ("user", "carol"),
        None,
        None,
        kind="security",
    )


def recording_training(make_uow, create_user) -> Case:
    supervisor = create_user("sam", roles=["supervisor"])
    create_user("carol")
    return Case(
        lambda uow: record_training(
            uow,
            ctx_of(supervisor),
            username="carol",
            procedure=SOP,
            qualified_on=date(2026, 11, 20),
            expires_on=None,
        ),
        "sam",
        "training recorded",
        ("training", f"carol/{SOP}"),
        None,
        {"qualified_on": "2026-11-20", "expires_on": None},
    )


def withdrawing_training(make_uow, create_user) -> Case:
    supervisor = create_user("sam", roles=["supervisor"])
    create_user("carol")
    with make_uow() as uow:
        record_training(
            uow,
            ctx_of(supervisor, at=AT - timedelta(days=1)),
            username="carol",
            procedure=SOP,
            qualified_on=date(2026, 11, 20),
            expires_on=None,
        )
    return Case(
        lambda uow: withdraw_training(
            uow, ctx_of(supervisor), username="carol", procedure=SOP, reason="failed audit"
        ),
        "sam",
        "training withdrawn",
        ("training", f"carol/{SOP}"),
        {"qualified": True},
        {"qualified": False},
        "failed audit",
    )


def registering_a_terminal(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    return Case(
        lambda uow: register_terminal(uow, ctx_of(admin), "Suite A tablet 1", "Suite A"),
        "admin1",
        "terminal registered",
        ("terminal", "<the new terminal>"),
        None,
        {"name": "Suite A tablet 1", "location": "Suite A", "active": True},
        kind="security",
    )


def deactivating_a_terminal(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    with make_uow() as uow:
        terminal_id = register_terminal(uow, ctx_of(admin), "Suite A tablet 1", "Suite A")
    return Case(
        lambda uow: deactivate_terminal(uow, ctx_of(admin), terminal_id, "dropped and broken"),
        "admin1",
        "terminal deactivated",
        ("terminal", terminal_id),
        {"name": "Suite A tablet 1", "active": True},
        {"name": "Suite A tablet 1", "active": False},
        "dropped and broken",
        kind="security",
    )


def signing_a_record(make_uow, create_user) -> Case:
    carol = create_user("carol")
    attest(make_uow, carol, "carol", at=AT - timedelta(minutes=5))
    return Case(
        lambda uow: sign_phase(uow, ctx_of(carol), record=RECORD, record_id="B-0001/thaw"),
        "carol",
        "signed: performed",
        ("phase", "B-0001/thaw"),
        None,
        {
            "record_type": "phase",
            "record_id": "B-0001/thaw",
            "record_hash": content_hash(RECORD),
            "signer_id": carol,
            "username": "carol",
            "printed_name": "Carol Tester",
            "meaning": "performed",
            "at": AT_TEXT,
            "terminal": TERMINAL,
            "site": "TEST",
        },
        kind="signature",
    )


def enrolling_a_badge(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    create_user("carol")
    return Case(
        lambda uow: enroll_badge(uow, ctx_of(admin), "carol", "BADGE-10005"),
        "admin1",
        "badge enrolled",
        ("user", "carol"),
        None,
        {"badge": "…0005"},
        kind="security",
    )


def revoking_a_badge(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    create_user("carol")
    with make_uow() as uow:
        enroll_badge(uow, ctx_of(admin), "carol", "BADGE-10005")
    return Case(
        lambda uow: revoke_badge(uow, ctx_of(admin), "carol", "lost"),
        "admin1",
        "badge revoked",
        ("user", "carol"),
        None,
        {"badge": "…0005"},
        "lost",
        kind="security",
    )


def setting_ones_pin(make_uow, create_user) -> Case:
    carol = create_user("carol")
    return Case(
        lambda uow: set_pin(uow, ctx_of(carol), PASSWORD, "851427"),
        "carol",
        "PIN changed",
        ("user", "carol"),
        None,
        None,
        kind="security",
    )


def choosing_the_ways_to_sign(make_uow, create_user) -> Case:
    admin = create_user("admin1", roles=["admin"])
    return Case(
        lambda uow: set_signing_methods(uow, ctx_of(admin), ["badge_pin"], "readers everywhere"),
        "admin1",
        "site setting changed",
        ("site setting", "signing methods"),
        {"methods": ["password", "badge_pin"]},
        {"methods": ["badge_pin"]},
        "readers everywhere",
    )


CASES = [
    adding_a_user,
    changing_roles,
    deactivating_a_user,
    unlocking_a_user,
    resetting_a_password,
    changing_ones_password,
    logging_in,
    recording_training,
    withdrawing_training,
    registering_a_terminal,
    deactivating_a_terminal,
    signing_a_record,
    enrolling_a_badge,
    revoking_a_badge,
    setting_ones_pin,
    choosing_the_ways_to_sign,
]


@pytest.mark.parametrize("setup", CASES, ids=[c.__name__ for c in CASES])
def test_every_service_change_writes_exactly_one_complete_audit_entry(make_uow, create_user, setup):
    case = setup(make_uow, create_user)
    before = audit_entries(make_uow)
    with make_uow() as uow:
        result = case.change(uow)
        uow.commit()  # sign_record leaves the commit to its caller; the others committed already
    after = audit_entries(make_uow)
    assert [e.seq for e in after[:-1]] == [e.seq for e in before]
    entry = after[-1]
    assert entry.seq == len(before) + 1
    assert entry.actor_username == case.actor
    assert entry.actor_id is not None
    assert entry.at == AT_TEXT
    assert entry.terminal == TERMINAL
    assert entry.site == "TEST"
    assert entry.kind == case.kind
    assert entry.action == case.action
    record_id = result if case.record[1] == "<the new terminal>" else case.record[1]
    assert (entry.record_type, entry.record_id) == (case.record[0], record_id)
    assert entry.old == case.old
    assert entry.new == case.new
    assert entry.reason == case.reason
    with make_uow() as uow:
        assert verify_audit_trail(uow) == len(after)


def test_the_command_line_is_recorded_as_the_system_acting_from_the_server(
    make_uow, create_user, cli_ctx
):
    create_user("carol")
    entry = audit_entries(make_uow)[-1]
    assert entry.actor_id is None
    assert entry.actor_username == "system"
    assert entry.actor_name == "System (command line tester@testhost)"
    assert entry.terminal == "command line tester@testhost"
    assert entry.at == "2026-11-21T09:00:00.000000Z"


def test_verifying_the_audit_trail_returns_how_many_entries_it_checked(
    make_uow, create_user, cli_ctx
):
    with make_uow() as uow:
        assert verify_audit_trail(uow) == 0
    carol = create_user("carol")
    create_user("dave")
    with make_uow() as uow:
        set_roles(uow, cli_ctx, "dave", ["qa"], "moved to QA")
    with make_uow() as uow:
        authenticate(uow, user_ctx(carol, at=NOW + timedelta(hours=1)), "carol", PASSWORD)
    with make_uow() as uow:
        assert verify_audit_trail(uow) == 4
        assert audit_head(uow.session).last_seq == 4
    entries = audit_entries(make_uow)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert [e.prev for e in entries[1:]] == [e.hash for e in entries[:-1]]


@pytest.mark.parametrize("role", ["qa", "admin"])
def test_qa_and_administrators_read_the_audit_trail_through_its_service(
    make_uow, create_user, role
):
    reader = create_user("reader", roles=[role])
    create_user("carol")
    with make_uow() as uow:
        trail = read_audit_trail(uow, user_ctx(reader), AuditFilter(record_id="carol"))
    assert [e.action for e in trail.page.entries] == ["user created"]
    assert trail.page.total == 1
    assert trail.record_types == ["user"]


@pytest.mark.parametrize("role", ["operator", "author"])
def test_a_user_without_the_role_is_refused_the_audit_trail(make_uow, create_user, role):
    someone = create_user("someone", roles=[role])
    with make_uow() as uow, pytest.raises(NotAuthorised, match="not allowed to read the audit"):
        read_audit_trail(uow, user_ctx(someone), AuditFilter())
