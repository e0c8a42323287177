"""Logging in and out: 21 CFR 11.10(d), 11.300(d) lockout, CSRF and the session cookie."""

from __future__ import annotations

import pytest
from web_helpers import (
    alerts,
    client_of,
    csrf_token,
    location,
    logged_in_user,
    login,
    logout,
    post_form,
    sign_attestation,
    text,
)

from mes.services.users import deactivate_user

WRONG = "not-the-right-password"
# Every refused login gets these words, whatever the true reason (which the audit trail records).
REFUSED = [
    "User ID or password not accepted, or the account is locked. "
    "Try again; if this persists, ask an administrator."
]


def test_a_wrong_password_is_refused_with_a_readable_message_and_no_session(client, create_user):
    create_user("alice")
    response = login(client, "alice", WRONG)
    assert response.status_code == 401
    assert alerts(response) == REFUSED
    assert logged_in_user(client) is None
    assert location(client.get("/account")).startswith("/login")


def test_an_unknown_user_id_gets_exactly_the_message_of_a_wrong_password(client, create_user):
    create_user("alice")
    wrong_password = login(client, "alice", WRONG)
    unknown_user = login(client, "nobody", WRONG)
    assert unknown_user.status_code == wrong_password.status_code == 401
    assert alerts(unknown_user) == alerts(wrong_password)
    assert logged_in_user(client) is None


def test_user_ids_are_not_case_sensitive_at_login(client, create_user):
    alice = create_user("alice")
    assert location(login(client, " Alice ")) == "/"
    assert logged_in_user(client) == alice


def test_the_fifth_wrong_password_in_a_row_locks_the_account(
    client, create_user, user_row, audit_entries
):
    create_user("alice")
    for _ in range(4):
        assert login(client, "alice", WRONG).status_code == 401
    fifth = login(client, "alice", WRONG)
    assert fifth.status_code == 401
    assert alerts(fifth) == REFUSED  # the lock is not announced to whoever is guessing
    assert user_row("alice").locked
    assert [e.action for e in audit_entries(record_id="alice", kind="security")][-2:] == [
        "login failed",
        "account locked",
    ]
    correct = login(client, "alice")
    assert correct.status_code == 401
    assert alerts(correct) == REFUSED
    assert logged_in_user(client) is None
    refused = audit_entries(record_id="alice", action="login refused")
    assert [e.reason for e in refused] == ["account locked"]


def test_a_successful_login_resets_the_count_of_failures(client, create_user, user_row):
    create_user("alice")
    for _ in range(4):
        login(client, "alice", WRONG)
    assert user_row("alice").failed_attempts == 4
    assert location(login(client, "alice")) == "/"
    assert user_row("alice").failed_attempts == 0
    logout(client)
    assert login(client, "alice", WRONG).status_code == 401
    assert not user_row("alice").locked


def test_a_deactivated_user_cannot_log_in(client, create_user, make_uow, cli_ctx):
    create_user("alice")
    with make_uow() as uow:
        deactivate_user(uow, cli_ctx, "alice", "left the company")
    response = login(client, "alice")
    assert response.status_code == 401
    assert alerts(response) == REFUSED
    assert logged_in_user(client) is None


def test_logging_in_is_recorded_in_the_audit_trail(client, create_user, audit_entries):
    alice = create_user("alice")
    login(client, "alice")
    entry = audit_entries(action="logged in")[-1]
    assert (entry.actor_id, entry.record_id, entry.kind) == (alice, "alice", "security")
    assert entry.terminal == "unregistered browser (127.0.0.1)"


def test_logging_out_ends_the_session(client, create_user):
    create_user("alice")
    login(client, "alice")
    response = logout(client)
    assert location(response) == "/login"
    assert "You are logged out." in text(client.get("/login"))
    assert logged_in_user(client) is None
    assert location(client.get("/account")).startswith("/login")


def test_a_link_cannot_log_anyone_out(client, create_user):
    alice = create_user("alice")
    login(client, "alice")
    assert client.get("/logout").status_code == 405
    assert logged_in_user(client) == alice
    assert client.get("/account").status_code == 200


def test_a_post_without_the_csrf_token_is_refused_as_form_expired_and_changes_nothing(
    client, create_user, audit_entries, user_row
):
    alice = create_user("alice")
    login(client, "alice")
    response = client.post(
        "/account/attestation", data={"esign_username": "alice", "esign_password": "x"}
    )
    assert response.status_code == 400
    assert "<h1>Form expired</h1>" in text(response)
    assert "nothing was saved" in alerts(response)[0]
    assert audit_entries(kind="signature", record_id=alice) == []
    assert user_row("alice").attested_at is None


def test_a_csrf_token_of_another_browser_is_refused(hub, create_user, audit_entries):
    alice = create_user("alice")
    attacker, victim = client_of(hub), client_of(hub)
    stolen_token = csrf_token(attacker)
    login(victim, "alice")
    response = victim.post(
        "/account/attestation",
        data={"csrf_token": stolen_token, "esign_username": "alice", "esign_password": "x"},
    )
    assert response.status_code == 400
    assert "Form expired" in text(response)
    assert audit_entries(kind="signature", record_id=alice) == []


def test_a_login_without_the_csrf_token_does_not_log_in(client, create_user):
    create_user("alice")
    client.get("/login")
    response = client.post("/login", data={"username": "alice", "password": "x"})
    assert response.status_code == 400
    assert "Form expired" in text(response)
    assert logged_in_user(client) is None


def test_a_form_expired_answer_is_json_for_an_api_client(client, create_user):
    create_user("alice")
    login(client, "alice")
    response = client.post("/account/attestation", data={}, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.json["error"] == "Form expired"


def _session_cookie(response, name: str = "mes_session_test") -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    assert cookies, response.headers
    return cookies[-1]


def _attributes(cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


def test_the_session_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http(
    client, create_user
):
    create_user("alice")
    cookie = _session_cookie(login(client, "alice"))
    assert "httponly" in _attributes(cookie)
    assert "SameSite=Lax" in cookie
    assert "secure" not in _attributes(cookie)


def test_the_session_cookie_is_secure_when_the_request_came_over_https(client, create_user):
    create_user("alice")
    response = login(client, "alice", base_url="https://localhost")
    assert response.status_code == 302
    cookie = _session_cookie(response)
    assert {"secure", "httponly"} <= _attributes(cookie)
    assert "SameSite=Lax" in cookie


def test_each_site_has_its_own_session_cookie(make_app, create_user):
    create_user("alice", role="spoke")
    response = login(client_of(make_app("spoke")), "alice")
    assert _session_cookie(response, "mes_session_spk1")


@pytest.mark.parametrize("password", ["", " "])
def test_an_empty_password_is_refused_without_counting(client, create_user, user_row, password):
    create_user("alice")
    response = login(client, "alice", password)
    assert response.status_code == 200  # the form asks again; nothing was tried
    assert "This field is required." in text(response)
    assert logged_in_user(client) is None
    assert user_row("alice").failed_attempts == 0


def test_a_wrong_password_at_login_does_not_sign_anything(client, create_user, audit_entries):
    alice = create_user("alice")
    login(client, "alice", WRONG)
    assert sign_attestation(client, username="alice").status_code == 302  # to the login page
    assert audit_entries(kind="signature", record_id=alice) == []


def test_posting_to_the_login_form_twice_starts_a_fresh_session(client, create_user):
    alice = create_user("alice")
    bob = create_user("bob")
    login(client, "alice")
    assert logged_in_user(client) == alice
    login(client, "bob")
    assert logged_in_user(client) == bob
    assert "Welcome, Bob Tester" in text(client.get("/"))
    # The previous user's signing session is not carried over.
    with client.session_transaction() as session:
        assert "signed_in_session" not in session
    assert post_form(client, "/account/attestation", {"esign_password": "x"}).status_code == 400
