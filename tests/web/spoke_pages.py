"""The operator's pages at a spoke, for the web tests: a set-up spoke on the test database
(``site``), its app (``app``), and a browser logged in at its registered terminal
(:func:`browser`) and a batch started there (:func:`start_batch`). A test module imports
the fixtures it uses by name."""

from __future__ import annotations

import re

import pytest
from batch_helpers import DIN_TYPED, PATIENT, Spoke, spoke
from flask import Flask
from itsdangerous import URLSafeSerializer
from support import PASSWORD
from web_helpers import CheckedClient, alerts, client_of, location, login, post_form, text


@pytest.fixture
def site(make_uow) -> Spoke:
    return spoke(make_uow)


@pytest.fixture
def app(make_app, site) -> Flask:
    return make_app("spoke", hub_key=site.hub_key.public)


def browser(app: Flask, site: Spoke, username: str = "olivia") -> CheckedClient:
    """A logged-in browser at the spoke's registered terminal."""
    client = client_of(app)
    cookie = URLSafeSerializer("test-secret-spoke", salt="mes-terminal").dumps(site.terminal_id)
    client.set_cookie("mes_terminal", cookie)
    response = login(client, username)
    assert response.status_code == 302, text(response)
    return client


def sign_form(username: str | None = None, password: str = PASSWORD) -> dict[str, str]:
    data = {"esign_password": password}
    if username:
        data["esign_username"] = username
    return data


def start_batch(client, username: str = "olivia", din: str = DIN_TYPED) -> str:
    """A new batch started in ``client`` (signed by ``username``): its ID."""
    response = post_form(
        client,
        "/batches/new",
        {"recipe": "BATCH-TEST", "coi:din": din, "coi:patient_id": PATIENT, **sign_form(username)},
        page="/batches/new?recipe=BATCH-TEST",
    )
    assert response.status_code == 303, alerts(response)
    match = re.match(r"/batches/([^/]+)/phases/check_bag", location(response))
    assert match, location(response)
    return match.group(1)
