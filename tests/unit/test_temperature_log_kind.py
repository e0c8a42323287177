"""The temperature_log phase kind: recipe rules, an import's entries, values and deviation."""

from __future__ import annotations

import pytest
from batch_fixtures import OLIVIA, RECIPE_REF, SITE, T0, TERMINAL, UNTRAINED, sign
from batch_helpers import IDENTIFIERS, TEST_RECIPE
from logger_helpers import LOGGER_YAML, logger_csv, logger_recipe

from mes.core.batch import Action, Batch, DeviationCategory, Procedure
from mes.core.batchml import master_recipe_batchml
from mes.core.errors import LoggerFileRefused, MesError
from mes.core.keys import SiteKey
from mes.core.limits import InvalidValue
from mes.core.phases import KINDS
from mes.core.recipe import RecipeInvalid, load_recipe
from mes.core.recipe_diff import diff_recipes
from mes.core.record import entries_in_words

KIND = KINDS["temperature_log"]


def started() -> Batch:
    procedure = Procedure(load_recipe(logger_recipe(), "logger.yaml").data)
    batch = Batch.create(
        procedure, batch_id="b-0001", number="SPK1-2026-0001", site=SITE, recipe=RECIPE_REF,
        identifiers=IDENTIFIERS, who=OLIVIA, at=T0, terminal=TERMINAL, key=SiteKey.generate(),
        time_zone="Europe/Berlin",
    )  # fmt: skip
    sign(batch, Action.START, OLIVIA, T0)
    return batch


def imported(batch: Batch, data: bytes, who=OLIVIA):
    return KIND.import_file(
        batch, "check_bag", "transport_logger", "trip.csv", data, who, T0, TERMINAL
    )


def test_a_recipe_without_a_logger_compiles_as_before():
    assert "temperature_log" not in str(load_recipe(TEST_RECIPE, "x.yaml").data)
    phase = load_recipe(logger_recipe(), "x.yaml").data["unit_procedures"][0]["operations"][0][
        "phases"
    ][0]
    assert phase["temperature_log"][0]["window"] == {
        "low": 2, "high": 8, "unit": "°C", "max_minutes_outside": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("low: 2, high: 8", "low: 9, high: 8"), "must be below its high"),
        (("lowest: transport_min", "lowest: bag_intact"), "must name a number input"),
        (('unit: "°C", max', 'unit: "°F", max'), "°C"),
        (("sampling_minutes: 10", "sampling_minutes: 0"), "sampling_minutes"),
    ],
)
def test_a_bad_logger_declaration_is_refused_at_its_line(change, message):
    text = logger_recipe(logger=LOGGER_YAML.replace(*change))
    with pytest.raises(RecipeInvalid, match=message) as caught:
        load_recipe(text, "logger.yaml")
    assert "logger.yaml:" in str(caught.value)


def test_a_clean_file_records_its_entry_and_the_phase_values_without_deviation():
    batch = started()
    imported(batch, logger_csv([3.8, 4.0, 6.14, 5]))
    phase = batch.state.phases["check_bag"]
    entry = KIND.recorded(phase)["transport_logger"]
    assert (entry["rows"], entry["min"], entry["max"], entry["within_window"]) == (
        4,
        "3.8",
        "6.14",
        True,
    )
    assert entry["window"] == {"low": "2", "high": "8", "unit": "°C", "max_minutes_outside": "0"}
    assert phase.values["transport_min"].value == "3.8"
    assert phase.values["transport_max"].value == "6.2"  # rounded up, away from inside
    assert batch.state.deviations == {}
    assert "Transport temperature logger is not imported" not in batch.missing_for_performance(
        "check_bag"
    )
    words = entries_in_words(batch, batch.new_entries, "Europe/Berlin")
    assert any("imported logger file 'trip.csv'" in str(w) for w in words)


def test_an_excursion_raises_a_temperature_deviation_and_the_value_limit_one():
    batch = started()
    imported(batch, logger_csv([5, 9, 12.5, 7]))
    categories = sorted(d.category for d in batch.state.deviations.values())
    assert categories == sorted(
        [DeviationCategory.ACTION_LIMIT, DeviationCategory.TEMPERATURE_EXCURSION]
    )
    excursion = next(
        d for d in batch.state.deviations.values()
        if d.category == DeviationCategory.TEMPERATURE_EXCURSION
    )  # fmt: skip
    assert "10 min outside 2–8 °C" in excursion.description
    assert (
        KIND.recorded(batch.state.phases["check_bag"])["transport_logger"]["excursions"][0][
            "extreme"
        ]
        == "12.5"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"time,temperature_c\n2026-11-20T08:00:00Z,4\n2026-11-20T09:00:00Z,4\n",
        logger_csv(["x"]),
    ],
)
def test_a_refused_file_writes_nothing(data):
    batch = started()
    before = len(batch.new_entries)
    with pytest.raises(LoggerFileRefused):
        imported(batch, data)
    assert len(batch.new_entries) == before


def test_a_second_import_and_an_untrained_operator_are_refused_writing_nothing():
    batch = started()
    with pytest.raises(MesError):
        imported(batch, logger_csv([4, 5]), who=UNTRAINED)
    assert batch.state.phases["check_bag"].status.value == "ready"
    imported(batch, logger_csv([4, 5]))
    count = len(batch.new_entries)
    with pytest.raises(LoggerFileRefused, match="already imported"):
        imported(batch, logger_csv([4, 6]))
    assert len(batch.new_entries) == count


def test_replay_gives_the_same_state():
    batch = started()
    imported(batch, logger_csv([5, 9, 12.5, 7]))
    replayed = Batch.replay(batch.procedure, batch.new_entries, time_zone="Europe/Berlin")
    assert replayed.state == batch.state


def test_batchml_and_the_comparison_carry_the_window():
    before = load_recipe(logger_recipe(), "a.yaml").data
    after = load_recipe(
        logger_recipe(logger=LOGGER_YAML.replace("high: 8,", "high: 9,")), "b.yaml"
    ).data
    texts = [c.text for c in diff_recipes(before, after)]
    assert any(
        "temperature logger 'Transport temperature logger' window changed" in t for t in texts
    )
    assert "2–8 °C, at most 0 min outside" in master_recipe_batchml(before).decode()


def test_a_value_the_logger_fills_cannot_be_typed():
    batch = started()
    batch.start_phase("check_bag", OLIVIA, T0, TERMINAL)
    with pytest.raises(InvalidValue, match="read from the Transport temperature logger"):
        batch.record_values("check_bag", {"transport_max": "5.0"}, OLIVIA, T0, TERMINAL)
    batch.record_values(
        "check_bag", {"bag_intact": "yes"}, OLIVIA, T0, TERMINAL
    )  # others still typed


def test_the_printed_record_and_the_audit_lines_carry_the_import():
    from datetime import timedelta

    from mes.core.record import batch_audit_lines, build_record
    from mes.pdf.render import record_html

    batch = started()
    imported(batch, logger_csv([5, 9, 12.5, 7]))
    record = build_record(
        batch, None, time_zone="Europe/Berlin", site_name="Spoke One",
        audit=batch_audit_lines(batch, batch.new_entries, "Europe/Berlin"),
        record_hash="0" * 64, generated_at=T0 + timedelta(hours=1), ledger=batch.new_entries,
    )  # fmt: skip
    phase = record.units[0].operations[0].phases[0]
    logger = next(p for p in phase.parts if p.kind == "temperature_log")
    assert "logger file 'trip.csv' (SHA-256 " in logger.lines[0].text
    assert "10 min outside 2–8 °C" in logger.lines[0].text
    html = record_html(record)
    assert "Temperature excursion in transport" in html and "trip.csv" in html
