"""The comparability page from a batch really run at a spoke and received by the hub: ingest
keeps its critical value in the read model, and the page charts it, linked to its record."""

from __future__ import annotations

import html
import re

import pytest
from batch_helpers import TEST_RECIPE
from recipe_driver import begin
from review_network import RECEIVED, SPOKE
from sync_sites import net  # noqa: F401 - the fixture
from web_helpers import client_of, login, text

from mes.services import ingest, outbox

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
