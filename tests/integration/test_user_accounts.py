"""People and their access (21 CFR 11.10(d), (g), 11.100(a), 11.300(a); Annex 11 §12.3):
unique user IDs that are never reused, roles granted and removed with a reason, deactivation."""

from __future__ import annotations

import pytest
from integration_helpers import audit_entries, count_rows, last_audit_entry, outcomes
from support import NOW, PASSWORD, user_ctx

from mes.core.errors import (
    AccountDeactivated,
    InvalidInput,
    LoginRefused,
    MesError,
    NotAuthorised,
    UnknownRole,
    UnknownUser,
    UsernameTaken,
    WeakPassword,
)
from mes.services.users import (
    add_user,
    authenticate,
    deactivate_user,
    find_user,
    list_users,
    set_roles,
)
from mes.store.models import AuditEntry, PasswordHistory, User, UserRole


def add(make_uow, ctx, username="bob", roles=("operator",), password=PASSWORD, **kw) -> str:
    with make_uow() as uow:
        return add_user(
            uow,
            ctx,
            username=username,
            full_name=kw.pop("full_name", "Bob Builder"),
            roles=list(roles),
            password=password,
            **kw,
        )


def roles_of(make_uow, username: str) -> set[str]:
    with make_uow() as uow:
        return set(find_user(uow, username).role_names)


def test_an_administrator_adds_a_user_who_can_then_log_in(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    user_id = add(make_uow, user_ctx(admin), username="Bob", roles=("operator", "qa"))
    with make_uow() as uow:
        user = authenticate(uow, user_ctx(user_id), "bob", PASSWORD)
        assert user.id == user_id
        assert user.username == "bob"
        assert user.full_name == "Bob Builder"
        assert user.role_names == {"operator", "qa"}
        assert user.active
        assert not user.locked
        assert not user.must_change_password
        assert user.created_at == NOW
        assert PASSWORD not in user.password_hash


def test_a_user_added_with_a_temporary_password_must_change_it(make_uow, cli_ctx):
    add(make_uow, cli_ctx, must_change_password=True)
    with make_uow() as uow:
        assert find_user(uow, "bob").must_change_password


def test_a_taken_user_id_is_refused(make_uow, cli_ctx):
    add(make_uow, cli_ctx)
    with pytest.raises(UsernameTaken):
        add(make_uow, cli_ctx, full_name="Another Bob")


def test_a_user_id_differing_only_in_case_or_spaces_is_refused(make_uow, cli_ctx):
    add(make_uow, cli_ctx)
    spellings = ["BOB", "Bob", " bob "]
    tried = outcomes(lambda name: add(make_uow, cli_ctx, username=name), spellings)
    assert tried == dict.fromkeys(spellings, "UsernameTaken")
    assert count_rows(make_uow, User) == 1


def test_a_deactivated_users_id_can_never_be_given_to_anyone_else(make_uow, cli_ctx):
    add(make_uow, cli_ctx)
    with make_uow() as uow:
        deactivate_user(uow, cli_ctx, "bob", "left the company")
    with pytest.raises(UsernameTaken) as caught:
        add(make_uow, cli_ctx, full_name="Bob Newcomer")
    assert "never reused" in caught.value.message


def test_an_invalid_user_id_is_refused(make_uow, cli_ctx):
    invalid = ["b", "1bob", "_bob", "bob smith", "bob!", "bób", "b" * 33, ""]
    tried = outcomes(lambda name: add(make_uow, cli_ctx, username=name), invalid)
    assert tried == dict.fromkeys(invalid, "InvalidUsername")
    assert count_rows(make_uow, User) == 0


def test_user_ids_of_2_to_32_letters_digits_dots_dashes_and_underscores_are_valid(
    make_uow, cli_ctx
):
    valid = ["bo", "b.o_b-2", "b" * 32]
    tried = outcomes(lambda name: add(make_uow, cli_ctx, username=name), valid)
    assert tried == dict.fromkeys(valid, "accepted")


def test_an_unknown_role_is_refused_naming_the_valid_roles(make_uow, cli_ctx):
    with pytest.raises(UnknownRole) as caught:
        add(make_uow, cli_ctx, roles=("operator", "chemist"))
    assert "operator, supervisor, qa, qc, author, admin" in str(caught.value)


def test_a_user_without_a_role_is_refused(make_uow, cli_ctx):
    with pytest.raises(InvalidInput):
        add(make_uow, cli_ctx, roles=())


def test_a_weak_password_is_refused(make_uow, cli_ctx):
    with pytest.raises(WeakPassword) as caught:
        add(make_uow, cli_ctx, password="Password2026!")
    assert "it is a commonly used password" in caught.value.reasons


REFUSED_USERS = {
    "taken user ID": ({"username": "bob"}, "UsernameTaken"),
    "taken user ID in capitals": ({"username": "BOB"}, "UsernameTaken"),
    "invalid user ID": ({"username": "9lives"}, "InvalidUsername"),
    "unknown role": ({"roles": ("operator", "chemist")}, "UnknownRole"),
    "no role": ({"roles": ()}, "InvalidInput"),
    "short password": ({"password": "short-1"}, "WeakPassword"),
    "password with the user ID": ({"password": "carol-is-my-Name-7"}, "WeakPassword"),
    "no full name": ({"full_name": " "}, "InvalidInput"),
}


def test_a_refused_user_leaves_no_trace_in_any_table(make_uow, cli_ctx):
    add(make_uow, cli_ctx)
    tables = (User, UserRole, PasswordHistory, AuditEntry)
    before = {t: count_rows(make_uow, t) for t in tables}

    def attempt(label: str) -> None:
        arguments = {"username": "carol", "full_name": "Carol Tester", **REFUSED_USERS[label][0]}
        try:
            add(make_uow, cli_ctx, **arguments)
        finally:
            assert {t: count_rows(make_uow, t) for t in tables} == before, label

    tried = outcomes(attempt, REFUSED_USERS)
    assert tried == {label: error for label, (_, error) in REFUSED_USERS.items()}


def test_only_an_administrator_may_add_users(make_uow, create_user):
    others = ["operator", "supervisor", "qa", "author"]
    actors = {role: create_user(f"{role}1", roles=[role]) for role in others}
    before = count_rows(make_uow, User)
    tried = outcomes(lambda role: add(make_uow, user_ctx(actors[role])), others)
    assert tried == dict.fromkeys(others, "NotAuthorised")
    assert count_rows(make_uow, User) == before


def test_a_deactivated_administrator_can_no_longer_add_users(make_uow, create_user, cli_ctx):
    admin = create_user("admin1", roles=["admin"])
    with make_uow() as uow:
        deactivate_user(uow, cli_ctx, "admin1", "left the company")
    with pytest.raises(AccountDeactivated):
        add(make_uow, user_ctx(admin))


def test_changing_roles_needs_a_reason(make_uow, create_user, cli_ctx):
    create_user("carol", roles=["operator"])
    for reason in ("", "   "):
        with make_uow() as uow, pytest.raises(InvalidInput) as caught:
            set_roles(uow, cli_ctx, "carol", ["qa"], reason)
        assert "reason" in caught.value.message
    assert roles_of(make_uow, "carol") == {"operator"}


def test_a_role_change_is_audited_with_old_and_new_roles_and_the_reason(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    create_user("carol", roles=["operator"])
    with make_uow() as uow:
        set_roles(uow, user_ctx(admin), "Carol", ["operator", "supervisor"], " promoted ")
    assert roles_of(make_uow, "carol") == {"operator", "supervisor"}
    entry = last_audit_entry(make_uow)
    assert entry.action == "roles changed"
    assert (entry.record_type, entry.record_id) == ("user", "carol")
    assert entry.actor_id == admin
    assert entry.actor_username == "admin1"
    assert entry.old["roles"] == ["operator"]
    assert entry.new["roles"] == ["operator", "supervisor"]
    assert entry.reason == "promoted"


def test_setting_the_same_roles_again_is_refused_and_not_audited(make_uow, create_user, cli_ctx):
    create_user("carol", roles=["operator"])
    before = count_rows(make_uow, AuditEntry)
    with make_uow() as uow, pytest.raises(InvalidInput):
        set_roles(uow, cli_ctx, "carol", ["operator"], "no change")
    assert count_rows(make_uow, AuditEntry) == before


def test_roles_cannot_be_emptied_or_set_to_an_unknown_role(make_uow, create_user, cli_ctx):
    create_user("carol", roles=["operator"])
    with make_uow() as uow, pytest.raises(InvalidInput):
        set_roles(uow, cli_ctx, "carol", [], "remove everything")
    with make_uow() as uow, pytest.raises(UnknownRole):
        set_roles(uow, cli_ctx, "carol", ["chemist"], "new job")
    assert roles_of(make_uow, "carol") == {"operator"}


def test_an_administrator_cannot_remove_their_own_administrator_role(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    with make_uow() as uow, pytest.raises(NotAuthorised):
        set_roles(uow, user_ctx(admin), "admin1", ["qa"], "moving to QA")
    assert roles_of(make_uow, "admin1") == {"admin"}


def test_only_an_administrator_may_change_roles(make_uow, create_user):
    qa = create_user("quinn", roles=["qa"])
    create_user("carol", roles=["operator"])
    with make_uow() as uow, pytest.raises(NotAuthorised):
        set_roles(uow, user_ctx(qa), "carol", ["qa"], "promote")
    assert roles_of(make_uow, "carol") == {"operator"}


def test_changing_the_roles_of_an_unknown_user_is_refused(make_uow, cli_ctx):
    with make_uow() as uow, pytest.raises(UnknownUser):
        set_roles(uow, cli_ctx, "nobody", ["qa"], "promote")


def test_deactivation_needs_a_reason(make_uow, create_user, cli_ctx):
    create_user("carol")
    with make_uow() as uow, pytest.raises(InvalidInput):
        deactivate_user(uow, cli_ctx, "carol", "  ")
    with make_uow() as uow:
        assert find_user(uow, "carol").active


def test_a_deactivated_user_cannot_log_in_even_with_the_right_password(
    make_uow, create_user, cli_ctx
):
    user_id = create_user("carol")
    with make_uow() as uow:
        deactivate_user(uow, cli_ctx, "carol", "left the company")
    with make_uow() as uow, pytest.raises(LoginRefused):  # the same words as a wrong password
        authenticate(uow, user_ctx(user_id), "carol", PASSWORD)


def test_deactivation_is_audited_with_the_reason(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    create_user("carol")
    with make_uow() as uow:
        deactivate_user(uow, user_ctx(admin), "carol", "left the company")
    entry = last_audit_entry(make_uow)
    assert entry.action == "user deactivated"
    assert entry.actor_username == "admin1"
    assert entry.old["active"] is True
    assert entry.new["active"] is False
    assert entry.reason == "left the company"


def test_an_administrator_cannot_deactivate_their_own_account(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    with make_uow() as uow, pytest.raises(NotAuthorised):
        deactivate_user(uow, user_ctx(admin), "admin1", "testing")
    with make_uow() as uow:
        assert find_user(uow, "admin1").active


def test_deactivating_twice_is_refused(make_uow, create_user, cli_ctx):
    create_user("carol")
    with make_uow() as uow:
        deactivate_user(uow, cli_ctx, "carol", "left the company")
    with make_uow() as uow, pytest.raises(InvalidInput):
        deactivate_user(uow, cli_ctx, "carol", "again")


def test_only_an_administrator_may_deactivate_users(make_uow, create_user):
    supervisor = create_user("sam", roles=["supervisor"])
    create_user("carol")
    with make_uow() as uow, pytest.raises(NotAuthorised):
        deactivate_user(uow, user_ctx(supervisor), "carol", "left")


def test_deactivated_users_stay_listed_after_the_active_ones(make_uow, create_user, cli_ctx):
    for name in ("carol", "dave", "erin"):
        create_user(name)
    with make_uow() as uow:
        deactivate_user(uow, cli_ctx, "carol", "left the company")
    with make_uow() as uow:
        listed = [(u.username, u.active) for u in list_users(uow)]
    assert listed == [("dave", True), ("erin", True), ("carol", False)]


def test_no_refusal_of_user_management_writes_an_audit_entry(make_uow, create_user, cli_ctx):
    operator = create_user("carol")
    before = audit_entries(make_uow)
    refusals = [
        lambda uow: set_roles(uow, user_ctx(operator), "carol", ["admin"], "self-promotion"),
        lambda uow: deactivate_user(uow, cli_ctx, "nobody", "no such user"),
        lambda uow: deactivate_user(uow, cli_ctx, "carol", ""),
    ]
    for refuse in refusals:
        with make_uow() as uow, pytest.raises(MesError):
            refuse(uow)
    assert [e.seq for e in audit_entries(make_uow)] == [e.seq for e in before]
