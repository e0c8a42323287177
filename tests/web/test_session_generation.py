"""An open session ends for good when the account is locked, deactivated or its password
changes — even if an administrator unlocks the account before the session times out."""

import contextlib

from support import NOW, PASSWORD, user_ctx
from web_helpers import client_of, location, login

from mes.core.errors import AccountLocked, AuthenticationFailed
from mes.services.users import authenticate, unlock_user


def test_a_session_open_before_a_lockout_does_not_survive_the_unlock(
    make_app, create_user, make_uow, cli_ctx
):
    user_id = create_user("olivia", roles=["operator"])
    client = client_of(make_app())
    assert login(client, "olivia").status_code == 302
    assert client.get("/account").status_code == 200
    for _ in range(5):  # someone else guesses the password at another terminal
        with make_uow() as uow, contextlib.suppress(AuthenticationFailed, AccountLocked):
            authenticate(uow, user_ctx(user_id, at=NOW), "olivia", "not-the-password-1")
    with make_uow() as uow:
        unlock_user(uow, cli_ctx, "olivia", "Identity confirmed in person")
    response = client.get("/account")
    assert response.status_code == 302
    assert location(response).startswith("/login")
    assert login(client, "olivia", PASSWORD).status_code == 302
    assert client.get("/account").status_code == 200


def test_an_api_client_that_accepts_anything_gets_pages_not_json(make_app):
    client = client_of(make_app())
    response = client.get("/no-such-page", headers={"Accept": "*/*"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
