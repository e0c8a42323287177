"""The hub's QA record page says which signatures a witness gave at another user's session, in
the words of the operator's record page and the printed record (mes.core.record.witness_words).

The network tests' batch, finished at spoke SPK1 with its completion signed by Sam as a witness
at Olivia's panel (her session), and received at the hub."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from support import NOW, PASSWORD
from test_network_pages import browser, hub_app, people, received

from mes.services import batches, ingest, outbox
from mes.services.esign import Credentials
from mes.store.models import Batch as BatchRow

__all__ = ["hub_app", "people", "received"]  # the network tests' fixtures

LATER = NOW + timedelta(hours=3)
IN_PLACE = "as a witness at the session of Olivia Tester (olivia)"


@pytest.fixture
def completed_by_a_witness(received, make_uow):
    site, number, _token = received
    with site.uow() as uow:
        batch_id = uow.session.query(BatchRow.id).filter_by(number=number).scalar()
    [deviation] = site.view(batch_id).batch.state.deviations
    site.acknowledge(batch_id, deviation)
    for phase, values in (
        ("test_a", {"a": "3"}),
        ("test_b", {"b": "pass"}),
        ("mon_1", {"t1": "37.0"}),
        ("mon_2", {"t2": "36.9"}),
        ("harvest", {"harvested": "yes"}),
    ):
        site.do_simple(batch_id, phase, values, at=LATER)
    at_olivias_panel = replace(site.ctx("sam", LATER), in_session_of=site.ids["olivia"])
    with site.uow() as uow:
        batches.complete_batch(
            uow, at_olivias_panel, batch_id, Credentials(PASSWORD, "sam", witness=True),
            first_signing_in_session=True,
        )  # fmt: skip
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, LATER, batch_id, 0)
    with make_uow() as uow:
        ack = ingest.ingest_chunk(uow, LATER + timedelta(seconds=1), "SPK1", token)
    assert ack.last_seq == last
    return batch_id


def manifestations(page: str) -> list[str]:
    found = re.findall(r"<p class=\"manifestation\" data-manifestation>(.*?)</p>", page, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", m)).split()) for m in found]


def test_the_qa_record_page_says_the_completion_was_signed_at_the_operators_session(
    hub_app, completed_by_a_witness
):
    quinn = browser(hub_app, "quinn")
    page = quinn.get(f"/qa/batches/{completed_by_a_witness}/record").get_data(as_text=True)
    signed = manifestations(page)
    (completion,) = [m for m in signed if m.startswith("Completed by")]
    assert f"Sam Tester (sam), {IN_PLACE}" in completion
    assert not [m for m in signed if IN_PLACE in m and not m.startswith("Completed by")]
