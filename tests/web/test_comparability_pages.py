"""The comparability page, its charts (SVG) and data (CSV), and QA's signed CPV actions, through
the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

import pytest
from cpv_series import CODE, KEY, add_batches, steady
from support import NOW
from web_helpers import client_of, login, post_form, sign_attestation, text

from mes.core.trends import NETWORK

PERIOD = "from=01/03/2026&to=31/12/2026"
PAGE = f"/network/comparability/{CODE}?{PERIOD}"


def words(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text(response))).split())


@pytest.fixture
def people(create_user) -> dict[str, str]:
    return {
        name: create_user(name, roles=roles)
        for name, roles in {"quinn": ["qa"], "sam": ["supervisor"], "otto": ["operator"]}.items()
    }


@pytest.fixture
def qa_client(hub, people):
    client = client_of(hub)
    login(client, "quinn")
    sign_attestation(client, username="quinn")
    return client


def test_the_page_shows_each_critical_number_with_its_chart_summary_capability_and_comparison(
    make_uow, qa_client
):
    numbers = add_batches(make_uow, steady())
    page = qa_client.get(PAGE)
    assert page.status_code == 200
    said = words(page)
    assert "Comparability across sites — CART-CD19" in said
    assert "Viability at harvest (%)" in said
    assert "Provisional limits computed from the 12 batches shown" in said
    assert f"12 batches of every site from {numbers[0]} to {numbers[-1]}" in said  # the summary
    assert "Network: no Ppk — the recipe gives Viability at harvest no specification" in said
    assert "no margin set: QA sets one" in said
    body = text(page)
    assert 'type="image/svg+xml"' in body and "chart.svg?" in body
    assert "Freeze the baseline" in body and "Set the margin" in body  # QA's forms


def test_a_reader_who_is_not_qa_sees_the_page_without_the_forms(make_uow, hub, people):
    add_batches(make_uow, steady())
    client = client_of(hub)
    login(client, "sam")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Freeze the baseline" not in text(page)
    operator = client_of(hub)
    login(operator, "otto")
    assert operator.get(PAGE).status_code == 403


def test_the_chart_is_an_svg_document_whose_points_link_to_the_records(make_uow, qa_client):
    numbers = add_batches(make_uow, steady())
    svg = qa_client.get(f"/network/comparability/{CODE}/chart.svg?parameter={KEY}&{PERIOD}")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert "script-src" not in svg.headers["Content-Security-Policy"]
    assert "default-src 'none'" in svg.headers["Content-Security-Policy"]
    body = text(svg)
    assert "<script" not in body
    assert body.count('<a href="/qa/batches/') == len(numbers)
    assert f"<title>{numbers[0]} · SPK1 · " in body
    site = qa_client.get(
        f"/network/comparability/{CODE}/chart.svg?parameter={KEY}&site=SPK2&{PERIOD}"
    )
    assert text(site).count('<a href="/qa/batches/') == 4


def test_chart_and_view_data_download_as_csv(make_uow, qa_client):
    numbers = add_batches(make_uow, steady())
    chart = qa_client.get(f"/network/comparability/{CODE}/chart.csv?parameter={KEY}&{PERIOD}")
    assert chart.mimetype == "text/csv" and "attachment" in chart.headers["Content-Disposition"]
    assert len(text(chart).splitlines()) == 1 + len(numbers)
    data = qa_client.get(f"/network/comparability/{CODE}/data.csv?{PERIOD}")
    assert all(n in text(data) for n in numbers) and "equivalence," in text(data)


def test_bad_requests_get_clear_4xx_answers(make_uow, qa_client):
    add_batches(make_uow, steady())
    for period in ("from=31/02/2026", "from=01/05/2026&to=01/04/2026", "to=tomorrow"):
        refused = qa_client.get(f"/network/comparability/{CODE}?{period}")
        assert refused.status_code in (400, 422), period
        assert "date" in words(refused).lower() or "period" in words(refused).lower()
    assert qa_client.get(f"/network/comparability/NOPE?{PERIOD}").status_code == 404
    missing = qa_client.get(f"/network/comparability/{CODE}/chart.svg?parameter=x.y|%&{PERIOD}")
    assert missing.status_code == 404 and "no critical number" in words(missing)
    assert qa_client.get("/network/comparability/trends/nothing").status_code == 404


def test_qa_freezes_a_baseline_and_assesses_the_trend_it_reveals(
    make_uow, qa_client, audit_entries
):
    add_batches(make_uow, steady())
    form = {
        "parameter": KEY,
        "period_from": "01/03/2026",
        "period_to": "30/04/2026",
        "batches": "12",
        "reason": "PPQ batches",
        "esign_password": "correct-Horse-7-battery",
        "esign_username": "quinn",
    }
    unsigned = post_form(
        qa_client,
        f"/network/comparability/{CODE}/baseline",
        {**form, "esign_password": ""},
        page=PAGE,
    )
    assert unsigned.status_code == 401 and "password" in words(unsigned).lower()
    assert not audit_entries(record_type="cpv-baseline")
    frozen = post_form(qa_client, f"/network/comparability/{CODE}/baseline", form, page=PAGE)
    assert frozen.status_code == 303
    assert [e.action for e in audit_entries(record_type="cpv-baseline")] == [
        "signed: approved",
        "CPV baseline frozen",
    ]
    add_batches(make_uow, [("SPK3", 99.0)], start=NOW.replace(month=5), first=200)
    page = qa_client.get(PAGE)
    assert "Baseline frozen by Quinn Tester (quinn)" in words(page)
    link = re.search(r'href="(/network/comparability/trends/[^"]+)">Assess', text(page))
    assert link, "the trend to assess is linked from the page"
    queue = qa_client.get("/qa/")  # QA's queue lists it among the trends to assess
    assert "Trends to assess 2" in words(queue) and link.group(1) in text(queue)  # SPK3, network
    trend_page = qa_client.get(link.group(1))
    assert "Trend to assess" in words(trend_page)
    assert "above the upper control limit" in words(trend_page)
    refused = post_form(
        qa_client,
        link.group(1),
        {"disposition": "capa", "comment": "x", "esign_password": "correct-Horse-7-battery"},
        page=link.group(1),
    )
    assert refused.status_code == 400 and "needs the CAPA reference" in words(refused)
    assessed = post_form(
        qa_client,
        link.group(1),
        {
            "disposition": "capa",
            "reference": "CAPA-2026-031",
            "comment": "Incubator drift at SPK3; CAPA opened.",
            "esign_password": "correct-Horse-7-battery",
        },
        page=link.group(1),
    )
    assert assessed.status_code == 303
    shown = words(qa_client.get(link.group(1)))
    assert "Trend assessed" in shown and "CAPA-2026-031" in shown and "CAPA opened" in shown
    after = qa_client.get("/qa/")
    assert "Trends to assess 1" in words(after) and link.group(1) not in text(after)
    trend_id = link.group(1).rsplit("/", 1)[1]
    assert [e.action for e in audit_entries(record_id=trend_id)] == [
        "CPV trend detected",
        "signed: acknowledged",
        "CPV trend assessed",
    ]


def test_a_supervisor_cannot_freeze_a_baseline(make_uow, hub, people, audit_entries):
    add_batches(make_uow, steady())
    client = client_of(hub)
    login(client, "sam")
    form = {"parameter": KEY, "period_from": "01/03/2026", "period_to": "30/04/2026",
            "batches": "12", "esign_password": "correct-Horse-7-battery", "esign_username": "sam"}  # fmt: skip
    refused = post_form(client, f"/network/comparability/{CODE}/baseline", form, page=PAGE)
    assert refused.status_code == 403
    assert not audit_entries(record_type="cpv-baseline")
    assert NETWORK == "network"


def test_chart_points_link_to_the_review_only_for_those_who_may_open_it(make_uow, hub, people):
    """Review: a supervisor's chart linked every point to a page answering 403."""
    add_batches(make_uow, steady())
    client = client_of(hub)
    login(client, "sam")
    svg = client.get(f"/network/comparability/{CODE}/chart.svg?parameter={KEY}&{PERIOD}")
    assert svg.status_code == 200
    body = text(svg)
    assert "/qa/batches/" not in body and "<a " not in body
    assert "SPK1-2026-0001 · SPK1 · " in body  # the batch still named in the point's title


def test_after_freezing_a_baseline_the_page_keeps_its_period_and_site(make_uow, qa_client):
    """Review: the redirect after a baseline or margin lost ?from=&to=."""
    add_batches(make_uow, steady())
    page = qa_client.get(f"{PAGE}&site=SPK2")
    assert 'name="from" value="01/03/2026"' in text(page) and 'name="site" value="SPK2"' in text(
        page
    )
    form = {
        "parameter": KEY, "period_from": "01/03/2026", "period_to": "30/04/2026",
        "batches": "12", "reason": "PPQ", "esign_password": "correct-Horse-7-battery",
        "esign_username": "quinn", "from": "01/03/2026", "to": "31/12/2026", "site": "SPK2",
    }  # fmt: skip
    frozen = post_form(qa_client, f"/network/comparability/{CODE}/baseline", form, page=PAGE)
    assert frozen.status_code == 303
    where = frozen.headers["Location"]
    assert "from=01/03/2026" in where and "to=31/12/2026" in where and "site=SPK2" in where
    margin = {
        "parameter": KEY, "margin": "2", "reason": "PPQ spread",
        "esign_password": "correct-Horse-7-battery", "from": "01/03/2026", "to": "31/12/2026",
    }  # fmt: skip
    kept = post_form(qa_client, f"/network/comparability/{CODE}/margin", margin, page=PAGE)
    assert kept.status_code == 303 and "to=31/12/2026" in kept.headers["Location"]


def test_the_baseline_form_proposes_the_period_shown_ending_today(make_uow, qa_client):
    """Opened without a 'to' date (the last year to today), the form is complete as it stands:
    QA is not refused 'Period to is required' for a date the page itself left out."""
    add_batches(make_uow, steady())
    page = text(qa_client.get(f"/network/comparability/{CODE}?from=01/03/2026"))
    value = re.search(r'name="period_to" class="date" value="([^"]*)"', page)
    assert value is not None and re.fullmatch(r"\d\d/\d\d/\d{4}", value.group(1)), value
    # the actions are a row of their own under the fields, and the report's data names itself
    assert '<div class="actions wide">' in page and "The report\u2019s data (CSV)" in page
