"""People and their access: user IDs, roles, passwords, lockout.

21 CFR 11.10(d), (g), 11.100, 11.300; Annex 11 §12.3.

User IDs are never deleted, reused or reassigned: deactivation is the only way out, and a
deactivated ID stays taken. Every change is an audit entry; passwords never appear in one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

from mes.core.access import (
    LOGIN_REFUSED,
    LOGIN_WHAT_TO_DO,
    MAX_FAILED_ATTEMPTS,
    LoginRefusal,
    Permission,
    check_not_own_access,
    check_segregation,
    check_username,
    login_refusal,
    normalise_username,
    parse_roles,
    register_failed_attempt,
)
from mes.core.audit import Actor, EntryKind, require_reason
from mes.core.errors import (
    AccountDeactivated,
    AccountLocked,
    AuthenticationFailed,
    InvalidInput,
    LoginRefused,
    NotAuthorised,
    PasswordChangeRequired,
    UnknownUser,
    UsernameTaken,
)
from mes.core.esign import SigningMethod, check_signing_method
from mes.core.passwords import (
    TEMPORARY_PASSWORD_HOURS,
    check_new_password,
    hash_password,
    password_matches,
    stand_in_hash,
    temporary_password,
    temporary_password_expired,
)
from mes.core.pins import BADGE_LOGIN_REFUSED, badge_digest, pin_expired, pin_matches
from mes.core.text import free_text, one_line
from mes.core.throttle import UNKNOWN_SOURCE, Attempt
from mes.services import throttle
from mes.services.audit import record_entry
from mes.services.configuration import administrators_may_sign, signing_methods
from mes.services.context import (
    Context,
    acting_user,
    actor_of,
    authorise,
    ensure_account_usable,
)
from mes.services.ids import new_id
from mes.store import users
from mes.store.models import User, UserRole
from mes.store.sessions import delete_user_sessions
from mes.store.uow import UnitOfWork

RECORD_TYPE = "user"
LOGGED_IN = "logged in"  # the audit trail's sign-in entry (hidden on request in the viewer)
SIGN_IN_ACTIONS = frozenset({LOGGED_IN})


def _public(user: User) -> dict[str, object]:
    """What the audit trail records about a user (never the password or PIN hash)."""
    return {
        "username": user.username,
        "full_name": user.full_name,
        "roles": sorted(user.role_names),
        "active": user.active,
        "locked": user.locked,
    }


def find_user(uow: UnitOfWork, username: str) -> User:
    """The user with this ID, or :class:`UnknownUser`."""
    user = users.user_named(uow.session, normalise_username(username))
    if user is None:
        raise UnknownUser(
            f"There is no user '{username}'.", what_to_do="Check the user ID (see 'mes user list')."
        )
    return user


def _check_full_name(full_name: str) -> str:
    """The name printed with every signature (11.50): one line, spaces collapsed."""
    name = " ".join(one_line(full_name, "The full name").split())
    if len(name) < 2 or len(name) > 200:
        raise InvalidInput(
            "The full name is required (2 to 200 characters); it is printed with every signature.",
            what_to_do="Give the person's full name as they sign it.",
        )
    return name


def _set_password(uow: UnitOfWork, user: User, password: str, ctx: Context) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = ctx.at
    uow.flush()  # the user row first: the history row refers to it
    users.keep_password_hash(uow.session, user.id, user.password_hash, ctx.at)


def _previous_hashes(uow: UnitOfWork, user: User) -> list[str]:
    return users.earlier_password_hashes(
        uow.session, user.id, uow.site.password_policy.history_depth
    )


def add_user(
    uow: UnitOfWork,
    ctx: Context,
    *,
    username: str,
    full_name: str,
    roles: Iterable[str],
    password: str,
    must_change_password: bool = False,
) -> str:
    """Create a user with roles and a password that meets the policy; returns the user's id.

    11.100(a)/11.300(a): a user ID that exists or ever existed is refused.
    """
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    username = check_username(username)
    role_set = parse_roles(roles)
    if not role_set:
        raise InvalidInput("A user needs at least one role.", what_to_do="Give --role.")
    full_name = _check_full_name(full_name)
    _check_segregation(uow, username, role_set)
    if users.username_taken(uow.session, username):
        raise UsernameTaken(
            f"The user ID '{username}' is already taken (user IDs are never reused, even after "
            "deactivation).",
            what_to_do="Choose another user ID.",
        )
    check_new_password(username, password, policy=uow.site.password_policy)
    user = User(
        id=new_id(),
        username=username,
        full_name=full_name,
        must_change_password=must_change_password,
        failed_attempts=0,
        locked=False,
        active=True,
        created_at=ctx.at,
        roles=[UserRole(role=r.value) for r in sorted(role_set)],
    )
    uow.add(user)
    _set_password(uow, user, password, ctx)
    uow.flush()
    record_user_entry(uow, ctx, actor, "user created", user, old=None, new=_public(user))
    uow.commit()
    return user.id


def record_user_entry(
    uow: UnitOfWork,
    ctx: Context,
    actor: Actor,
    action: str,
    user: User,
    *,
    old: dict[str, object] | None = None,
    new: dict[str, object] | None,
    reason: str | None = None,
    kind: EntryKind = EntryKind.CHANGE,
) -> None:
    """One audit entry on ``user`` (record type "user"): by whom, what, before → after, why."""
    record_entry(
        uow,
        ctx,
        actor,
        action,
        RECORD_TYPE,
        user.username,
        kind=kind,
        old=old,
        new=new,
        reason=reason,
    )


def _check_segregation(uow: UnitOfWork, username: str, roles: Iterable[str]) -> None:
    """Administration and a GMP signing role together only where the site allows it."""
    check_segregation(username, roles, administrators_may_sign=administrators_may_sign(uow).allowed)


def set_roles(
    uow: UnitOfWork, ctx: Context, username: str, roles: Iterable[str], reason: str
) -> None:
    """Replace a user's roles (Annex 11 §12.3: every grant and removal is recorded, with why).

    Nobody changes their own roles; administration and a GMP signing role go together only
    where the site's setting allows it (21 CFR 11.10(g); PIC/S PI 041 §9.3).
    """
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    reason = require_reason(reason, "change a user's roles")
    user = find_user(uow, username)
    check_not_own_access(ctx.user_id, user.id, "roles")
    role_set = parse_roles(roles)
    if not role_set:
        raise InvalidInput("A user needs at least one role.", what_to_do="Deactivate instead.")
    _check_segregation(uow, user.username, role_set)
    old = _public(user)
    if set(old["roles"]) == {r.value for r in role_set}:  # type: ignore[arg-type]
        raise InvalidInput(f"{user.username} already has exactly these roles.")
    user.roles = [UserRole(role=r.value) for r in sorted(role_set)]
    uow.flush()
    record_user_entry(
        uow, ctx, actor, "roles changed", user, old=old, new=_public(user), reason=reason
    )
    uow.commit()


def deactivate_user(uow: UnitOfWork, ctx: Context, username: str, reason: str) -> None:
    """Withdraw a user's access for good; the ID stays taken and their records stay theirs."""
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    reason = require_reason(reason, "deactivate a user")
    user = find_user(uow, username)
    if not user.active:
        raise InvalidInput(f"{user.username} is already deactivated.")
    if ctx.user_id == user.id:
        raise NotAuthorised(
            "You cannot deactivate your own account.", what_to_do="Ask another administrator."
        )
    old = _public(user)
    user.active = False
    end_sessions(uow, user)
    record_user_entry(
        uow, ctx, actor, "user deactivated", user, old=old, new=_public(user), reason=reason
    )
    uow.commit()


def unlock_user(uow: UnitOfWork, ctx: Context, username: str, reason: str | None = None) -> None:
    """Unlock an account locked by failed authentications (audited as a security event)."""
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    user = find_user(uow, username)
    if not user.locked:
        raise InvalidInput(f"{user.username} is not locked.", what_to_do="Nothing to do.")
    old = _public(user)
    user.locked = False
    user.failed_attempts = 0
    record_user_entry(
        uow,
        ctx,
        actor,
        "account unlocked",
        user,
        old=old,
        new=_public(user),
        reason=free_text(reason, "The reason") or None,
        kind=EntryKind.SECURITY,
    )
    uow.commit()


def reset_password(uow: UnitOfWork, ctx: Context, username: str) -> str:
    """Give a user a random one-time password that must be changed at the next login.

    11.200(a)(3): the administrator never knows the password the user will sign with.
    Returns the temporary password (shown once, to be handed over in person).
    """
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    user = find_user(uow, username)
    if not user.active:
        raise AccountDeactivated(f"{user.username} is deactivated.")
    password = temporary_password()
    user.password_hash = hash_password(password)
    user.password_changed_at = ctx.at
    user.must_change_password = True
    end_sessions(uow, user)
    record_user_entry(
        uow,
        ctx,
        actor,
        "password reset",
        user,
        old=None,
        new={"must_change_password": True},
        kind=EntryKind.SECURITY,
    )
    uow.commit()
    return password


def change_password(
    uow: UnitOfWork, ctx: Context, current_password: str, new_password: str
) -> None:
    """The logged-in user changes their own password (policy and history apply).

    Every session of the user ends, this one too (the caller opens a new one for this browser).
    """
    user = acting_user(uow, ctx, changing_password=True)
    if not password_matches(user.password_hash, current_password):
        count_failure(uow, ctx, user, "password change failed")
    check_new_password(
        user.username, new_password, _previous_hashes(uow, user), uow.site.password_policy
    )
    if password_matches(user.password_hash, new_password):
        raise InvalidInput("The new password must differ from the current one.")
    _set_password(uow, user, new_password, ctx)
    user.must_change_password = False
    end_sessions(uow, user)
    user.failed_attempts = 0
    record_user_entry(
        uow,
        ctx,
        actor_of(user),
        "password changed",
        user,
        old=None,
        new=None,
        kind=EntryKind.SECURITY,
    )
    uow.commit()


def end_sessions(uow: UnitOfWork, user: User) -> None:
    """End every open session of the user, in this transaction: they must log in again (11.300(d))."""
    delete_user_sessions(uow.session, user.id)


def count_failure(
    uow: UnitOfWork,
    ctx: Context,
    user: User,
    action: str,
    *,
    keep_staged: bool = False,
    wrong: str = "The user ID or password is wrong.",
) -> None:
    """Record a failed authentication, lock at the fifth in a row (11.300(d)), commit, refuse.

    Committing here is deliberate: the refusal must not roll back the evidence of the attempt.
    Anything else staged in this unit of work is rolled back first, so a refused signature never
    commits half of the change it was meant to sign — unless the caller staged only what stands
    without the signature (``keep_staged``: values an operator recorded before signing).
    """
    if not keep_staged:
        uow.rollback()
    user = _record_failure(uow, ctx, user, action)
    uow.commit()
    count = user.failed_attempts
    if user.locked:
        raise AccountLocked(
            f"The account {user.username} is now locked after {count} failed attempts.",
            what_to_do="Ask an administrator to unlock it.",
        )
    left = MAX_FAILED_ATTEMPTS - count
    raise AuthenticationFailed(
        wrong,
        what_to_do=f"Try again; {left} more failed attempt{'s' if left != 1 else ''} will lock the account.",
    )


def _record_failure(uow: UnitOfWork, ctx: Context, user: User, action: str) -> User:
    """Count one more failed authentication of ``user`` and lock at the fifth (not committed)."""
    # Lock the row: concurrent failures must each be counted (no lost update on PostgreSQL).
    user = users.user(uow.session, user.id, lock=True)  # type: ignore[assignment]
    count, now_locked = register_failed_attempt(user.failed_attempts)
    user.failed_attempts = count
    record_user_entry(
        uow,
        ctx,
        actor_of(user),
        action,
        user,
        old=None,
        new={"consecutive_failures": count},
        kind=EntryKind.SECURITY,
    )
    if now_locked and not user.locked:
        user.locked = True
        end_sessions(uow, user)
        record_user_entry(
            uow,
            ctx,
            actor_of(user),
            "account locked",
            user,
            old=None,
            new={"locked": True, "consecutive_failures": count},
            kind=EntryKind.SECURITY,
        )
    return user


def verify_credentials(
    uow: UnitOfWork,
    ctx: Context,
    user: User,
    password: str,
    action: str,
    *,
    matches: bool | None = None,
    keep_staged: bool = False,
    wrong: str = "The user ID or password is wrong.",
) -> None:
    """Check a password of an active, unlocked user; a wrong one is counted (and committed).

    ``matches``: the outcome of checking this user's current hash already (argon2 done before
    the caller took its locks), or of checking the PIN (``wrong`` then says so); None checks the
    password here. A wrong PIN counts in the same counter as a wrong password (11.300(d)).
    """
    ensure_account_usable(user)
    if matches is None:
        matches = password_matches(user.password_hash, password)
    if not matches:
        count_failure(uow, ctx, user, action, keep_staged=keep_staged, wrong=wrong)


def authenticate(
    uow: UnitOfWork, ctx: Context, username: str, password: str, *, source: str = UNKNOWN_SOURCE
) -> User:
    """Log in: user ID and password (11.10(d)); returns the user.

    Every refused login — unknown user ID, deactivated or locked account, wrong password — costs
    the same argon2 work (an unknown ID is checked against a stand-in hash) and gets the same
    words (:class:`LoginRefused`); the audit trail records the true reason. A wrong password
    counts toward lockout (11.300(d)). Refusals are counted per ``source`` (the client's
    address): a source refused too often is turned away for the rest of its window
    (:class:`TooManyAttempts`, before any password is checked). After success,
    ``user.must_change_password`` (set by an administrator's reset or by expiry) tells the
    caller to ask for a new password.
    """
    username = normalise_username(username)
    with uow.reader() as reader:  # argon2 runs before this unit of work takes any write lock
        wait = throttle.wait_needed(reader, Attempt.LOGIN, source, ctx.at)
        stored = users.password_hash_named(reader.session, username)
    if wait is not None:
        throttle.turn_away(uow, Attempt.LOGIN, source, ctx.at)
    matches = password_matches(stored or stand_in_hash(), password)
    user = users.user_named(uow.session, username)
    if user is not None and user.password_hash != stored:  # changed since it was read
        matches = password_matches(user.password_hash, password)
    _judge_login(uow, ctx, user, matches, source)
    assert user is not None
    if user.must_change_password and temporary_password_expired(user.password_changed_at, ctx.at):
        raise PasswordChangeRequired(
            f"The one-time password of {user.username} has expired "
            f"({TEMPORARY_PASSWORD_HOURS} hours after it was issued).",
            what_to_do="Ask an administrator for a new one.",
        )
    return _logged_in(uow, ctx, user)


def authenticate_by_badge(
    uow: UnitOfWork, ctx: Context, badge: str, pin: str, *, source: str = UNKNOWN_SOURCE
) -> User:
    """Log in at a panel: badge scan and PIN (11.10(d), 11.200(a)(1)); returns the user.

    As :func:`authenticate`: an unknown or revoked badge, a deactivated or locked account and a
    wrong PIN cost the same argon2 work and get the same words; a wrong PIN counts toward the
    same lockout as a wrong password (11.300(d)); refusals count per ``source``. Refused where
    the site does not allow badge + PIN; an expired PIN must be renewed on the account page.
    """
    check_signing_method(SigningMethod.BADGE_PIN, signing_methods(uow).values)
    try:
        digest = badge_digest(badge)
    except InvalidInput:
        digest = ""
    with uow.reader() as reader:
        wait = throttle.wait_needed(reader, Attempt.LOGIN, source, ctx.at)
        holder = users.badge_holder(reader.session, digest)
    if wait is not None:
        throttle.turn_away(uow, Attempt.LOGIN, source, ctx.at)
    stored = holder[1] if holder is not None else None
    matches = pin_matches(stored or stand_in_hash(), pin)
    user = users.user_named(uow.session, holder[0]) if holder is not None else None
    if user is not None and user.pin_hash != stored:  # changed since it was read
        matches = pin_matches(user.pin_hash, pin)
    _judge_login(uow, ctx, user, matches and stored is not None, source, BADGE_LOGIN_REFUSED)
    assert user is not None
    if pin_expired(user.pin_changed_at, ctx.at, uow.site.password_policy):
        raise PasswordChangeRequired(
            "Your PIN has expired.",
            what_to_do="Log in with your user ID and password and set a new PIN on My account.",
        )
    return _logged_in(uow, ctx, user, by="badge")


def _judge_login(
    uow: UnitOfWork,
    ctx: Context,
    user: User | None,
    matches: bool,
    source: str,
    words: str = LOGIN_REFUSED,
) -> None:
    """Refuse the login (recorded and committed) unless the user is usable and the secret right."""
    refusal = login_refusal(
        known=user is not None,
        active=user is not None and user.active,
        locked=user is not None and user.locked,
        password_matches=matches,
    )
    if refusal is not None:
        _refuse_login(uow, ctx, user, refusal, source, words)


def _logged_in(uow: UnitOfWork, ctx: Context, user: User, by: str | None = None) -> User:
    """A successful login: the failure count starts over, the login is recorded, committed."""
    user.failed_attempts = 0
    record_user_entry(
        uow,
        ctx,
        actor_of(user),
        LOGGED_IN,
        user,
        old=None,
        new={"by": by} if by else None,
        kind=EntryKind.SECURITY,
    )
    throttle.close_windows(uow, ctx.at)
    uow.commit()
    return user


def _refuse_login(
    uow: UnitOfWork,
    ctx: Context,
    user: User | None,
    refusal: LoginRefusal,
    source: str,
    words: str = LOGIN_REFUSED,
) -> NoReturn:
    """Record a refused login (its true reason), commit, and refuse it in the common words.

    A wrong password of a usable account is recorded every time and counts toward lockout; the
    other refusals are recorded in full once per reason, source and window, then only counted
    (the window's count, by reason, is recorded when it closes).
    """
    uow.rollback()
    window = throttle.count_refusal(uow, Attempt.LOGIN, source, ctx.at, refusal.value)
    if refusal is LoginRefusal.WRONG_PASSWORD:
        assert user is not None
        _record_failure(uow, ctx, user, "login failed")
    elif window.reasons.get(refusal.value) == 1:  # the first of its kind from there this window
        record_entry(
            uow,
            ctx,
            actor_of(user) if user is not None else throttle.anonymous_actor(source),
            "login refused",
            RECORD_TYPE if user is not None else throttle.RECORD_TYPE,
            user.username if user is not None else source,
            kind=EntryKind.SECURITY,
            new={"source": source},
            reason=refusal.value,
        )
    uow.commit()
    raise LoginRefused(words, what_to_do=LOGIN_WHAT_TO_DO)


def list_users(uow: UnitOfWork) -> list[User]:
    """Every user ever created, active first, by user ID."""
    return users.all_users(uow.session)
