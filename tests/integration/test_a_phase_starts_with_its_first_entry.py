"""A ready phase starts with its first entry, on both databases (issue 15): the first scan,
value or performed signature on a phase not yet started runs the start itself (every rule of
"Start this phase": order, role, training, timer waits) in the same transaction, by the same
person at the same time; a refusal to start refuses the entry in the start's words and writes
nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_checks import assert_sound, entries, unchanged_by
from batch_helpers import COUNTER, DIN_BARCODE, PATIENT, SCANNER, spoke
from support import NOW, PASSWORD

from mes.core.batch import Action, PhaseStatus
from mes.core.errors import (
    NotAuthorised,
    NotQualified,
    PhaseIncomplete,
    PhaseOutOfOrder,
    TimerNotElapsed,
)
from mes.services import batches
from mes.services.esign import Credentials
from mes.services.phase_data import PhaseData


def started_batch(site) -> str:
    return site.start().state.id


def new_kinds(site, batch_id: str, after: int) -> list[tuple[str, str, str]]:
    """The entries after the first ``after``: (kind, who, when)."""
    return [(e.kind, e.actor_username, e.at) for e in entries(site, batch_id)[after:]]


def test_a_first_scan_on_a_ready_phase_starts_it_by_the_same_person_at_the_same_time(make_uow):
    site = spoke(make_uow)
    batch_id = started_batch(site)
    before = len(entries(site, batch_id))
    at = NOW + timedelta(minutes=3)
    result = site.record(batch_id, "check_bag", at=at, equipment={0: SCANNER})
    assert result.field_errors == {}
    added = entries(site, batch_id)[before:]
    assert [e.kind for e in added] == ["phase_started", "equipment_used"]
    assert {(e.actor_username, e.at, e.terminal) for e in added} == {
        ("olivia", added[0].at, "Suite A 1")
    }
    assert added[0].payload == {"phase": "check_bag"}
    phase = site.view(batch_id).batch.state.phases["check_bag"]
    assert phase.status is PhaseStatus.IN_PROGRESS
    assert phase.started_at == added[0].at
    # The next entry is an entry like any other: the phase is not started twice.
    site.record(batch_id, "check_bag", at=at, values={"bag_intact": "yes"})
    assert [e.kind for e in entries(site, batch_id)].count("phase_started") == 1
    assert_sound(site, batch_id)


def test_an_out_of_order_first_entry_is_refused_in_the_words_of_the_start(make_uow):
    site = spoke(make_uow)
    batch_id = started_batch(site)
    started = unchanged_by(site, lambda: site.start_phase(batch_id, "count_cells"), PhaseOutOfOrder)
    scanned = unchanged_by(
        site,
        lambda: site.record(batch_id, "count_cells", equipment={0: COUNTER}),
        PhaseOutOfOrder,
    )
    assert str(scanned) == str(started)
    assert str(scanned).startswith("'Count cells' cannot start yet:")


@pytest.mark.parametrize(
    ("who", "error", "says"),
    [
        ("quinn", NotAuthorised, "To perform 'Check the bag' you need the operator role."),
        ("otto", NotQualified, "Otto Tester has no current training record for"),
    ],
    ids=["role", "training"],
)
def test_a_first_entry_by_someone_who_may_not_start_the_phase_is_refused_and_nothing_written(
    make_uow, who, error, says
):
    site = spoke(make_uow)
    site.add_person("otto", ["operator"])  # not trained on the recipe
    batch_id = started_batch(site)
    started = unchanged_by(site, lambda: site.start_phase(batch_id, "check_bag", who=who), error)
    scanned = unchanged_by(
        site,
        lambda: site.record(
            batch_id, "check_bag", who=who, equipment={0: SCANNER}, values={"bag_intact": "yes"}
        ),
        error,
    )
    assert str(scanned) == str(started)
    assert str(scanned).startswith(says)


def test_a_first_entry_before_a_timer_allows_the_start_is_refused_with_the_time_left(make_uow):
    site = spoke(make_uow)
    batch_id = started_batch(site)
    site.do_check_bag(batch_id)
    site.do_count(batch_id)
    site.do_culture(batch_id)
    early = NOW + timedelta(minutes=30)
    started = unchanged_by(
        site, lambda: site.start_phase(batch_id, "harvest", at=early), TimerNotElapsed
    )
    entered = unchanged_by(
        site,
        lambda: site.record(batch_id, "harvest", at=early, values={"harvested": "yes"}),
        TimerNotElapsed,
    )
    assert str(entered) == str(started)
    assert "1 h 30 min left" in str(entered)


def test_an_empty_form_on_a_ready_phase_starts_nothing(make_uow):
    site = spoke(make_uow)
    batch_id = started_batch(site)
    before = len(entries(site, batch_id))
    result = site.record(batch_id, "check_bag", values={"bag_intact": ""}, equipment={0: " "})
    assert result.recorded == 0
    assert len(entries(site, batch_id)) == before
    assert site.view(batch_id).batch.state.phases["check_bag"].status is PhaseStatus.READY


def sign_with(site, batch_id: str, phase: str, data: dict, password: str = PASSWORD):
    with site.uow() as uow:
        return batches.sign_phase(
            uow, site.ctx("olivia"), batch_id, phase, Action.PERFORM,
            Credentials(password, "olivia"), first_signing_in_session=True,
            data=PhaseData(data),
        )  # fmt: skip


def test_signing_a_ready_phase_performed_with_everything_filled_in_starts_and_performs_it(
    make_uow,
):
    site = spoke(make_uow)
    batch_id = started_batch(site)
    before = len(entries(site, batch_id))
    batch = sign_with(
        site, batch_id, "check_bag",
        {"values": {"bag_intact": "yes"}, "equipment": {0: SCANNER},
         "identity": {"bag_din": DIN_BARCODE, "bag_patient": PATIENT}},
    )  # fmt: skip
    assert batch.state.phases["check_bag"].status is PhaseStatus.PERFORMED
    added = new_kinds(site, batch_id, before)
    assert added[0][0] == "phase_started" and added[-1][0] == "signature"
    assert {(who, at) for _, who, at in added} == {("olivia", added[0][2])}
    assert_sound(site, batch_id)


def test_signing_a_ready_phase_with_nothing_entered_is_refused_and_leaves_it_ready(make_uow):
    site = spoke(make_uow)
    batch_id = started_batch(site)
    refusal = unchanged_by(
        site, lambda: sign_with(site, batch_id, "check_bag", {}), PhaseIncomplete
    )
    assert "Bag intact is not recorded" in str(refusal)
    assert site.view(batch_id).batch.state.phases["check_bag"].status is PhaseStatus.READY
