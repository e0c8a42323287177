"""Services on SQLite and PostgreSQL: linear-time patterns at batch start, free text refused (never
cut) over its limit, bounded numbers, one-line names (issue 13)."""

from __future__ import annotations

import pytest
from batch_helpers import IDENTIFIERS, TEST_RECIPE, spoke
from support import finishes_within

from mes.core.errors import InvalidInput
from mes.services import batches
from mes.services.users import add_user
from mes.store.models import BatchEntry

CATASTROPHIC = "^([A-Z0-9]+-?)*$"


def _entries(site) -> int:
    with site.uow() as uow:
        return uow.session.query(BatchEntry).count()


def test_a_batch_start_with_a_catastrophic_pattern_refuses_a_100_character_mis_scan_at_once(
    make_uow,
):
    recipe = TEST_RECIPE.replace(
        "patient_id: {label: Patient identifier, kind: identifier}",
        f'patient_id: {{label: Patient identifier, kind: identifier, pattern: "{CATASTROPHIC}"}}',
    )
    site = spoke(make_uow, recipe_text=recipe)
    with finishes_within(20), pytest.raises(InvalidInput, match="does not have the form"):
        site.start(din=IDENTIFIERS["din"], patient_id="A" * 99 + "!")
    assert _entries(site) == 0
    assert site.start().state.chain_of_identity["patient_id"] == "PAT-0001"


def test_free_text_over_2000_characters_is_refused_naming_the_limit_and_nothing_is_recorded(
    make_uow,
):
    site = spoke(make_uow)
    batch_id = site.start().state.id
    before = _entries(site)
    long_text = "x" * 2001
    for attempt in (
        lambda uow: batches.report_deviation(uow, site.ctx("olivia"), batch_id, long_text, None),
        lambda uow: batches.hold_batch(uow, site.ctx("sam"), batch_id, long_text),
    ):
        with site.uow() as uow, pytest.raises(InvalidInput) as refused:
            attempt(uow)
        assert "2,001 characters long; at most 2,000 are allowed" in str(refused.value)
    assert _entries(site) == before
    with site.uow() as uow:
        batches.report_deviation(uow, site.ctx("olivia"), batch_id, "y" * 2000, None)
    (deviation,) = site.view(batch_id).batch.state.deviations.values()
    assert deviation.description == "y" * 2000  # kept whole


def test_a_number_of_a_million_digits_is_refused_and_nothing_is_recorded(make_uow):
    site = spoke(make_uow)
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    site.start_phase(batch_id, "count_cells")
    before = _entries(site)
    with pytest.raises(InvalidInput, match="a number is entered in at most 40"):
        site.record(batch_id, "count_cells", values={"volume": "1" * 1_000_000})
    assert _entries(site) == before


@pytest.mark.parametrize("name", ["Ada\rLovelace", "Ada\x00Lovelace", "Ada\u2028Lovelace"])
def test_a_full_name_with_a_control_character_is_refused(make_uow, cli_ctx, name):
    with make_uow() as uow, pytest.raises(InvalidInput, match="must be one line"):
        add_user(uow, cli_ctx, username="ada", full_name=name, roles=["qa"],
                 password="correct-Horse-7-battery")  # fmt: skip
