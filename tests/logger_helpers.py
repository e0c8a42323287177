"""Logger files and a test recipe whose first phase imports one (shared by the logger tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from batch_helpers import TEST_RECIPE

LOGGER_YAML = """\
            temperature_log:
              - id: transport_logger
                label: Transport temperature logger
                sampling_minutes: 10
                window: {low: 2, high: 8, unit: "°C", max_minutes_outside: 0}
                lowest: transport_min
                highest: transport_max
"""
LOGGER_INPUTS = """\
              transport_min: {label: Lowest transport temperature, type: number, unit: "°C", decimals: 1, action_low: 2}
              transport_max: {label: Highest transport temperature, type: number, unit: "°C", decimals: 1, action_high: 8}
"""
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def logger_recipe(recipe: str = TEST_RECIPE, logger: str = LOGGER_YAML) -> str:
    """The batch test recipe with a logger import (and the values it fills) in 'Check the bag'."""
    anchor = "            verify: supervisor\n"
    inputs = "              bag_intact: {label: Bag intact, type: yes_no}\n"
    assert anchor in recipe and inputs in recipe
    return recipe.replace(anchor, anchor + logger, 1).replace(inputs, inputs + LOGGER_INPUTS, 1)


def logger_csv(
    temps: list[float | str], *, step_minutes: int = 5, start: datetime = START
) -> bytes:
    """A logger file in the two-column form: one reading every ``step_minutes``."""
    lines = ["time,temperature_c"]
    lines += [
        f"{(start + timedelta(minutes=step_minutes * i)).isoformat()},{t}"
        for i, t in enumerate(temps)
    ]
    return ("\n".join(lines) + "\n").encode()


CUSTODY_YAML = """\
custody:
  window: {low: 2, high: 8, unit: "°C", max_minutes_outside: 0}
  sampling_minutes: 10
"""


def custody_recipe(recipe: str = TEST_RECIPE) -> str:
    """The batch test recipe declaring the shipments' temperature window (``custody:``)."""
    anchor = "change_reason: For the batch execution tests.\n"
    assert anchor in recipe
    return recipe.replace(anchor, anchor + CUSTODY_YAML, 1)
