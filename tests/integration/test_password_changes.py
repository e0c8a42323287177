"""Password resets, changes, history and expiry (21 CFR 11.300(b), 11.200(a)(2)-(3))."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
from integration_helpers import attest, audit_entries, sign_phase
from support import NOW, PASSWORD, user_ctx

from mes.core.errors import (
    AccountDeactivated,
    AuthenticationFailed,
    InvalidInput,
    NotAuthorised,
    PasswordChangeRequired,
    WeakPassword,
)
from mes.core.passwords import must_change_password
from mes.services.context import acting_user
from mes.services.users import (
    authenticate,
    change_password,
    deactivate_user,
    find_user,
    reset_password,
)

NEW = "fresh-Quartz-41-lantern"


def reset(make_uow, ctx, username: str = "carol") -> str:
    with make_uow() as uow:
        return reset_password(uow, ctx, username)


def login(make_uow, user_id: str, password: str, username: str = "carol"):
    with make_uow() as uow:
        return authenticate(uow, user_ctx(user_id), username, password)


def change(make_uow, user_id: str, current: str, new: str) -> None:
    with make_uow() as uow:
        change_password(uow, user_ctx(user_id), current, new)


def test_a_reset_gives_a_temporary_password_that_must_be_changed_at_login(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    user_id = create_user("carol")
    temporary = reset(make_uow, user_ctx(admin))
    assert temporary != PASSWORD
    with pytest.raises(AuthenticationFailed):
        login(make_uow, user_id, PASSWORD)
    user = login(make_uow, user_id, temporary)
    assert user.must_change_password


def test_the_temporary_password_serves_only_until_the_user_changes_it(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    user_id = create_user("carol")
    temporary = reset(make_uow, user_ctx(admin))
    login(make_uow, user_id, temporary)
    change(make_uow, user_id, temporary, NEW)
    with make_uow() as uow:
        assert not find_user(uow, "carol").must_change_password
    with pytest.raises(AuthenticationFailed):
        login(make_uow, user_id, temporary)
    assert not login(make_uow, user_id, NEW).must_change_password


def test_the_temporary_password_cannot_be_kept_as_the_new_password(make_uow, create_user):
    user_id = create_user("carol")
    admin = create_user("admin1", roles=["admin"])
    temporary = reset(make_uow, user_ctx(admin))
    with pytest.raises(InvalidInput):
        change(make_uow, user_id, temporary, temporary)
    with make_uow() as uow:
        assert find_user(uow, "carol").must_change_password


def test_a_user_who_must_change_the_password_cannot_sign(make_uow, create_user, cli_ctx):
    user_id = create_user("carol")
    attest(make_uow, user_id, "carol")
    temporary = reset(make_uow, cli_ctx)
    with make_uow() as uow, pytest.raises(PasswordChangeRequired):
        sign_phase(
            uow,
            user_ctx(user_id),
            password=temporary,
            username="carol",
            first=True,
            record={"value": 37},
            record_id="B-1/thaw",
        )


def test_a_reset_is_a_security_event_that_never_records_the_password(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    create_user("carol")
    temporary = reset(make_uow, user_ctx(admin))
    entry = audit_entries(make_uow)[-1]
    assert entry.action == "password reset"
    assert entry.kind == "security"
    assert entry.actor_username == "admin1"
    assert entry.record_id == "carol"
    assert entry.new == {"must_change_password": True}
    everything = json.dumps([e.body() for e in audit_entries(make_uow)])
    assert temporary not in everything
    assert PASSWORD not in everything
    assert "$argon2" not in everything


def test_only_an_administrator_may_reset_a_password(make_uow, create_user):
    qa = create_user("quinn", roles=["qa"])
    user_id = create_user("carol")
    with pytest.raises(NotAuthorised):
        reset(make_uow, user_ctx(qa))
    assert not login(make_uow, user_id, PASSWORD).must_change_password


def test_a_deactivated_users_password_cannot_be_reset(make_uow, create_user, cli_ctx):
    create_user("carol")
    with make_uow() as uow:
        deactivate_user(uow, cli_ctx, "carol", "left the company")
    with pytest.raises(AccountDeactivated):
        reset(make_uow, cli_ctx)


def test_a_password_change_needs_the_current_password_and_counts_a_wrong_one(make_uow, create_user):
    user_id = create_user("carol")
    with pytest.raises(AuthenticationFailed):
        change(make_uow, user_id, "not-the-Password-9", NEW)
    with make_uow() as uow:
        assert find_user(uow, "carol").failed_attempts == 1
    assert audit_entries(make_uow)[-1].action == "password change failed"
    login(make_uow, user_id, PASSWORD)


def test_a_weak_new_password_is_refused_and_the_old_one_still_works(make_uow, create_user):
    user_id = create_user("carol")
    with pytest.raises(WeakPassword):
        change(make_uow, user_id, PASSWORD, "Carol-2026-spring")
    login(make_uow, user_id, PASSWORD)


def test_a_password_change_is_audited_without_the_password(make_uow, create_user):
    user_id = create_user("carol")
    change(make_uow, user_id, PASSWORD, NEW)
    entry = audit_entries(make_uow)[-1]
    assert entry.action == "password changed"
    assert entry.kind == "security"
    assert entry.actor_id == user_id
    assert entry.old is None
    assert entry.new is None


def test_none_of_the_last_five_passwords_may_be_reused_but_the_sixth_may(make_uow, create_user):
    passwords = [PASSWORD] + [f"rotation-Quartz-{n}-lantern" for n in range(1, 6)]
    user_id = create_user("carol", password=passwords[0])
    for previous, following in itertools.pairwise(passwords[:5]):
        change(make_uow, user_id, previous, following)
    current = passwords[4]
    for reused in passwords[:4]:  # the current one is refused as well, see below
        with pytest.raises(WeakPassword) as caught:
            change(make_uow, user_id, current, reused)
        assert caught.value.reasons == ["it was one of your last 5 passwords"]
    with pytest.raises(WeakPassword):
        change(make_uow, user_id, current, current)
    change(make_uow, user_id, current, passwords[5])
    # passwords[0] is now the sixth most recent: allowed again.
    change(make_uow, user_id, passwords[5], passwords[0])
    login(make_uow, user_id, passwords[0])


def test_an_expired_password_must_be_changed_before_the_user_can_act(make_uow, create_user):
    user_id = create_user("carol")
    day_90, day_91 = NOW + timedelta(days=90), NOW + timedelta(days=91)
    with make_uow(expiry_days=90) as uow:
        user = authenticate(uow, user_ctx(user_id, at=day_90), "carol", PASSWORD)
        assert not must_change_password(
            user.must_change_password, user.password_changed_at, day_90, uow.site.password_policy
        )
    with make_uow(expiry_days=90) as uow:
        user = authenticate(uow, user_ctx(user_id, at=day_91), "carol", PASSWORD)
        assert must_change_password(
            user.must_change_password, user.password_changed_at, day_91, uow.site.password_policy
        )
    with make_uow(expiry_days=90) as uow, pytest.raises(PasswordChangeRequired):
        acting_user(uow, user_ctx(user_id, at=day_91))
    with make_uow(expiry_days=90) as uow:
        change_password(uow, user_ctx(user_id, at=day_91), PASSWORD, NEW)
    with make_uow(expiry_days=90) as uow:
        assert acting_user(uow, user_ctx(user_id, at=day_91)).username == "carol"


def test_a_changed_password_restarts_the_expiry_period(make_uow, create_user):
    user_id = create_user("carol")
    later = NOW + timedelta(days=60)
    with make_uow(expiry_days=90) as uow:
        change_password(uow, user_ctx(user_id, at=later), PASSWORD, NEW)
    with make_uow(expiry_days=90) as uow:
        user = authenticate(uow, user_ctx(user_id, at=NOW + timedelta(days=120)), "carol", NEW)
        assert not user.must_change_password


def test_without_an_expiry_policy_an_old_password_still_works(make_uow, create_user):
    user_id = create_user("carol")
    with make_uow() as uow:
        user = authenticate(uow, user_ctx(user_id, at=NOW + timedelta(days=900)), "carol", PASSWORD)
        assert not user.must_change_password


def test_a_one_time_password_expires_after_72_hours(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    user_id = create_user("carol")
    temporary = reset(make_uow, user_ctx(admin))
    with make_uow() as uow:
        assert authenticate(
            uow, user_ctx(user_id, at=NOW + timedelta(hours=72)), "carol", temporary
        )
    with (
        make_uow() as uow,
        pytest.raises(PasswordChangeRequired, match="one-time password of carol has expired"),
    ):
        authenticate(
            uow, user_ctx(user_id, at=NOW + timedelta(hours=72, seconds=1)), "carol", temporary
        )
