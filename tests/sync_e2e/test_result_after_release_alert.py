"""A result out of specification after release, entered at the spoke, reaches the hub's alerts.

The hub runs under gunicorn (two workers) on PostgreSQL; spoke SPK2 is served by ``mes serve``
and syncs in the background every second. A recipe declaring a pending sterility result is
published to SPK2, a batch of it is run there and released at the hub (provisional). The
spoke's QC then enters a sterility result out of specification — the result and its deviation
in one transaction, pushed ahead of other records — and the hub's network alerts, read over
HTTP by QA as the network page polls them, show it within 5 seconds.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from sync_network import (
    HUB_PASSWORDS,
    SHORT_RECIPE,
    installed_codes,
    live_site,
    start_batch,
    wait_for,
)
from test_release_reaches_spoke import release_at_the_hub

from mes.services import batches

pytestmark = pytest.mark.e2e
SECONDS = 5  # issue 17: an out-of-specification result after release alerts the hub within 5 s
PENDING = """pending_results:
  - {id: sterility_final, label: Sterility (14-day culture), specification: No growth,
     accepted: [No growth]}
"""


def qa_browser(url: str) -> httpx.Client:
    """QA Quinn's session at the hub, as the network page polls with it."""
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


def test_a_result_out_of_specification_at_the_spoke_alerts_the_hub_within_5_seconds(
    network, tmp_path
):
    spoke, hub = network.spoke("SPK2"), network.hub
    code, _bundle = network.publish_new_recipe(["SPK2"], extra=PENDING)
    wait_for("the recipe at SPK2", lambda: code in installed_codes(spoke.runtime))
    recipe = tmp_path / "pending.yaml"  # the text the hub published, for the batch driver
    text = SHORT_RECIPE.read_text(encoding="utf-8").rstrip("\n") + "\n" + PENDING
    recipe.write_text(text.replace("recipe_code: MRNA-NEOAG-FILL", f"recipe_code: {code}", 1))
    run = start_batch(spoke.runtime, recipe=recipe)
    run.run_until()
    run.finish()
    network.wait_synced("SPK2")
    release_at_the_hub(hub.runtime, run.batch_id)
    # QC at the spoke: the demo's Cora (qc role, attested), at its registered terminal.
    site = live_site(spoke.runtime)
    assert "cora" in site.ids
    wait_for(
        "the release at SPK2",
        lambda: after_release(spoke.runtime, site, run.batch_id).released,
        seconds=30,
    )
    assert hub.url is not None
    browser = qa_browser(hub.url)
    try:
        number = run.batch.state.number

        def alert() -> dict | None:
            rows = browser.get("/network/alerts.json").json()["alerts"]
            return next((a for a in rows if a["id"] == f"{number}:sterility_final"), None)

        assert alert() is None
        with spoke.runtime.uow() as uow:
            batches.record_result(
                uow, site.ctx("cora"), run.batch_id,
                {"result": "sterility_final", "value": "Growth: S. epidermidis",
                 "reference": "MB-118"},
            )  # fmt: skip
        entered = time.monotonic()
        shown = wait_for("the alert at the hub", alert, seconds=SECONDS + 5)
        took = time.monotonic() - entered
        assert shown["category"] == "Result out of specification after release"
        assert "Notify the treating physician now" in shown["description"]
        assert took <= SECONDS, f"the alert took {took:.1f} s"
    finally:
        browser.close()


def after_release(runtime, site, batch_id: str):
    """The spoke's batch after release, from its ledger and the review chain it holds."""
    with runtime.uow(read_only=True) as uow:
        return batches.get_batch(uow, site.ctx("olivia"), batch_id).batch.after_release()
