"""Roles and what they allow (21 CFR 11.10(d), (g); Annex 11 §12).

Roles are held per user (a user may hold several). Administration is segregated from
GMP data: the ``admin`` role manages users, terminals and configuration, and does not by itself
allow signing batch or recipe records (PIC/S PI 041 §9.3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from mes.core.errors import (
    AdministratorSigningForbidden,
    InvalidUsername,
    NotAuthorised,
    SelfAdministrationForbidden,
    UnknownRole,
)
from mes.core.worded import Worded, words_of

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


class Role(Worded):
    """The roles a user can hold."""

    OPERATOR = "operator", "Operator — executes and signs phases"
    SUPERVISOR = "supervisor", "Supervisor — starts batches, verifies, acknowledges deviations"
    QA = "qa", "Quality assurance — reviews, approves, releases"
    QC = "qc", "Quality control — enters release test results"
    AUTHOR = "author", "Recipe author — writes master recipes at the hub"
    ADMIN = "admin", "Administrator — users, terminals, configuration (cannot sign GMP records)"
    CLINICIAN = (
        "clinician",
        "Clinician — checks identity at the bedside and records the infusion",
    )


# The roles that sign GMP records (batch, recipe, material, review): every role but administration.
SIGNING_ROLES = frozenset(Role) - {Role.ADMIN}

ROLE_TITLES = words_of(Role)


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
    REBUILD_READ_MODELS = "rebuild the network's read models from the chains"
    RECORD_RESULTS = "enter release test results that arrive after release"
    CHECK_AT_BEDSIDE = "check identity at the bedside and record the infusion"
    GOVERN_CPV = (
        "freeze CPV baselines, set comparability margins and assess trends across the network"
    )
    LOOK_BACK = "look back at every batch that used a lot, instrument, operator or recipe version"


PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.MANAGE_USERS: frozenset({Role.ADMIN}),
    Permission.MANAGE_TERMINALS: frozenset({Role.ADMIN}),
    Permission.MANAGE_TRAINING: frozenset({Role.ADMIN, Role.SUPERVISOR, Role.QA}),
    Permission.READ_AUDIT_TRAIL: frozenset({Role.ADMIN, Role.QA}),
    Permission.READ_RECIPES: frozenset(Role),
    Permission.IMPORT_RECIPES: frozenset({Role.AUTHOR}),
    Permission.PUBLISH_RECIPES: frozenset({Role.QA}),
    Permission.INSTALL_RECIPES: frozenset({Role.ADMIN, Role.SUPERVISOR}),
    Permission.READ_BATCHES: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.QA, Role.QC}),
    Permission.EXECUTE_BATCHES: frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.QA}),
    Permission.MANAGE_MATERIALS: frozenset({Role.SUPERVISOR, Role.QA}),
    Permission.RELEASE_LOTS: frozenset({Role.QA}),
    Permission.MANAGE_EQUIPMENT: frozenset({Role.SUPERVISOR, Role.QA}),
    Permission.CLEAN_EQUIPMENT: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Permission.MANAGE_SPOKES: frozenset({Role.ADMIN}),
    Permission.WATCH_NETWORK: frozenset({Role.ADMIN, Role.SUPERVISOR, Role.QA}),
    Permission.REVIEW_BATCHES: frozenset({Role.QA}),
    Permission.REBUILD_READ_MODELS: frozenset({Role.ADMIN, Role.QA}),
    Permission.GOVERN_CPV: frozenset({Role.QA}),
    Permission.RECORD_RESULTS: frozenset({Role.QC}),
    Permission.CHECK_AT_BEDSIDE: frozenset({Role.CLINICIAN}),
    Permission.LOOK_BACK: frozenset({Role.QA}),
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


# --- segregation of duties (21 CFR 11.10(g); Annex 11 §12.3; PIC/S PI 041 §9.3) ---------------


def check_not_own_access(actor_id: str | None, subject_id: str, what: str) -> None:
    """Nobody changes their own access: roles and training are granted by another person.

    ``actor_id`` None is the server's command line (administration by the system itself).
    """
    if actor_id is not None and actor_id == subject_id:
        raise SelfAdministrationForbidden(
            f"You cannot change your own {what}.",
            what_to_do="Ask another person with the authority to do it.",
        )


def signing_roles_beside_admin(roles: Iterable[str]) -> frozenset[Role]:
    """The GMP signing roles held together with administration (empty if none, or no admin)."""
    held = {Role(r) for r in roles}
    return frozenset(held & SIGNING_ROLES) if Role.ADMIN in held else frozenset()


def check_segregation(
    username: str, roles: Iterable[str], *, administrators_may_sign: bool, signing: bool = False
) -> None:
    """Administration and a GMP signing role at once only where the site's setting allows it.

    Checked when roles are granted and again at every signature, so an account that holds
    both from before the rule (or from before the setting was withdrawn) cannot sign.
    PIC/S PI 041 §9.3: administrators are segregated from the people who generate GMP data.
    """
    both = signing_roles_beside_admin(roles)
    if not both or administrators_may_sign:
        return
    names = " and ".join(sorted(r.value for r in both))
    if signing:
        raise AdministratorSigningForbidden(
            f"{username} holds administration and {names}: at this site an administrator "
            "cannot sign GMP records.",
            what_to_do="Ask an administrator to remove one of the roles (or to allow the "
            "combination in the site's settings, for a small site).",
        )
    raise AdministratorSigningForbidden(
        f"{username} would hold administration and {names} at once: at this site "
        "administrators are kept apart from GMP signing.",
        what_to_do="Give the signing role to another person, or first allow the combination "
        "in the site's settings (for a small site).",
    )


# --- login (21 CFR 11.10(d), 11.300(d)) -------------------------------------------------------


class LoginRefusal(StrEnum):
    """The true reason a login was refused (recorded; never shown to the person logging in)."""

    UNKNOWN_USER = "unknown user ID"
    DEACTIVATED = "account deactivated"
    LOCKED = "account locked"
    WRONG_PASSWORD = "wrong password"  # noqa: S105 - a reason, not a password


# One answer for every refused login, so that nobody learns which user IDs exist or which
# accounts are locked; it still tells a locked-out person what to do.
LOGIN_REFUSED = "User ID or password not accepted, or the account is locked."
LOGIN_WHAT_TO_DO = "Try again; if this persists, ask an administrator."


def login_refusal(
    *, known: bool, active: bool, locked: bool, password_matches: bool
) -> LoginRefusal | None:
    """Why a login is refused, or None when it succeeds.

    The password is checked for every attempt (against a stand-in hash for an unknown user ID)
    before this is asked, so every refusal costs the same work.
    """
    if not known:
        return LoginRefusal.UNKNOWN_USER
    if not active:
        return LoginRefusal.DEACTIVATED
    if locked:
        return LoginRefusal.LOCKED
    if not password_matches:
        return LoginRefusal.WRONG_PASSWORD
    return None
