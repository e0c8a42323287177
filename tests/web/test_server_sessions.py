"""Sessions live on the server: logout, the lock, inactivity and the lifetime hold for every copy
of the cookie, and a password change, deactivation or lockout ends all the user's sessions
(21 CFR 11.10(d), 11.300(d); issue 13, finding 2 and the lower findings on /lock and the CSP)."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from support import PASSWORD
from web_helpers import (
    client_of,
    location,
    lock,
    login,
    logout,
    post_form,
    session_token_of,
    sign_attestation,
    text,
)

NEW_PASSWORD = "a-new-and-long-enough-passphrase-7"


def copy_of(app, client):
    """A second browser holding a copy of ``client``'s cookies as they are now."""
    thief = client_of(app)
    for name in ("mes_session_test", "mes_session_spk1"):
        cookie = client.get_cookie(name)
        if cookie is not None:
            thief.set_cookie(name, cookie.value)
    return thief


def sessions_of(make_uow, user_id: str) -> list:
    """The user's sessions stored on the server."""
    from mes.store.models import WebSession  # imported here: the old code had no such table

    with make_uow() as uow:
        query = select(WebSession).where(WebSession.user_id == user_id)
        return list(uow.session.execute(query).scalars())


def age_sessions(make_uow, user_id: str, by: timedelta) -> None:
    """Move the user's sessions back in time by ``by``, as if that time had passed unused."""
    from mes.store.models import WebSession

    rows = sessions_of(make_uow, user_id)
    with make_uow() as uow:
        for row in rows:
            uow.session.execute(
                update(WebSession)
                .where(WebSession.id_hash == row.id_hash)
                .values(created_at=row.created_at - by, last_seen_at=row.last_seen_at - by)
            )
        uow.commit()


def test_a_cookie_copied_before_logout_is_sent_to_the_login_page_after_logout(
    hub, client, create_user, make_uow
):
    alice = create_user("alice")
    login(client, "alice")
    thief = copy_of(hub, client)
    assert thief.get("/account").status_code == 200  # the copy works while the session lives
    logout(client)
    after = thief.get("/account")
    assert after.status_code == 302
    assert location(after).startswith("/login?")
    json = thief.get("/account", headers={"Accept": "application/json"})
    assert json.status_code != 200
    assert sessions_of(make_uow, alice) == []


def test_a_copied_cookie_cannot_renew_a_session_past_the_idle_lock(
    hub, client, create_user, make_uow
):
    alice = create_user("alice")
    login(client, "alice")
    thief = copy_of(hub, client)
    assert thief.get("/account").status_code == 200
    # Alice's page sees no touch for the timeout: its idle timer posts the lock form.
    assert location(lock(client, "/account")).startswith("/unlock?")
    for _ in range(3):  # however often the copy asks, it is not renewed
        answer = thief.get("/account")
        assert location(answer).startswith("/unlock?"), answer.status_code
    assert thief.get("/", headers={"Accept": "application/json"}).status_code == 401
    # Inactivity judged by the server alone (no page left to lock itself) holds for copies too.
    assert location(post_form(client, "/unlock", {"password": PASSWORD})) == "/"
    age_sessions(make_uow, alice, timedelta(seconds=301))
    assert location(thief.get("/account")).startswith("/unlock?")
    assert location(client.get("/account")).startswith("/unlock?")


def test_the_lock_button_holds_for_a_copy_of_the_cookie_taken_before_it(hub, client, create_user):
    create_user("alice")
    login(client, "alice")
    assert location(sign_attestation(client, username="alice")) == "/account"
    thief = copy_of(hub, client)
    assert location(lock(client, "/account")).startswith("/unlock?")
    assert location(thief.get("/account")).startswith("/unlock?")
    # The copy cannot sign with the password alone either: the lock ended the signing session.
    assert sign_attestation(thief).status_code == 302
    assert location(client.get("/account")).startswith("/unlock?")


def test_a_session_ends_at_its_absolute_lifetime_however_active(hub, client, create_user, make_uow):
    alice = create_user("alice")
    login(client, "alice")
    assert client.get("/account").status_code == 200
    age_sessions(make_uow, alice, timedelta(hours=12, seconds=1))
    ended = client.get("/account")
    assert location(ended).startswith("/login?")
    assert sessions_of(make_uow, alice) == []
    assert login(client, "alice").status_code == 302
    assert client.get("/account").status_code == 200


def test_a_password_change_ends_every_other_session_of_the_user(hub, create_user, make_uow):
    alice = create_user("alice")
    here, there = client_of(hub), client_of(hub)
    login(here, "alice")
    login(there, "alice")
    copy = copy_of(hub, here)
    changed = post_form(
        here,
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert location(changed) == "/"
    assert here.get("/account").status_code == 200  # this browser goes on, in a new session
    assert location(there.get("/account")).startswith("/login?")
    assert location(copy.get("/account")).startswith("/login?")
    assert len(sessions_of(make_uow, alice)) == 1


def test_deactivation_ends_every_session_of_the_user(hub, create_user, make_uow):
    alice = create_user("alice")
    create_user("ada", roles=["admin"])
    one, two, admin = client_of(hub), client_of(hub), client_of(hub)
    login(one, "alice")
    login(two, "alice")
    login(admin, "ada")
    deactivated = post_form(
        admin, "/admin/users/alice/deactivate", {"reason": "Left the company"}, page="/admin/users"
    )
    assert deactivated.status_code in (302, 303), text(deactivated)
    for browser in (one, two):
        assert location(browser.get("/account")).startswith("/login?")
    assert sessions_of(make_uow, alice) == []


def test_five_failed_signatures_end_every_session_of_the_user(hub, create_user, make_uow):
    alice = create_user("alice")
    signing, elsewhere = client_of(hub), client_of(hub)
    login(signing, "alice")
    login(elsewhere, "alice")
    for _ in range(5):
        with contextlib.suppress(AssertionError):
            sign_attestation(signing, password="not-the-password", username="alice")
    assert location(elsewhere.get("/account")).startswith("/login?")
    assert location(signing.get("/account")).startswith("/login?")
    assert sessions_of(make_uow, alice) == []


def test_get_lock_is_refused_and_changes_nothing(client, create_user, make_uow):
    alice = create_user("alice")
    login(client, "alice")
    assert location(sign_attestation(client, username="alice")) == "/account"
    assert client.get("/lock").status_code == 405
    assert client.get("/lock?next=/account").status_code == 405
    assert client.get("/account").status_code == 200  # not locked
    assert location(sign_attestation(client)) == "/account"  # the signing session goes on
    (row,) = sessions_of(make_uow, alice)
    assert not row.locked


def test_a_post_to_lock_without_the_form_token_changes_nothing(client, create_user):
    create_user("alice")
    login(client, "alice")
    refused = client.post("/lock", data={"next": "/account"})
    assert refused.status_code == 400
    assert client.get("/account").status_code == 200


def test_the_lock_form_is_posted_by_the_top_bar_and_the_idle_timer(client, create_user):
    create_user("alice")
    login(client, "alice")
    page = text(client.get("/account"))
    assert 'action="/lock"' in page and "data-lock-form" in page
    assert 'name="next" value="/account"' in page
    assert 'href="/lock' not in page


def test_the_database_holds_only_a_digest_of_the_session_id(client, create_user, make_uow):
    alice = create_user("alice")
    login(client, "alice")
    token = session_token_of(client)
    assert token is not None and len(token) >= 32  # 256 random bits, URL-safe
    (row,) = sessions_of(make_uow, alice)
    assert row.id_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.id_hash
    with client.session_transaction() as cookie:
        assert set(cookie) <= {"session_id", "csrf_token", "_flashes"}  # no user ID, no lock flag


def test_logging_in_again_in_the_same_browser_ends_its_previous_session(
    client, create_user, make_uow
):
    alice = create_user("alice")
    bob = create_user("bob")
    login(client, "alice")
    login(client, "bob")
    assert sessions_of(make_uow, alice) == []
    assert len(sessions_of(make_uow, bob)) == 1


@pytest.mark.parametrize("role", ["hub", "spoke"])
def test_the_content_security_policy_forbids_other_base_uris_and_form_targets(
    make_app, create_user, role
):
    app = make_app(role)
    create_user("ada", roles=["admin"], role=role)
    browser = client_of(app)
    answers = [browser.get("/login")]
    login(browser, "ada")
    answers += [browser.get("/"), browser.get("/admin/users"), browser.get("/no-such-page")]
    for answer in answers:
        policy = [part.strip() for part in answer.headers["Content-Security-Policy"].split(";")]
        assert "base-uri 'none'" in policy, policy
        assert "form-action 'self'" in policy, policy
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy


def test_a_signature_that_races_the_lock_leaves_the_first_signing_after_unlock_complete(
    create_user, make_uow
):
    """11.200(a)(1)(ii): the idle lock landing between a signature and its 'signed' mark must
    not let the first signature after the unlock go with the password alone."""
    from support import user_ctx

    from mes.core.sessions import SessionPolicy
    from mes.services import sessions
    from mes.store.models import WebSession

    user_id = create_user("olivia")
    ctx = user_ctx(user_id)
    policy = SessionPolicy(idle_timeout=timedelta(minutes=5), lifetime=timedelta(hours=12))
    with make_uow() as uow:
        token = sessions.open_session(uow, ctx, policy)
    with make_uow() as uow:
        sessions.lock_session(uow, token)  # the idle timer, between the signature and its mark
    with make_uow() as uow:
        sessions.mark_signed(uow, token)
    with make_uow() as uow:
        assert not uow.session.execute(select(WebSession.signed)).scalar_one()
        uow.session.execute(update(WebSession).values(signed=True))  # however it got there
        uow.commit()
    with make_uow() as uow:
        sessions.unlock_session(uow, ctx, token, PASSWORD)
    with make_uow() as uow:
        assert not uow.session.execute(select(WebSession.signed)).scalar_one()
