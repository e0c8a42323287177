"""Badge + PIN in the browser's pages (21 CFR 11.200(a)(1), 11.300): login by badge scan and PIN,
the signature dialog's badge field, the administrator's badge enrollment and revocation, the
user's PIN on their account page, and the site's choice of ways to sign."""

from __future__ import annotations

import re

import pytest
from support import PASSWORD
from web_helpers import (
    alerts,
    location,
    logged_in_user,
    login,
    logout,
    post_form,
    text,
)

from mes.services.badges import enroll_badge, set_pin_for

BADGE, PIN = "BADGE-10005", "851427"
OTHER_BADGE, OTHER_PIN = "BADGE-10006", "962538"


@pytest.fixture
def badged(make_uow, cli_ctx, create_user):
    """``badged("alice")``: a new user with badge BADGE (or ``badge``) and PIN PIN (or ``pin``)."""

    def make(username: str, badge: str = BADGE, pin: str = PIN, **kwargs) -> str:
        user_id = create_user(username, **kwargs)
        with make_uow() as uow:
            enroll_badge(uow, cli_ctx, username, badge)
        with make_uow() as uow:
            set_pin_for(uow, cli_ctx, username, pin)
        return user_id

    return make


def badge_login(client, badge: str = BADGE, pin: str = PIN):
    return post_form(client, "/login", {"badge": badge, "pin": pin})


def sign_by_badge(client, badge: str | None = BADGE, pin: str = PIN):
    data = {"esign_password": pin}
    if badge is not None:
        data["esign_badge"] = badge
    return post_form(client, "/account/attestation", data)


def _input(page: str, name: str) -> str:
    """The ``<input>`` tag of the field ``name`` on the page (its attributes in any order)."""
    match = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', page)
    assert match, f"no field {name} on the page"
    return match.group(0)


def _dialog(page: str) -> str:
    match = re.search(r'<dialog class="esign".*?</dialog>', page, re.S)
    assert match, "no signature dialog on the page"
    return match.group(0)


# --- login --------------------------------------------------------------------------------


def test_the_login_page_offers_a_badge_field_for_the_scanner_beside_user_id_and_password(client):
    page = text(client.get("/login"))
    badge = _input(page, "badge")
    assert 'data-badge="pin"' in badge and " autofocus" in badge
    assert 'autocomplete="off"' in badge
    assert 'type="password"' in _input(page, "pin")
    assert " autofocus" not in _input(page, "username")
    assert 'name="username"' in page and 'name="password"' in page


def test_a_badge_scan_and_the_pin_log_in(client, badged, audit_entries):
    alice = badged("alice")
    assert location(badge_login(client)) == "/"
    assert logged_in_user(client) == alice
    assert audit_entries(action="logged in")[-1].new == {"by": "badge"}


def test_a_wrong_pin_at_login_is_refused_in_the_common_words_and_counted(client, badged, user_row):
    badged("alice")
    response = badge_login(client, pin="739146")
    assert response.status_code == 401
    assert alerts(response) == [
        "Badge or PIN not accepted, or the account is locked. "
        "Try again; if this persists, ask an administrator."
    ]
    assert logged_in_user(client) is None
    assert user_row("alice").failed_attempts == 1
    # The badge field is empty again (focused): the next scan does not land after the last one.
    badge = _input(text(response), "badge")
    assert 'value=""' in badge and " autofocus" in badge


def test_a_badge_without_its_pin_asks_for_the_pin_and_counts_nothing(client, badged, user_row):
    badged("alice")
    response = badge_login(client, pin="")
    assert response.status_code == 200
    assert "Type your PIN after scanning your badge." in alerts(response)
    assert user_row("alice").failed_attempts == 0


# --- signing ------------------------------------------------------------------------------


def test_the_first_signature_dialog_has_a_badge_field_for_the_scanner(client, badged):
    badged("alice")
    login(client, "alice")
    first = _dialog(text(client.get("/account")))
    assert "data-badge" in _input(first, "esign_badge")
    # Either way signs: the user ID is no longer required by the browser, the server checks.
    assert "required" not in _input(first, "esign_username")
    assert ">Password or PIN</span>" in first


def test_signing_by_badge_and_pin_then_by_the_pin_alone(client, badged, audit_entries):
    alice = badged("alice")
    assert location(badge_login(client)) == "/"
    assert location(sign_by_badge(client)) == "/account"
    signatures = audit_entries(kind="signature", record_id=alice)
    assert len(signatures) == 1
    assert signatures[0].new["username"] == "alice"
    later = sign_by_badge(client, badge=None)
    assert later.status_code == 303
    refused = sign_by_badge(client, badge=None, pin=PASSWORD)  # after a badge: the PIN
    assert refused.status_code == 401
    assert alerts(refused)[0].startswith("The PIN is wrong.")
    assert len(audit_entries(kind="signature", record_id=alice)) == 2


def test_a_badge_of_someone_else_in_the_dialog_signs_nothing(client, badged, audit_entries):
    alice = badged("alice")
    badged("bob", badge=OTHER_BADGE, pin=OTHER_PIN)
    login(client, "alice")
    response = sign_by_badge(client, badge=OTHER_BADGE, pin=OTHER_PIN)
    assert response.status_code == 403
    assert alerts(response)[0].startswith(
        "You can only sign as yourself: the badge scanned is not the logged-in user's."
    )
    assert audit_entries(kind="signature", record_id=alice) == []


# --- the administrator's badge page -------------------------------------------------------


def test_an_administrator_enrolls_a_scanned_badge_and_revokes_it_with_a_reason(
    client, create_user, audit_entries
):
    create_user("ada", roles=["admin"])
    create_user("alice")
    login(client, "ada")
    page = text(client.get("/admin/users/alice"))
    assert "No badge enrolled." in page
    assert 'type="password"' in _input(page, "badge")
    enrolled = post_form(
        client, "/admin/users/alice/badge", {"badge": BADGE}, page="/admin/users/alice"
    )
    assert location(enrolled) == "/admin/users/alice"
    page = text(client.get("/admin/users/alice"))
    assert "Badge <strong>…0005</strong>, enrolled" in page
    assert BADGE not in page
    assert "Badge …0005 enrolled to alice." in page
    no_reason = post_form(
        client, "/admin/users/alice/badge/revoke", {"reason": ""}, page="/admin/users/alice"
    )
    assert no_reason.status_code == 400
    assert "reason" in alerts(no_reason)[0]
    revoked = post_form(
        client, "/admin/users/alice/badge/revoke", {"reason": "Lost"}, page="/admin/users/alice"
    )
    assert location(revoked) == "/admin/users/alice"
    assert "No badge enrolled." in text(client.get("/admin/users/alice"))
    [entry] = audit_entries(action="badge revoked")
    assert (entry.reason, entry.actor_username) == ("Lost", "ada")
    logout_and_scan = badge_login(client)
    assert logout_and_scan.status_code == 401


def test_an_administrator_cannot_enroll_their_own_badge(client, create_user, audit_entries):
    create_user("ada", roles=["admin"])
    login(client, "ada")
    page = text(client.get("/admin/users/ada"))
    assert "You cannot enroll your own badge: ask another administrator." in page
    refused = post_form(client, "/admin/users/ada/badge", {"badge": BADGE}, page="/admin/users/ada")
    assert refused.status_code == 403
    assert audit_entries(action="badge enrolled") == []


# --- the user's PIN -----------------------------------------------------------------------


def test_a_user_sets_their_pin_on_the_account_page_and_logs_in_with_it(
    client, create_user, make_uow, cli_ctx
):
    create_user("alice")
    with make_uow() as uow:
        enroll_badge(uow, cli_ctx, "alice", BADGE)
    login(client, "alice")
    assert "You have no PIN yet." in text(client.get("/account"))
    weak = post_form(
        client, "/account/pin", {"password": PASSWORD, "pin": "111111", "confirm": "111111"},
        page="/account",
    )  # fmt: skip
    assert weak.status_code == 400
    assert alerts(weak) == [
        "it is a common or easily guessed PIN (repeated digits, a run, a pattern)"
    ]
    differ = post_form(
        client, "/account/pin", {"password": PASSWORD, "pin": PIN, "confirm": "851428"},
        page="/account",
    )  # fmt: skip
    assert "The two PINs differ." in alerts(differ)
    done = post_form(
        client, "/account/pin", {"password": PASSWORD, "pin": PIN, "confirm": PIN},
        page="/account",
    )  # fmt: skip
    assert location(done) == "/account"
    assert "Your PIN was set." in text(client.get("/account"))
    logout(client)
    assert location(badge_login(client)) == "/"


# --- the site's setting -------------------------------------------------------------------


def test_the_administrator_turns_badge_signing_off_and_the_pages_stop_offering_it(
    client, create_user, badged, audit_entries
):
    create_user("ada", roles=["admin"])
    badged("alice")
    login(client, "ada")
    assert "The default (both); never changed." in text(client.get("/admin/users"))
    changed = post_form(
        client, "/admin/settings/signing-methods",
        {"methods": ["password"], "reason": "No readers on the floor yet"}, page="/admin/users",
    )  # fmt: skip
    assert location(changed) == "/admin/users"
    assert audit_entries(record_id="signing methods")[-1].new == {"methods": ["password"]}
    assert 'name="badge"' not in text(client.get("/login"))
    login(client, "alice")
    dialog = _dialog(text(client.get("/account")))
    assert "esign_badge" not in dialog
    assert "required" in _input(dialog, "esign_username")
    refused = sign_by_badge(client)
    assert refused.status_code == 403
    assert "This site does not allow signing with badge and PIN." in alerts(refused)[0]
