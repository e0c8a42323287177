"""A bedside mismatch at the served spoke appears in the real hub's alerts within 5 seconds.

The hub runs under gunicorn on PostgreSQL; spoke SPK2 is served by ``mes serve`` and syncs in
the background every second. A batch of the mRNA fill recipe (its vial's label carries the
sequence ID, the wristband the patient ID) is run to completion at SPK2 and released by QA at
the hub; the release reaches the spoke through the background sync. Then a clinician at SPK2
scans the vial and a wrong wristband: the mismatch and its deviation are committed at the spoke
and the hub's network alerts (``/network/alerts.json``, read over HTTP by QA) show it, with its
category, within 5 seconds — no one runs ``mes sync``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sync_network import HUB_PASSWORDS, live_site, start_batch, wait_for
from test_release_reaches_spoke import release_at_the_hub

from mes.core.errors import BedsideMismatch
from mes.services import bedside, review
from mes.services.badges import enroll_badge, set_pin_for
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.users import add_user
from mes.store.models import Deviation

pytestmark = pytest.mark.e2e
SECONDS = 5
BADGE, PIN, PASSWORD = "BADGE-30017", "851427", "ward-Nurse-4-check"


def clinician(runtime) -> str:
    """Nell, the ward's clinician at SPK2, with her badge and PIN (the server's command line)."""
    system = Context.command_line(datetime.now(UTC) - timedelta(minutes=1), "tester", "testhost")
    with runtime.uow() as uow:
        user_id = add_user(
            uow, system, username="nell", full_name="Nell Ward", roles=["clinician"],
            password=PASSWORD,
        )  # fmt: skip
    site = live_site(runtime)
    with runtime.uow() as uow:
        acknowledge_accountability(
            uow, site.ctx("nell"), Credentials(PASSWORD, "nell"), first_signing_in_session=True
        )
    with runtime.uow() as uow:
        enroll_badge(uow, system, "nell", BADGE)
    with runtime.uow() as uow:
        set_pin_for(uow, system, "nell", PIN)
    return user_id


def qa_at_the_hub(url: str) -> httpx.Client:
    """QA Quinn's browser session at the hub."""
    browser = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    page = browser.get("/login").text
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page)
    assert token is not None, page[:500]
    answer = browser.post(
        "/login",
        data={"csrf_token": token[1], "username": "quinn", "password": HUB_PASSWORDS["quinn"]},
    )
    assert answer.status_code == 302, answer.text[:500]
    return browser


def test_a_bedside_mismatch_at_the_spoke_is_in_the_hubs_alerts_within_5_seconds(network):
    spoke, hub = network.spoke("SPK2"), network.hub
    run = start_batch(spoke.runtime)
    run.run_until()
    run.finish()
    coi = run.batch.state.chain_of_identity
    network.wait_synced("SPK2")
    release_at_the_hub(hub.runtime, run.batch_id)

    def released_at_the_spoke() -> bool:
        with spoke.runtime.uow(read_only=True) as uow:
            row = review.disposition_of(uow, run.batch_id)
        return row is not None and row.decision == "released"

    wait_for("the release at the spoke", released_at_the_spoke, seconds=30)
    clinician(spoke.runtime)
    site = live_site(spoke.runtime)
    assert hub.url is not None
    quinn = qa_at_the_hub(hub.url)
    try:
        before = quinn.get("/network/alerts.json")
        assert before.status_code == 200, before.text[:300]
        assert run.batch.state.number not in before.text

        with spoke.runtime.uow() as uow, pytest.raises(BedsideMismatch) as stop:
            bedside.check_at_bedside(
                uow,
                site.ctx("nell"),
                {"bag_coi": coi["sequence_id"], "wristband": "NOT-THIS-PATIENT"},
                Credentials(password=PIN, badge=BADGE),
                first_signing_in_session=True,
            )
        committed = time.monotonic()
        with spoke.runtime.uow(read_only=True) as uow:
            (category,) = uow.session.execute(
                select(Deviation.category).where(Deviation.id == stop.value.deviation)
            ).one()
        assert category == "identity"

        def alerted() -> dict | None:
            alerts = quinn.get("/network/alerts.json").json()["alerts"]
            return next((a for a in alerts if a["id"] == stop.value.deviation), None)

        alert = wait_for("the mismatch in the hub's alerts", alerted, seconds=SECONDS)
        took = time.monotonic() - committed
        assert took <= SECONDS, took
        assert alert["batch"] == run.batch.state.number
        assert alert["site"] == "SPK2"
        assert alert["category"] == "Chain of identity mismatch"
        assert "NOT-THIS-PATIENT" in alert["description"]
    finally:
        quinn.close()
