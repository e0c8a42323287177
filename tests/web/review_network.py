"""A hub and spoke SPK1 on two real databases, a batch run at the spoke, reviewed at the hub.

For the tests of QA's decision travelling back to the spoke (the sync API, the client, the
transfer file, the spoke's board, batch page and final label). The two databases and the sites
come from ``tests/integration/sync_sites.py`` (shared with the sync service tests); the hub's
QA person reviews every exception, assesses and closes every deviation and decides, through
the same services the hub's QA pages call.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from batch_helpers import TEST_RECIPE
from flask import Flask
from recipe_driver import begin
from support import NOW, PASSWORD, user_ctx
from sync_sites import CLI, SPOKE, Network, twin_database

from mes.core.review import Category, Decision
from mes.services import batches, ingest, outbox, review
from mes.services.esign import Credentials
from mes.store.engine import make_engine
from mes.sync.client import HubClient

__all__ = ["CLI", "NOW", "SPOKE", "Network"]
RECEIVED = NOW + timedelta(hours=6)  # when the hub receives the batch
QA_AT = RECEIVED + timedelta(hours=1)  # when QA reviews and decides (after the whole record)


@contextmanager
def network(request: pytest.FixtureRequest, database_url: str, engine, site_key, folder: Path):
    """The hub on the test's database and SPK1 on a twin of the same kind."""
    with twin_database(request, database_url, folder) as spoke_url:
        spoke_engine = make_engine(spoke_url)
        try:
            yield Network(engine, spoke_engine, site_key, folder=folder)
        finally:
            spoke_engine.dispose()


def batch_at_the_hub(net: Network, folder: Path) -> str:
    """BATCH-TEST run to completion at SPK1 (one deviation) and its record ingested at the hub."""
    site = net.connected()
    path = folder / "batch-test.yaml"
    path.write_text(TEST_RECIPE, encoding="utf-8")
    run = begin(site, path)
    run.run_until()
    with site.uow() as uow:  # one deviation, for QA to assess and close at the hub
        run.batch = batches.report_deviation(
            uow, site.ctx("olivia", run.tick()), run.batch_id, "Bag label smudged at receipt"
        )
    run.finish()
    batch_id = run.batch_id
    with site.uow() as uow:
        made = outbox.chunk_after(uow, RECEIVED, batch_id, 0, 500)
    assert made is not None
    with net.hub() as uow:
        ingest.ingest_chunk(uow, RECEIVED, SPOKE, made[0])
    with net.spoke_uow() as uow:  # the spoke knows its hub (as 'mes spoke enroll' records)
        outbox.record_enrollment(uow, CLI, "http://hub.test", "HUB", net.hub_key.public.key_id)
    return batch_id


def review_all(net: Network, batch_id: str) -> list[str]:
    """QA at the hub: every exception reviewed, every deviation assessed and closed.

    Returns the deviations closed.
    """
    quinn = user_ctx(net.hub_ids["quinn"], at=QA_AT)
    with net.hub() as uow:
        findings = review.review_batch(uow, quinn, batch_id).findings
    closed = []
    for finding in findings:
        assert not finding.blocking, finding
        if finding.by_closure and finding.category is not Category.DEVIATION:
            continue  # a value that raised a deviation: settled by closing it
        if finding.by_closure:
            deviation = finding.key.split(":", 1)[1]
            with net.hub() as uow:
                review.assess_deviation(
                    uow, quinn, batch_id, deviation,
                    {"classification": "minor", "description": "Bag label smudged",
                     "impact": "None on the product", "root_cause": "Printer ribbon worn",
                     "capa": "CAPA-0042"},
                )  # fmt: skip
            with net.hub() as uow:
                review.close_deviation(
                    uow, quinn, batch_id, deviation, Credentials(PASSWORD, "quinn"),
                    first_signing_in_session=False,
                )  # fmt: skip
            closed.append(deviation)
        else:
            with net.hub() as uow:
                review.mark_reviewed(
                    uow, quinn, batch_id, finding.key, Credentials(PASSWORD, "quinn"),
                    first_signing_in_session=False,
                )  # fmt: skip
    return closed


def decide(net: Network, batch_id: str, decision: Decision, reason: str | None = None) -> None:
    """QA at the hub releases or rejects the batch (its review done first)."""
    if decision is Decision.RELEASED:
        review_all(net, batch_id)
    with net.hub() as uow:
        review.decide_batch(
            uow, user_ctx(net.hub_ids["quinn"], at=QA_AT), batch_id, decision,
            Credentials(PASSWORD, "quinn"), first_signing_in_session=False, reason=reason,
        )  # fmt: skip


def hub_client(net: Network, hub_app: Flask, transport: httpx.BaseTransport | None = None):
    """The spoke's real sync client, talking to the hub app in-process (WSGI), real clock."""
    http = httpx.Client(
        transport=transport or httpx.WSGITransport(app=hub_app), base_url="http://hub.test"
    )
    return HubClient(
        net.runtime("spoke"), "http://hub.test", http=http, clock=lambda: datetime.now(UTC)
    )


def spoke_app(net: Network) -> Flask:
    """The spoke's real web app on the spoke's database."""
    from mes.app import create_app

    runtime = net.runtime("spoke")
    runtime.settings.instance_path.mkdir(parents=True, exist_ok=True)
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    return app
