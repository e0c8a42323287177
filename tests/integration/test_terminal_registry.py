"""Registered workstations (21 CFR 11.10(h) device checks): unique names per site,
deactivation with a reason, every change a security entry of the audit trail."""

from __future__ import annotations

import pytest
from integration_helpers import audit_entries, count_rows, outcomes
from support import user_ctx

from mes.core.errors import InvalidInput, NotAuthorised, NotFound, TerminalNameTaken
from mes.services.terminals import (
    active_terminal,
    deactivate_terminal,
    list_terminals,
    register_terminal,
)
from mes.store.models import AuditEntry, Terminal


def register(make_uow, ctx, name="Suite A tablet 1", location="Suite A", role="hub") -> str:
    with make_uow(role) as uow:
        return register_terminal(uow, ctx, name, location)


def deactivate(make_uow, ctx, terminal_id, reason="lost", role="hub") -> None:
    with make_uow(role) as uow:
        deactivate_terminal(uow, ctx, terminal_id, reason)


def test_an_administrator_registers_a_terminal_and_it_is_audited(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    terminal_id = register(make_uow, user_ctx(admin), name="  Suite A   tablet 1 ")
    with make_uow() as uow:
        terminal = active_terminal(uow, terminal_id)
        assert terminal is not None
        assert terminal.name == "Suite A tablet 1"
        assert terminal.location == "Suite A"
        assert terminal.site == "TEST"
        assert terminal.registered_by == admin
    entry = audit_entries(make_uow)[-1]
    assert entry.action == "terminal registered"
    assert entry.kind == "security"
    assert entry.record_id == terminal_id
    assert entry.actor_username == "admin1"
    assert entry.new == {"name": "Suite A tablet 1", "location": "Suite A", "active": True}


def test_a_terminal_name_already_registered_at_the_site_is_refused(make_uow, cli_ctx):
    register(make_uow, cli_ctx)
    entries = count_rows(make_uow, AuditEntry)
    spellings = ["Suite A tablet 1", " Suite A  tablet 1 "]
    tried = outcomes(lambda name: register(make_uow, cli_ctx, name=name), spellings)
    assert tried == dict.fromkeys(spellings, "TerminalNameTaken")
    assert count_rows(make_uow, Terminal) == 1
    assert count_rows(make_uow, AuditEntry) == entries


def test_a_deactivated_terminals_name_stays_taken(make_uow, cli_ctx):
    terminal_id = register(make_uow, cli_ctx)
    deactivate(make_uow, cli_ctx, terminal_id)
    with pytest.raises(TerminalNameTaken):
        register(make_uow, cli_ctx)


def test_two_sites_may_each_have_a_terminal_of_the_same_name(make_uow, cli_ctx):
    hub_terminal = register(make_uow, cli_ctx, role="hub")
    spoke_terminal = register(make_uow, cli_ctx, role="spoke")
    assert hub_terminal != spoke_terminal
    with make_uow("spoke") as uow:
        assert [t.id for t in list_terminals(uow)] == [spoke_terminal]
        assert active_terminal(uow, hub_terminal) is None


def test_a_terminal_name_must_be_2_to_64_characters(make_uow, cli_ctx):
    names = ["", "A", "  A  ", "x" * 65, "x" * 64, "AB"]
    tried = outcomes(lambda name: register(make_uow, cli_ctx, name=name), names)
    assert tried == {
        "": "InvalidInput",
        "A": "InvalidInput",
        "  A  ": "InvalidInput",
        "x" * 65: "InvalidInput",
        "x" * 64: "accepted",
        "AB": "accepted",
    }
    assert count_rows(make_uow, Terminal) == 2


def test_only_an_administrator_may_register_a_terminal(make_uow, create_user):
    others = ["operator", "supervisor", "qa", "author"]
    actors = {role: create_user(f"{role}1", roles=[role]) for role in others}
    tried = outcomes(lambda role: register(make_uow, user_ctx(actors[role])), others)
    assert tried == dict.fromkeys(others, "NotAuthorised")
    assert count_rows(make_uow, Terminal) == 0


def test_deactivating_a_terminal_needs_a_reason(make_uow, cli_ctx):
    terminal_id = register(make_uow, cli_ctx)
    reasons = ["", "   "]
    tried = outcomes(lambda reason: deactivate(make_uow, cli_ctx, terminal_id, reason), reasons)
    assert tried == dict.fromkeys(reasons, "InvalidInput")
    with make_uow() as uow:
        assert active_terminal(uow, terminal_id) is not None


def test_a_deactivated_terminal_is_no_longer_active_and_the_change_is_audited(
    make_uow, create_user
):
    admin = create_user("admin1", roles=["admin"])
    terminal_id = register(make_uow, user_ctx(admin))
    deactivate(make_uow, user_ctx(admin), terminal_id, reason=" stolen from the suite ")
    with make_uow() as uow:
        assert active_terminal(uow, terminal_id) is None
        assert [(t.id, t.active) for t in list_terminals(uow)] == [(terminal_id, False)]
    entry = audit_entries(make_uow)[-1]
    assert entry.action == "terminal deactivated"
    assert entry.kind == "security"
    assert entry.old == {"name": "Suite A tablet 1", "active": True}
    assert entry.new == {"name": "Suite A tablet 1", "active": False}
    assert entry.reason == "stolen from the suite"


def test_deactivating_a_terminal_twice_is_refused(make_uow, cli_ctx):
    terminal_id = register(make_uow, cli_ctx)
    deactivate(make_uow, cli_ctx, terminal_id)
    with pytest.raises(InvalidInput):
        deactivate(make_uow, cli_ctx, terminal_id)


def test_a_terminal_of_another_site_cannot_be_deactivated_here(make_uow, cli_ctx):
    spoke_terminal = register(make_uow, cli_ctx, role="spoke")
    with pytest.raises(NotFound):
        deactivate(make_uow, cli_ctx, spoke_terminal, role="hub")
    with pytest.raises(NotFound):
        deactivate(make_uow, cli_ctx, "no-such-terminal")
    with make_uow("spoke") as uow:
        assert active_terminal(uow, spoke_terminal) is not None


def test_only_an_administrator_may_deactivate_a_terminal(make_uow, create_user, cli_ctx):
    operator = create_user("carol")
    terminal_id = register(make_uow, cli_ctx)
    with pytest.raises(NotAuthorised):
        deactivate(make_uow, user_ctx(operator), terminal_id)
    with make_uow() as uow:
        assert active_terminal(uow, terminal_id) is not None
