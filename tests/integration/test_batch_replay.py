"""Every example recipe runs as a whole batch on both databases, and its ledger replays to
exactly the stored current-state rows: the tables are a projection of the signed record."""

from __future__ import annotations

import pytest
from batch_checks import assert_sound, order_insensitive
from batch_helpers import TEST_RECIPE, spoke
from recipe_driver import EXAMPLE_RECIPES, begin, run_batch
from support import NOW

from mes.core.batch import Batch, BatchStatus, PhaseStatus
from mes.services import batches
from mes.services.batches import procedure_for
from mes.store import batches as store
from mes.store.models import BatchEntry, InstalledRecipe


@pytest.mark.parametrize("recipe", EXAMPLE_RECIPES, ids=[p.stem for p in EXAMPLE_RECIPES])
def test_a_whole_batch_of_each_example_recipe_replays_to_its_stored_projection(make_uow, recipe):
    site = spoke(make_uow, recipe_text=recipe.read_text(encoding="utf-8"))
    batch_id = run_batch(site, recipe, at=NOW)
    with site.uow() as uow:
        row_entries = list(
            uow.session.execute(
                BatchEntry.__table__.select()
                .where(BatchEntry.batch_id == batch_id)
                .order_by(BatchEntry.seq)
            )
        )
        ledger = store.ledger(uow.session, batch_id)
        stored = store.stored_projection(uow.session, batch_id)
        installed = uow.session.get(InstalledRecipe, stored["batch"]["installed_recipe_id"])
        procedure = procedure_for(installed.content_hash, installed.compiled)
        verified = batches.verify_batch(uow, site.ctx("sam"), batch_id)
    replayed = store.projection(Batch.replay(procedure, ledger))

    assert order_insensitive(stored) == order_insensitive(replayed)
    seqs = [r.seq for r in row_entries]
    assert seqs == list(range(1, len(seqs) + 1)), "the ledger has a gap or a duplicate"
    assert verified == stored["batch"]["last_seq"] == len(seqs)
    assert stored["batch"]["status"] == BatchStatus.COMPLETE.value
    statuses = {p["status"] for p in stored["phases"]}
    assert statuses <= {PhaseStatus.PERFORMED, PhaseStatus.VERIFIED, PhaseStatus.SKIPPED}
    assert all(d["status"] == "acknowledged" for d in stored["deviations"])


def test_the_driver_accepts_a_deviation_it_cannot_avoid_and_the_batch_still_completes(
    make_uow, tmp_path
):
    recipe = tmp_path / "batch-test.yaml"
    recipe.write_text(TEST_RECIPE, encoding="utf-8")
    site = spoke(make_uow)
    run = begin(site, recipe, at=NOW, choices={"count_cells.viability": "60.0"})
    run.run_until()
    done = run.finish()
    assert done.state.status is BatchStatus.COMPLETE
    deviation = done.state.deviations[run.accepted_deviations[0]]
    assert (deviation.category, deviation.value_id, deviation.acknowledged_by.username) == (
        "action_limit",
        "viability",
        "sam",
    )
    assert deviation.comment.startswith("Outside its limits")
    assert done.state.phases["report_damage"].status is PhaseStatus.SKIPPED
    assert assert_sound(site, run.batch_id) == done.state.last_seq
