"""Roles, permissions and the lockout count (21 CFR 11.10(d), (g), 11.300(d))."""

from __future__ import annotations

import pytest

from mes.core.access import (
    MAX_FAILED_ATTEMPTS,
    Permission,
    Role,
    allowed,
    parse_roles,
    register_failed_attempt,
    require,
)
from mes.core.errors import NotAuthorised, UnknownRole

# The intended matrix, written out independently of mes.core.access.PERMISSIONS.
MATRIX = {
    Permission.MANAGE_USERS: {"admin"},
    Permission.MANAGE_TERMINALS: {"admin"},
    Permission.MANAGE_TRAINING: {"admin", "supervisor", "qa"},
    Permission.READ_AUDIT_TRAIL: {"admin", "qa"},
    Permission.READ_RECIPES: {"operator", "supervisor", "qa", "qc", "author", "admin", "clinician"},
    Permission.IMPORT_RECIPES: {"author"},
    Permission.PUBLISH_RECIPES: {"qa"},
    Permission.INSTALL_RECIPES: {"admin", "supervisor"},
    Permission.READ_BATCHES: {"operator", "supervisor", "qa", "qc"},
    Permission.EXECUTE_BATCHES: {"operator", "supervisor", "qa"},
    Permission.MANAGE_MATERIALS: {"supervisor", "qa"},
    Permission.RELEASE_LOTS: {"qa"},
    Permission.MANAGE_EQUIPMENT: {"supervisor", "qa"},
    Permission.CLEAN_EQUIPMENT: {"operator", "supervisor"},
    Permission.MANAGE_SPOKES: {"admin"},
    Permission.WATCH_NETWORK: {"admin", "supervisor", "qa"},
    Permission.REVIEW_BATCHES: {"qa"},
    Permission.REBUILD_READ_MODELS: {"admin", "qa"},
    Permission.GOVERN_CPV: {"qa"},
    Permission.RECORD_RESULTS: {"qc"},
    Permission.CHECK_AT_BEDSIDE: {"clinician"},
    Permission.LOOK_BACK: {"qa"},
}


def test_role_names_are_read_case_and_space_insensitively():
    assert parse_roles([" Operator ", "QA", "qa"]) == {Role.OPERATOR, Role.QA}


def test_no_role_names_give_no_roles():
    assert parse_roles([]) == frozenset()


def test_an_unknown_role_is_refused_with_the_list_of_valid_roles():
    with pytest.raises(UnknownRole) as caught:
        parse_roles(["operator", "chemist"])
    error = caught.value
    assert error.message == "'chemist' is not a role."
    assert error.what_to_do == (
        "Use one of: operator, supervisor, qa, qc, author, admin, clinician."
    )


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", list(Role))
def test_each_role_has_exactly_the_intended_permissions(role, permission):
    expected = role.value in MATRIX[permission]
    assert allowed([role.value], permission) is expected
    if expected:
        require([role.value], permission)
    else:
        with pytest.raises(NotAuthorised):
            require([role.value], permission)


def test_a_user_without_roles_is_allowed_nothing():
    for permission in Permission:
        assert not allowed([], permission)


def test_any_one_role_that_allows_an_action_is_enough():
    require(["operator", "qa"], Permission.READ_AUDIT_TRAIL)


def test_the_refusal_names_the_action_and_the_roles_that_may_do_it():
    with pytest.raises(NotAuthorised) as caught:
        require(["operator"], Permission.MANAGE_TRAINING)
    assert caught.value.message == "You are not allowed to manage training records."
    assert caught.value.what_to_do == "Ask a user with the admin or qa or supervisor role."


def test_the_fifth_consecutive_failed_attempt_locks_the_account():
    assert MAX_FAILED_ATTEMPTS == 5
    count, results = 0, []
    for _ in range(5):
        count, locked = register_failed_attempt(count)
        results.append((count, locked))
    assert results == [(1, False), (2, False), (3, False), (4, False), (5, True)]


def test_attempts_beyond_the_fifth_stay_locked():
    assert register_failed_attempt(5) == (6, True)


def test_signing_needs_one_of_the_required_roles():
    from mes.core.access import check_signing_authority

    check_signing_authority({"operator"}, {"operator", "supervisor"}, "performed")
    with pytest.raises(NotAuthorised, match="Signing as 'verified' needs the supervisor role"):
        check_signing_authority({"operator"}, {"supervisor"}, "verified")


def test_the_administrator_role_alone_never_signs_a_gmp_record():
    from mes.core.access import check_signing_authority

    with pytest.raises(NotAuthorised, match="needs the qa role"):
        check_signing_authority({"admin"}, {"admin", "qa"}, "released")
