"""The bedside pages through the real spoke app: find the product by its bag, check, infuse.

A product made at SPK1 and released by QA at the hub (the release received back); Nina, the
ward's clinician, logged in at the ward's registered tablet. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

import sync_sites
from batch_helpers import Spoke
from bedside_sites import BADGE, PIN, connected, made, released
from itsdangerous import URLSafeSerializer
from review_network import spoke_app
from web_helpers import CheckedClient, client_of, location, login, post_form, text

network = sync_sites.net  # the fixture: the hub and SPK1, each on a database of the test's kind


def ward(network) -> tuple[CheckedClient, str, dict[str, str], Spoke]:
    """Nina's browser at the ward's tablet, and a released product's ID and labels."""
    site = connected(network)
    batch_id, label = made(site)
    released(network, site, batch_id)
    return at_the_spoke(network, site, "nina"), batch_id, label, site


def at_the_spoke(network, site, username: str) -> CheckedClient:
    """``username``'s browser at the spoke's registered terminal, logged in."""
    client = client_of(spoke_app(network))
    cookie = URLSafeSerializer("sync-tests-spoke", salt="mes-terminal").dumps(site.terminal_id)
    client.set_cookie("mes_terminal", cookie)
    assert login(client, username).status_code == 302
    return client


def stop_deviation(response) -> str:
    found = re.search(r"Deviation (\S+-D\d+) is recorded", text(response))
    assert found, text(response)
    return found[1]


def signed(**data: str) -> dict[str, str]:
    return {**data, "esign_badge": BADGE, "esign_password": PIN}


def test_the_bag_finds_the_product_and_a_mismatch_answers_with_the_hard_stop(network):
    client, batch_id, label, site = ward(network)
    page = client.get("/bedside/")
    assert page.status_code == 200 and "Scan the bag label" in text(page)

    # A bag of another site: refused at the top of the page, saying what to do.
    other = post_form(client, "/bedside/", {"bag": "=A99992699999900"}, page="/bedside/")
    assert other.status_code == 422
    assert "is not a product of SPK1" in text(other) and "Do not infuse it" in text(other)

    found = post_form(client, "/bedside/", {"bag": label["bag_din"]}, page="/bedside/")
    assert found.status_code == 303
    product = location(found)
    assert product.startswith(f"/bedside/{batch_id}")
    page = client.get(product)
    assert "Released by QA: Final" in text(page)  # the certification (mes.core.after_release)
    assert label["bag_din"] in text(page)  # the DIN scanned is carried, not scanned again

    stop = post_form(
        client,
        f"/bedside/{batch_id}/check",
        signed(bag_din=label["bag_din"], bag_coi=label["bag_coi"], wristband="PAT-9999"),
        page=product,
    )
    assert stop.status_code == 422
    assert "data-hard-stop" in text(stop) and "STOP — DO NOT INFUSE" in text(stop)
    assert "PAT-9999" in text(stop) and "-D1" in text(stop)  # the deviation is named
    again = client.get(f"/bedside/{batch_id}")
    assert "Last check: MISMATCH" in text(again)
    assert "data-start-form" not in text(again)  # the infusion cannot start
    # The spoke's board shows the mismatch at its top, to everyone who reads it.
    board = text(at_the_spoke(network, site, "sam").get("/batches"))
    assert f'data-after-release-alert="{stop_deviation(stop)}"' in board
    assert "Chain of identity mismatch" in board and "PAT-9999" in board


def test_a_match_signed_with_badge_and_pin_shows_the_timer_then_the_infusion_is_recorded(
    network,
):
    client, batch_id, label, _site = ward(network)
    page = f"/bedside/{batch_id}"
    checked = post_form(client, f"{page}/check", signed(**label), page=page)
    assert checked.status_code == 303, text(checked)
    shown = text(client.get(page))
    assert "Identity matches" in shown and "Infuse by" in shown and "data-deadline" in shown
    started = post_form(client, f"{page}/infusion/start", signed(), page=page)
    assert started.status_code == 303, text(started)
    assert "Infusion started at" in text(client.get(page))
    ended = post_form(client, f"{page}/infusion/end", signed(), page=page)
    assert ended.status_code == 303, text(ended)
    assert "The chain of identity is closed" in text(client.get(page))


def test_a_wrong_pin_is_refused_on_the_page_and_the_pin_is_not_shown_again(network):
    client, batch_id, label, _site = ward(network)
    page = f"/bedside/{batch_id}"
    refused = post_form(
        client, f"{page}/check", {**signed(**label), "esign_password": "739146"}, page=page
    )
    assert refused.status_code == 401
    assert 'class="refusal' in text(refused)
    assert label["wristband"] in text(refused)  # the scans as typed
    assert "739146" not in text(refused)
