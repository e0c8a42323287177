"""Training records through the services (21 CFR 11.10(i)): recorded and withdrawn with an
audit entry, never edited, and judged on the site's date at the moment of use."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from integration_helpers import audit_entries, count_rows, outcomes
from support import NOW, user_ctx

from mes.core.errors import InvalidInput, NotAuthorised, UnknownUser
from mes.services.training import is_qualified, record_training, training_records, withdraw_training
from mes.services.users import find_user
from mes.store.models import AuditEntry, TrainingRecord

SOP = "SOP-CT-014 Aseptic gowning"
TODAY = NOW.date()


def record(make_uow, ctx, username="carol", qualified_on=TODAY, expires_on=None, procedure=SOP):
    with make_uow() as uow:
        return record_training(
            uow,
            ctx,
            username=username,
            procedure=procedure,
            qualified_on=qualified_on,
            expires_on=expires_on,
        )


def withdraw(make_uow, ctx, reason="failed requalification", username="carol"):
    with make_uow() as uow:
        withdraw_training(uow, ctx, username=username, procedure=SOP, reason=reason)


def qualified(make_uow, at=NOW, username="carol", procedure=SOP) -> bool:
    with make_uow() as uow:
        return is_qualified(uow, find_user(uow, username), procedure, user_ctx("x", at=at))


def test_a_supervisor_records_training_and_the_user_is_qualified(make_uow, create_user):
    supervisor = create_user("sam", roles=["supervisor"])
    create_user("carol")
    assert not qualified(make_uow)
    record(make_uow, user_ctx(supervisor), expires_on=TODAY + timedelta(days=365))
    assert qualified(make_uow)
    assert not qualified(make_uow, procedure="SOP-CT-015 Cell counting")
    entry = audit_entries(make_uow)[-1]
    assert entry.action == "training recorded"
    assert entry.actor_username == "sam"
    assert entry.record_id == f"carol/{SOP}"
    assert entry.new == {"qualified_on": "2026-11-21", "expires_on": "2027-11-21"}


def test_supervisors_qa_and_administrators_may_record_training_and_no_one_else(
    make_uow, create_user
):
    roles = ["operator", "author", "supervisor", "qa", "admin"]
    actors = {role: create_user(f"{role}1", roles=[role]) for role in roles}
    create_user("carol")
    tried = outcomes(lambda role: record(make_uow, user_ctx(actors[role])), roles)
    assert tried == {
        "operator": "NotAuthorised",
        "author": "NotAuthorised",
        "supervisor": "accepted",
        "qa": "accepted",
        "admin": "accepted",
    }
    assert count_rows(make_uow, TrainingRecord) == 3


def test_an_operator_may_not_record_their_own_training(make_uow, create_user):
    operator = create_user("carol")
    with pytest.raises(NotAuthorised):
        record(make_uow, user_ctx(operator))
    assert not qualified(make_uow)


def test_an_expiry_before_the_qualification_date_is_refused_and_nothing_written(
    make_uow, create_user, cli_ctx
):
    create_user("carol")
    entries = count_rows(make_uow, AuditEntry)
    with pytest.raises(InvalidInput):
        record(make_uow, cli_ctx, expires_on=TODAY - timedelta(days=1))
    assert count_rows(make_uow, TrainingRecord) == 0
    assert count_rows(make_uow, AuditEntry) == entries


def test_training_for_an_unknown_user_is_refused(make_uow, cli_ctx):
    with pytest.raises(UnknownUser):
        record(make_uow, cli_ctx, username="nobody")


def test_a_procedure_name_of_1_to_200_characters_is_required(make_uow, create_user, cli_ctx):
    create_user("carol")
    names = ["", "   ", "x" * 201]
    tried = outcomes(lambda name: record(make_uow, cli_ctx, procedure=name), names)
    assert tried == dict.fromkeys(names, "InvalidInput")
    assert count_rows(make_uow, TrainingRecord) == 0


def test_training_starts_on_its_qualification_date(make_uow, create_user, cli_ctx):
    create_user("carol")
    record(make_uow, cli_ctx, qualified_on=TODAY + timedelta(days=7))
    assert not qualified(make_uow)
    assert qualified(make_uow, at=NOW + timedelta(days=7))


def test_training_holds_through_its_expiry_date_and_not_after(make_uow, create_user, cli_ctx):
    create_user("carol")
    record(make_uow, cli_ctx, expires_on=TODAY + timedelta(days=30))
    last_day = NOW + timedelta(days=30)
    assert qualified(make_uow, at=last_day.replace(hour=23, minute=59))
    assert not qualified(make_uow, at=last_day + timedelta(days=1))


def test_a_withdrawal_ends_the_qualification_and_is_audited_with_the_reason(make_uow, create_user):
    supervisor = create_user("sam", roles=["supervisor"])
    create_user("carol")
    record(make_uow, user_ctx(supervisor))
    withdraw(make_uow, user_ctx(supervisor, at=NOW + timedelta(hours=1)))
    assert not qualified(make_uow, at=NOW + timedelta(hours=2))
    entry = audit_entries(make_uow)[-1]
    assert entry.action == "training withdrawn"
    assert entry.old == {"qualified": True}
    assert entry.new == {"qualified": False}
    assert entry.reason == "failed requalification"


def test_a_withdrawal_keeps_the_earlier_record(make_uow, create_user, cli_ctx):
    create_user("carol")
    record(make_uow, cli_ctx)
    later = replace(cli_ctx, at=NOW + timedelta(hours=1))
    withdraw(make_uow, later)
    with make_uow() as uow:
        history = training_records(uow, find_user(uow, "carol"))
    assert [r.withdrawn for r in history] == [False, True]
    assert history[0].qualified_on == TODAY


def test_a_withdrawal_needs_a_reason(make_uow, create_user, cli_ctx):
    create_user("carol")
    record(make_uow, cli_ctx)
    with pytest.raises(InvalidInput):
        withdraw(make_uow, replace(cli_ctx, at=NOW + timedelta(hours=1)), reason=" ")
    assert qualified(make_uow, at=NOW + timedelta(hours=2))


def test_withdrawing_a_qualification_the_user_does_not_hold_is_refused(
    make_uow, create_user, cli_ctx
):
    create_user("carol")
    with pytest.raises(InvalidInput):
        withdraw(make_uow, cli_ctx)
    assert count_rows(make_uow, TrainingRecord) == 0


def test_a_renewal_after_a_withdrawal_qualifies_again(make_uow, create_user, cli_ctx):
    create_user("carol")
    record(make_uow, cli_ctx)
    withdraw(make_uow, replace(cli_ctx, at=NOW + timedelta(hours=1)))
    record(
        make_uow,
        replace(cli_ctx, at=NOW + timedelta(days=2)),
        qualified_on=TODAY + timedelta(days=2),
    )
    assert not qualified(make_uow, at=NOW + timedelta(days=1))
    assert qualified(make_uow, at=NOW + timedelta(days=2))


def test_qualification_is_judged_on_the_sites_calendar_date(make_uow, create_user, cli_ctx):
    # The test site is in Europe/London: in summer 23:30 UTC is already the next day there.
    create_user("carol")
    record(make_uow, cli_ctx, qualified_on=date(2027, 7, 2))
    assert not qualified(make_uow, at=NOW.replace(year=2027, month=7, day=1, hour=22, minute=30))
    assert qualified(make_uow, at=NOW.replace(year=2027, month=7, day=1, hour=23, minute=30))
