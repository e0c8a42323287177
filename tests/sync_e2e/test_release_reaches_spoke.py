"""A release at the real hub reaches the served spoke's board through background sync.

The hub runs under gunicorn (two workers) on PostgreSQL; spoke SPK2 is served by ``mes serve``
and syncs in the background every second (through the test proxy, here passing everything). A
batch is run to completion at SPK2, QA at the hub reviews every exception, closes every
deviation and releases it — through the services, on the hub's database, as the hub's QA pages
would — and the spoke's board, read over HTTP by a logged-in operator, shows "Released by …"
within a few seconds, without anyone running ``mes sync``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sync_network import HUB_PASSWORDS, SPOKE_PASSWORDS, start_batch, wait_for

from mes.core.review import Category, Decision
from mes.services import review
from mes.services.context import Context
from mes.services.esign import Credentials
from mes.store.models import User

pytestmark = pytest.mark.e2e
SECONDS = 10  # the loop runs every second; a release must show well within this


def release_at_the_hub(hub, batch_id: str) -> None:
    """QA Quinn reviews everything, closes every deviation and releases the batch."""
    with hub.uow(read_only=True) as uow:
        quinn = uow.session.execute(select(User.id).where(User.username == "quinn")).scalar_one()

    def ctx() -> Context:
        return Context(at=datetime.now(UTC), user_id=quinn, terminal="sync tests")

    signing = Credentials(HUB_PASSWORDS["quinn"], "quinn")
    with hub.uow() as uow:
        findings = review.review_batch(uow, ctx(), batch_id).findings
    for finding in findings:
        assert not finding.blocking, (finding.title, finding.detail)
        if finding.by_closure and finding.category is not Category.DEVIATION:
            continue  # a value that raised a deviation: settled by closing it
        if finding.by_closure:
            deviation = finding.key.split(":", 1)[1]
            with hub.uow() as uow:
                review.assess_deviation(
                    uow, ctx(), batch_id, deviation,
                    {"classification": "minor", "description": "d", "impact": "none",
                     "root_cause": "rc"},
                )  # fmt: skip
            with hub.uow() as uow:
                review.close_deviation(
                    uow, ctx(), batch_id, deviation, signing, first_signing_in_session=True
                )
        else:
            with hub.uow() as uow:
                review.mark_reviewed(
                    uow, ctx(), batch_id, finding.key, signing, first_signing_in_session=True
                )
    with hub.uow() as uow:
        review.decide_batch(
            uow, ctx(), batch_id, Decision.RELEASED, signing, first_signing_in_session=True
        )


def logged_in(url: str) -> httpx.Client:
    """An operator's browser session at the served spoke."""
    browser = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    page = browser.get("/login").text
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page)
    assert token is not None, page[:500]
    answer = browser.post(
        "/login",
        data={
            "csrf_token": token[1],
            "username": "olivia",
            "password": SPOKE_PASSWORDS["olivia"],
        },
    )
    assert answer.status_code == 302, answer.text[:500]
    return browser


def card_of(board: str, number: str) -> str:
    found = re.search(rf'<article[^>]*data-batch="{re.escape(number)}".*?</article>', board, re.S)
    assert found is not None, f"batch {number} is not on the board"
    return found[0]


def test_a_batch_released_at_the_hub_shows_released_on_the_spokes_board(network):
    spoke, hub = network.spoke("SPK2"), network.hub.runtime
    run = start_batch(spoke.runtime)
    run.run_until()
    run.finish()
    number = run.batch.state.number
    network.wait_synced("SPK2")
    assert spoke.url is not None
    browser = logged_in(spoke.url)
    try:
        card = card_of(browser.get("/batches?all=1").text, number)
        assert "Released by" not in card
        release_at_the_hub(hub, run.batch_id)
        released = time.monotonic()

        def shown() -> str:
            card = card_of(browser.get("/batches?all=1").text, number)
            return card if 'data-decision="released"' in card else ""

        card = wait_for("the release on the spoke's board", shown, seconds=SECONDS)
        took = time.monotonic() - released
        assert re.search(r"Released by Quinn Quality at \d{4}-\d\d-\d\d \d\d:\d\d", card), card
        assert took < SECONDS
        label = browser.get(f"/batches/{run.batch_id}/label")
        assert label.status_code == 200 and number in label.text
    finally:
        browser.close()
