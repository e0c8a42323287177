"""The hub's QA record page says which signatures a witness gave at another user's session, in
the words of the operator's record page and the printed record (mes.core.record.witness_words).

The network tests' batch, finished at spoke SPK1 with its completion signed by Sam as a witness
at Olivia's panel (her session), and received at the hub."""

from __future__ import annotations

import html
import re

import pytest
from test_network_pages import browser, hub_app, people, received
from test_qa_pages import completed_at_the_spoke

__all__ = ["hub_app", "people", "received"]  # the network tests' fixtures

IN_PLACE = "as a witness at the session of Olivia Tester (olivia)"


@pytest.fixture
def completed_by_a_witness(received, make_uow):
    batch_id, _number, _deviation = completed_at_the_spoke(received, make_uow, witness_at="olivia")
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
