"""The words of a phase page at the spoke (issue 15, item 13): a calculation in words with its
formula on request, limits as what is acceptable and where the alert starts."""

from __future__ import annotations

import re

import pytest
from batch_helpers import DIN_TYPED, PATIENT, spoke
from itsdangerous import URLSafeSerializer
from support import PASSWORD
from web_helpers import alerts, client_of, location, login, post_form, text


@pytest.fixture
def site(make_uow):
    return spoke(make_uow)


@pytest.fixture
def app(make_app, site):
    return make_app("spoke", hub_key=site.hub_key.public)


def test_a_calculation_reads_in_words_and_its_limits_say_what_is_acceptable(app, site):
    client = client_of(app)
    cookie = URLSafeSerializer("test-secret-spoke", salt="mes-terminal").dumps(site.terminal_id)
    client.set_cookie("mes_terminal", cookie)
    assert login(client, "olivia").status_code == 302
    response = post_form(
        client,
        "/batches/new",
        {"recipe": "BATCH-TEST", "coi:din": DIN_TYPED, "coi:patient_id": PATIENT,
         "esign_username": "olivia", "esign_password": PASSWORD},
        page="/batches/new?recipe=BATCH-TEST",
    )  # fmt: skip
    assert response.status_code == 303, alerts(response)
    batch_id = re.match(r"/batches/([^/]+)/", location(response)).group(1)
    site.do_check_bag(batch_id)
    url = f"/batches/{batch_id}/phases/count_cells"
    post_form(client, f"{url}/start", {}, page=url)
    page = text(client.get(url))
    card = re.search(r'<p class="calculation">.*?</details>', page, re.S).group(0)
    assert "Worked out from" in card
    assert '<details class="formula"><summary>Formula</summary><code>' in card
    assert "acceptable ≥" in page
    assert "alert ≥" not in page and "action ≥" not in page
