"""The inactivity lock (21 CFR 11.10(d)) and the continuous signing session (11.200(a)(1))."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from support import PASSWORD
from web_helpers import (
    alerts,
    client_of,
    location,
    lock,
    login,
    logout,
    post_form,
    query_of,
    sign_attestation,
    text,
)

IDLE = 1.5  # seconds, longer than the 1 s timeout of these apps


@pytest.fixture
def quick(make_app):
    """A hub whose sessions lock after one second without a request."""
    return client_of(make_app(timeout=1))


def _unlock(client, password, next_page="/account"):
    return post_form(
        client,
        "/unlock",
        {"password": password, "next": next_page},
        page=f"/unlock?next={next_page}",
    )


def test_an_idle_session_locks_and_the_password_brings_the_user_back(quick, create_user, user_row):
    create_user("alice")
    login(quick, "alice")
    assert quick.get("/account").status_code == 200
    time.sleep(IDLE)
    locked = quick.get("/account")
    assert location(locked).startswith("/unlock?")
    assert query_of(locked) == {"next": ["/account"]}
    # Still locked, however long the user waits or whatever page is asked for.
    assert location(quick.get("/")).startswith("/unlock?")
    json = quick.get("/account", headers={"Accept": "application/json"})
    assert json.status_code == 401
    assert json.json["error"] == "Session locked"
    page = text(quick.get("/unlock?next=/account"))
    assert "Session locked" in page and "Alice Tester" in page

    wrong = _unlock(quick, "not-the-password")
    assert wrong.status_code == 401
    assert alerts(wrong) == [
        "The user ID or password is wrong. Try again; 4 more failed attempts will lock the account."
    ]
    assert user_row("alice").failed_attempts == 1
    assert location(quick.get("/account")).startswith("/unlock?")

    right = _unlock(quick, PASSWORD)
    assert location(right) == "/account"
    assert quick.get("/account").status_code == 200
    assert user_row("alice").failed_attempts == 0


def test_requests_keep_the_session_alive(quick, create_user):
    create_user("alice")
    login(quick, "alice")
    for _ in range(3):
        time.sleep(0.4)
        assert quick.get("/account").status_code == 200


def test_the_first_signature_after_an_unlock_needs_the_user_id_again(
    quick, create_user, audit_entries
):
    alice = create_user("alice")
    login(quick, "alice")
    dialog = text(quick.get("/account"))
    assert 'name="esign_username"' in dialog
    assert location(sign_attestation(quick, username="alice")) == "/account"
    # Same continuous session: the password alone signs.
    assert location(sign_attestation(quick)) == "/account"
    assert len(audit_entries(kind="signature", record_id=alice)) == 2

    time.sleep(IDLE)
    assert location(quick.get("/account")).startswith("/unlock?")
    assert location(_unlock(quick, PASSWORD)) == "/account"
    refused = sign_attestation(quick)
    assert refused.status_code == 400
    assert alerts(refused) == [
        "The first signature of a session needs your user ID and password. "
        "Type your user ID as well as your password, or scan your badge and type your PIN."
    ]
    assert len(audit_entries(kind="signature", record_id=alice)) == 2
    assert location(sign_attestation(quick, username="alice")) == "/account"
    assert len(audit_entries(kind="signature", record_id=alice)) == 3


def test_logging_out_ends_the_continuous_signing_session(client, create_user, audit_entries):
    alice = create_user("alice")
    login(client, "alice")
    assert location(sign_attestation(client, username="alice")) == "/account"
    logout(client)
    login(client, "alice")
    assert sign_attestation(client).status_code == 400
    assert len(audit_entries(kind="signature", record_id=alice)) == 1


def test_the_lock_button_locks_at_once_and_ends_the_signing_session(
    client, create_user, audit_entries
):
    alice = create_user("alice")
    login(client, "alice")
    assert location(sign_attestation(client, username="alice")) == "/account"
    locked = lock(client, "/account")
    assert query_of(locked) == {"next": ["/account"]}
    assert location(client.get("/account")).startswith("/unlock?")
    assert location(_unlock(client, PASSWORD)) == "/account"
    assert sign_attestation(client).status_code == 400
    assert len(audit_entries(kind="signature", record_id=alice)) == 1


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example"])
def test_the_unlock_screen_never_sends_the_user_to_another_site(client, create_user, target):
    create_user("alice")
    login(client, "alice")
    assert query_of(lock(client, target)) == {}
    response = _unlock(client, PASSWORD, next_page=target)
    assert location(response) == "/"


def test_five_wrong_passwords_at_the_unlock_screen_lock_the_account_and_log_out(
    client, create_user, user_row
):
    create_user("alice")
    login(client, "alice")
    lock(client)
    for _ in range(4):
        assert _unlock(client, "not-the-password").status_code == 401
    fifth = _unlock(client, "not-the-password")
    assert location(fifth) == "/login"
    assert "The account alice is now locked after 5 failed attempts." in text(client.get("/login"))
    assert user_row("alice").locked
    assert location(client.get("/account")).startswith("/login")


def test_an_unlocked_session_does_not_need_the_unlock_screen(client, create_user):
    create_user("alice")
    login(client, "alice")
    assert location(client.get("/unlock?next=/account")) == "/account"


def test_the_lock_screen_runs_no_idle_timer_of_its_own(client, create_user):
    create_user("alice")
    login(client, "alice")
    assert 'data-idle-seconds="300"' in text(client.get("/account"))
    lock(client, "/account")
    lock_screen = text(client.get("/unlock?next=/account"))
    assert "Session locked" in lock_screen
    assert "data-idle-seconds" not in lock_screen  # else it would lock itself, again and again
    assert "data-idle-seconds" not in text(client.get("/login"))


def test_a_lock_request_from_an_already_locked_page_does_not_nest_the_return_path(
    quick, create_user
):
    create_user("alice")
    login(quick, "alice")
    quick.get("/account")
    time.sleep(IDLE)
    # The page's idle timer fires at about the moment the server's lock does.
    response = lock(quick, "/account")
    assert location(response).startswith("/unlock?")
    assert query_of(response) == {"next": ["/account"]}
    assert location(_unlock(quick, PASSWORD)) == "/account"
    assert quick.get("/account").status_code == 200


def test_a_user_who_must_change_the_password_can_unlock_a_locked_session(
    quick, create_user, make_uow, cli_ctx
):
    from mes.services.users import reset_password

    create_user("alice")
    # The one-time password expires 72 h after it is issued, and the web app runs on the real
    # clock: issue it now, not at the fixed test time.
    with make_uow() as uow:
        temporary = reset_password(uow, replace(cli_ctx, at=datetime.now(UTC)), "alice")
    login(quick, "alice", temporary)
    assert location(quick.get("/account")).startswith("/account/password?")
    time.sleep(IDLE)  # left on the change-password page
    locked = quick.get("/account/password")
    assert location(locked).startswith("/unlock?")
    lock_screen = quick.get(location(locked))
    assert lock_screen.status_code == 200
    assert "Session locked" in text(lock_screen)
    unlocked = _unlock(quick, temporary, next_page="/account/password")
    assert location(unlocked) == "/account/password"
    assert quick.get("/account/password").status_code == 200
    assert location(quick.get("/account")).startswith("/account/password?")
