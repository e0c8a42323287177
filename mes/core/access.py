"""Roles and what they allow (21 CFR 11.10(d), (g); Annex 11 §12).

Roles are held per user (a user may hold several). Administration is segregated from
GMP data: the ``admin`` role manages users, terminals and configuration, and does not by itself
allow signing batch or recipe records (PIC/S PI 041 §9.3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from mes.core.errors import InvalidUsername, NotAuthorised, UnknownRole

MAX_FAILED_ATTEMPTS = 5
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")


def normalise_username(username: str) -> str:
    """User IDs are lower case: 'JSmith' and ' jsmith' are the same person."""
    return username.strip().lower()


def check_username(username: str) -> str:
    """The normalised user ID, or :class:`InvalidUsername` saying what a user ID may be."""
    normalised = normalise_username(username)
    if not USERNAME.match(normalised):
        raise InvalidUsername(
            f"'{normalised}' is not a valid user ID.",
            what_to_do="Use 2-32 lower-case letters, digits, '.', '_' or '-', starting with a letter.",
        )
    return normalised


class Role(StrEnum):
    """The roles a user can hold."""

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    QA = "qa"
    AUTHOR = "author"
    ADMIN = "admin"


ROLE_TITLES = {
    Role.OPERATOR: "Operator — executes and signs phases",
    Role.SUPERVISOR: "Supervisor — starts batches, verifies, acknowledges deviations",
    Role.QA: "Quality assurance — reviews, approves, releases",
    Role.AUTHOR: "Recipe author — writes master recipes at the hub",
    Role.ADMIN: "Administrator — users, terminals, configuration (cannot sign GMP records)",
}


class Permission(StrEnum):
    """Actions that need an authority check."""

    MANAGE_USERS = "manage users"
    MANAGE_TERMINALS = "manage terminals"
    MANAGE_TRAINING = "manage training records"
    READ_AUDIT_TRAIL = "read the audit trail"
    READ_RECIPES = "read master recipes"
    IMPORT_RECIPES = "import recipe drafts"
    PUBLISH_RECIPES = "publish recipe bundles to sites"
    INSTALL_RECIPES = "install recipe bundles from the hub"
    READ_BATCHES = "read batch records"
    EXECUTE_BATCHES = "work on batches"
    MANAGE_MATERIALS = "register materials and lots"
    RELEASE_LOTS = "release, reject or quarantine material lots"
    MANAGE_EQUIPMENT = "register equipment and record calibration and status"
    CLEAN_EQUIPMENT = "record equipment cleaning"
    MANAGE_SPOKES = "enroll, suspend and revoke spokes"
    WATCH_NETWORK = "watch the network of sites"
    REVIEW_BATCHES = "review batch records, work deviations and release or reject batches"


PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.MANAGE_USERS: frozenset({Role.ADMIN}),
    Permission.MANAGE_TERMINALS: frozenset({Role.ADMIN}),
    Permission.MANAGE_TRAINING: frozenset({Role.ADMIN, Role.SUPERVISOR, Role.QA}),
    Permission.READ_AUDIT_TRAIL: frozenset({Role.ADMIN, Role.QA}),
    Permission.READ_RECIPES: frozenset(Role),
    Permission.IMPORT_RECIPES: frozenset({Role.AUTHOR}),
    Permission.PUBLISH_RECIPES: frozenset({Role.QA}),
    Permission.INSTALL_RECIPES: frozenset({Role.ADMIN, Role.SUPERVISOR}),
    Permission.READ_BATCHES: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.QA}),
    Permission.EXECUTE_BATCHES: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.QA}),
    Permission.MANAGE_MATERIALS: frozenset({Role.SUPERVISOR, Role.QA}),
    Permission.RELEASE_LOTS: frozenset({Role.QA}),
    Permission.MANAGE_EQUIPMENT: frozenset({Role.SUPERVISOR, Role.QA}),
    Permission.CLEAN_EQUIPMENT: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Permission.MANAGE_SPOKES: frozenset({Role.ADMIN}),
    Permission.WATCH_NETWORK: frozenset({Role.ADMIN, Role.SUPERVISOR, Role.QA}),
    Permission.REVIEW_BATCHES: frozenset({Role.QA}),
}


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """Role names → roles; an unknown name is refused with the list of valid ones."""
    roles = set()
    for name in names:
        try:
            roles.add(Role(name.strip().lower()))
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise UnknownRole(
                f"'{name}' is not a role.", what_to_do=f"Use one of: {valid}."
            ) from None
    return frozenset(roles)


def allowed(roles: Iterable[str], permission: Permission) -> bool:
    """True when any of ``roles`` grants ``permission``."""
    return bool(set(roles) & PERMISSIONS[permission])


def require(roles: Iterable[str], permission: Permission) -> None:
    """Authority check: raise :class:`NotAuthorised` unless ``roles`` grant ``permission``."""
    if not allowed(roles, permission):
        needed = " or ".join(sorted(r.value for r in PERMISSIONS[permission]))
        raise NotAuthorised(
            f"You are not allowed to {permission.value}.",
            what_to_do=f"Ask a user with the {needed} role.",
        )


def register_failed_attempt(failed_attempts: int) -> tuple[int, bool]:
    """Count one more consecutive failure; the account locks at the fifth (11.300(d))."""
    count = failed_attempts + 1
    return count, count >= MAX_FAILED_ATTEMPTS


def check_signing_authority(held: Iterable[str], required: Iterable[str], meaning: str) -> None:
    """Only a holder of one of ``required`` may sign; administration alone never signs GMP records.

    21 CFR 11.10(g); PIC/S PI 041 §9.3 (administrators are segregated from GMP data).
    """
    needed = {Role(r) for r in required} - {Role.ADMIN}
    if not set(held) & needed:
        names = " or ".join(sorted(r.value for r in needed)) or "a GMP role"
        raise NotAuthorised(
            f"Signing as '{meaning}' needs the {names} role.",
            what_to_do="Ask a person who holds it to sign.",
        )
