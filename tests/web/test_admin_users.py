"""Administering users from the browser (11.10(g), 11.100(a), 11.200(a)(3), 11.300; Annex 11 §12.3)."""

from __future__ import annotations

import re

import pytest
from support import PASSWORD
from web_helpers import (
    alerts,
    client_of,
    location,
    login,
    logout,
    post_form,
    query_of,
    text,
)

NEW_PASSWORD = "another-Long-passphrase-42"


@pytest.fixture
def admin(client, create_user):
    """The hub's browser, logged in as the administrator Ada."""
    create_user("ada", roles=["admin"], full_name="Ada Admin")
    login(client, "ada")
    return client


def _new_user(client, **fields):
    data = {
        "username": "bob",
        "full_name": "Bob Builder",
        "roles": ["operator"],
        "password": PASSWORD,
        **fields,
    }
    return post_form(client, "/admin/users/new", data, page="/admin/users/new")


def _user_action(client, username, action, **data):
    return post_form(
        client, f"/admin/users/{username}/{action}", data, page=f"/admin/users/{username}"
    )


def test_an_admin_creates_a_user_with_roles(admin, user_row, audit_entries):
    response = _new_user(admin, username="Bob", roles=["operator", "qa"])
    assert response.status_code == 303
    assert location(response) == "/admin/users/bob"
    page = text(admin.get("/admin/users/bob"))
    assert "User bob created." in page
    assert "Bob Builder" in page
    bob = user_row("bob")
    assert bob.role_names == {"operator", "qa"}
    assert bob.must_change_password
    created = audit_entries(action="user created", record_id="bob")[0]
    assert created.actor_username == "ada"
    assert created.new["roles"] == ["operator", "qa"]
    assert "bob" in text(admin.get("/admin/users"))


def test_a_weak_initial_password_is_refused_with_every_reason(admin, user_row):
    response = _new_user(admin, username="monkey", password="monkey1")
    assert response.status_code == 400
    (reasons,) = alerts(response)
    for reason in (
        "it must be at least 12 characters long (it has 7)",
        "it must not contain the user ID",
        "it is a commonly used password",
    ):
        assert reason in reasons
    assert user_row("monkey") is None


def test_a_user_id_that_is_taken_is_refused_even_in_another_case(admin, create_user, user_row):
    create_user("alice", full_name="Alice Original")
    response = _new_user(admin, username="ALICE", full_name="Alice Impostor")
    assert response.status_code in (400, 409)
    assert "already taken" in alerts(response)[0]
    assert user_row("alice").full_name == "Alice Original"


def test_a_deactivated_user_id_is_never_given_to_someone_else(admin, create_user, user_row):
    create_user("alice")
    assert _user_action(admin, "alice", "deactivate", reason="left").status_code == 303
    response = _new_user(admin, username="alice", full_name="Another Alice")
    assert response.status_code in (400, 409)
    assert "never reused" in alerts(response)[0]
    assert user_row("alice").full_name == "Alice Tester"


def test_a_new_user_without_a_role_or_name_is_refused(admin, user_row):
    no_role = _new_user(admin, roles=[])
    assert no_role.status_code == 400
    assert "A user needs at least one role." in alerts(no_role)[0]
    no_name = _new_user(admin, full_name="")
    assert no_name.status_code == 400
    assert "This field is required." in text(no_name)
    unknown_role = _new_user(admin, roles=["overlord"])
    assert unknown_role.status_code == 400
    assert user_row("bob") is None


def test_a_new_user_must_change_the_password_at_first_login(admin, hub, user_row, audit_entries):
    _new_user(admin)
    bob = client_of(hub)
    assert location(login(bob, "bob")) == "/"
    for page in ("/", "/account", "/about"):
        response = bob.get(page)
        assert location(response).startswith("/account/password?"), page
        assert query_of(response) == {"next": [page]}
    # Not even a signature can be slipped in before the change.
    signing = post_form(
        bob, "/account/attestation", {"esign_username": "bob", "esign_password": PASSWORD}
    )
    assert location(signing).startswith("/account/password?")
    assert "You must choose a new password before you continue." in text(
        bob.get("/account/password")
    )

    def change(current, new, confirm=None):
        return post_form(
            bob,
            "/account/password",
            {
                "current_password": current,
                "new_password": new,
                "confirm": confirm or new,
                "next": "/account",
            },
            page="/account/password?next=/account",
        )

    weak = change(PASSWORD, "bob")
    assert weak.status_code == 400
    (reasons,) = alerts(weak)
    assert "at least 12 characters" in reasons and "must not contain the user ID" in reasons
    same = change(PASSWORD, PASSWORD)
    assert same.status_code == 400
    assert "it was one of your last 5 passwords" in alerts(same)[0]
    differ = change(PASSWORD, NEW_PASSWORD, "something-else-entirely")
    assert differ.status_code == 400
    assert "The two new passwords differ." in text(differ)
    wrong_current = change("not-my-password-at-all", NEW_PASSWORD)
    assert wrong_current.status_code == 400
    assert "The user ID or password is wrong." in alerts(wrong_current)[0]
    assert user_row("bob").must_change_password

    done = change(PASSWORD, NEW_PASSWORD)
    assert location(done) == "/account"
    assert bob.get("/account").status_code == 200
    assert not user_row("bob").must_change_password
    assert audit_entries(action="password changed", record_id="bob")
    logout(bob)
    assert login(bob, "bob", PASSWORD).status_code == 401
    assert location(login(bob, "bob", NEW_PASSWORD)) == "/"


def test_changing_roles_needs_a_reason(admin, create_user, user_row, audit_entries):
    create_user("alice", roles=["operator"])
    refused = _user_action(admin, "alice", "roles", roles=["operator", "supervisor"], reason="")
    assert refused.status_code == 400
    assert alerts(refused) == ["Give the reason for the change."]
    assert user_row("alice").role_names == {"operator"}
    assert audit_entries(action="roles changed") == []

    changed = _user_action(
        admin, "alice", "roles", roles=["operator", "supervisor"], reason="Trained as supervisor"
    )
    assert location(changed) == "/admin/users/alice"
    assert "Roles changed." in text(admin.get("/admin/users/alice"))
    assert user_row("alice").role_names == {"operator", "supervisor"}
    (entry,) = audit_entries(action="roles changed")
    assert entry.reason == "Trained as supervisor"
    assert (entry.old["roles"], entry.new["roles"]) == (["operator"], ["operator", "supervisor"])


def test_an_admin_cannot_remove_their_own_admin_role(admin, user_row):
    response = _user_action(admin, "ada", "roles", roles=["qa"], reason="oops")
    assert response.status_code == 403
    assert "You cannot change your own roles." in alerts(response)[0]
    assert user_row("ada").role_names == {"admin"}


def test_a_deactivated_user_is_logged_out_and_cannot_log_in_again(
    admin, hub, create_user, user_row, audit_entries
):
    create_user("alice")
    alice = client_of(hub)
    login(alice, "alice")
    assert alice.get("/account").status_code == 200

    no_reason = _user_action(admin, "alice", "deactivate", reason=" ")
    assert no_reason.status_code == 400
    assert "A reason is required to deactivate a user." in alerts(no_reason)[0]
    assert user_row("alice").active

    done = _user_action(admin, "alice", "deactivate", reason="Left the company")
    assert location(done) == "/admin/users/alice"
    assert not user_row("alice").active
    assert audit_entries(action="user deactivated")[0].reason == "Left the company"
    page = text(admin.get("/admin/users/alice"))
    assert "deactivated" in page and "Change roles" not in page

    assert location(alice.get("/account")).startswith("/login")
    assert location(alice.get("/")).startswith("/login")
    assert login(alice, "alice").status_code == 401  # the words of every refused login


def test_an_admin_cannot_deactivate_their_own_account(admin, user_row):
    response = _user_action(admin, "ada", "deactivate", reason="testing")
    assert response.status_code == 403
    assert "You cannot deactivate your own account." in alerts(response)[0]
    assert user_row("ada").active


def test_a_password_reset_shows_a_one_time_password_once(admin, hub, create_user, audit_entries):
    create_user("alice")
    response = _user_action(admin, "alice", "reset-password")
    assert response.status_code == 200
    shown = re.findall(r'<code class="temporary">([^<]+)</code>', text(response))
    assert len(shown) == 1
    temporary = shown[0]
    assert len(temporary) >= 12
    assert temporary not in text(admin.get("/admin/users/alice"))
    (entry,) = audit_entries(action="password reset")
    assert temporary not in str(entry.new) and entry.new == {"must_change_password": True}

    alice = client_of(hub)
    assert login(alice, "alice", PASSWORD).status_code == 401
    assert location(login(alice, "alice", temporary)) == "/"
    assert location(alice.get("/")).startswith("/account/password?")


def test_an_admin_unlocks_an_account_locked_by_failed_logins(
    admin, hub, create_user, user_row, audit_entries
):
    create_user("alice")
    alice = client_of(hub)
    for _ in range(5):
        login(alice, "alice", "not-the-password")
    assert "locked after 5 failed attempts" in text(admin.get("/admin/users/alice"))
    assert "locked" in text(admin.get("/admin/users"))

    response = _user_action(admin, "alice", "unlock", reason="Forgot caps lock; identity checked")
    assert location(response) == "/admin/users/alice"
    assert not user_row("alice").locked
    assert user_row("alice").failed_attempts == 0
    (entry,) = audit_entries(action="account unlocked")
    assert (entry.kind, entry.reason) == ("security", "Forgot caps lock; identity checked")
    assert location(login(alice, "alice")) == "/"


def test_unlocking_an_account_that_is_not_locked_says_so(admin, create_user):
    create_user("alice")
    response = _user_action(admin, "alice", "unlock", reason="")
    assert response.status_code == 400
    assert "alice is not locked." in alerts(response)[0]


def test_an_unknown_user_gets_a_readable_404(admin):
    response = admin.get("/admin/users/nobody")
    assert response.status_code == 404
    assert "There is no user 'nobody'." in alerts(response)[0]
    roles = post_form(admin, "/admin/users/nobody/roles", {"roles": ["qa"], "reason": "x"})
    assert roles.status_code == 404
