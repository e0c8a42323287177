"""A shipment's logger file imported in its phase, on SQLite and PostgreSQL (issue 17).

A clean file: one ``logger_imported`` entry, the phase's lowest/highest values, the file kept as
received under its SHA-256, no deviation. An excursion: a TEMPERATURE_EXCURSION deviation whose
curve is drawn from the kept file. Every refusal writes nothing (ledger, projection, files).
"""

from __future__ import annotations

import hashlib

import pytest
from batch_checks import assert_sound, entries, unchanged_by
from batch_helpers import spoke
from logger_helpers import logger_csv, logger_recipe
from support import NOW

from mes.core.errors import LoggerFileRefused, NotAuthorised, NotFound
from mes.services import logger_files


def site_with_logger(make_uow):
    return spoke(make_uow, recipe_text=logger_recipe())


def import_file(
    site, batch_id: str, content: bytes, who: str = "olivia", log: str = "transport_logger"
):
    with site.uow() as uow:
        return logger_files.import_logger_file(
            uow, site.ctx(who, NOW), batch_id, "check_bag", log, "trip 1.csv", content
        )


def test_a_clean_file_is_kept_as_received_and_fills_the_phase_values(make_uow):
    site = site_with_logger(make_uow)
    batch_id = site.start().state.id
    content = logger_csv([3.8, 4.1, 6.1, 5.0])
    batch = import_file(site, batch_id, content)
    kinds = [e.kind for e in entries(site, batch_id)]
    assert kinds[-4:] == ["phase_started", "logger_imported", "value_recorded", "value_recorded"]
    entry = entries(site, batch_id)[-3]
    sha = hashlib.sha256(content).hexdigest()
    assert entry.payload["sha256"] == sha and entry.payload["file_name"] == "trip 1.csv"
    assert (entry.payload["rows"], entry.payload["min"], entry.payload["max"]) == (4, "3.8", "6.1")
    assert entry.payload["first"] == "2026-11-20T08:00:00Z"
    assert entry.payload["minutes_outside"] == "0" and entry.payload["excursions"] == []
    values = batch.state.phases["check_bag"].values
    assert (values["transport_min"].value, values["transport_max"].value) == ("3.8", "6.1")
    assert batch.state.deviations == {}
    with site.uow() as uow:
        assert logger_files.logger_file_content(uow, site.ctx("sam"), sha) == content
    assert_sound(site, batch_id)


def test_an_excursion_raises_a_deviation_with_the_curve_of_the_kept_file(make_uow):
    site = site_with_logger(make_uow)
    batch_id = site.start().state.id
    content = logger_csv([5.0, 9.5, 12.5, 7.0])
    batch = import_file(site, batch_id, content)
    by_category = {d.category: d for d in batch.state.deviations.values()}
    assert set(by_category) == {"action_limit", "temperature_excursion"}
    assert "10 min outside 2–8 °C" in by_category["temperature_excursion"].description
    kinds = [e.kind for e in entries(site, batch_id)]
    assert kinds.count("deviation_raised") == 2
    payload = next(e.payload for e in entries(site, batch_id) if e.kind == "logger_imported")
    assert payload["within_window"] is False
    assert payload["excursions"][0] == {
        "side": "above", "start": "2026-11-20T08:05:00Z", "end": "2026-11-20T08:15:00Z",
        "minutes": "10", "extreme": "12.5",
    }  # fmt: skip
    with site.uow() as uow:
        svg = logger_files.logger_chart(uow, site.ctx("sam"), payload["sha256"], payload["window"])
    assert svg.startswith("<svg") and "outside the window" in svg
    assert_sound(site, batch_id)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"", None),
        (b"time,temperature_c\n2026-11-20T08:00:00Z,4\n2026-11-20T08:05:00Z,abc\n", 3),
        (b"time,temperature_c\n2026-11-20T08:00:00Z,4\n2026-11-20T09:00:00Z,4\n", 3),  # a gap
        (b"timestamp,temperature,unit\n2026-11-20T08:00:00Z,40,\xc2\xb0F\n", 2),
        (b"time,temperature_c\n2026-11-20T08:05:00Z,4\n2026-11-20T08:00:00Z,4\n", 3),
        (b"time,temperature_c\n2026-11-20T08:05:00Z,4\n2026-11-20T08:05:00Z,4\n", 3),
    ],
)
def test_a_refused_file_writes_nothing_and_names_the_line(make_uow, content, line):
    site = site_with_logger(make_uow)
    batch_id = site.start().state.id
    refusal = unchanged_by(site, lambda: import_file(site, batch_id, content), LoggerFileRefused)
    assert refusal.line == line
    assert "nothing was recorded" in str(refusal)


def test_a_second_import_another_logger_and_another_role_are_refused_writing_nothing(make_uow):
    site = site_with_logger(make_uow)
    batch_id = site.start().state.id
    unchanged_by(
        site, lambda: import_file(site, batch_id, logger_csv([4]), who="quinn"), NotAuthorised
    )
    import_file(site, batch_id, logger_csv([4, 5]))
    unchanged_by(site, lambda: import_file(site, batch_id, logger_csv([4, 6])), LoggerFileRefused)
    unchanged_by(site, lambda: import_file(site, batch_id, logger_csv([4]), log="other"), NotFound)
