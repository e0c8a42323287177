"""A historical batch copied from a template batch is a sound record of its own: a valid chain
sealed with the given key, the values it was given with the limit status the core computes,
every calculation that uses them worked out again, every e-signature bound to the record as
it now reads, times moved, a new chain of identity; and one still in progress stops at its
cut-off time. Both databases (the template is a batch driven through the services)."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from batch_helpers import spoke
from recipe_driver import RECIPES, run_batch
from support import NOW

from mes.core.batch import Batch, BatchStatus
from mes.core.canonical import content_hash
from mes.core.clock import parse_utc_text
from mes.core.critical import CriticalInput, Criticality
from mes.core.esign import signature_binds
from mes.core.history import Knob, Template, draw_batch, typical_spread
from mes.core.keys import SiteKey
from mes.core.ledger import verify_chain
from mes.core.limits import calculate, limit_status
from mes.services import history
from mes.services.batches import procedure_for
from mes.store import batches as store
from mes.store.models import InstalledRecipe

CART = RECIPES / "car-t-fresh.yaml"


def _template(make_uow):
    site = spoke(make_uow, recipe_text=CART.read_text(encoding="utf-8"))
    batch_id = run_batch(site, CART, at=NOW)
    with site.uow() as uow:
        entries = store.ledger(uow.session, batch_id)
        row = store.batch(uow.session, batch_id)
        installed = uow.session.get(InstalledRecipe, row.installed_recipe_id)
        procedure = procedure_for(installed.content_hash, installed.compiled)
    return Template(entries, json.loads(installed.compiled)), procedure


def test_a_copy_is_a_sound_record_with_its_new_values_worked_through(make_uow):
    template, procedure = _template(make_uow)
    key = SiteKey.generate()
    start = NOW - timedelta(days=90)
    identity = template.identity_for(42, "DEMO-SPK7-000042", start.year)
    copy = template.copy(
        batch_id="01900000-0000-7000-8000-000000000042",
        number="SPK7-2026-0042",
        site="SPK7",
        start=start,
        identity=identity,
        values={
            "apheresis_cell_count.viability": "85.0",
            "release_viability_phenotype.viability": "93.4",
        },
        milestones={},
        key=key,
    )
    assert verify_chain(copy, key.public) == len(copy) == template.entries
    bodies = [e.body for e in copy]
    assert {b["batch"] for b in bodies} == {"01900000-0000-7000-8000-000000000042"}
    assert {b["site"] for b in bodies} == {"SPK7"}
    assert parse_utc_text(bodies[0]["at"]) == start
    assert bodies[0]["payload"]["number"] == "SPK7-2026-0042"
    assert bodies[0]["payload"]["chain_of_identity"] == identity
    assert identity["patient_id"] == "DEMO-SPK7-000042"
    hashes = {e.hash for e in copy}
    values: dict[tuple[str, str], str] = {}
    for body in bodies:
        payload = body["payload"]
        if body["kind"] == "value_recorded":
            values[(payload["phase"], payload["value"])] = payload["recorded"]
        if body["kind"] == "calculated":  # worked out from the values as recorded before it
            spec = template.specs[(payload["phase"], payload["value"])]
            assert payload["recorded"] == calculate(spec, payload["from"])
            assert payload["status"] == limit_status(payload["recorded"], spec).value
            for name, number in payload["from"].items():
                phase_id, _, value_id = name.rpartition(".")
                assert float(values[(phase_id or payload["phase"], value_id)]) == number
            values[(payload["phase"], payload["value"])] = payload["recorded"]
        if body["kind"] == "signature":  # bound to the record as it now reads
            assert signature_binds(payload["manifestation"], payload["record"])
            assert set(payload["record"].get("data", [])) <= hashes
            if payload["record"].get("type") == "batch-phase":
                phase = payload["record"]["phase"]
                for value_id, shown in payload["record"]["values"].items():
                    assert values.get((phase, value_id), shown) == shown
    viability = ("apheresis_cell_count", "viability")
    assert values[viability] == "85.0"
    status = next(
        b["payload"]["status"]
        for b in bodies
        if b["kind"] == "value_recorded"
        and (b["payload"]["phase"], b["payload"]["value"]) == viability
    )
    assert status == "alert"  # below the alert limit (90 %), inside the action limit (80 %)
    batch = Batch.replay(procedure, copy)
    assert batch.state.status is BatchStatus.COMPLETE
    assert batch.state.number == "SPK7-2026-0042"
    assert content_hash(dict(bodies[-1])) == copy[-1].hash


def test_a_copy_still_in_progress_stops_at_its_cut_off_and_values_stay_inside_action_limits(
    make_uow,
):
    template, procedure = _template(make_uow)
    key = SiteKey.generate()
    start = NOW - timedelta(days=5)
    copy = template.copy(
        batch_id="01900000-0000-7000-8000-000000000043",
        number="SPK7-2026-0043",
        site="SPK7",
        start=start,
        identity=template.identity_for(43, "P-43", start.year),
        values={},
        milestones={},
        key=key,
        until=NOW,
    )
    assert 2 < len(copy) < template.entries
    assert all(parse_utc_text(e.body["at"]) <= NOW for e in copy)
    assert verify_chain(copy, key.public) == len(copy)
    assert Batch.replay(procedure, copy).state.status is BatchStatus.IN_PROGRESS
    # Values drawn for a critical input stay strictly inside its action limits, even shifted.
    viability = CriticalInput(
        "release_viability_phenotype", "viability", "Release", "Viability", "%",
        Criticality.CQA, 70.0, None, 80.0, None,
    )  # fmt: skip
    template.critical = [viability]
    spec = template.specs[("release_viability_phenotype", "viability")]
    assert typical_spread(viability, spec).mean == 94.0
    knob = Knob("shift", "SPK7", viability.parameter, -20.0)
    rng = random.Random(1)
    drawn = [
        float(draw_batch(template, "SPK7", i, 50, rng, [knob])[viability.parameter])
        for i in range(50)
    ]
    assert all(v > 70.0 for v in drawn)
    assert sum(drawn) / len(drawn) < 80  # moved far below the others


def test_the_plan_spreads_each_site_s_batches_in_order_numbered_per_year_some_still_running(
    make_uow,
):
    template, _procedure = _template(make_uow)
    end = NOW
    viability = next(
        c for c in template.critical if c.value_id == "viability" and "release" in c.phase_id
    )
    knobs = [Knob("shift", "SPK2", viability.parameter, -3.0)]
    planned = history.plan_history(
        template, ["SPK1", "SPK2"], 12, end=end, days=400, knobs=knobs, in_progress={"SPK2": 2},
        first_numbers={("SPK1", end.year): 5},
    )  # fmt: skip
    duration = template.end - template.start
    for site in ("SPK1", "SPK2"):
        mine = [p for p in planned if p.site == site]
        assert [p.start for p in mine] == sorted(p.start for p in mine)
        by_year: dict[int, list[int]] = {}
        for p in mine:
            code, year, number = p.number.split("-")
            assert code == site and int(year) == p.start.year
            by_year.setdefault(int(year), []).append(int(number))
        for year, numbers in by_year.items():
            first = 5 if (site, year) == ("SPK1", end.year) else 1
            assert numbers == list(range(first, first + len(numbers)))
    running = [p for p in planned if p.until is not None]
    assert [p.number for p in running] == [p.number for p in planned if p.site == "SPK2"][-2:]
    assert all(end - duration < p.start < end and p.until == end for p in running)
    assert all(p.start + duration <= end for p in planned if p.until is None)
    mean = {
        site: sum(float(p.values[viability.parameter]) for p in planned if p.site == site) / 12
        for site in ("SPK1", "SPK2")
    }
    assert mean["SPK2"] < mean["SPK1"] - 2.5  # 3 SD of 1.5 %
    assert history.last_numbers(planned)[("SPK1", end.year)] >= 5
