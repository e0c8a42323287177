"""The recipe's critical parameters, milestones and turnaround target, read from the compiled form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mes.core.critical import (
    MILESTONES,
    RECIPE_MILESTONES,
    CriticalInput,
    Criticality,
    Leg,
    Turnaround,
    critical_inputs,
    milestone_inputs,
    point_title,
    turnaround_of,
    turnaround_words,
)
from mes.core.recipe import load_recipe
from mes.core.worded import words_of


def _value(value_id: str, label: str, kind: str = "number", **extra: Any) -> dict[str, Any]:
    spec = {
        "id": value_id,
        "label": label,
        "type": kind,
        "unit": "%" if kind in ("number", "calculation") else None,
        "decimals": None,
        "target": None,
        "alert_low": None,
        "alert_high": None,
        "action_low": None,
        "action_high": None,
    }
    spec.update(extra)
    return spec


def _compiled(**procedure: Any) -> dict[str, Any]:
    harvest = {
        "id": "harvest_count",
        "name": "Harvest count",
        "inputs": [
            _value("viability", "Viability", action_low=70.0, alert_low=80.0, criticality="cqa"),
            _value("volume", "Harvest volume"),
            _value("harvested_at", "Harvest time", "datetime"),
        ],
        "calculations": [
            _value("fold", "Fold expansion", "calculation", action_low=5.0, criticality="cpp")
        ],
    }
    receipt = {
        "id": "receipt",
        "name": "Receipt",
        "inputs": [
            _value("collected_at", "End of collection", "datetime", milestone="collection_end"),
            _value("received_at", "Received", "datetime", milestone="receipt"),
            _value(
                "transport_max",
                "Highest transport temperature",
                action_high=8.0,
                alert_high=7.0,
                criticality="ipc",
            ),
        ],
        "calculations": [],
    }
    return {
        "recipe_code": "X",
        "unit_procedures": [
            {"id": "in", "operations": [{"phases": [receipt]}]},
            {"id": "out", "operations": [{"phases": [harvest]}]},
        ],
        **procedure,
    }


def test_the_three_criticalities_in_words():
    assert words_of(Criticality) == {
        Criticality.CPP: "Critical process parameter",
        Criticality.CQA: "Critical quality attribute",
        Criticality.IPC: "In-process control",
    }
    assert Criticality("cqa") is Criticality.CQA


def test_milestones_in_vein_to_vein_order_and_which_a_recipe_declares():
    assert [m.name for m in MILESTONES] == [
        "collection_end",
        "receipt",
        "manufacturing_start",
        "manufacturing_end",
        "provisional_certification",
        "dispatch",
        "bedside_receipt",
        "hub_release",
        "infusion_start",
    ]
    assert RECIPE_MILESTONES == (
        "collection_end",
        "receipt",
        "provisional_certification",
        "dispatch",
        "bedside_receipt",
        "infusion_start",
    )
    assert point_title("receipt") == "Receipt at the spoke"
    assert point_title("up:expansion", {"expansion": "Expansion"}) == "End of Expansion"


def test_critical_inputs_in_recipe_order_with_their_limits():
    found = critical_inputs(_compiled())
    assert found == [
        CriticalInput(
            "receipt",
            "transport_max",
            "Receipt",
            "Highest transport temperature",
            "%",
            Criticality.IPC,
            None,
            8.0,
            None,
            7.0,
        ),
        CriticalInput(
            "harvest_count",
            "viability",
            "Harvest count",
            "Viability",
            "%",
            Criticality.CQA,
            70.0,
            None,
            80.0,
            None,
        ),
        CriticalInput(
            "harvest_count",
            "fold",
            "Harvest count",
            "Fold expansion",
            "%",
            Criticality.CPP,
            5.0,
            None,
            None,
            None,
        ),
    ]
    assert found[1].parameter == "harvest_count.viability"


def test_milestone_inputs_name_phase_and_value():
    assert milestone_inputs(_compiled()) == {
        "collection_end": ("receipt", "collected_at"),
        "receipt": ("receipt", "received_at"),
    }


def test_no_turnaround_when_the_recipe_declares_none():
    assert turnaround_of(_compiled()) is None


def test_turnaround_with_legs():
    compiled = _compiled(
        turnaround={
            "target_hours": 336,
            "legs": [
                {"from": "collection_end", "to": "receipt", "target_hours": 30},
                {"from": "receipt", "to": "up:out", "target_hours": None},
            ],
        }
    )
    assert turnaround_of(compiled) == Turnaround(
        336, (Leg("collection_end", "receipt", 30), Leg("receipt", "up:out", None))
    )


def test_turnaround_in_words():
    turnaround = Turnaround(
        336, (Leg("collection_end", "receipt", 30), Leg("receipt", "up:out", 12.5))
    )
    assert turnaround_words(turnaround, {"out": "Fill and label"}) == [
        "Vein to vein: 336 h",
        "Collection end → Receipt at the spoke: 30 h",
        "Receipt at the spoke → End of Fill and label: 12.5 h",
    ]


# --- the example recipes ---------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def example(name: str) -> dict[str, Any]:
    path = REPO / "recipes" / name
    return load_recipe(path.read_bytes(), path.name).data


def by_criticality(compiled: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for c in critical_inputs(compiled):
        found.setdefault(c.criticality.value, []).append(c.parameter)
    return found


def test_the_fresh_car_t_recipe_marks_its_release_attributes_and_its_timeline():
    compiled = example("car-t-fresh.yaml")
    found = by_criticality(compiled)
    assert found["cqa"] == [
        "fill_single_bag.dose_accuracy",
        "fill_fraction_bags.dose_accuracy",
        "release_viability_phenotype.viability",
        "release_viability_phenotype.cd3_pct",
        "release_viability_phenotype.car_pct",
        "release_endotoxin.endotoxin",
        "release_vcn.vcn",
    ]
    assert found["cpp"] == [
        "seed_and_activate.cells_to_seed",
        "calculate_vector_volume.moi",
        "start_expansion.culture_temperature",
        "harvest_count.fold_expansion",
    ]
    assert "apheresis_transport_check.hours_since_collection" in found["ipc"]
    viability = next(
        c
        for c in critical_inputs(compiled)
        if c.parameter == "release_viability_phenotype.viability"
    )
    assert (viability.unit, viability.action_low, viability.alert_low) == ("%", 70, 80)
    assert milestone_inputs(compiled) == {
        "collection_end": ("apheresis_transport_check", "collection_time"),
        "bedside_receipt": ("confirm_bedside_receipt", "received_at"),
    }
    assert turnaround_of(compiled) == Turnaround(
        384,
        (
            Leg("collection_end", "manufacturing_start", 30),
            Leg("manufacturing_start", "up:harvest_and_formulation", 324),
            Leg("up:harvest_and_formulation", "bedside_receipt", 24),
        ),
    )


def test_the_cryopreserved_car_t_recipe_adds_its_freezing_and_post_thaw_attributes():
    compiled = example("car-t-cryo.yaml")
    found = by_criticality(compiled)
    assert "release_viability_phenotype.post_thaw_viability" in found["cqa"]
    assert "formulate_in_cryomedium.dmso_pct" in found["cqa"]
    assert "store_in_ln2.cooling_rate" in found["cpp"]
    assert set(milestone_inputs(compiled)) == {"collection_end", "bedside_receipt"}
    turnaround = turnaround_of(compiled)
    assert turnaround is not None and turnaround.target_hours == 792
    assert sum(leg.target_hours or 0 for leg in turnaround.legs) <= turnaround.target_hours


def test_the_mrna_fill_recipe_has_quality_attributes_and_legs_but_no_collection():
    compiled = example("mrna-vaccine-fill.yaml")
    found = by_criticality(compiled)
    assert found["cqa"][:1] == ["fill_weight_checks.weight_mean"]
    assert "qc_endotoxin.endotoxin" in found["cqa"]
    assert milestone_inputs(compiled) == {}
    turnaround = turnaround_of(compiled)
    assert turnaround is not None and turnaround.target_hours is None
    assert [(leg.start, leg.end) for leg in turnaround.legs] == [
        ("manufacturing_start", "up:freezing"),
        ("up:freezing", "up:quality_control"),
    ]


@pytest.mark.parametrize("name", ["car-t-fresh.yaml", "car-t-cryo.yaml", "mrna-vaccine-fill.yaml"])
def test_every_critical_value_of_an_example_is_a_number(name):
    compiled = example(name)
    specs = {
        f"{phase['id']}.{spec['id']}": spec
        for unit in compiled["unit_procedures"]
        for operation in unit["operations"]
        for phase in operation["phases"]
        for spec in (*phase["inputs"], *phase["calculations"])
    }
    for c in critical_inputs(compiled):
        assert specs[c.parameter]["type"] in ("number", "integer", "calculation")
        # CPV follows a parameter with its unit; only a ratio (the PDI) has none
        assert c.unit or specs[c.parameter]["type"] == "calculation", c.parameter
