"""Anonymous requests neither fill the records nor tell who has an account (issue 13, finding 5
and the user-enumeration finding).

Refused enrollments, logins and unsigned sync requests are counted per source address and
minute: the first refusal of a burst is recorded in full, the burst once as a count when its
window closes ("30 refused enrollment attempts from 10.0.0.5 in 60 s"), and a source refused ten
times in its window gets 429 with ``Retry-After`` and words saying when to try again (JSON at the
API, the login page for people). Every refused login has the same words and does the same argon2
work. On SQLite and PostgreSQL, through the real hub app.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from web_helpers import alerts, client_of, login, logout

import mes.core.passwords
from mes.services.users import deactivate_user
from mes.store import models
from mes.store.models import SyncEvent

ATTACKER = "10.0.0.5"
WRONG = "not-the-right-password"
REFUSED = [
    "User ID or password not accepted, or the account is locked. "
    "Try again; if this persists, ask an administrator."
]


def from_address(app, address: str):
    """A browser of ``app`` whose connections come from ``address``."""
    client = client_of(app)
    client.environ_base["REMOTE_ADDR"] = address
    return client


def enroll(client, code: str = "ABCD-EFGH-JKLM-NPQR-STUV", **headers: str):
    body = {"site_code": "MAD2", "code": code, "public_key_pem": "-----BEGIN PUBLIC KEY-----"}
    return client.post("/api/v1/enroll", json=body, headers=headers)


def close_windows(make_uow) -> None:
    """A refusal a minute later closes the windows (as the next refused request would)."""
    from mes.services import throttle

    with make_uow() as uow:
        throttle.close_windows(uow, datetime.now(UTC) + timedelta(seconds=61))
        uow.commit()


def sync_log(make_uow, action: str) -> list[SyncEvent]:
    with make_uow() as uow:
        query = select(SyncEvent).where(SyncEvent.action == action).order_by(SyncEvent.id)
        return list(uow.session.execute(query).scalars())


def test_thirty_refused_enrollments_leave_one_entry_and_one_count_naming_the_source(
    hub, make_uow, audit_entries
):
    attacker = from_address(hub, ATTACKER)
    answers = [enroll(attacker) for _ in range(30)]
    assert [a.status_code for a in answers] == [403] * 10 + [429] * 20
    # While the burst lasts, only its first refusal is on record.
    [first] = audit_entries(action="spoke enrollment refused")
    assert "the hub never issued it" in first.reason and first.new == {"source": ATTACKER}
    assert len(sync_log(make_uow, "enroll")) == 1
    close_windows(make_uow)
    [burst] = audit_entries(action="refused enrollment attempts counted")
    assert burst.reason == (
        f"30 refused enrollment attempts from {ATTACKER} in 60 s (20 turned away as too many)"
    )
    assert (burst.kind, burst.record_type, burst.record_id) == (
        "security",
        "anonymous source",
        ATTACKER,
    )
    assert burst.new["refused"] == 30 and burst.new["turned_away"] == 20
    assert sum(burst.new["by_reason"].values()) == 30
    assert len(audit_entries(action="spoke enrollment refused")) == 1
    assert [e.reason for e in sync_log(make_uow, "enroll")][1:] == [burst.reason]
    with make_uow() as uow:
        assert uow.session.execute(select(models.RefusalWindow)).first() is None


def test_a_source_refused_too_often_gets_429_with_retry_after_and_others_are_still_heard(
    hub, make_uow
):
    attacker = from_address(hub, ATTACKER)
    for _ in range(10):
        assert enroll(attacker).status_code == 403
    turned_away = enroll(attacker)
    assert turned_away.status_code == 429
    wait = int(turned_away.headers["Retry-After"])
    assert 1 <= wait <= 60
    answer = turned_away.get_json()
    assert answer == {
        "error": "Too many refused enrollment attempts from this address.",
        "what_to_do": f"Wait {wait} seconds and try again; if you are locked out, ask an "
        "administrator.",
        "code": "too-many-attempts",
    }
    # A client's own X-Forwarded-For is not believed (no trusted proxy is configured) ...
    assert enroll(attacker, **{"X-Forwarded-For": "192.0.2.9"}).status_code == 429
    # ... and another address is heard.
    assert enroll(from_address(hub, "10.0.0.6")).status_code == 403


def test_unsigned_sync_requests_leave_one_log_line_per_burst(hub, make_uow):
    attacker = from_address(hub, ATTACKER)
    for _ in range(30):
        assert attacker.get("/api/v1/sync/bundles").status_code == 401
    [first] = sync_log(make_uow, "request")
    assert first.outcome == "refused" and first.item == f"GET /api/v1/sync/bundles from {ATTACKER}"
    close_windows(make_uow)
    burst = sync_log(make_uow, "request")[-1]
    assert burst.reason == f"30 refused sync requests from {ATTACKER} in 60 s"
    assert len(sync_log(make_uow, "request")) == 2


def test_every_refused_login_has_the_same_words_and_the_audit_trail_the_true_reason(
    hub, make_uow, create_user, audit_entries, cli_ctx
):
    create_user("alice")
    create_user("carol")
    create_user("dave")
    with make_uow() as uow:
        deactivate_user(uow, cli_ctx, "dave", "left the company")
    browser = from_address(hub, "10.0.0.7")
    for _ in range(5):  # carol locks herself out
        login(browser, "carol", WRONG)
    answers = {
        "wrong password": login(browser, "alice", WRONG),
        "unknown user ID": login(browser, "mallory"),
        "account locked": login(browser, "carol"),
        "account deactivated": login(browser, "dave"),
    }
    for answer in answers.values():
        assert (answer.status_code, alerts(answer)) == (401, REFUSED)
    refused = {e.reason: e for e in audit_entries(action="login refused")}
    assert set(refused) == {"unknown user ID", "account locked", "account deactivated"}
    assert refused["unknown user ID"].record_id == "10.0.0.7"
    assert "mallory" not in str(refused["unknown user ID"].body())
    assert (refused["account locked"].record_id, refused["account deactivated"].record_id) == (
        "carol",
        "dave",
    )
    assert [e.record_id for e in audit_entries(action="login failed")] == ["carol"] * 5 + ["alice"]
    close_windows(make_uow)
    [burst] = audit_entries(action="refused login attempts counted")
    assert burst.reason == "9 refused login attempts from 10.0.0.7 in 60 s"
    assert burst.new["by_reason"] == {
        "account deactivated": 1,
        "account locked": 1,
        "unknown user ID": 1,
        "wrong password": 6,
    }


def test_ten_refused_logins_from_one_address_turn_it_away_with_a_page_saying_when_to_retry(
    hub, create_user
):
    create_user("alice")
    guesser = from_address(hub, ATTACKER)
    for n in range(10):
        assert login(guesser, f"user{n}", WRONG).status_code == 401
    # Turned away before any password is checked, even the right one.
    turned_away = login(guesser, "alice")
    assert turned_away.status_code == 429
    wait = int(turned_away.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert alerts(turned_away) == [
        "Too many refused login attempts from this address. Wait "
        f"{wait} seconds and try again; if you are locked out, ask an administrator."
    ]
    # Alice at her own terminal is not locked out by it.
    alice = from_address(hub, "10.0.0.8")
    assert login(alice, "alice").status_code == 302
    logout(alice)


def test_an_unknown_user_id_costs_the_same_argon2_work_as_a_known_one(
    hub, create_user, monkeypatch
):
    create_user("alice")
    checked: list[str] = []
    real = mes.core.passwords._HASHER

    class Spy:
        def __getattr__(self, name: str):
            return getattr(real, name)

        def verify(self, stored: str, password: str) -> bool:
            checked.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(mes.core.passwords, "_HASHER", Spy())
    browser = from_address(hub, "10.0.0.9")
    login(browser, "alice", WRONG)
    known = list(checked)
    checked.clear()
    login(browser, "nobody", WRONG)
    assert len(known) == len(checked) == 1
    # The same parameters (memory, iterations, lanes) as a real user's hash: the same work.
    assert checked[0].rsplit("$", 2)[0] == known[0].rsplit("$", 2)[0]
    assert checked[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_address_behind_a_trusted_proxy_is_the_one_counted(make_app):
    hub = make_app("hub", proxy_hops=1)
    behind = from_address(hub, "127.0.0.1")
    for _ in range(10):
        assert enroll(behind, **{"X-Forwarded-For": ATTACKER}).status_code == 403
    assert enroll(behind, **{"X-Forwarded-For": ATTACKER}).status_code == 429
    assert enroll(behind, **{"X-Forwarded-For": "10.0.0.6"}).status_code == 403
