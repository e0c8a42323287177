"""Forms through the real app: one-line fields refuse control characters; free text over its
limit is refused naming the limit and what was typed is shown again (issue 13)."""

from __future__ import annotations

import html

import pytest
from batch_helpers import spoke
from itsdangerous import URLSafeSerializer
from support import PASSWORD
from web_helpers import alerts, client_of, login, post_form, text


def test_a_full_name_with_a_carriage_return_is_refused_by_the_form(client, create_user, user_row):
    create_user("ada", roles=["admin"], full_name="Ada Admin")
    login(client, "ada")
    response = post_form(
        client,
        "/admin/users/new",
        {"username": "bob", "full_name": "Bob\rBuilder", "roles": ["operator"],
         "password": PASSWORD},
        page="/admin/users/new",
    )  # fmt: skip
    assert response.status_code == 400
    assert "contains a carriage return (U+000D) at character 4: it must be one line" in text(
        response
    )
    assert user_row("bob") is None


@pytest.fixture
def spoke_site(make_uow):
    return spoke(make_uow)


def test_a_hold_reason_over_2000_characters_is_refused_and_shown_again(make_app, spoke_site):
    app = make_app("spoke", hub_key=spoke_site.hub_key.public)
    sam = client_of(app)
    cookie = URLSafeSerializer("test-secret-spoke", salt="mes-terminal").dumps(
        spoke_site.terminal_id
    )
    sam.set_cookie("mes_terminal", cookie)
    login(sam, "sam")
    batch_id = spoke_site.start().state.id
    url = f"/batches/{batch_id}"
    typed = "z" * 2001
    response = post_form(sam, f"{url}/hold", {"reason": typed}, page=url)
    assert response.status_code == 400
    assert any("2,001 characters long; at most 2,000 are allowed" in m for m in alerts(response))
    assert f'value="{typed}"' in html.unescape(text(response))  # what was typed is kept
    assert spoke_site.view(batch_id).batch.state.status.value != "on_hold"  # nothing recorded
