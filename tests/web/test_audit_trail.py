"""The audit trail viewer (21 CFR 11.10(e); Annex 11 §9, §12.3-12.4): who may read it, the
filters, and entries in words (before → after, why, where)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
from support import PASSWORD
from web_helpers import alerts, login, post_form, text

from mes.services.context import Context
from mes.services.users import add_user, set_roles

ENTRY_COUNT = re.compile(r"(\d+) entries · page (\d+) of (\d+)")


def _words(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _shown(response) -> tuple[int, list[str]]:
    """(total matching, the table's rows as text)."""
    page = text(response)
    total = int(ENTRY_COUNT.search(page).group(1))
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return total, [_words(row) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def _what(response) -> set[str]:
    """The 'What' column (action, record type and id) of the rows shown."""
    body = text(response).split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    cells = [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]
    return {_words(row[3]) for row in cells if len(row) == 7}


@pytest.fixture
def reviewer(client, create_user):
    """QA, logged in."""
    create_user("quinn", roles=["qa"], full_name="Quinn Quality")
    login(client, "quinn")
    return client


@pytest.mark.parametrize("role", ["qa", "admin"])
def test_qa_and_administrators_can_open_the_audit_trail(client, create_user, role):
    create_user("reader", roles=[role])
    login(client, "reader")
    response = client.get("/admin/audit")
    assert response.status_code == 200
    total, rows = _shown(response)
    assert total >= 2 and len(rows) == total  # at least the user's creation and login
    assert any("logged in" in row and "reader" in row for row in rows)


@pytest.mark.parametrize("field", ["since", "until"])
def test_a_far_date_in_the_filter_is_refused_with_400_next_to_the_field(reviewer, field):
    response = reviewer.get(f"/admin/audit?{field}=9999-12-31")
    assert response.status_code == 400
    assert "Give a date from 1900-01-01 to 2999-12-31." in alerts(response)


def test_an_operator_cannot_open_the_audit_trail(client, create_user):
    create_user("alice", roles=["operator"])
    login(client, "alice")
    response = client.get("/admin/audit?record_type=user")
    assert response.status_code == 403
    assert "You are not allowed to read the audit trail." in text(response)


def test_a_role_change_shows_before_and_after_values_and_the_reason_in_words(client, create_user):
    create_user("ada", roles=["admin"], full_name="Ada Admin")
    create_user("bob", roles=["operator"], full_name="Bob Builder")
    login(client, "ada")
    post_form(
        client,
        "/admin/users/bob/roles",
        {"roles": ["operator", "supervisor"], "reason": "Completed supervisor training"},
        page="/admin/users/bob",
    )
    total, rows = _shown(client.get("/admin/audit?record_type=user&record_id=bob"))
    assert total == 2
    changed, created = rows
    assert "Ada Admin ada" in changed
    assert "roles changed user bob" in changed
    assert "roles: operator → operator, supervisor" in changed
    assert "Completed supervisor training" in changed
    assert "unregistered browser (127.0.0.1)" in changed
    # A creation has only after-values: no arrow, every field in words.
    assert "user created user bob" in created
    assert "→" not in created
    assert "active: yes" in created and "full name: Bob Builder" in created
    page = text(client.get("/admin/audit?record_type=user&record_id=bob"))
    assert "<del>operator</del> → <ins>operator, supervisor</ins>" in page


def test_a_signature_entry_reads_as_who_signed_with_what_meaning(client, create_user):
    alice = create_user("alice", full_name="Alice Tester")
    create_user("quinn", roles=["qa"])
    login(client, "alice")
    post_form(
        client, "/account/attestation", {"esign_username": "alice", "esign_password": PASSWORD}
    )
    login(client, "quinn")
    total, rows = _shown(
        client.get(f"/admin/audit?record_type=esign-attestation&record_id={alice}")
    )
    assert total == 1
    assert "Alice Tester signed as acknowledged" in rows[0]
    assert "record hash" in rows[0]


def _at(text_: str) -> Context:
    return Context.command_line(datetime.fromisoformat(text_).replace(tzinfo=UTC), "ops", "server")


@pytest.fixture
def history(make_uow, create_user):
    """Users created at known times (UTC): winter (GMT) and a summer night (BST, next day)."""
    create_user("ada", roles=["admin"])
    for username, at in (("early", "2020-01-15T12:00:00"), ("summer", "2020-07-01T23:30:00")):
        with make_uow() as uow:
            add_user(
                uow,
                _at(at),
                username=username,
                full_name=f"{username.title()} User",
                roles=["operator"],
                password=PASSWORD,
            )
    with make_uow() as uow:
        set_roles(uow, _at("2020-01-20T08:00:00"), "early", ["qa"], "Moved to QA")


def test_the_audit_trail_filters_by_record(reviewer, history):
    total, rows = _shown(reviewer.get("/admin/audit?record_type=user&record_id=early"))
    assert total == 2
    assert "roles changed user early" in rows[0] and "Moved to QA" in rows[0]
    assert "user created user early" in rows[1]
    total, rows = _shown(reviewer.get("/admin/audit?record_type=terminal"))
    assert (total, rows) == (0, ["No entries match."])


def test_the_audit_trail_filters_by_who_acted(reviewer, history, audit_entries):
    login(reviewer, "ada")
    login(reviewer, "quinn")
    total, rows = _shown(reviewer.get("/admin/audit?username=ADA"))
    assert total == len(audit_entries(actor_username="ada")) == 1
    assert "logged in user ada" in rows[0]
    total, _ = _shown(reviewer.get("/admin/audit?username=system"))
    assert total == len(audit_entries(actor_username="system")) >= 4


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("2020-01-15", "2020-01-15", {"user created user early"}),
        ("2020-01-15", "2020-01-20", {"user created user early", "roles changed user early"}),
        ("2020-01-16", "2020-06-30", {"roles changed user early"}),
        # 23:30 UTC on 1 July is 00:30 on 2 July in London (BST): dates are the site's.
        ("2020-07-01", "2020-07-01", set()),
        ("2020-07-02", "2020-07-02", {"user created user summer"}),
        # Open-ended: everything since, including what the fixtures did at NOW and today.
        (
            "2020-07-02",
            "",
            {"user created user summer", "user created user ada", "logged in user quinn"},
        ),
    ],
)
def test_the_audit_trail_filters_by_the_sites_dates(reviewer, history, since, until, expected):
    query = {"since": since, "until": until, "record_type": "user"}
    response = reviewer.get("/admin/audit", query_string=query)
    found = _what(response)
    if until:
        assert found == expected
        assert _shown(response)[0] == len(expected)
    else:
        assert expected <= found
        assert not found & {"user created user early", "roles changed user early"}


def test_a_malformed_date_is_shown_as_such_and_not_applied(reviewer, history):
    response = reviewer.get("/admin/audit?since=15/01/2020&record_id=early")
    assert response.status_code == 400  # a refused filter is a bad request; the page still shows
    assert "Not a valid date value." in text(response)
    assert _shown(response)[0] == 2


@pytest.mark.parametrize("page", ["0", "-3", "abc", str(10**30)])
def test_any_page_number_gives_a_page(reviewer, page):
    response = reviewer.get(f"/admin/audit?page={page}")
    assert response.status_code == 200
    assert ENTRY_COUNT.search(text(response))
