"""The recipe's critical parameters, milestones and turnaround target, read from the compiled form."""

from __future__ import annotations

from typing import Any

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
