"""The recipe-version machine alone: its guards, its states, and the diagram made from it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from mes.core.errors import (
    EffectivityRefused,
    InvalidInput,
    LifecycleStepRefused,
    RecipeNotEditable,
    SeparationOfDuties,
)
from mes.core.lifecycle import (
    STEP_RULES,
    Step,
    VersionModel,
    VersionState,
    ensure_editable,
    mermaid,
    steps_from,
)

TODAY = date(2026, 11, 22)


def in_review(author="aaron"):
    model = VersionModel("CART", 2, "draft")
    model.fire(Step.SUBMIT, signer=author)
    return model


def test_the_happy_path_records_who_signed_each_step():
    model = in_review()
    model.fire(Step.REVIEW, signer="sam")
    model.fire(Step.APPROVE, signer="quinn")
    model.fire(Step.MAKE_EFFECTIVE, today=TODAY, effective_from=TODAY)
    assert (model.state, model.author, model.reviewer, model.approver, model.effective_from) == (
        "effective",
        "aaron",
        "sam",
        "quinn",
        TODAY,
    )
    model.fire(Step.SUPERSEDE)
    assert model.state == VersionState.SUPERSEDED


@pytest.mark.parametrize(
    ("setup", "step", "context", "error", "message"),
    [
        ([], Step.REVIEW, {"signer": "aaron"}, SeparationOfDuties, "author of a recipe version cannot review"),
        ([], Step.APPROVE, {"signer": "quinn"}, LifecycleStepRefused, "has not been reviewed yet"),
        ([(Step.REVIEW, "sam")], Step.APPROVE, {"signer": "sam"}, SeparationOfDuties, "reviewer of a recipe version cannot also approve"),
        ([(Step.REVIEW, "sam")], Step.APPROVE, {"signer": "aaron"}, SeparationOfDuties, "author"),
        ([(Step.REVIEW, "sam")], Step.REVIEW, {"signer": "alma"}, LifecycleStepRefused, "already been reviewed"),
        ([], Step.MAKE_EFFECTIVE, {"today": TODAY, "effective_from": TODAY}, LifecycleStepRefused, "cannot be made effective"),
        ([], Step.RETIRE, {"reason": ""}, InvalidInput, "needs a reason"),
        ([], Step.SUBMIT, {"signer": "aaron"}, LifecycleStepRefused, "in review cannot be submitted"),
    ],
)  # fmt: skip
def test_each_guard_refuses_before_anything_changes(setup, step, context, error, message):
    model = in_review()
    for earlier, signer in setup:
        model.fire(earlier, signer=signer)
    before = vars(model).copy()
    with pytest.raises(error) as caught:
        model.fire(step, **context)
    assert message in str(caught.value)
    assert vars(model) == before


def approved(newest_effective=None, version=2):
    model = in_review()
    model.fire(Step.REVIEW, signer="sam")
    model.fire(Step.APPROVE, signer="quinn")
    model.version = version
    model.newest_effective_version = newest_effective
    return model


def test_effectivity_is_never_backdated():
    model = approved()
    with pytest.raises(EffectivityRefused, match="2026-11-21 is in the past"):
        model.fire(Step.MAKE_EFFECTIVE, today=TODAY, effective_from=date(2026, 11, 21))
    model.fire(Step.MAKE_EFFECTIVE, today=TODAY, effective_from=date(2026, 12, 1))
    assert model.effective_from == date(2026, 12, 1)


def test_an_older_version_never_becomes_effective_beside_a_newer_one():
    with pytest.raises(EffectivityRefused, match="Version 3 of CART is already effective"):
        approved(newest_effective=3).fire(Step.MAKE_EFFECTIVE, today=TODAY, effective_from=TODAY)
    model = approved(newest_effective=1)
    model.fire(Step.MAKE_EFFECTIVE, today=TODAY, effective_from=TODAY)
    assert model.state == "effective"


@pytest.mark.parametrize("state", ["superseded", "retired"])
def test_final_states_take_no_step(state):
    assert steps_from(state) == []
    with pytest.raises(LifecycleStepRefused, match="make a new version instead"):
        VersionModel("CART", 1, state).fire(Step.RETIRE, reason="no longer used")


def test_content_is_editable_only_in_draft():
    ensure_editable("draft", "CART", 1)
    for state in ("in_review", "approved", "effective", "superseded", "retired"):
        with pytest.raises(RecipeNotEditable, match="can no longer change"):
            ensure_editable(state, "CART", 1)


def test_steps_offered_follow_the_machine_and_each_has_a_meaning_and_roles():
    assert steps_from("draft") == [Step.SUBMIT, Step.RETIRE]
    assert steps_from("in_review") == [Step.REVIEW, Step.APPROVE, Step.RETIRE]
    assert steps_from("approved") == [Step.MAKE_EFFECTIVE, Step.RETIRE]
    assert all(rule.roles and "admin" not in rule.roles for rule in STEP_RULES.values())


def test_the_documented_diagram_is_the_one_generated_from_the_machine():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "recipe-lifecycle.md").read_text()
    assert f"```mermaid\n{mermaid()}\n```" in doc
