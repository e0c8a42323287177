"""What a batch waits for and who can do it (mes.core.batch.next_steps): guidance for the
batch page and the board, worked out from the batch's state and its table of actions."""

from __future__ import annotations

from datetime import timedelta

from batch_fixtures import (
    OLIVIA,
    SAM,
    T0,
    TERMINAL,
    complete_run,
    do_check_bag,
    do_culture,
    fill_count,
    new_batch,
    perform_check_bag,
    sign,
    through_count,
)

from mes.core.access import Role
from mes.core.batch import Action, next_steps, who_can


def texts(batch, at=T0) -> list[str]:
    return [step.text for step in next_steps(batch, at)]


def test_with_every_phase_done_the_batch_waits_for_a_supervisor_to_sign_it_complete():
    batch = complete_run()
    [step] = next_steps(batch, T0 + timedelta(hours=3))
    assert step.text == "Every phase is done: waiting for a supervisor to sign the batch complete"
    assert step.action is Action.COMPLETE
    assert step.roles == frozenset({Role.SUPERVISOR})
    assert step.who == "a supervisor"


def test_a_performed_phase_waits_for_a_second_person_of_the_role_the_recipe_names():
    batch = new_batch()
    perform_check_bag(batch)
    assert texts(batch) == ["Waiting for a second person (a supervisor) to verify 'Check the bag'"]
    assert next_steps(batch, T0)[0].phase_id == "check_bag"


def test_a_timer_still_running_says_how_long_until_the_phase_may_start():
    batch = through_count()
    do_culture(batch)
    due = T0 + timedelta(hours=2)
    [step] = next_steps(batch, due - timedelta(minutes=2, seconds=50))
    assert step.text == "'Harvest' may start in 2 min 50 s"
    assert step.lead == "'Harvest' may start in"
    assert step.due == due
    [ready] = next_steps(batch, due)
    assert ready.text == "'Harvest' is ready: an operator may start it"


def test_an_open_deviation_asks_for_a_comment_then_for_someone_else_to_acknowledge_it():
    batch = new_batch()
    do_check_bag(batch)
    fill_count(batch, values={"volume": "200", "viability": "65.0", "viable_conc": "5.00"})
    steps = next_steps(batch, T0)
    assert steps[0].action is Action.COMMENT
    assert "needs a comment" in steps[0].text
    assert steps[1].text == "'Count cells' is in progress: an operator records and signs it"
    deviation = steps[0].deviation_id
    batch.comment_deviation(deviation, "Low viability; QA informed.", OLIVIA, T0, TERMINAL)
    first = next_steps(batch, T0)[0]
    assert first.text.startswith(
        f"Waiting for a supervisor or QA to acknowledge deviation {deviation}"
    )
    assert "not Olivia Tester, who raised it" in first.text


def test_a_batch_on_hold_waits_for_a_supervisor_or_qa_to_resume_it():
    batch = new_batch()
    batch.hold("Fridge alarm", SAM, T0, TERMINAL)
    assert texts(batch) == [
        "On hold (Fridge alarm): waiting for a supervisor or QA to resume the batch"
    ]


def test_a_closed_batch_waits_for_nothing():
    batch = complete_run()
    sign(batch, Action.COMPLETE, SAM, T0 + timedelta(hours=3))
    assert next_steps(batch, T0 + timedelta(hours=4)) == []


def test_roles_read_as_people():
    assert who_can(frozenset({Role.QA, Role.SUPERVISOR})) == "a supervisor or QA"
    assert who_can(frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.QA})) == (
        "an operator, a supervisor or QA"
    )
