"""Errors are readable: a page for people, JSON for API clients, never a traceback."""

from __future__ import annotations

import pytest
from web_helpers import client_of, login, text


@pytest.mark.parametrize("logged_in", [False, True])
def test_an_unknown_address_gets_a_readable_404_page(client, create_user, logged_in):
    create_user("alice")
    if logged_in:
        login(client, "alice")
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = text(response)
    assert "<h1>Not Found</h1>" in page and "HTTP 404" in page
    assert "The requested URL was not found on the server." in page


def test_an_api_client_gets_a_json_404(client):
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.is_json
    assert response.json["error"] == "Not Found"
    assert "not found" in response.json["message"]


def test_a_wrong_method_gets_a_readable_405_page(client, create_user):
    create_user("alice")
    login(client, "alice")
    response = client.delete("/account")
    assert response.status_code == 405
    assert "<h1>Method Not Allowed</h1>" in text(response)


def test_an_oversized_request_is_refused_readably(client, create_user):
    create_user("alice")
    response = client.post("/login", data={"username": "x" * (3 * 1024 * 1024)})
    assert response.status_code == 413
    assert "HTTP 413" in text(response)


@pytest.fixture
def failing_app(make_app):
    """The real app with one extra page that fails the way a bug would."""
    app = make_app()

    @app.get("/fails-on-purpose")
    def fails_on_purpose():
        raise RuntimeError("secret internal detail: password hash argon2id$...")

    return app


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_an_unexpected_error_gets_a_readable_answer_without_internals(
    failing_app, create_user, accept, caplog
):
    create_user("alice")
    client = client_of(failing_app)
    login(client, "alice")
    client.expect_server_error = True
    response = client.get("/fails-on-purpose", headers={"Accept": accept})
    assert response.status_code == 500
    body = text(response)
    assert "secret internal detail" not in body
    assert "RuntimeError" not in body
    if accept == "application/json":
        assert response.json["error"] == "Internal error"
        assert "nothing was saved" in response.json["message"]
    else:
        assert "<h1>Internal error</h1>" in body
        assert "tell your administrator the time it happened" in body
    # The details go to the server's log instead, for the administrator.
    assert "secret internal detail" in caplog.text
