"""A batch whose phase imported a logger file lands at the hub as the spoke holds it (issue 17):
the ``logger_imported`` entry syncs like every entry and replays there to the same projection
(the file itself stays at the spoke; the entry carries its SHA-256 and findings)."""

from __future__ import annotations

from datetime import timedelta

from batch_helpers import Spoke
from logger_helpers import logger_recipe
from recipe_driver import run_batch
from support import NOW
from sync_sites import SPOKE, entry_rows, net

from mes.services import ingest as hub_ingest
from mes.services import outbox
from mes.store import batches as store

__all__ = ["net"]


def test_a_batch_with_a_logger_import_lands_at_the_hub_as_the_spoke_holds_it(net, tmp_path):
    text = logger_recipe()
    net.publish(net.approve(text))
    net.enroll()
    site = Spoke(net.spoke_uow, net.hub_key).set_up(text)
    path = tmp_path / "batch-test.yaml"
    path.write_text(text, encoding="utf-8")
    batch_id = run_batch(site, path)
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, NOW + timedelta(hours=6), batch_id, 0, 500)
        spoke_projection = store.stored_projection(uow.session, batch_id)
    with net.hub() as uow:
        ack = hub_ingest.ingest_chunk(uow, NOW + timedelta(hours=6), SPOKE, token, via="network")
    assert ack.stored == last
    assert entry_rows(net.hub_sessions) == entry_rows(net.spoke_sessions)
    with net.hub() as uow:
        hub = store.stored_projection(uow.session, batch_id)
        kinds = [e.body["kind"] for e in store.ledger(uow.session, batch_id)]
    spoke_projection["batch"]["installed_recipe_id"] = None
    assert hub == spoke_projection and hub["batch"]["status"] == "complete"
    assert "logger_imported" in kinds
