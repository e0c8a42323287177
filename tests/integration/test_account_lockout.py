"""Transaction safeguards (21 CFR 11.300(d)): five consecutive failed logins or signatures
lock the account, the lockout is a security event in the audit trail, and only an
administrator unlocks it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from integration_helpers import attest, audit_entries, count_rows, sign_phase
from support import PASSWORD, user_ctx

from mes.core.errors import (
    AccountLocked,
    AuthenticationFailed,
    InvalidInput,
    LoginRefused,
    NotAuthorised,
)
from mes.services.users import authenticate, find_user, unlock_user
from mes.store.models import AuditEntry

WRONG = "not-the-Password-9"


def fail_login(make_uow, user_id: str, username: str = "carol") -> None:
    with make_uow() as uow:
        authenticate(uow, user_ctx(user_id), username, WRONG)


def fail_signature(make_uow, user_id: str) -> None:
    with make_uow() as uow:
        sign_phase(
            uow, user_ctx(user_id), password=WRONG, record={"value": 37}, record_id="B-1/thaw"
        )


def state_of(make_uow, username: str = "carol") -> tuple[int, bool]:
    with make_uow() as uow:
        user = find_user(uow, username)
        return user.failed_attempts, user.locked


def test_five_wrong_passwords_lock_the_account_on_the_fifth(make_uow, create_user):
    user_id = create_user("carol")
    for attempt in range(1, 5):
        with pytest.raises(LoginRefused):
            fail_login(make_uow, user_id)
        assert state_of(make_uow) == (attempt, False)
    # The lock is not announced at login (it would tell a guesser the user ID exists); the
    # common words say what to do if it persists.
    with pytest.raises(LoginRefused) as caught:
        fail_login(make_uow, user_id)
    assert "or the account is locked" in caught.value.message
    assert state_of(make_uow) == (5, True)


def test_the_lockout_is_a_security_event_in_the_audit_trail(make_uow, create_user):
    user_id = create_user("carol")
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            fail_login(make_uow, user_id)
    entries = audit_entries(make_uow)
    failures = [e for e in entries if e.action == "login failed"]
    assert [e.new["consecutive_failures"] for e in failures] == [1, 2, 3, 4, 5]
    assert all(e.kind == "security" and e.record_id == "carol" for e in failures)
    [locked] = [e for e in entries if e.action == "account locked"]
    assert locked.kind == "security"
    assert locked.record_id == "carol"
    assert locked.new == {"locked": True, "consecutive_failures": 5}
    assert locked.seq == entries[-1].seq


def test_the_right_password_is_refused_while_the_account_is_locked(make_uow, create_user):
    user_id = create_user("carol")
    lock(make_uow, user_id)
    before = count_rows(make_uow, AuditEntry)
    with make_uow() as uow, pytest.raises(LoginRefused):
        authenticate(uow, user_ctx(user_id), "carol", PASSWORD)
    [refused] = audit_entries(make_uow)[before:]  # the true reason is recorded
    assert (refused.action, refused.record_id, refused.reason) == (
        "login refused",
        "carol",
        "account locked",
    )
    assert state_of(make_uow) == (5, True)


def lock(make_uow, user_id: str) -> None:
    for _ in range(5):
        with pytest.raises(LoginRefused):
            fail_login(make_uow, user_id)
    assert state_of(make_uow) == (5, True)


def test_an_administrator_unlocks_the_account_and_the_user_can_log_in_again(make_uow, create_user):
    admin = create_user("admin1", roles=["admin"])
    user_id = create_user("carol")
    lock(make_uow, user_id)
    with make_uow() as uow:
        unlock_user(uow, user_ctx(admin), "carol", " identity confirmed by phone ")
    entry = audit_entries(make_uow)[-1]
    assert entry.action == "account unlocked"
    assert entry.kind == "security"
    assert entry.actor_username == "admin1"
    assert entry.old["locked"] is True
    assert entry.new["locked"] is False
    assert entry.reason == "identity confirmed by phone"
    assert state_of(make_uow) == (0, False)
    with make_uow() as uow:
        assert authenticate(uow, user_ctx(user_id), "carol", PASSWORD).id == user_id


def test_only_an_administrator_may_unlock_an_account(make_uow, create_user):
    supervisor = create_user("sam", roles=["supervisor"])
    user_id = create_user("carol")
    lock(make_uow, user_id)
    with make_uow() as uow, pytest.raises(NotAuthorised):
        unlock_user(uow, user_ctx(supervisor), "carol", "I know her")
    assert state_of(make_uow) == (5, True)


def test_unlocking_an_account_that_is_not_locked_is_refused(make_uow, create_user, cli_ctx):
    create_user("carol")
    with make_uow() as uow, pytest.raises(InvalidInput):
        unlock_user(uow, cli_ctx, "carol")


def test_a_successful_login_resets_the_count_of_failures(make_uow, create_user):
    user_id = create_user("carol")
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            fail_login(make_uow, user_id)
    with make_uow() as uow:
        authenticate(uow, user_ctx(user_id), "carol", PASSWORD)
    assert state_of(make_uow) == (0, False)
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            fail_login(make_uow, user_id)
    assert state_of(make_uow) == (4, False)


def test_failed_signatures_count_toward_the_same_lockout_as_failed_logins(make_uow, create_user):
    user_id = create_user("carol")
    attest(make_uow, user_id, "carol")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            fail_login(make_uow, user_id)
    with pytest.raises(AuthenticationFailed):
        fail_signature(make_uow, user_id)
    assert state_of(make_uow) == (4, False)
    with pytest.raises(AccountLocked):
        fail_signature(make_uow, user_id)
    assert state_of(make_uow) == (5, True)
    actions = [e.action for e in audit_entries(make_uow)]
    assert actions[-3:] == ["signature failed", "signature failed", "account locked"]


def test_five_failed_signatures_lock_the_account_and_then_nobody_can_sign_as_the_user(
    make_uow, create_user
):
    user_id = create_user("carol")
    attest(make_uow, user_id, "carol")
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            fail_signature(make_uow, user_id)
    with pytest.raises(AccountLocked):
        fail_signature(make_uow, user_id)
    with make_uow() as uow, pytest.raises(AccountLocked):
        sign_phase(uow, user_ctx(user_id), record={"value": 37}, record_id="B-1/thaw")


def test_an_unknown_user_id_is_refused_like_a_wrong_password_and_locks_nobody(
    make_uow, create_user
):
    user_id = create_user("carol")
    before = count_rows(make_uow, AuditEntry)
    with make_uow() as uow, pytest.raises(LoginRefused) as wrong_password:
        authenticate(uow, user_ctx(user_id), "carol", WRONG)
    with make_uow() as uow, pytest.raises(LoginRefused) as caught:
        authenticate(uow, user_ctx(user_id), "mallory", PASSWORD)
    assert str(caught.value) == str(wrong_password.value)
    # Recorded (without the text typed as the user ID, which may be a password).
    refused = audit_entries(make_uow)[-1]
    assert (refused.action, refused.reason) == ("login refused", "unknown user ID")
    assert "mallory" not in str(refused.body())
    assert count_rows(make_uow, AuditEntry) == before + 2
    assert state_of(make_uow) == (1, False)


def test_simultaneous_failed_logins_are_each_counted(make_uow, create_user):
    # Parallel guesses must not slip past the lockout through lost updates of the counter.
    user_id = create_user("carol")
    attempts = 4
    start = threading.Barrier(attempts)

    def guess() -> str:
        start.wait(timeout=30)
        with make_uow() as uow:
            try:
                authenticate(uow, user_ctx(user_id), "carol", WRONG)
            except AuthenticationFailed as refusal:
                return type(refusal).__name__
        return "accepted"

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(guess) for _ in range(attempts)]]
    assert results == ["LoginRefused"] * attempts
    assert state_of(make_uow) == (attempts, False)
    counted = [
        e.new["consecutive_failures"] for e in audit_entries(make_uow) if e.action == "login failed"
    ]
    assert sorted(counted) == list(range(1, attempts + 1))
