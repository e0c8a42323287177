"""The e-signature dialog on the accountability statement (21 CFR 11.10(j), 11.50, 11.100,
11.200, 11.300(d)) and the terminal rule at a spoke (11.10(h))."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from web_helpers import (
    alerts,
    client_of,
    location,
    login,
    logout,
    post_form,
    sign_attestation,
    text,
)

from mes.core.clock import parse_utc_text

WRONG = "not-the-right-password"


def _dialog(page: str) -> str:
    match = re.search(r'<dialog class="esign".*?</dialog>', page, re.S)
    assert match, "no signature dialog on the page"
    return match.group(0)


def test_the_signature_dialog_shows_what_is_signed_the_meaning_and_the_signer(client, create_user):
    create_user("alice")
    login(client, "alice")
    page = text(client.get("/account"))
    assert "Acknowledge and sign" in page
    dialog = _dialog(page)
    assert "The e-signature accountability statement above" in dialog
    assert "<strong>Acknowledged</strong> — I have read and acknowledge this record." in dialog
    assert "Alice Tester (alice)" in dialog
    assert 'name="esign_username"' in dialog
    assert 'name="esign_password" type="password"' in dialog


def test_the_first_signature_of_a_session_without_the_user_id_signs_nothing(
    client, create_user, audit_entries, user_row
):
    alice = create_user("alice")
    login(client, "alice")
    response = sign_attestation(client)
    assert response.status_code == 400
    assert alerts(response) == [
        "The first signature of a session needs your user ID and password. "
        "Type your user ID as well as your password, or scan your badge and type your PIN."
    ]
    assert audit_entries(kind="signature", record_id=alice) == []
    assert user_row("alice").attested_at is None
    assert user_row("alice").failed_attempts == 0


def test_a_signature_without_a_password_signs_nothing(client, create_user, audit_entries):
    alice = create_user("alice")
    login(client, "alice")
    response = sign_attestation(client, password="", username="alice")
    assert response.status_code == 400
    assert alerts(response) == ["Type your password in the signature dialog to sign."]
    assert audit_entries(kind="signature", record_id=alice) == []


def test_a_wrong_password_in_the_dialog_signs_nothing_and_counts_as_a_failure(
    client, create_user, audit_entries, user_row
):
    alice = create_user("alice")
    login(client, "alice")
    response = sign_attestation(client, password=WRONG, username="alice")
    assert response.status_code == 401
    assert alerts(response) == [
        "The user ID or password is wrong. Try again; 4 more failed attempts will lock the account."
    ]
    assert audit_entries(kind="signature", record_id=alice) == []
    assert user_row("alice").failed_attempts == 1
    assert user_row("alice").attested_at is None
    (failure,) = audit_entries(action="signature failed")
    assert (failure.kind, failure.actor_id) == ("security", alice)


def test_a_correct_signature_shows_its_manifestation_on_the_account_page(
    client, create_user, audit_entries, user_row
):
    alice = create_user("alice")
    login(client, "alice")
    assert "must acknowledge the accountability statement" in text(client.get("/"))
    response = sign_attestation(client, username="alice")
    assert response.status_code == 303
    assert location(response) == "/account"
    page = text(client.get("/account"))
    assert "Signed: you acknowledged the accountability statement." in page
    (entry,) = audit_entries(kind="signature", record_id=alice)
    assert entry.action == "signed: acknowledged"
    assert entry.new["printed_name"] == "Alice Tester"
    assert entry.new["meaning"] == "acknowledged"
    local = parse_utc_text(entry.new["at"]).astimezone(ZoneInfo("Europe/London"))
    shown = local.strftime("%Y-%m-%d %H:%M:%S %Z")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GMT|BST)", shown)
    manifestation = re.search(r'<span class="manifestation">(.*?)</span>', page).group(1)
    assert manifestation == (
        f"Alice Tester (alice) · <strong>Acknowledged</strong> · {shown} · "
        "unregistered browser (127.0.0.1)"
    )
    assert "Acknowledge and sign" not in page  # the statement is signed once
    assert "must acknowledge" not in text(client.get("/"))
    assert user_row("alice").attested_at is not None
    assert user_row("alice").failed_attempts == 0


def test_later_signatures_of_the_same_session_need_only_the_password(
    client, create_user, audit_entries
):
    alice = create_user("alice")
    login(client, "alice")
    assert sign_attestation(client, username="alice").status_code == 303
    wrong = sign_attestation(client, password=WRONG)
    assert wrong.status_code == 401
    assert sign_attestation(client).status_code == 303
    assert len(audit_entries(kind="signature", record_id=alice)) == 2


def test_nobody_can_sign_as_someone_else(client, create_user, audit_entries, user_row):
    alice = create_user("alice")
    bob = create_user("bob")
    login(client, "alice")
    response = sign_attestation(client, username="bob")  # bob's password is the same
    assert response.status_code == 403
    assert "You can only sign as yourself" in alerts(response)[0]
    assert audit_entries(kind="signature", record_id=alice) == []
    assert audit_entries(kind="signature", record_id=bob) == []
    assert user_row("bob").attested_at is None


def test_five_failed_signatures_lock_the_account_and_log_the_user_out(
    client, create_user, user_row, audit_entries
):
    alice = create_user("alice")
    login(client, "alice")
    for _ in range(4):
        assert sign_attestation(client, password=WRONG, username="alice").status_code == 401
    fifth = sign_attestation(client, password=WRONG, username="alice")
    assert location(fifth) == "/login"
    assert "Your account is locked after repeated failed signatures." in text(client.get("/login"))
    assert user_row("alice").locked
    assert audit_entries(action="account locked")
    assert location(client.get("/account")).startswith("/login")
    assert login(client, "alice").status_code == 401  # the words of every refused login
    assert audit_entries(kind="signature", record_id=alice) == []


def test_at_the_hub_an_unregistered_browser_may_sign(client, create_user, audit_entries):
    alice = create_user("alice")
    login(client, "alice")
    assert "not a registered terminal" not in text(client.get("/"))
    assert sign_attestation(client, username="alice").status_code == 303
    (entry,) = audit_entries(kind="signature", record_id=alice)
    assert entry.new["terminal"] == "unregistered browser (127.0.0.1)"
    assert entry.new["site"] == "TEST"


def test_at_a_spoke_an_unregistered_browser_can_read_but_not_sign(
    make_app, create_user, audit_entries, user_row
):
    olivia = create_user("olivia", full_name="Olivia Operator", role="spoke")
    create_user("ada", roles=["admin"], full_name="Ada Admin", role="spoke")
    browser = client_of(make_app("spoke"))
    login(browser, "olivia")
    home = text(browser.get("/"))
    assert (
        "This browser is not a registered terminal: you can read records here but not enter or sign them."
        in home
    )
    assert browser.get("/account").status_code == 200
    refused = sign_attestation(browser, username="olivia")
    assert refused.status_code == 403
    assert alerts(refused) == [
        "This browser is not a registered terminal of the site, so it cannot sign. "
        "Sign at a registered terminal, or ask an administrator to register this one."
    ]
    assert audit_entries(kind="signature", record_id=olivia) == []
    assert user_row("olivia").failed_attempts == 0

    logout(browser)
    login(browser, "ada")
    registered = post_form(
        browser, "/admin/terminals", {"name": "Spoke tablet 1"}, page="/admin/terminals"
    )
    assert registered.status_code == 303
    logout(browser)

    login(browser, "olivia")
    assert "not a registered terminal" not in text(browser.get("/"))
    assert sign_attestation(browser, username="olivia").status_code == 303
    page = text(browser.get("/account"))
    assert "Olivia Operator (olivia) · <strong>Acknowledged</strong>" in page
    assert "· Spoke tablet 1</span>" in page
    (entry,) = audit_entries(kind="signature", record_id=olivia)
    assert (entry.terminal, entry.site, entry.new["site"]) == ("Spoke tablet 1", "SPK1", "SPK1")
