"""A batch run end to end at a spoke on both databases: ordering, signatures, deviations,
timers, materials, equipment, identity; every action a ledger entry; replay equals state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_helpers import spoke
from support import NOW

from mes.core.batch import BatchStatus, PhaseStatus
from mes.core.errors import PhaseOutOfOrder
from mes.services import batches
from mes.store.batches import projection, stored_projection


def test_a_batch_runs_end_to_end_and_its_ledger_replays_to_the_stored_state(make_uow):
    site = spoke(make_uow)
    batch = site.start()
    batch_id = batch.state.id
    assert batch.state.number == "SPK1-2026-0001"
    assert batch.state.status is BatchStatus.IN_PROGRESS
    with pytest.raises(PhaseOutOfOrder):
        site.start_phase(batch_id, "count_cells")
    site.do_check_bag(batch_id)
    site.do_count(batch_id)
    later = NOW + timedelta(hours=3)
    site.do_culture_and_harvest(batch_id, at=later)
    view = site.view(batch_id)
    assert view.batch.state.phases["report_damage"].status is PhaseStatus.SKIPPED
    with site.uow() as uow:
        done = batches.complete_batch(
            uow,
            site.ctx("sam", later),
            batch_id,
            __import__("mes.services.esign", fromlist=["Credentials"]).Credentials(
                "correct-Horse-7-battery", "sam"
            ),
            first_signing_in_session=True,
        )
    assert done.state.status is BatchStatus.COMPLETE
    with site.uow() as uow:
        assert batches.verify_batch(uow, site.ctx("sam", later), batch_id) == done.state.last_seq
        stored = stored_projection(uow.session, batch_id)
    replayed = projection(site.view(batch_id).batch)
    assert stored == replayed
