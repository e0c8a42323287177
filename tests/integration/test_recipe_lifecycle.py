"""Recipe versions move draft → in review → approved → effective → superseded/retired, each step
signed by a permitted, different person; every refusal leaves the version as it was."""

from __future__ import annotations

from datetime import timedelta

import pytest
from integration_helpers import attest, audit_entries, count_rows
from recipe_helpers import TODAY, recipe_text, sign
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from support import user_ctx

from mes.core.errors import (
    AuthenticationFailed,
    EffectivityRefused,
    InvalidInput,
    LifecycleStepRefused,
    NotAuthorised,
    RecipeVersionExists,
    SeparationOfDuties,
)
from mes.core.esign import Meaning
from mes.core.lifecycle import Step, VersionState
from mes.core.recipe import RecipeInvalid
from mes.services import recipes
from mes.services.esign import valid_signatures
from mes.store.models import AuditEntry, RecipeVersion


@pytest.fixture
def team(create_user, make_uow):
    """Author, second author, supervisor, two QA people and an operator, all attested."""
    people = {
        "aaron": ["author"],
        "alma": ["author"],
        "sam": ["supervisor"],
        "quinn": ["qa"],
        "queenie": ["qa"],
        "olivia": ["operator"],
        "ada": ["admin"],
        "abel": ["author", "qa"],  # holds both roles: separation of duties must still hold
    }
    ids = {}
    for username, roles in people.items():
        ids[username] = create_user(username, roles=roles)
        attest(make_uow, ids[username], username)
    return ids


def imported(make_uow, user_id, text_=None, name="mini.yaml"):
    with make_uow() as uow:
        version = recipes.import_recipe(uow, user_ctx(user_id), text_ or recipe_text(), name)
        return version.id


def state_of(make_uow, version_id):
    with make_uow() as uow:
        return uow.session.get(RecipeVersion, version_id).status


def approved_version(make_uow, team, version=1, author="aaron"):
    version_id = imported(
        make_uow, team[author], recipe_text(version, viability_action=80 - version)
    )
    sign(make_uow, team[author], author, version_id, Step.SUBMIT)
    sign(make_uow, team["sam"], "sam", version_id, Step.REVIEW)
    sign(make_uow, team["quinn"], "quinn", version_id, Step.APPROVE)
    return version_id


def test_a_version_goes_from_draft_to_effective_with_four_signatures(make_uow, team):
    version_id = imported(make_uow, team["aaron"])
    assert state_of(make_uow, version_id) == "draft"
    assert sign(make_uow, team["aaron"], "aaron", version_id, Step.SUBMIT).state == "in_review"
    assert sign(make_uow, team["sam"], "sam", version_id, Step.REVIEW).state == "in_review"
    assert sign(make_uow, team["quinn"], "quinn", version_id, Step.APPROVE).state == "approved"
    result = sign(
        make_uow, team["quinn"], "quinn", version_id, Step.MAKE_EFFECTIVE, effective_from=TODAY
    )
    assert result.state == "effective"

    with make_uow() as uow:
        version = uow.session.get(RecipeVersion, version_id)
        assert (version.authored_by, version.reviewed_by, version.approved_by) == (
            team["aaron"],
            team["sam"],
            team["quinn"],
        )
        assert version.effective_from == TODAY
        signatures = valid_signatures(
            uow, recipes.RECORD_TYPE, version_id, recipes.version_record(version)
        )
    assert [(s.username, s.meaning) for s in signatures] == [
        ("aaron", Meaning.AUTHORED),
        ("sam", Meaning.REVIEWED),
        ("quinn", Meaning.APPROVED),
        ("quinn", Meaning.MADE_EFFECTIVE),
    ]
    actions = [e.action for e in audit_entries(make_uow) if e.record_id == version_id]
    assert actions == [
        "recipe version imported",
        "signed: authored",
        "recipe version submitted for review",
        "signed: reviewed",
        "recipe version reviewed",
        "signed: approved",
        "recipe version approved",
        "signed: made effective",
        "recipe version made effective",
    ]


def test_a_newer_version_becoming_effective_supersedes_the_older(make_uow, team):
    first = approved_version(make_uow, team, 1)
    sign(make_uow, team["quinn"], "quinn", first, Step.MAKE_EFFECTIVE, effective_from=TODAY)
    second = approved_version(make_uow, team, 2)
    result = sign(
        make_uow, team["queenie"], "queenie", second, Step.MAKE_EFFECTIVE, effective_from=TODAY
    )
    assert result.superseded == (first,)
    assert state_of(make_uow, first) == "superseded"
    assert state_of(make_uow, second) == "effective"
    entry = [e for e in audit_entries(make_uow) if e.record_id == first][-1]
    assert (entry.action, entry.old, entry.reason) == (
        "recipe version superseded",
        {"status": "effective"},
        "MINI-TEST v2 became effective",
    )


def refusal(make_uow, attempt):
    """Run ``attempt``; return the error; check nothing about the versions changed."""

    def snapshot():
        with make_uow() as uow:
            rows = uow.session.query(RecipeVersion).order_by(RecipeVersion.id).all()
            return [
                (
                    r.status,
                    r.content_hash,
                    r.authored_by,
                    r.reviewed_by,
                    r.approved_by,
                    r.effective_from,
                )
                for r in rows
            ]

    before, entries = snapshot(), count_rows(make_uow, AuditEntry)
    with pytest.raises(Exception) as caught:
        attempt()
    assert snapshot() == before
    if not isinstance(caught.value, AuthenticationFailed):  # a failed password is recorded
        assert count_rows(make_uow, AuditEntry) == entries
    return caught.value


def test_the_author_cannot_review_or_approve_even_holding_the_qa_role(make_uow, team):
    version_id = imported(make_uow, team["abel"])
    sign(make_uow, team["abel"], "abel", version_id, Step.SUBMIT)
    error = refusal(make_uow, lambda: sign(make_uow, team["abel"], "abel", version_id, Step.REVIEW))
    assert isinstance(error, SeparationOfDuties)
    assert str(error) == (
        "The author of a recipe version cannot review or approve it. "
        "Ask another qualified person to sign."
    )
    sign(make_uow, team["sam"], "sam", version_id, Step.REVIEW)
    error = refusal(
        make_uow, lambda: sign(make_uow, team["abel"], "abel", version_id, Step.APPROVE)
    )
    assert isinstance(error, SeparationOfDuties)


def test_approval_needs_the_qa_role_a_prior_review_and_another_person(make_uow, team):
    version_id = imported(make_uow, team["aaron"])
    sign(make_uow, team["aaron"], "aaron", version_id, Step.SUBMIT)
    error = refusal(
        make_uow, lambda: sign(make_uow, team["quinn"], "quinn", version_id, Step.APPROVE)
    )
    assert isinstance(error, LifecycleStepRefused)
    assert "not been reviewed yet" in str(error)
    sign(make_uow, team["queenie"], "queenie", version_id, Step.REVIEW)
    error = refusal(make_uow, lambda: sign(make_uow, team["sam"], "sam", version_id, Step.APPROVE))
    assert isinstance(error, NotAuthorised)
    assert (
        str(error) == "Signing as 'approved' needs the qa role. Ask a person who holds it to sign."
    )
    error = refusal(
        make_uow, lambda: sign(make_uow, team["queenie"], "queenie", version_id, Step.APPROVE)
    )
    assert isinstance(error, SeparationOfDuties)
    assert "reviewer of a recipe version cannot also approve" in str(error)
    error = refusal(make_uow, lambda: sign(make_uow, team["ada"], "ada", version_id, Step.REVIEW))
    assert isinstance(error, LifecycleStepRefused)  # already reviewed (checked before roles)
    assert sign(make_uow, team["quinn"], "quinn", version_id, Step.APPROVE).state == "approved"


def test_only_a_permitted_role_signs_each_step(make_uow, team):
    version_id = imported(make_uow, team["aaron"])
    error = refusal(make_uow, lambda: sign(make_uow, team["sam"], "sam", version_id, Step.SUBMIT))
    assert isinstance(error, NotAuthorised)
    sign(make_uow, team["aaron"], "aaron", version_id, Step.SUBMIT)
    for username in ("olivia", "ada"):
        error = refusal(
            make_uow, lambda u=username: sign(make_uow, team[u], u, version_id, Step.REVIEW)
        )
        assert isinstance(error, NotAuthorised), username


def test_a_version_never_approved_cannot_be_made_effective(make_uow, team):
    version_id = imported(make_uow, team["aaron"])
    for state_step in (None, Step.SUBMIT):
        if state_step:
            sign(make_uow, team["aaron"], "aaron", version_id, state_step)
        error = refusal(
            make_uow,
            lambda: sign(
                make_uow,
                team["quinn"],
                "quinn",
                version_id,
                Step.MAKE_EFFECTIVE,
                effective_from=TODAY,
            ),
        )
        assert isinstance(error, LifecycleStepRefused)
        assert "cannot be made effective" in str(error)


def test_effectivity_is_never_backdated_and_never_two_versions_at_once(make_uow, team):
    older = approved_version(make_uow, team, 1)
    newer = approved_version(make_uow, team, 2)
    error = refusal(
        make_uow,
        lambda: sign(
            make_uow,
            team["quinn"],
            "quinn",
            newer,
            Step.MAKE_EFFECTIVE,
            effective_from=TODAY - timedelta(days=1),
        ),
    )
    assert isinstance(error, EffectivityRefused)
    assert "2026-11-20 is in the past" in str(error)
    sign(make_uow, team["quinn"], "quinn", newer, Step.MAKE_EFFECTIVE, effective_from=TODAY)
    error = refusal(
        make_uow,
        lambda: sign(
            make_uow, team["quinn"], "quinn", older, Step.MAKE_EFFECTIVE, effective_from=TODAY
        ),
    )
    assert isinstance(error, EffectivityRefused)
    assert str(error).startswith(
        "Version 2 of MINI-TEST is already effective; the older version 1 cannot become effective"
    )


def test_a_wrong_password_signs_nothing(make_uow, team):
    version_id = imported(make_uow, team["aaron"])
    error = refusal(
        make_uow,
        lambda: sign(
            make_uow, team["aaron"], "aaron", version_id, Step.SUBMIT, password="wrong-one-x"
        ),
    )
    assert isinstance(error, AuthenticationFailed)
    assert state_of(make_uow, version_id) == "draft"


def test_retiring_needs_qa_and_a_reason(make_uow, team):
    version_id = approved_version(make_uow, team)
    error = refusal(
        make_uow,
        lambda: sign(make_uow, team["quinn"], "quinn", version_id, Step.RETIRE, reason=" "),
    )
    assert isinstance(error, InvalidInput)
    result = sign(
        make_uow, team["quinn"], "quinn", version_id, Step.RETIRE, reason="Process withdrawn"
    )
    assert result.state == VersionState.RETIRED
    error = refusal(
        make_uow,
        lambda: sign(
            make_uow, team["quinn"], "quinn", version_id, Step.MAKE_EFFECTIVE, effective_from=TODAY
        ),
    )
    assert isinstance(error, LifecycleStepRefused)
    assert "retired version stays as it is" in str(error)


def test_content_cannot_change_once_in_review(make_uow, team):
    version_id = imported(make_uow, team["aaron"])
    # While draft, importing the same version again replaces the draft (audited).
    imported(make_uow, team["aaron"], recipe_text(viability_action=75))
    with make_uow() as uow:
        replaced = uow.session.get(RecipeVersion, version_id)
        assert '"action_low":75' in replaced.compiled
    assert audit_entries(make_uow)[-1].action == "recipe draft replaced"
    sign(make_uow, team["aaron"], "aaron", version_id, Step.SUBMIT)
    error = refusal(
        make_uow, lambda: imported(make_uow, team["aaron"], recipe_text(viability_action=70))
    )
    assert isinstance(error, RecipeVersionExists)
    assert str(error) == (
        "MINI-TEST v1 is in review: its content can no longer change. "
        "Give the changed recipe a new version number and a change reason."
    )
    # The same content again is not a change: nothing happens.
    entries = count_rows(make_uow, AuditEntry)
    assert imported(make_uow, team["aaron"], recipe_text(viability_action=75)) == version_id
    assert count_rows(make_uow, AuditEntry) == entries


def test_the_database_refuses_to_change_content_out_of_draft_or_delete_versions(make_uow, team):
    version_id = approved_version(make_uow, team)
    for statement in (
        "UPDATE recipe_versions SET content_hash = 'x' WHERE id = :id",
        "UPDATE recipe_versions SET compiled = '{}' WHERE id = :id",
        "DELETE FROM recipe_versions WHERE id = :id",
    ):
        with make_uow() as uow, pytest.raises(DBAPIError):
            uow.session.execute(text(statement), {"id": version_id})
            uow.session.flush()
    with make_uow() as uow:  # status is a projection and may move (by the service only)
        uow.session.execute(
            text("UPDATE recipe_versions SET status_reason = 'note' WHERE id = :id"),
            {"id": version_id},
        )


def test_bad_imports_are_refused_and_store_nothing(make_uow, team):
    error = refusal(
        make_uow,
        lambda: imported(make_uow, team["aaron"], recipe_text().replace('unit: "%"', "unit: pct")),
    )
    assert isinstance(error, RecipeInvalid)
    assert error.lines() == [
        "mini.yaml:24:65 unit_procedures[0].operations[0].phases[0].inputs[0]: "
        "unknown unit 'pct'; use a unit from the list in docs/recipe-format.md"
    ]
    error = refusal(make_uow, lambda: imported(make_uow, team["olivia"]))
    assert isinstance(error, NotAuthorised)
    imported(make_uow, team["aaron"], recipe_text(3))
    error = refusal(make_uow, lambda: imported(make_uow, team["aaron"], recipe_text(2)))
    assert isinstance(error, RecipeVersionExists)
    assert (
        str(error)
        == "MINI-TEST already has version 3; version numbers only go up. Number the new version 4 or higher."
    )
    assert count_rows(make_uow, RecipeVersion) == 1


def test_the_command_line_imports_as_the_system(make_uow, cli_ctx):
    with make_uow() as uow:
        version = recipes.import_recipe(uow, cli_ctx, recipe_text(), "mini.yaml")
        assert version.created_by is None
    entry = audit_entries(make_uow)[-1]
    assert (entry.actor_username, entry.action) == ("system", "recipe version imported")
