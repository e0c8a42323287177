"""The inactivity lock's unlock by PIN (21 CFR 11.10(d), 11.300(d)): a user who has a PIN, at a
site that allows badge + PIN, unlocks with the PIN (the password stays available); the PIN is
judged as a signature's is, and a wrong one counts toward the same lockout as a wrong password."""

from __future__ import annotations

from support import PASSWORD
from test_badge_pages import PIN, badged
from web_helpers import location, lock, login, post_form, text

from mes.services.configuration import set_signing_methods

__all__ = ["badged"]  # the fixture


def _unlock(client, secret: str, method: str, next_page: str = "/account"):
    return post_form(
        client,
        "/unlock",
        {"password": secret, "method": method, "next": next_page},
        page=f"/unlock?next={next_page}",
    )


def test_a_user_with_a_pin_unlocks_the_session_with_the_pin(client, badged):
    badged("alice")
    login(client, "alice")
    lock(client, "/account")
    page = client.get("/unlock?next=/account").get_data(as_text=True)
    assert 'value="badge_pin" checked' in page and 'value="password"' in page
    assert "PIN or password" in page
    unlocked = _unlock(client, PIN, "badge_pin")
    assert location(unlocked) == "/account"
    assert client.get("/account").status_code == 200


def test_the_password_still_unlocks_a_session_whose_user_has_a_pin(client, badged):
    badged("alice")
    login(client, "alice")
    lock(client, "/account")
    assert location(_unlock(client, PASSWORD, "password")) == "/account"


def test_wrong_pins_count_toward_the_same_lockout_as_wrong_passwords(client, badged, user_row):
    badged("alice")
    login(client, "alice")
    lock(client)
    wrong = _unlock(client, "000000", "badge_pin")
    assert wrong.status_code == 401 and "PIN" in text(wrong)
    assert user_row("alice").failed_attempts == 1
    for secret, method in (
        ("not-the-password", "password"),
        ("111111", "badge_pin"),
        ("222222", "badge_pin"),
    ):
        assert _unlock(client, secret, method).status_code == 401
    assert user_row("alice").failed_attempts == 4
    fifth = _unlock(client, "333333", "badge_pin")
    assert location(fifth) == "/login"
    assert user_row("alice").locked
    assert location(client.get("/account")).startswith("/login")


def test_a_site_without_badge_and_pin_unlocks_by_password_only(client, badged, make_uow, cli_ctx):
    badged("alice")
    with make_uow() as uow:
        set_signing_methods(uow, cli_ctx, ["password"], "badge readers not installed yet")
    login(client, "alice")
    lock(client, "/account")
    page = client.get("/unlock?next=/account").get_data(as_text=True)
    assert 'value="badge_pin"' not in page and "PIN or password" not in page
    refused = _unlock(client, PIN, "badge_pin")
    assert refused.status_code == 422 and "badge and PIN" in text(refused)
    assert location(client.get("/account")).startswith("/unlock")
    assert location(_unlock(client, PASSWORD, "password")) == "/account"


def test_a_user_without_a_pin_is_asked_for_the_password_only(client, create_user):
    create_user("bob")
    login(client, "bob")
    lock(client, "/account")
    page = client.get("/unlock?next=/account").get_data(as_text=True)
    assert 'value="badge_pin"' not in page and 'name="method" value="password"' in page
    refused = _unlock(client, "123456", "badge_pin")
    assert refused.status_code == 422 and "no PIN" in text(refused)
