"""21 CFR 11.10(d), (g): every page needs a logged-in user, and roles decide what they may open."""

from __future__ import annotations

import pytest
from flask import url_for
from web_helpers import client_of, csrf_token, location, login, query_of, text

# Written out here, independently of mes.web.PUBLIC_ENDPOINTS: what each role serves without login.
# At the hub, the sync API's description and enrollment (authenticated by the one-time code) need
# no login; the other API calls answer 401 JSON unless signed by an enrolled spoke (checked below).
PUBLIC = {
    "hub": {
        "static",
        "common.login",
        "common.health",
        "authoring.schema",
        "api.index",
        "api.openapi",
        "api.enroll_spoke",
    },
    "spoke": {"static", "common.login", "common.health"},
}


def _every_protected_request(app, role):
    """(endpoint, method, url) for every route and method of the app, except the public ones."""
    requests = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint in PUBLIC[role]:
                continue
            url = url_for(rule.endpoint, **{name: "someone" for name in rule.arguments})
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                requests.append((rule.endpoint, method, url))
    return requests


@pytest.mark.parametrize("role", ["hub", "spoke"])
def test_every_route_requires_login(make_app, role):
    app = make_app(role)
    client = client_of(app)
    # A token of this anonymous session, so that POSTs are judged by the login gate, not CSRF.
    token = csrf_token(client)
    requests = _every_protected_request(app, role)
    endpoints = {endpoint for endpoint, _, _ in requests}
    assert {"common.home", "common.account", "common.acknowledge", "admin.user_list"} <= endpoints
    assert {"GET", "POST"} == {method for _, method, _ in requests}
    for endpoint, method, url in requests:
        for accept in ("text/html", "application/json"):
            response = client.open(
                url,
                method=method,
                data={"csrf_token": token} if method == "POST" else None,
                headers={"Accept": accept},
            )
            where = (endpoint, method, url, accept)
            if response.status_code == 401:
                assert response.is_json, where
                continue
            assert response.status_code == 302, (where, response.status_code)
            assert location(response).startswith("/login?next="), where
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("role", ["hub", "spoke"])
def test_only_the_login_page_health_and_static_files_are_public(make_app, role):
    app = make_app(role)
    client = client_of(app)
    public = {rule.endpoint for rule in app.url_map.iter_rules()} - {
        endpoint for endpoint, _, _ in _every_protected_request(app, role)
    }
    assert public == PUBLIC[role]
    assert client.get("/login").status_code == 200
    assert client.get("/static/mes.css").status_code == 200
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json == {
        "status": "ok",
        "role": role,
        "site": "TEST" if role == "hub" else "SPK1",
    }


def test_a_page_asked_for_before_login_is_where_login_returns_to(client, create_user):
    create_user("alice")
    asked = client.get("/account")
    assert location(asked).startswith("/login?")
    assert query_of(asked) == {"next": ["/account"]}
    form = text(client.get(location(asked)))
    assert 'name="next" type="hidden" value="/account"' in form
    response = login(client, "alice", next_page="/account")
    assert location(response) == "/account"
    assert client.get("/account").status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/account",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example/account",
    ],
)
def test_login_never_redirects_to_another_site(client, create_user, target):
    create_user("alice")
    form = text(client.get("/login", query_string={"next": target}))
    assert 'name="next" type="hidden" value=""' in form
    response = login(client, "alice", next_page=target)  # the hidden field tampered with
    assert location(response) == "/"


@pytest.mark.parametrize(
    ("path", "permission"),
    [
        ("/admin/users", "manage users"),
        ("/admin/users/new", "manage users"),
        ("/admin/users/alice", "manage users"),
        ("/admin/terminals", "manage terminals"),
        ("/admin/training", "manage training records"),
        ("/admin/audit", "read the audit trail"),
    ],
)
def test_an_operator_gets_a_readable_403_page_on_administration_pages(
    client, create_user, path, permission
):
    create_user("alice", roles=["operator"])
    login(client, "alice")
    response = client.get(path)
    assert response.status_code == 403
    assert f"You are not allowed to {permission}." in text(response)
    assert "HTTP 403" in text(response)


def test_an_operator_cannot_create_a_user_by_posting_the_form(client, create_user, user_row):
    create_user("alice", roles=["operator"])
    login(client, "alice")
    response = client.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf_token(client),
            "username": "mallory",
            "full_name": "Mallory Intruder",
            "roles": ["admin"],
            "password": "a-long-enough-passphrase",
        },
    )
    assert response.status_code == 403
    assert user_row("mallory") is None


def test_the_menu_shows_only_what_the_roles_allow(client, create_user):
    create_user("alice", roles=["operator"])
    create_user("ada", roles=["admin"])
    create_user("quinn", roles=["qa"])
    login(client, "alice")
    home = text(client.get("/"))
    assert "Welcome, Alice Tester" in home
    for link in ("/admin/users", "/admin/terminals", "/admin/audit", "/admin/training"):
        assert f'href="{link}"' not in home
    login(client, "quinn")
    home = text(client.get("/"))
    assert 'href="/admin/audit"' in home and 'href="/admin/training"' in home
    assert 'href="/admin/users"' not in home
    login(client, "ada")
    home = text(client.get("/"))
    for link in ("/admin/users", "/admin/terminals", "/admin/audit", "/admin/training"):
        assert f'href="{link}"' in home


def test_the_about_page_shows_the_running_version(client, create_user):
    from mes import __version__

    create_user("alice")
    login(client, "alice")
    assert f"version <strong>{__version__}</strong>" in text(client.get("/about"))


def test_pages_are_not_cached_or_framed(client, create_user):
    create_user("alice")
    login(client, "alice")
    response = client.get("/account")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_login_redirect_keeps_the_query_of_the_page_asked_for(client, create_user):
    create_user("ada", roles=["admin"])
    asked = client.get("/admin/audit?record_type=user")
    assert query_of(asked) == {"next": ["/admin/audit?record_type=user"]}
    response = login(client, "ada", next_page="/admin/audit?record_type=user")
    assert location(response) == "/admin/audit?record_type=user"
