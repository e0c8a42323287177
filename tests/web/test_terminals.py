"""Registered terminals (21 CFR 11.10(h)): the browser is bound by a signed cookie, and every
entry records the terminal it came from."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer
from web_helpers import alerts, client_of, location, login, logout, post_form, text

from mes.services.terminals import list_terminals

UNREGISTERED = "unregistered browser (127.0.0.1)"


@pytest.fixture
def admin(client, create_user):
    create_user("ada", roles=["admin"], full_name="Ada Admin")
    login(client, "ada")
    return client


def _register(client, name="Bench 1", location_="Suite A"):
    return post_form(
        client, "/admin/terminals", {"name": name, "location": location_}, page="/admin/terminals"
    )


def _terminal_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("mes_terminal=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_registering_this_browser_sets_a_long_lived_httponly_cookie(admin, make_uow):
    response = _register(admin)
    assert location(response) == "/admin/terminals"
    cookie = _terminal_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Max-Age=315360000" in cookie
    page = text(admin.get("/admin/terminals"))
    assert "This browser is now the terminal &#39;Bench 1&#39;." in page
    assert "This browser is the terminal Bench 1." in page
    assert "Register this browser" not in page
    with make_uow() as uow:
        (terminal,) = list_terminals(uow)
    assert (terminal.name, terminal.location, terminal.active) == ("Bench 1", "Suite A", True)


def test_the_terminal_cookie_is_secure_over_https(client, create_user):
    create_user("ada", roles=["admin"])
    login(client, "ada", base_url="https://localhost")
    response = post_form(
        client,
        "/admin/terminals",
        {"name": "Bench 1"},
        page="/admin/terminals",
        base_url="https://localhost",
    )
    assert response.status_code == 303
    assert "Secure" in _terminal_cookie(response)


def test_entries_made_from_a_registered_browser_name_the_terminal(admin, audit_entries):
    login_entry = audit_entries(action="logged in")[-1]
    assert login_entry.terminal == UNREGISTERED
    _register(admin)
    assert audit_entries(action="terminal registered")[0].terminal == UNREGISTERED
    post_form(
        admin,
        "/admin/users/new",
        {
            "username": "bob",
            "full_name": "Bob Builder",
            "roles": ["operator"],
            "password": "a-long-enough-passphrase",
        },
        page="/admin/users/new",
    )
    assert audit_entries(action="user created", record_id="bob")[0].terminal == "Bench 1"
    logout(admin)
    login(admin, "ada")
    assert audit_entries(action="logged in")[-1].terminal == "Bench 1"
    assert "Registered terminal: Bench 1" in text(admin.get("/login"))


def test_a_terminal_name_is_unique_at_the_site(admin, hub):
    _register(admin)
    other = client_of(hub)
    login(other, "ada")
    response = _register(other, name="Bench  1")
    assert response.status_code == 400
    assert "A terminal named 'Bench 1' is already registered at this site." in alerts(response)[0]
    assert "mes_terminal=" not in str(response.headers)


@pytest.mark.parametrize(
    "forged",
    [
        "garbage",
        "",
        URLSafeSerializer("not-the-secret", salt="mes-terminal").dumps("x"),
        URLSafeSerializer("test-secret-hub", salt="mes-terminal").dumps({"id": "x"}),
        URLSafeSerializer("test-secret-hub", salt="mes-terminal").dumps("no-such-terminal"),
    ],
)
def test_a_forged_terminal_cookie_is_treated_as_unregistered(
    hub, create_user, audit_entries, forged
):
    create_user("alice")
    browser = client_of(hub)
    browser.set_cookie("mes_terminal", forged)
    login(browser, "alice")
    assert "Unregistered terminal" in text(browser.get("/"))
    assert audit_entries(action="logged in")[-1].terminal == UNREGISTERED


def test_a_terminal_cookie_signed_with_another_key_does_not_bind(admin, hub, audit_entries):
    _register(admin)
    terminal_id = audit_entries(action="terminal registered")[0].record_id
    forged = URLSafeSerializer("not-the-secret", salt="mes-terminal").dumps(terminal_id)
    browser = client_of(hub)
    browser.set_cookie("mes_terminal", forged)
    login(browser, "ada")
    assert audit_entries(action="logged in")[-1].terminal == UNREGISTERED


def test_a_deactivated_terminal_no_longer_binds_its_browser(admin, audit_entries):
    _register(admin)
    terminal_id = audit_entries(action="terminal registered")[0].record_id
    refused = post_form(
        admin, f"/admin/terminals/{terminal_id}/deactivate", {"reason": ""}, page="/admin/terminals"
    )
    assert location(refused) == "/admin/terminals"
    assert "A reason is required to deactivate a terminal." in text(admin.get("/admin/terminals"))
    done = post_form(
        admin,
        f"/admin/terminals/{terminal_id}/deactivate",
        {"reason": "Tablet lost"},
        page="/admin/terminals",
    )
    assert location(done) == "/admin/terminals"
    page = text(admin.get("/admin/terminals"))
    assert "Terminal deactivated." in page
    assert "This browser is not registered." in page
    (entry,) = audit_entries(action="terminal deactivated")
    assert (entry.reason, entry.new["active"]) == ("Tablet lost", False)
    assert audit_entries()[-1].terminal == "Bench 1"  # the deactivation came from it
    logout(admin)
    login(admin, "ada")
    assert audit_entries(action="logged in")[-1].terminal == UNREGISTERED
