"""``mes demo --no-serve`` sets up a hub and a spoke: recipes approved at the hub, installed at
the spoke from signed bundles, people trained, materials and equipment registered; and the hub
holds months of completed batches from the spoke and three hub-only spokes (demo data), with
their read-model rows, as ingest keeps them."""

from __future__ import annotations

import json
from collections import Counter as Tally
from pathlib import Path

import pytest
from cli_helpers import run_bare
from sqlalchemy import select

from mes.core.critical import critical_inputs
from mes.services.ingest import verify_received
from mes.services.runtime import open_runtime
from mes.settings import load_settings
from mes.store import recipes as recipe_store
from mes.store.models import (
    Batch,
    BatchMilestone,
    BatchSummary,
    BatchValue,
    Counter,
    ParameterResult,
)

HISTORY = 3  # batches per spoke (the default, 30, takes longer)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "demo"
    result = run_bare("demo", "--dir", str(folder), "--no-serve", "--history", str(HISTORY))
    assert result.returncode == 0, result.stderr
    return folder, result


def test_the_demo_sets_up_a_hub_and_a_spoke_with_installed_recipes_and_masters(demo):
    folder, result = demo
    # Each person's user ID, password, badge code and PIN (21 CFR 11.200(a)(1): either pair).
    assert "olivia     cells-in-the-hood      BADGE-10005   851427   operator" in result.stdout
    assert "aaron      write-the-recipe       BADGE-10002   517394   author" in result.stdout
    assert "  CART-CD19-FRESH-DEMO v1  " in result.stdout
    # The guide: the date of birth in the site's order; a witness signs at olivia's panel.
    assert "a date of birth (DD/MM/YYYY, e.g. 17/05/1970)." in result.stdout
    assert "ticks 'Sign as another person' and scans his own badge + PIN" in result.stdout
    # A clinician at the spoke for the bedside page, and the provisional releases at the hub.
    assert "nina       right-patient-and-bag  BADGE-10008   284061   clinician" in result.stdout
    assert "open the spoke's /bedside/ page" in result.stdout
    assert "provisional, awaiting their sterility result: cora (QC) enters it" in result.stdout
    hub_list = run_bare("--instance", str(folder / "hub"), "recipe", "list")
    for code in ("CART-CD19-FRESH", "CART-CD19-FRESH-DEMO", "CART-CD19-CRYO", "MRNA-NEOAG-FILL"):
        assert f"{code} v1\tEffective from " in hub_list.stdout
    spoke_list = run_bare("--instance", str(folder / "spoke"), "recipe", "list")
    assert spoke_list.returncode == 0, spoke_list.stderr
    assert spoke_list.stdout.count(" v1") == 4
    for site in ("hub", "spoke"):
        verified = run_bare("--instance", str(folder / site), "audit", "verify")
        assert verified.returncode == 0 and verified.stdout.startswith("ok: "), verified.stderr


def test_the_demo_hub_holds_history_from_four_spokes_as_demo_data_with_read_model_rows(demo):
    folder, result = demo
    assert (
        f"History at the hub (demo data, patient IDs DEMO-…): {HISTORY} "
        "CART-CD19-FRESH batches from each of SPK1, SPK2, SPK3, SPK4 over the past 6 months "
        "(the last 1 of each hub-only spoke still in progress);"
    ) in result.stdout
    assert "awaiting their sterility result: at the hub, cora (QC) opens Results" in result.stdout
    hub = open_runtime(load_settings(Path(folder / "hub"), env={}))
    try:
        with hub.uow(read_only=True) as uow:
            session = uow.session
            batches = session.execute(select(Batch)).scalars().all()
            year = max(b.number.split("-")[1] for b in batches)
            assert Tally(b.site for b in batches) == {
                s: HISTORY for s in ("SPK1", "SPK2", "SPK3", "SPK4")
            }
            # The last batch of each hub-only spoke is still in progress (for the live board).
            running = {b.number for b in batches if b.status != "complete"}
            assert running == {f"SPK{n}-{year}-{HISTORY:04d}" for n in (2, 3, 4)}
            assert {b.status for b in batches if b.number in running} == {"in_progress"}
            assert {b.recipe_code for b in batches} == {"CART-CD19-FRESH"}
            for site in ("SPK1", "SPK2", "SPK3", "SPK4"):  # numbered in time order, per site
                mine = sorted((b for b in batches if b.site == site), key=lambda b: b.created_at)
                assert [b.number[-4:] for b in mine] == [f"{n:04d}" for n in range(1, HISTORY + 1)]
            for b in batches:  # each ledger sealed with its own spoke's key
                assert verify_received(uow, b.id) == b.last_seq
            # The read models, as ingest keeps them: a demo summary per batch, its milestones,
            # a row per critical value.
            summaries = session.execute(select(BatchSummary)).scalars().all()
            assert sorted(s.batch_id for s in summaries) == sorted(b.id for b in batches)
            assert all(s.demo for s in summaries)
            # QA released the completed ones at the hub, through the review service.
            assert {s.qa_state for s in summaries if s.status == "complete"} == {"released"}
            releases = (
                session.execute(
                    select(BatchMilestone).where(BatchMilestone.milestone == "hub_release")
                )
                .scalars()
                .all()
            )
            assert len(releases) == len(batches) - len(running)
            starts = (
                session.execute(
                    select(BatchMilestone).where(BatchMilestone.milestone == "manufacturing_start")
                )
                .scalars()
                .all()
            )
            assert len(starts) == len(batches)
            version = recipe_store.version_with_content(session, batches[0].content_hash)
            compiled = json.loads(version.compiled)
            critical = critical_inputs(compiled)
            keys = {c.parameter for c in critical}
            results = session.execute(select(ParameterResult)).scalars().all()
            recorded = {
                (v.batch_id, f"{v.phase_id}.{v.value_id}")
                for v in session.execute(select(BatchValue)).scalars()
                if f"{v.phase_id}.{v.value_id}" in keys
            }
            assert {(r.batch_id, r.parameter) for r in results} == recorded
            assert len(recorded) >= len(keys) * (len(batches) - len(running)) - 2 * len(batches)
            assert all(r.demo for r in results)
    finally:
        hub.close()
    # The spoke's own batches are numbered after its history at the hub.
    spoke = open_runtime(load_settings(Path(folder / "spoke"), env={}))
    try:
        with spoke.uow(read_only=True) as uow:
            counters = {c.name: c.value for c in uow.session.execute(select(Counter)).scalars()}
            assert not uow.session.execute(select(Batch)).scalars().all()
    finally:
        spoke.close()
    assert all(
        counters.get(f"batch:SPK1:{b.number.split('-')[1]}", 0) >= HISTORY
        for b in batches
        if b.site == "SPK1"
    )
    if critical:  # SPK3 is shifted 3 SD low on the recipe's first critical quality attribute
        shifted = next(line for line in result.stdout.splitlines() if "SPK3 is shifted" in line)
        parameter = shifted.rsplit("(", 1)[1].rstrip(").")
        by_site: dict[str, list[float]] = {}
        for r in results:
            if r.parameter == parameter:
                by_site.setdefault(r.site, []).append(r.value)
        means = {site: sum(v) / len(v) for site, v in by_site.items()}
        assert means["SPK3"] < min(m for site, m in means.items() if site != "SPK3")


def test_the_demo_hub_shows_a_provisional_release_awaiting_its_sterility_result(demo):
    """Issue 17: released history batches are certified final once their results are in; the
    newest release stays provisional, its VCN in, its 14-day sterility culture pending."""
    from mes.services import review
    from mes.store.models import BatchReview

    folder, _result = demo
    hub = open_runtime(load_settings(Path(folder / "hub"), env={}))
    try:
        with hub.uow(read_only=True) as uow:
            awaiting = dict(
                uow.session.execute(
                    select(BatchReview.batch_id, BatchReview.after_release).where(
                        BatchReview.decision == "released"
                    )
                ).all()
            )
            assert "provisional" in awaiting.values(), awaiting
            provisional = next(b for b, a in awaiting.items() if a == "provisional")
            state = review.load_review(uow, provisional, verify=False).review.after_release()
    finally:
        hub.close()
    assert [p.id for p in state.pending] == ["sterility_final"]
    assert [r.result for r in state.results] == ["vcn"]
