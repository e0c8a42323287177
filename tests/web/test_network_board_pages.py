"""The hub's live board of batches and its vein-to-vein turnaround, through the real app.

On SQLite and PostgreSQL (the hub on the test's database, spoke SPK1 on a twin): V2V-TEST (the
batch test recipe whose bag check records collection end and receipt, with a turnaround target)
is approved and published at the hub; one batch runs to completion at SPK1, is received and
released by QA; a second is started, stopped before its timed harvest, and received 3 min after
its newest entry. The board lists the second only, with its phase, timer, deviations and the
hub's lag, in the page and in the JSON it polls, filtered by site and product (a bad filter is
refused in words), and flags the spoke when it has not been heard from. The turnaround page
times every leg of the released batch against the recipe's targets, with the chart, its words
and its CSV. Those who watch the network read both pages; others are refused.
"""

from __future__ import annotations

import csv
import html
import io
import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from batch_helpers import TEST_RECIPE
from recipe_driver import begin
from review_network import RECEIVED, decide
from sqlalchemy import select, update
from support import NOW
from sync_sites import net
from web_helpers import client_of, lock, login, text

from mes.core.clock import parse_utc_text
from mes.core.review import Decision
from mes.core.sync import sign_request
from mes.core.turnaround import hours_text
from mes.services import ingest, outbox
from mes.store.models import BatchEntry, BatchMilestone, BatchSummary, Spoke
from mes.web.gate import POLL_ENDPOINTS

__all__ = ["net"]  # the fixture, imported from sync_sites

RECIPE = (
    TEST_RECIPE.replace("recipe_code: BATCH-TEST", "recipe_code: V2V-TEST")
    .replace(
        "change_reason: For the batch execution tests.\n",
        "change_reason: For the network board tests.\n"
        "turnaround:\n  target_hours: 30\n"
        "  legs:\n    - {from: collection_end, to: receipt, target_hours: 12}\n",
    )
    .replace(
        "              bag_intact: {label: Bag intact, type: yes_no}\n",
        "              bag_intact: {label: Bag intact, type: yes_no}\n"
        "              collected: {label: End of collection, type: datetime, "
        "milestone: collection_end}\n"
        "              arrived: {label: Bag received, type: datetime, milestone: receipt}\n",
    )
)
# Collection ended 20 h before the bag arrived (over the 12 h leg target), 2 h before the start.
COLLECTED, ARRIVED = "2026-11-20T09:00", "2026-11-21T05:00"
CHOICES = {"check_bag.collected": COLLECTED, "check_bag.arrived": ARRIVED}


def words(response) -> str:
    """The page as people read it: text without tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text(response))).split())


def _ingest(net, site, batch_id: str, at: datetime) -> None:
    with site.uow() as uow:
        made = outbox.chunk_after(uow, at, batch_id, 0, 500)
    assert made is not None
    with net.hub() as uow:
        ingest.ingest_chunk(uow, at, "SPK1", made[0])


@pytest.fixture
def hub(net, tmp_path, make_app):
    """V2V-TEST at the hub and SPK1; one batch released, one in progress; the hub's app."""
    net.publish(net.approve(RECIPE))
    net.enroll()
    site = net.spoke()
    path = tmp_path / "v2v-test.yaml"
    path.write_text(RECIPE, encoding="utf-8")
    done = begin(site, path, choices=CHOICES)
    done.run_until()
    done.finish()
    _ingest(net, site, done.batch_id, RECEIVED)
    decide(net, done.batch_id, Decision.RELEASED)

    running = begin(site, path, at=NOW + timedelta(hours=1), choices=CHOICES)
    assert running.run_until("harvest") == "harvest"  # the harvest waits 2 h after the count
    with site.uow() as uow:
        newest = uow.session.execute(
            select(BatchEntry.at)
            .where(BatchEntry.batch_id == running.batch_id)
            .order_by(BatchEntry.seq.desc())
            .limit(1)
        ).scalar_one()
    _ingest(net, site, running.batch_id, parse_utc_text(newest) + timedelta(minutes=3))
    app = make_app("hub")
    return app, done, running


def browser(app, username: str):
    client = client_of(app)
    assert login(client, username).status_code == 302
    return client


def heard_from_now(net, app) -> None:
    """SPK1 makes a signed request at the real time (as its sync client does every round)."""
    path = "/api/v1/sync/bundles"
    headers = sign_request(
        "GET", path, b"", site="SPK1", key=net.spoke_key, at=datetime.now(UTC),
        nonce=secrets.token_urlsafe(24),
    )  # fmt: skip
    assert app.test_client().get(path, headers=headers).status_code == 200


def summary_of(net, batch_id: str) -> BatchSummary:
    with net.hub(read_only=True) as uow:
        return uow.session.get(BatchSummary, batch_id)


def test_the_board_lists_each_batch_in_progress_with_where_it_stands_and_the_hubs_lag(net, hub):
    app, done, running = hub
    heard_from_now(net, app)
    quinn = browser(app, "quinn")
    answer = quinn.get("/network/batches.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    data = answer.get_json()
    [row] = data["batches"]  # the released batch is complete: not on the board
    number = running.batch.state.number
    assert (row["id"], row["site"], row["number"]) == (running.batch_id, "SPK1", number)
    assert row["product"] == "V2V-TEST v1" and row["status_text"] == "In progress"
    assert row["phase"] == summary_of(net, running.batch_id).current_phase
    assert row["open_deviations"] == 0
    assert row["lag"] == "received 3 min after it was recorded"
    assert row["lag_warning"] is True  # later than a spoke in contact sends it
    assert row["record_url"] == f"/qa/batches/{running.batch_id}/record"
    timer = summary_of(net, running.batch_id).next_timer_at
    assert timer is not None and row["timer_at"].startswith(timer[:10])
    assert row["timer_due"] is True and row["timer"].endswith(" ago")  # due in 2026, not now
    [spoke] = data["spokes"]
    assert (spoke["code"], spoke["in_progress"], spoke["overdue"]) == ("SPK1", 1, False)
    assert spoke["contact"].endswith(" s ago") or spoke["contact"] == "just now"
    assert spoke["clock"].startswith("in step with the hub's") or " the hub's" in spoke["clock"]
    assert data["overdue"] == []
    page = words(quinn.get("/network/batches"))
    assert f"SPK1 {number} V2V-TEST v1 In progress" in page
    assert "received 3 min after it was recorded" in page
    assert "An active spoke not heard from for over 60 s is flagged" in page
    assert "Not heard from within the expected interval" in page  # the note, hidden
    assert 'data-overdue-note role="alert" hidden' in text(quinn.get("/network/batches"))
    assert done.batch.state.number not in page


def test_a_spoke_not_heard_from_within_the_expected_interval_is_flagged(net, hub):
    app, _done, running = hub
    quinn = browser(app, "quinn")
    # Enrolled, never heard from since: flagged at once.
    data = quinn.get("/network/batches.json").get_json()
    assert data["overdue"] == ["SPK1"] and data["spokes"][0]["contact"] == "never since it enrolled"
    heard_from_now(net, app)
    assert quinn.get("/network/batches.json").get_json()["overdue"] == []
    with net.hub() as uow:  # its last request two minutes ago: silent since
        uow.session.execute(
            update(Spoke)
            .where(Spoke.code == "SPK1")
            .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=2))
        )
        uow.commit()
    data = quinn.get("/network/batches.json").get_json()
    assert data["overdue"] == ["SPK1"]
    assert data["spokes"][0]["contact"] == "no contact: 2 min ago"
    response = quinn.get("/network/batches")
    page = words(response)
    assert "Not heard from within the expected interval: SPK1 ." in page
    assert "no contact: 2 min ago" in page
    assert f'<tr data-batch="{running.batch_id}" class="overdue">' in text(response)


def test_the_board_filters_by_site_and_product_and_refuses_unknown_ones_in_words(net, hub):
    app, _done, running = hub
    quinn = browser(app, "quinn")
    for query in ("site=SPK1", "product=V2V-TEST", "site=SPK1&product=V2V-TEST", "site="):
        rows = quinn.get(f"/network/batches.json?{query}").get_json()["batches"]
        assert [r["id"] for r in rows] == [running.batch_id], query
    net.approve(TEST_RECIPE)  # a product the hub holds, none of it in progress
    rows = quinn.get("/network/batches.json?product=BATCH-TEST").get_json()["batches"]
    assert rows == []
    assert "No batch in progress matches these filters." in words(
        quinn.get("/network/batches?product=BATCH-TEST")
    )
    refused = {
        "site=SPK9": "There is no spoke 'SPK9' at this hub. Choose one of: SPK1.",
        "product=NOPE": "There is no product 'NOPE' at this hub. Choose one of: BATCH-TEST, "
        "V2V-TEST.",
        "site=" + "X" * 300: "There is no spoke '" + "X" * 40 + "…' at this hub.",
        "site=%00": "There is no spoke '?' at this hub.",
    }
    for query, message in refused.items():
        answer = quinn.get(f"/network/batches.json?{query}")
        assert answer.status_code == 400, query
        assert answer.get_json()["error"] == "Filter refused"
        assert answer.get_json()["message"].startswith(message.split(" Choose")[0][:30]), query
        page = quinn.get(f"/network/batches?{query}")
        assert page.status_code == 400
        assert message in words(page), words(page)
        assert running.batch.state.number in words(page)  # the whole board, and why not
    assert (
        quinn.get("/network/batches.json?site=SPK9").get_json()["message"]
        == "There is no spoke 'SPK9' at this hub. Choose one of: SPK1."
    )


def test_those_who_watch_the_network_read_the_board_and_turnaround_and_others_are_refused(net, hub):
    app, _done, running = hub
    urls = ("/network/batches", "/network/batches.json", "/network/turnaround",
            "/network/turnaround.csv")  # fmt: skip
    quinn, sam, aaron = browser(app, "quinn"), browser(app, "sam"), browser(app, "aaron")
    for url in urls:
        assert quinn.get(url).status_code == 200, url
        assert sam.get(url).status_code == 200, url
        assert aaron.get(url).status_code == 403, url
    # The supervisor watches the network but does not review: no link to QA's record page.
    [row] = sam.get("/network/batches.json").get_json()["batches"]
    assert row["record_url"] is None
    assert f"/qa/batches/{running.batch_id}/record" not in text(sam.get("/network/batches"))
    assert f'href="/qa/batches/{running.batch_id}/record"' in text(quinn.get("/network/batches"))
    assert "Batches in progress" in text(quinn.get("/network/"))  # the network pages' links
    logged_out = client_of(app).get("/network/batches.json")
    assert logged_out.status_code == 302 and "/login" in logged_out.location
    # The board's own polling is not the user's activity; a locked session gets 401 JSON.
    assert "network.board_json" in POLL_ENDPOINTS
    assert lock(quinn).status_code == 303
    locked = quinn.get("/network/batches.json", headers={"Accept": "application/json"})
    assert locked.status_code == 401 and locked.get_json()["error"] == "Session locked"


def _hours(a: str, b: str) -> float:
    return (parse_utc_text(b) - parse_utc_text(a)).total_seconds() / 3600


def test_the_turnaround_page_times_each_leg_against_the_recipes_targets(net, hub):
    app, done, running = hub
    with net.hub(read_only=True) as uow:
        points = {
            (m.batch_id, m.milestone): m.at
            for m in uow.session.execute(select(BatchMilestone)).scalars()
        }
    released = {name: at for (batch, name), at in points.items() if batch == done.batch_id}
    assert {n for n in released if not n.startswith("up:")} == {
        "collection_end", "receipt", "manufacturing_start", "manufacturing_end", "hub_release",
    }  # fmt: skip
    assert released["collection_end"] == "2026-11-20T09:00:00.000000Z"
    whole = _hours(released["collection_end"], released["hub_release"])
    release_wait = _hours(released["manufacturing_end"], released["hub_release"])
    # The batch in progress counts in the legs it has both ends of (20 h of transport too).
    quinn = browser(app, "quinn")
    period = "from=20/11/2026&to=21/11/2026"  # the site's order (Europe/London: day first)
    response = quinn.get(f"/network/turnaround?{period}")
    assert response.status_code == 200
    page = words(response)
    assert "Batches created from 20/11/2026 to 21/11/2026 (both days included)." in page
    assert "V2V-TEST v1 · Batch execution test recipe" in page
    assert "2 batches at 1 site." in page
    assert (
        f"Collection end → Released by the hub: a median of {hours_text(whole)}, 90th percentile "
        f"{hours_text(whole)}, over 1 batch, against a target of 30 h"
    ) in page
    assert "Transport to the spoke takes a median of 20 h at SPK1 (target 12 h)." in page
    assert "Download the data (CSV)" in page and "The chart in words" in page
    assert 'src="data:image/svg+xml;base64,' in text(response)
    assert "SPK1: Collection end → Receipt at the spoke 20 h;" in page
    assert "QA release" not in page or "QA release waits" in page
    # The CSV behind the chart: every leg and the whole, per site and network.
    answer = quinn.get(f"/network/turnaround.csv?recipe=V2V-TEST&{period}")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert (
        'filename="turnaround-V2V-TEST-20261120-20261121.csv"'
        in answer.headers["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    by = {(r["leg"], r["from"], r["to"], r["site"]): r for r in rows}
    transport = by["leg", "collection_end", "receipt", "SPK1"]
    assert (transport["batches"], transport["median_hours"], transport["target_hours"]) == (
        "2", "20.00", "12",
    )  # fmt: skip
    assert transport["over_target"] == "2"
    wait = by["leg", "manufacturing_end", "hub_release", "Network"]
    assert (wait["batches"], wait["median_hours"]) == ("1", f"{release_wait:.2f}")
    the_whole = by["whole", "collection_end", "hub_release", "SPK1"]
    assert (the_whole["median_hours"], the_whole["target_hours"]) == (f"{whole:.2f}", "30")
    # Each batch's timeline, newest first, linked to QA's record page.
    assert page.index(running.batch.state.number) < page.index(done.batch.state.number)
    assert f'href="/qa/batches/{done.batch_id}/record"' in text(response)
    assert "Released by the hub: " in page and "End of Culture: " in page


def test_the_turnaround_filters_refuse_an_unknown_recipe_and_unreadable_dates(net, hub):
    app, _done, _running = hub
    quinn = browser(app, "quinn")
    cases = {  # query: (status, the refusal's first words)
        "recipe=NOPE": (400, "No batch of recipe 'NOPE' has a vein-to-vein milestone at this hub."),
        "from=2026-13-01": (422, "From"),
        "from=31/02/2026": (422, "From"),
        "to=yesterday": (422, "To"),
        "to=31/12/9999": (400, "9999-12-31 is outside the dates the hub reads."),
        "from=01/01/0001": (400, "0001-01-01 is outside the dates the hub reads."),
        "from=21/11/2026&to=20/11/2026": (
            400, "The period starts on 2026-11-21, after it ends on 2026-11-20.",
        ),
    }  # fmt: skip
    for query, (status, message) in cases.items():
        page = quinn.get(f"/network/turnaround?{query}")
        assert page.status_code == status, query
        [refusal] = re.findall(r'<p class="error" role="alert"[^>]*>(.*?)</p>', text(page), re.S)
        assert html.unescape(refusal).startswith(message), (query, refusal)
        answer = quinn.get(f"/network/turnaround.csv?{query}")
        assert answer.status_code == status
        assert answer.get_data(as_text=True).startswith(message)
    empty = words(quinn.get("/network/turnaround?from=01/01/2026&to=02/01/2026"))
    assert "No batch created in this period has a vein-to-vein milestone." in empty
