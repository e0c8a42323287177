"""Driving the real app with Flask's test client, as a browser would.

Forms are posted with the CSRF token taken from a page of the same session (the login page by
default: it is public, carries a token bound to the session, and does not reset the inactivity
timer). Every answer is checked never to show a traceback.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from support import PASSWORD
from werkzeug.test import TestResponse

_TOKEN = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')
_ALERTS = re.compile(
    r'<(?:p|ul|span) class="[^"]*(?:error|errors)[^"]*" role="alert">(.*?)</(?:p|ul|span)>', re.S
)
_TAGS = re.compile(r"<[^>]+>")


class CheckedClient(FlaskClient):
    """A test client that fails the test if any answer leaks a traceback or is a 500.

    Set ``expect_server_error = True`` on a client that provokes a 500 on purpose.
    """

    expect_server_error = False

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        body = response.get_data().decode("utf-8", "replace")  # a PDF is bytes
        assert "Traceback" not in body, body
        if not self.expect_server_error:
            assert response.status_code != 500, body
        return response


def client_of(app: Flask) -> CheckedClient:
    """A browser-like client of ``app`` (cookies kept between requests)."""
    app.test_client_class = CheckedClient
    return app.test_client()  # type: ignore[return-value]


def text(response: TestResponse) -> str:
    """The body as text."""
    return response.get_data(as_text=True)


def alerts(response: TestResponse) -> list[str]:
    """The error messages a page shows next to its form, as the user reads them."""
    return [
        " ".join(html.unescape(_TAGS.sub(" ", found)).split())
        for found in _ALERTS.findall(text(response))
    ]


def token_from(page: str) -> str:
    """The CSRF token embedded in a page."""
    match = _TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def csrf_token(client: FlaskClient, page: str = "/login", **kwargs: Any) -> str:
    """Open ``page`` in this session and take its CSRF token."""
    response = client.get(page, **kwargs)
    assert response.status_code == 200, (page, response.status_code, response.location)
    return token_from(text(response))


def post_form(
    client: FlaskClient,
    url: str,
    data: Mapping[str, Any] | None = None,
    page: str = "/login",
    **kwargs: Any,
) -> TestResponse:
    """POST ``data`` to ``url`` with the CSRF token of ``page``, as the page's form would.

    Like a browser, it sends the page as the Referer (over HTTPS, Flask-WTF checks it).
    """
    form = dict(data or {})
    form["csrf_token"] = csrf_token(client, page, **kwargs)
    referer = kwargs.get("base_url", "http://localhost").rstrip("/") + page
    headers = {"Referer": referer, **kwargs.pop("headers", {})}
    return client.post(url, data=form, headers=headers, **kwargs)


def login(
    client: FlaskClient,
    username: str,
    password: str = PASSWORD,
    next_page: str | None = None,
    **kwargs: Any,
) -> TestResponse:
    """Log in through the login form (``next_page``: the page asked for before login)."""
    page = "/login" if next_page is None else f"/login?next={next_page}"
    data = {"username": username, "password": password}
    if next_page is not None:
        data["next"] = next_page
    return post_form(client, "/login", data, page=page, **kwargs)


def logout(client: FlaskClient) -> TestResponse:
    """Log out with the top bar's button."""
    return post_form(client, "/logout")


def lock(client: FlaskClient, next_page: str | None = None) -> TestResponse:
    """Lock the session with the top bar's Lock button (or the page's idle timer)."""
    return post_form(client, "/lock", {} if next_page is None else {"next": next_page})


def sign_attestation(
    client: FlaskClient, password: str = PASSWORD, username: str | None = None
) -> TestResponse:
    """Submit the signature dialog of the accountability statement on /account."""
    data = {"esign_password": password}
    if username is not None:
        data["esign_username"] = username
    return post_form(client, "/account/attestation", data)


def location(response: TestResponse) -> str:
    """Where a redirect points: path and query, on this site."""
    assert response.status_code in (301, 302, 303, 307, 308), response.status_code
    parts = urlsplit(response.location)
    assert parts.netloc in ("", "localhost"), response.location
    return parts.path + (f"?{parts.query}" if parts.query else "")


def query_of(response: TestResponse) -> dict[str, list[str]]:
    """The query parameters of a redirect."""
    return parse_qs(urlsplit(response.location).query)


def session_token_of(client: FlaskClient) -> str | None:
    """The session ID this browser's cookie carries (the only thing of the session it holds)."""
    with client.session_transaction() as session:
        return session.get("session_id")


def logged_in_user(client: FlaskClient) -> str | None:
    """The id of the user this browser's server-side session belongs to, if any."""
    from mes.services.sessions import find_session

    token = session_token_of(client)
    if token is None:
        return None
    with client.application.extensions["mes"].uow(read_only=True) as uow:
        found = find_session(uow, token)
        return found.user_id if found is not None else None
