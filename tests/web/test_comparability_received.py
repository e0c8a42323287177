"""The comparability page from a batch really run at a spoke and received by the hub: ingest
keeps its critical value in the read model, and the page charts it, linked to its record."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime

import pytest
from batch_helpers import TEST_RECIPE
from cpv_series import add_batches
from recipe_driver import begin
from review_network import RECEIVED, SPOKE
from support import PASSWORD, user_ctx
from sync_sites import net  # noqa: F401 - the fixture
from web_helpers import client_of, login, text

from mes.services import cpv, ingest, outbox
from mes.services.esign import Credentials

# BATCH-TEST as BATCH-CPV, with its viability marked a critical quality attribute.
ANNOTATED = TEST_RECIPE.replace("recipe_code: BATCH-TEST", "recipe_code: BATCH-CPV").replace(
    "                action_low: 70\n",
    "                action_low: 70\n                criticality: cqa\n",
    1,
)


@pytest.fixture
def received(net, tmp_path) -> str:  # noqa: F811
    """A BATCH-CPV batch run at SPK1 and its record ingested at the hub; its ID."""
    assert "criticality: cqa" in ANNOTATED
    net.publish(net.approve(ANNOTATED))
    net.enroll()
    site = net.spoke()
    path = tmp_path / "batch-cpv.yaml"
    path.write_text(ANNOTATED, encoding="utf-8")
    run = begin(site, path)
    run.run_until()
    run.finish()
    with site.uow() as uow:
        made = outbox.chunk_after(uow, RECEIVED, run.batch_id, 0, 500)
    with net.hub() as uow:
        ingest.ingest_chunk(uow, RECEIVED, SPOKE, made[0])
    return run.batch_id


def test_a_received_batch_is_charted_with_a_link_to_its_record(net, received, make_app):  # noqa: F811
    client = client_of(make_app("hub"))
    login(client, "quinn")
    first = client.get("/network/comparability/?from=01/01/2026")
    assert first.status_code == 302 and "/network/comparability/BATCH-CPV" in first.location
    page = client.get(first.location)
    assert page.status_code == 200
    body = text(page)
    assert "Viability (%)" in body and "Critical quality attribute" in body
    said = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    assert "1 batch of every site" in said, said
    assert "Specification (action limits): at least 70 %" in said, said
    svg = client.get(
        "/network/comparability/BATCH-CPV/chart.svg?parameter=count_cells.viability|%25&from=01/01/2026"
    )
    assert svg.status_code == 200
    assert f'<a href="/qa/batches/{received}"' in text(svg)


def test_a_received_batch_that_completes_nine_below_the_centre_line_is_a_trend_in_qa_queue(
    net,  # noqa: F811
    tmp_path,
    make_app,
):
    """Kept by ingest in the batch's transaction: QA's queue lists it, no page was opened."""
    net.publish(net.approve(ANNOTATED))
    net.enroll()
    site = net.spoke()
    path = tmp_path / "batch-cpv.yaml"
    path.write_text(ANNOTATED, encoding="utf-8")
    run = begin(site, path)
    run.run_until()
    run.finish()  # its viability is 95.0 (the driver's value inside the alert limits)
    history = dict(code="BATCH-CPV", parameter="count_cells.viability", label="Viability")
    steady = [100.4, 99.2, 100.9, 99.6, 99.8, 99.1, 100.3, 99.5, 99.7, 100.2, 100.7, 100.6]
    add_batches(
        net.hub, [(("SPK1", "SPK2")[i % 2], v) for i, v in enumerate(steady)], first=101,
        **history,
    )  # fmt: skip
    quinn = user_ctx(net.hub_ids["quinn"])
    with net.hub() as uow:
        baseline = cpv.freeze_baseline(
            uow, quinn, "BATCH-CPV", "count_cells.viability|%", date(2026, 3, 1),
            date(2026, 4, 30), 12, "PPQ", credentials=Credentials(PASSWORD, "quinn"),
            first_signing_in_session=True,
        )  # fmt: skip
    assert 95.0 < baseline.lcl < baseline.centre
    eight = [99.9, 99.7, 99.8, 99.6, 99.9, 99.8, 99.7, 99.9]  # below the centre line, within 1σ
    add_batches(
        net.hub, [("SPK1", v) for v in eight], start=datetime(2026, 6, 1, 8, tzinfo=UTC),
        first=201, **history,
    )  # fmt: skip
    with net.hub() as uow:
        assert cpv.trends_to_assess(uow, quinn).count == 0  # eight in a row: not yet
    with site.uow() as uow:
        made = outbox.chunk_after(uow, RECEIVED, run.batch_id, 0, 500)
    with net.hub() as uow:
        ingest.ingest_chunk(uow, RECEIVED, SPOKE, made[0])
    with net.hub() as uow:
        kept = {(t.scope, t.rule): t for t in cpv.trends_to_assess(uow, quinn).trends}
    assert set(kept) == {("SPK1", "N1"), ("network", "N1"), ("SPK1", "N2"), ("network", "N2")}
    nine = kept[("SPK1", "N2")]
    assert nine.words.startswith("SPK1: 9 batches in a row below the centre line of Viability")
    assert (nine.first_number, nine.last_number) == ("SPK1-2026-0201", "SPK1-2026-0001")
    client = client_of(make_app("hub"))
    login(client, "quinn")
    queue = client.get("/qa/")
    assert "Trends to assess 4" in " ".join(
        html.unescape(re.sub(r"<[^>]+>", " ", text(queue))).split()
    )
    assert f"/network/comparability/trends/{nine.id}" in text(queue)
