"""The hub's network page and the spoke's sync state, through the real app on both databases.

At the hub: QA and supervisors watch the network, only the administrator adds, suspends,
reinstates and revokes spokes (each with a reason); a new spoke's one-time code is shown once;
deviations received from a spoke are listed with site, batch, phase and value, in the page and
in the JSON the page polls; a locked session gets 401 JSON. At the spoke: the board and the sync
page say, per batch, "synced", "pending (n entries)" or "refused by the hub: why", and the log in words.
"""

from __future__ import annotations

import html
import re
import secrets
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from batch_helpers import DIN_TYPED, PATIENT, TEST_RECIPE, Spoke
from support import NOW, PASSWORD, user_ctx
from web_helpers import client_of, lock, login, post_form, session_token_of, text

from mes.core.errors import EnrollmentRefused, SpokeNotActive
from mes.core.identity import mod37_2
from mes.core.keys import SiteKey
from mes.core.lifecycle import Step
from mes.core.passwords import PasswordPolicy
from mes.core.site import Site
from mes.core.sync import sign_request
from mes.services import ingest, outbox, recipes, spokes
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.store.engine import make_engine, session_factory
from mes.store.models import BatchEntry, EnrollmentCode, WebSession
from mes.store.uow import UnitOfWork

CODE = re.compile(r"data-enrollment-code><strong>([A-Z2-9]{4}(?:-[A-Z2-9]{4}){4})</strong>")
HUB_PEOPLE = {
    "ada": ["admin"],
    "quinn": ["qa"],
    "sam": ["supervisor"],
    "aaron": ["author"],
    "otto": ["operator"],
}


def words(response) -> str:
    """The page as people read it: text without tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text(response))).split())


def flashes(response) -> list[str]:
    found = re.findall(r'<p class="flash [^"]*"[^>]*>(.*?)</p>', text(response), re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", f)).split()) for f in found]


@pytest.fixture
def people(create_user) -> dict[str, str]:
    return {name: create_user(name, roles=roles) for name, roles in HUB_PEOPLE.items()}


@pytest.fixture
def hub_app(make_app, people):
    return make_app("hub")


def browser(app, username: str):
    client = client_of(app)
    response = login(client, username)
    assert response.status_code == 302, text(response)
    return client


def add_spoke(client, code: str = "SPK9", name: str = "Suite nine"):
    return post_form(
        client,
        "/network/spokes",
        {"code": code, "name": name, "time_zone": "Europe/London"},
        page="/network/",
    )


def enroll(make_uow, code: str, one_time: str) -> SiteKey:
    """The spoke presents its one-time code and a key of its own (as 'mes spoke enroll' does)."""
    key = SiteKey.generate()
    with make_uow() as uow:  # now: the web pages issued the code at the real time
        spokes.enroll(uow, datetime.now(UTC), code, one_time, key.public.pem().decode("ascii"))
    return key


# --- who may do what at the hub ----------------------------------------------------------


def test_qa_and_supervisors_watch_the_network_and_only_the_administrator_manages_it(hub_app):
    ada = browser(hub_app, "ada")
    page = text(ada.get("/network/"))
    assert "Add a spoke" in page and ">Network</a>" in page
    assert "No spokes yet. Add one below" in words(ada.get("/network/"))
    assert add_spoke(ada).status_code == 200
    for watcher in ("quinn", "sam"):
        client = browser(hub_app, watcher)
        response = client.get("/network/")
        assert response.status_code == 200
        page = words(response)
        assert "Open deviations at the spokes" in page and "SPK9 Suite nine" in page
        assert "Add a spoke" not in page and "New enrollment code" not in page
        assert "Suspend" not in page and ">Network</a>" in text(response)
        assert client.get("/network/alerts.json").status_code == 200
        refused = [
            add_spoke(client, "SPK8"),
            post_form(client, "/network/spokes/SPK9/code", {}, page="/network/"),
            post_form(client, "/network/spokes/SPK9/revoke", {"reason": "x"}, page="/network/"),
            post_form(client, "/network/spokes/SPK9/suspend", {"reason": "x"}, page="/network/"),
        ]
        assert [r.status_code for r in refused] == [403] * 4
        assert "not allowed to enroll, suspend and revoke spokes" in words(refused[0])
    for outsider in ("aaron", "otto"):
        client = browser(hub_app, outsider)
        assert client.get("/network/").status_code == 403
        assert client.get("/network/alerts.json").status_code == 403
        assert ">Network</a>" not in text(client.get("/"))
    assert "SPK8" not in words(ada.get("/network/"))


def test_an_added_spoke_shows_its_one_time_code_once(hub_app, make_uow):
    ada = browser(hub_app, "ada")
    shown = add_spoke(ada, "spk9")
    assert shown.status_code == 200
    first = CODE.search(text(shown))
    assert first, text(shown)
    assert "shown only now" in words(shown) and "works once" in words(shown)
    assert f"mes spoke enroll --hub http://localhost --code {first.group(1)}" in words(shown)
    network = text(ada.get("/network/"))
    assert first.group(1) not in network and "awaiting enrollment" in network
    with make_uow() as uow:
        stored = uow.session.query(EnrollmentCode).one()
        assert first.group(1) not in (stored.code_hash, stored.id)
    again = post_form(ada, "/network/spokes/SPK9/code", {}, page="/network/")
    second = CODE.search(text(again))
    assert second and second.group(1) != first.group(1)
    with pytest.raises(EnrollmentRefused):  # a new code ends the earlier unused one
        enroll(make_uow, "SPK9", first.group(1))
    enroll(make_uow, "SPK9", second.group(1))
    assert ">active<" in text(ada.get("/network/"))
    taken = add_spoke(ada, "SPK9")
    assert taken.status_code == 302
    assert "Site code SPK9 is already taken." in " ".join(flashes(ada.get("/network/")))
    empty = add_spoke(ada, "", "")
    assert empty.status_code == 302
    assert flashes(ada.get("/network/")) == ["Give the site code, name and time zone of the spoke."]


def signed_get(hub_app, key: SiteKey, clock_off: timedelta):
    """A signed request of spoke SPK9 whose clock is ``clock_off`` from the real time."""
    path = "/api/v1/sync/bundles"
    headers = sign_request(
        "GET", path, b"", site="SPK9", key=key, at=datetime.now(UTC) + clock_off,
        nonce=secrets.token_urlsafe(24),
    )  # fmt: skip
    return hub_app.test_client().get(path, headers=headers)


def test_the_network_page_shows_each_spokes_clock_and_warns_past_the_allowed_skew(
    hub_app, make_uow
):
    ada = browser(hub_app, "ada")
    key = enroll(make_uow, "SPK9", CODE.search(text(add_spoke(ada))).group(1))
    quinn = browser(hub_app, "quinn")
    assert "SPK9 Suite nine" in words(quinn.get("/network/"))
    assert "not measured yet (from its next signed request)" in words(quinn.get("/network/"))
    assert signed_get(hub_app, key, timedelta(seconds=90)).status_code == 200
    page = words(quinn.get("/network/"))
    assert re.search(r"Clock .* (89|90) s ahead of the hub's \(measured 20\d\d-", page), page
    assert "beyond the 300 s allowed" not in page
    spoke = quinn.get("/network/alerts.json").get_json()["spokes"][0]
    assert 88 < spoke["clock_offset_seconds"] < 91 and spoke["clock_warning"] is False
    # Its clock 12 minutes slow: its requests are refused, and the page says why.
    refused = signed_get(hub_app, key, -timedelta(minutes=12))
    assert refused.status_code == 401 and "behind the hub's clock" in refused.get_data(as_text=True)
    response = quinn.get("/network/")
    assert re.search(
        r"12 min behind the hub's \(measured [^)]+\) — beyond the 300 s allowed: its requests "
        r"are refused and its records are dated wrongly\. Set its clock right \(NTP\)\.",
        words(response),
    ), words(response)
    assert 'class="pill bad" data-field="clock" role="alert"' in text(response)
    assert quinn.get("/network/alerts.json").get_json()["spokes"][0]["clock_warning"] is True
    # Set right: the next request measures it again.
    assert signed_get(hub_app, key, timedelta(0)).status_code == 200
    assert "in step with the hub's" in words(quinn.get("/network/"))


def test_suspend_reinstate_and_revoke_each_need_a_reason(hub_app, make_uow, audit_entries):
    ada = browser(hub_app, "ada")
    code = CODE.search(text(add_spoke(ada))).group(1)
    enroll(make_uow, "SPK9", code)

    def act(action: str, reason: str):
        url = f"/network/spokes/SPK9/{action}"
        response = post_form(ada, url, {"reason": reason}, page="/network/")
        assert response.status_code == 302
        page = ada.get("/network/")
        return flashes(page), words(page)

    said, page = act("suspend", "")
    assert said == ["Say why spoke SPK9 is to be suspended; nothing was changed."]
    assert "SPK9 Suite nine Europe/London" in page and " active " in page
    said, page = act("suspend", "   ")
    assert said == ["Say why spoke SPK9 is to be suspended; nothing was changed."]
    said, page = act("suspend", "Audit of suite nine  pending")
    assert said == ["Spoke SPK9 is now suspended."]
    assert "suspended Audit of suite nine pending" in page and "Reinstate…" in page
    said, _ = act("suspend", "again")
    assert said == ["Spoke SPK9 is suspended; only an active spoke can be suspended."]
    said, page = act("reinstate", "Audit closed")
    assert said == ["Spoke SPK9 is now active."]
    said, page = act("revoke", "")
    assert said == ["Say why spoke SPK9 is to be revoked; nothing was changed."]
    said, page = act("revoke", "Site closed for good")
    assert said == ["Spoke SPK9 is now revoked."]
    assert "A revoked spoke stays revoked." in page and "New enrollment code" not in page
    said, _ = act("reinstate", "Changed my mind")
    assert said == ["Spoke SPK9 is revoked; only a suspended spoke can be reinstated."]
    said, _ = act("revoke", "Once more")
    assert said == ["Spoke SPK9 is revoked; a revoked spoke stays revoked."]
    refused = post_form(ada, "/network/spokes/SPK9/code", {}, page="/network/")
    assert refused.status_code == 302
    assert "a revoked spoke never enrolls again" in " ".join(flashes(ada.get("/network/")))
    assert post_form(ada, "/network/spokes/SPK9/delete", {"reason": "x"}).status_code == 404
    post_form(ada, "/network/spokes/NOPE/suspend", {"reason": "x"}, page="/network/")
    assert "There is no spoke 'NOPE' at this hub." in " ".join(flashes(ada.get("/network/")))
    changes = [
        (e.action, e.reason)
        for e in audit_entries(record_type="spoke", record_id="SPK9")
        if e.action.startswith("spoke ") and e.action != "spoke added"
    ]
    assert changes == [
        ("spoke enrolled", None),
        ("spoke suspended", "Audit of suite nine pending"),
        ("spoke reinstated", "Audit closed"),
        ("spoke revoked", "Site closed for good"),
    ]


# --- deviations received from a spoke ----------------------------------------------------


@pytest.fixture
def received(people, make_uow, tmp_path, sqlite_template, site_key):
    """The hub (on the test database) receives a batch with a deviation from spoke SPK1.

    The hub approves BATCH-TEST and publishes it for SPK1; the spoke (its own SQLite database
    and key) installs it, enrolls with its one-time code, runs a batch whose viability is
    outside the action limits, and sends its entries as a signed chunk, which the hub ingests.
    """
    for name in ("aaron", "sam", "quinn"):
        with make_uow() as uow:
            acknowledge_accountability(
                uow, user_ctx(people[name], at=NOW - timedelta(days=2)),
                Credentials(PASSWORD, name), first_signing_in_session=True,
            )  # fmt: skip
    with make_uow() as uow:
        version = recipes.import_recipe(uow, user_ctx(people["aaron"]), TEST_RECIPE, "t.yaml").id
    for step, who in (
        (Step.SUBMIT, "aaron"),
        (Step.REVIEW, "sam"),
        (Step.APPROVE, "quinn"),
        (Step.MAKE_EFFECTIVE, "quinn"),
    ):
        with make_uow() as uow:
            recipes.sign_step(
                uow, user_ctx(people[who]), version, step, Credentials(PASSWORD, who),
                first_signing_in_session=True,
                **({"effective_from": NOW.date()} if step is Step.MAKE_EFFECTIVE else {}),
            )  # fmt: skip
    with make_uow() as uow:
        recipes.publish(uow, user_ctx(people["quinn"]), version, ["SPK1"])
    with make_uow() as uow:
        ticket = spokes.add_spoke(uow, user_ctx(people["ada"]), "SPK1", "Suite A", "Europe/London")

    spoke_file = tmp_path / "spoke.sqlite3"
    shutil.copyfile(sqlite_template, spoke_file)
    engine = make_engine(f"sqlite:///{spoke_file}")
    sessions = session_factory(engine)
    spoke_key = SiteKey.generate()

    def spoke_uow(role: str = "spoke", hub_key=None) -> UnitOfWork:
        site = Site(
            code="SPK1", name="Suite A", role="spoke", time_zone="Europe/London",
            key=spoke_key, password_policy=PasswordPolicy(), hub_key=site_key.public,
        )  # fmt: skip
        return UnitOfWork(sessions, site)

    site = Spoke(spoke_uow, site_key).set_up()
    with make_uow() as uow:
        spokes.enroll(uow, NOW, "SPK1", ticket.code, spoke_key.public.pem().decode("ascii"))
    batch = site.start()
    site.do_check_bag(batch.state.id)
    site.do_count(batch.state.id, viability="62.0")
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, NOW, batch.state.id, 0)
    with make_uow() as uow:
        ack = ingest.ingest_chunk(uow, NOW + timedelta(seconds=1), "SPK1", token)
    assert ack.stored == last
    yield site, batch.state.number, token
    engine.dispose()


def test_the_network_page_and_its_json_list_the_deviation_a_spoke_sent(hub_app, received):
    _site, number, _token = received
    quinn = browser(hub_app, "quinn")
    answer = quinn.get("/network/alerts.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    data = answer.get_json()
    assert set(data) == {"as_of", "open_deviations", "alerts", "spokes"}
    assert data["open_deviations"] == 1
    [alert] = data["alerts"]
    assert set(alert) == {
        "id", "site", "batch", "batch_id", "phase", "value", "category", "description",
        "raised_at", "raised", "raised_by",
    }  # fmt: skip
    assert (alert["site"], alert["batch"], alert["phase"]) == ("SPK1", number, "Count cells")
    assert alert["value"] == "Viability: 62.0 %"
    assert alert["category"] == "Value outside action limits"
    assert alert["raised"] == "2026-11-21 09:00:00 GMT" and alert["raised_by"] == "olivia"
    [spoke] = data["spokes"]
    assert spoke["code"] == "SPK1" and spoke["status_text"] == "active"
    assert (spoke["batches"], spoke["in_progress"], spoke["open_deviations"]) == (1, 1, 1)
    assert spoke["last_received"] == "2026-11-21 09:00:01 GMT"
    page = words(quinn.get("/network/"))
    assert f"SPK1 {number} Count cells Viability: 62.0 % Value outside action limits" in page, page
    assert "1 (1 in progress) 1" in page
    assert "No open deviations at any spoke" not in page


def test_a_refused_chunk_is_listed_in_words_at_the_hub(hub_app, received, make_uow):
    _site, _number, token = received
    ada = browser(hub_app, "ada")
    assert "Nothing refused" in words(ada.get("/network/"))
    post_form(ada, "/network/spokes/SPK1/suspend", {"reason": "Audit"}, page="/network/")
    with make_uow() as uow, pytest.raises(SpokeNotActive):
        ingest.ingest_chunk(uow, NOW + timedelta(minutes=1), "SPK1", token)
    page = words(ada.get("/network/"))
    assert (
        "2026-11-21 09:01:00 GMT SPK1 Batch records Spoke SPK1 is suspended at the hub: "
        "Audit; its records are refused." in page
    ), page
    assert "Nothing refused" not in page


def test_a_locked_session_gets_401_json_from_the_alerts(hub_app):
    quinn = browser(hub_app, "quinn")
    assert lock(quinn).status_code == 303
    answer = quinn.get("/network/alerts.json", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.get_json() == {
        "error": "Session locked",
        "message": "Unlock the session with your password.",
    }
    logged_out = client_of(hub_app).get("/network/alerts.json")
    assert logged_out.status_code == 302 and "/login" in logged_out.location


# --- the spoke: sync state on the board and the sync page --------------------------------


@pytest.fixture
def spoke_site(make_uow):
    from batch_helpers import spoke

    return spoke(make_uow)


@pytest.fixture
def spoke_app(make_app, spoke_site):
    return make_app("spoke", hub_key=spoke_site.hub_key.public)


def spoke_browser(app, site, username: str):
    from itsdangerous import URLSafeSerializer

    client = client_of(app)
    cookie = URLSafeSerializer("test-secret-spoke", salt="mes-terminal").dumps(site.terminal_id)
    client.set_cookie("mes_terminal", cookie)
    assert login(client, username).status_code == 302
    return client


def test_the_board_and_the_sync_page_say_what_the_hub_holds_of_each_batch(spoke_app, spoke_site):
    site = spoke_site
    olivia = spoke_browser(spoke_app, site, "olivia")
    page = words(olivia.get("/sync/"))
    assert "This spoke has not enrolled with a hub" in page
    assert "No batches yet" in page and "Nothing sent or received yet." in page
    started = []
    for serial in ("000001", "000002", "000003"):
        din = f"A999926{serial}"
        batch = site.start(din=f"{din} 00 {mod37_2(din)}", patient_id=PATIENT)
        started.append((batch.state.id, batch.state.number, batch.state.last_seq))
    (synced, synced_no, synced_seq), (_waiting, waiting_no, waiting_seq), (bad, bad_no, _) = started
    system = Context.command_line(NOW, "tester", "testhost")
    with site.uow() as uow:
        outbox.record_enrollment(uow, system, "http://hub.example:8000", "HUB", "ab" * 32)
    with site.uow() as uow:
        digest = (
            uow.session.query(BatchEntry.hash).filter_by(batch_id=synced, seq=synced_seq).scalar()
        )
    with site.uow() as uow:
        assert outbox.acknowledge(
            uow, NOW + timedelta(seconds=5), synced, synced_seq, digest, stored=synced_seq
        )
    with site.uow() as uow:
        outbox.refused(
            uow, NOW + timedelta(seconds=6), bad, "recipe-not-deployed",
            "The hub never deployed BATCH-TEST v1 to SPK1.",
        )  # fmt: skip
    board = text(olivia.get("/batches"))
    cards = dict(
        re.findall(r'data-batch="([^"]+)".*?<p class="sync-state"[^>]*>(.*?)</p>', board, re.S)
    )
    said = {
        n: " ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for n, c in cards.items()
    }
    assert said == {
        synced_no: "At the hub: synced",
        waiting_no: f"At the hub: pending ({waiting_seq} entries)",
        bad_no: "At the hub: refused by the hub: The hub never deployed BATCH-TEST v1 to SPK1.",
    }
    page = words(olivia.get("/sync/"))
    assert "sends its batch records to hub HUB at http://hub.example:8000" in page
    assert "1 synced 1 pending 1 refused" in page
    assert f"{synced_no} BATCH-TEST v1 in progress synced 2026-11-21 09:00:05 GMT" in page
    assert f"{waiting_no} BATCH-TEST v1 in progress pending ({waiting_seq} entries) never" in page
    assert (
        f"2026-11-21 09:00:06 GMT Batch {bad_no} was refused by hub HUB: The hub never "
        "deployed BATCH-TEST v1 to SPK1. refused network" in page
    ), page
    assert (
        f"2026-11-21 09:00:05 GMT Batch {synced_no}: {synced_seq} entries stored at hub HUB "
        f"(up to entry {synced_seq}). done network" in page
    ), page
    assert "2026-11-21 09:00:00 GMT Enrolled with hub HUB. done network" in page
    assert "Installed BATCH-TEST v1 Batch execution test recipe 2026-11-21" in page
    assert DIN_TYPED not in page  # the sync page names batches, not patients


def test_the_pages_own_polling_does_not_keep_an_idle_session_open(hub_app, make_uow):
    """The network page asks for alerts every few seconds by itself: that is not the user's
    activity, so an unattended page still locks after the inactivity timeout (11.10(d))."""
    from sqlalchemy import update

    from mes.core.sessions import token_digest

    quinn = browser(hub_app, "quinn")
    digest = token_digest(session_token_of(quinn))

    def last_seen() -> datetime:
        with make_uow() as uow:
            return uow.session.get(WebSession, digest).last_seen_at

    with make_uow() as uow:  # the session was last used 30 s ago
        row = uow.session.get(WebSession, digest)
        earlier = {"created_at": row.created_at - timedelta(seconds=30)}
        earlier["last_seen_at"] = row.last_seen_at - timedelta(seconds=30)
        uow.session.execute(update(WebSession).where(WebSession.id_hash == digest).values(earlier))
        uow.commit()
    polled = quinn.get("/network/alerts.json", headers={"Accept": "application/json"})
    assert polled.status_code == 200
    assert last_seen() == earlier["last_seen_at"]
    assert quinn.get("/network/").status_code == 200  # a page the user opens is activity
    assert last_seen() > earlier["last_seen_at"]
