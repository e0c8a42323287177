"""Applying electronic signatures (21 CFR 11.50, 11.70, 11.100, 11.200, 11.300(d)).

:func:`sign_record` is the one way anything is signed. It re-authenticates the logged-in user
(user ID + password, or badge + PIN, for the first signing of a continuous session; after that
the password, or the PIN when the first was by badge — the site's setting says which methods
are allowed), checks
the signer's authority, the terminal and the accountability attestation; then appends the signature — manifestation bound to the record's content hash — to the audit
chain in the same transaction as the caller's state change.

A **witness** signs in place: another person, at the logged-in user's terminal and in their
session, identifies with both components of their own signature (``Credentials.witness``).
:func:`witness_context` turns the request's context into one whose acting user is the witness
(same terminal, same time, ``in_session_of`` the logged-in user), and the same service runs
with it, so every rule of the action applies to the witness as to anyone who signs; only the
actions the action table marks ``witness`` accept it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mes.core.access import (
    check_segregation,
    check_signing_authority,
    normalise_username,
    signing_roles_beside_admin,
)
from mes.core.audit import EntryKind
from mes.core.errors import (
    AttestationRequired,
    AuthenticationFailed,
    InvalidInput,
    NotAuthorised,
    PasswordChangeRequired,
    TerminalNotRegistered,
)
from mes.core.esign import (
    ATTESTATION_RECORD_TYPE,
    Manifestation,
    Meaning,
    SigningMethod,
    attestation_record,
    check_signer_identity,
    check_signing_method,
    signature_binds,
    signing_method,
)
from mes.core.passwords import password_matches, stand_in_hash
from mes.core.pins import WRONG_PIN, pin_expired, pin_matches
from mes.services.audit import record_entry
from mes.services.badges import user_by_badge
from mes.services.configuration import administrators_may_sign, signing_methods
from mes.services.context import Context, acting_user, actor_of
from mes.services.terminals import active_terminal
from mes.services.users import verify_credentials
from mes.store import users
from mes.store.audit import signature_bodies
from mes.store.models import User
from mes.store.uow import UnitOfWork


@dataclass(frozen=True)
class Credentials:
    """What the signer typed in the signature dialog.

    ``password`` is the secret: the password, or the PIN when the signing is by badge (a
    ``badge`` scanned, or a later signing of a session whose first one was by badge).
    """

    password: str
    username: str | None = None  # the first signing of a session: user ID + password, or
    badge: str | None = None  # the badge scanned (+ the PIN in ``password``)
    witness: bool = False  # another person signs in place, at the logged-in user's session


@dataclass(frozen=True)
class PasswordCheck:
    """A password (or PIN) checked against a user's hash before the signing took its locks.

    ``password_hash`` is the hash it was checked against.
    """

    user_id: str
    password_hash: str
    matches: bool


def check_password_first(
    uow: UnitOfWork, ctx: Context, credentials: Credentials
) -> PasswordCheck | None:
    """Check the signer's password (argon2, tens of ms) before ``uow`` takes any lock.

    Call it before the first statement of ``uow``: the hash is read in a separate read-only unit
    of work, so no write lock (SQLite) or row lock (PostgreSQL) waits on the password hashing.
    The outcome counts only if it is still the user's hash when the signature is applied, and
    only after every rule of the action has passed (:func:`authenticate_signer`).
    """
    if ctx.user_id is None:
        return None
    by_pin = _method_of(ctx, credentials) is SigningMethod.BADGE_PIN
    with uow.reader() as reader:
        if by_pin:
            stored = users.pin_hash_of(reader.session, ctx.user_id)
        else:
            stored = users.password_hash_of(reader.session, ctx.user_id)
    if stored is None:
        return None
    return PasswordCheck(ctx.user_id, stored, password_matches(stored, credentials.password))


WITNESS_REFUSED = "The user ID or password is wrong."


def witness_user(uow: UnitOfWork, credentials: Credentials) -> User:
    """The person a witness signature identifies: the one place its identification is resolved.

    11.200(a)(1): the identification component names the witness — their badge, scanned, or the
    user ID typed; the secret (PIN or password) is checked later, by the signing itself. An
    unknown badge or user ID costs the same hashing work and gets the same words as a wrong
    secret, so the dialog does not tell which badges or user IDs exist.
    """
    if credentials.badge:
        user = user_by_badge(uow, credentials.badge)
        if user is None:
            pin_matches(stand_in_hash(), credentials.password)
            raise AuthenticationFailed(
                WRONG_PIN, what_to_do="The witness scans their own badge and types their PIN."
            )
        return user
    username = normalise_username(credentials.username or "")
    if not username:
        raise InvalidInput(
            "A witness signs with their own badge and PIN, or user ID and password.",
            what_to_do="Scan the witness's badge, or type their user ID, as well as the secret.",
        )
    user = users.user_named(uow.session, username)
    if user is None:
        password_matches(stand_in_hash(), credentials.password)
        raise AuthenticationFailed(
            WITNESS_REFUSED, what_to_do="The witness types their own user ID and password."
        )
    return user


def witness_context(uow: UnitOfWork, ctx: Context, credentials: Credentials) -> Context:
    """``ctx`` with the witness as the acting user, given at the logged-in user's session.

    Call it before the first statement of ``uow`` (the witness is looked up in a separate
    read-only unit of work). Same time and terminal; ``in_session_of`` names the logged-in user,
    so the signature entry records at whose session it was given. Every rule of the service
    then applies to the witness: role, training, independence, lockout of the witness's own
    account on a wrong password. Credentials that are not a witness's leave ``ctx`` as it is.
    """
    if not credentials.witness:
        return ctx
    if ctx.user_id is None:
        raise NotAuthorised(
            "A witness signs at a logged-in user's terminal.", what_to_do="Log in first."
        )
    try:
        with uow.reader() as reader:
            witness_id = witness_user(reader, credentials).id
    except AuthenticationFailed:
        # 11.300(d): an attempt under an unknown user ID is recorded, as a refused login is.
        record_entry(
            uow,
            ctx,
            actor_of(acting_user(uow, ctx)),
            "witness signature refused",
            "user",
            "badge" if credentials.badge else normalise_username(credentials.username or "")[:64],
            kind=EntryKind.SECURITY,
            reason="unknown badge" if credentials.badge else "unknown user ID",
        )
        uow.commit()
        raise
    if witness_id == ctx.user_id:
        raise InvalidInput(
            "You are the logged-in user: a witness is another person.",
            what_to_do="Sign without 'Sign as another person', or hand the panel to the witness.",
        )
    return replace(ctx, user_id=witness_id, in_session_of=ctx.user_id, signed_with=None)


def _method_of(ctx: Context, credentials: Credentials) -> SigningMethod:
    """The method a signing is most likely judged by, for the check before the locks.

    A badge scanned, else the session's (a first signing has none: the password).
    """
    return signing_method(
        badge_given=bool(credentials.badge),
        first_signing_in_session=False,
        session_method=ctx.signed_with,
    )


@dataclass(frozen=True)
class AppliedSignature:
    """A signature as stored: its manifestation and the audit entry that holds it."""

    manifestation: Manifestation
    entry_seq: int
    entry_hash: str


def sign_record(
    uow: UnitOfWork,
    ctx: Context,
    *,
    record_type: str,
    record_id: str,
    record: Mapping[str, Any],
    meaning: Meaning,
    credentials: Credentials,
    first_signing_in_session: bool,
    signer_roles: Iterable[str] | None = None,
) -> AppliedSignature:
    """Sign ``record`` with ``meaning`` as the logged-in user, in the caller's unit of work.

    ``signer_roles``: the roles of which the signer must hold one (11.10(g)); the administrator
    role is never enough by itself to sign a GMP record.
    The caller commits (so the signature and the state change it records land together).
    A wrong password is counted toward lockout and committed at once; nothing is signed.
    The signature is an entry of the site's audit chain (batch records keep theirs in the
    batch ledger: see :func:`authenticate_signer`).
    """
    user, manifestation = authenticate_signer(
        uow,
        ctx,
        record_type=record_type,
        record_id=record_id,
        record=record,
        meaning=meaning,
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
        signer_roles=signer_roles,
    )
    entry = record_entry(
        uow,
        ctx,
        actor_of(user),
        f"signed: {meaning.value}",
        record_type,
        record_id,
        kind=EntryKind.SIGNATURE,
        new=manifestation.as_dict(),
    )
    return AppliedSignature(manifestation, entry.seq, entry.hash)


def authenticate_signer(
    uow: UnitOfWork,
    ctx: Context,
    *,
    record_type: str,
    record_id: str,
    record: Mapping[str, Any],
    meaning: Meaning,
    credentials: Credentials,
    first_signing_in_session: bool,
    signer_roles: Iterable[str] | None = None,
    checked: PasswordCheck | None = None,
    keep_staged: bool = False,
    witnessable: bool = False,
) -> tuple[User, Manifestation]:
    """Every check of a signature, then its manifestation bound to ``record`` (not yet stored).

    Re-authentication (11.200(a)), the signer's authority (11.10(g)) — an administrator who
    also holds a signing role signs only where the site allows it (PIC/S PI 041 §9.3) — the
    registered terminal at a spoke (11.10(h)) and the accountability attestation (11.10(j)).
    Current training (11.10(i)) is the action's rule, checked by the caller before it signs (a
    batch signature: the core's training check). The caller stores the manifestation where the
    record lives and commits. ``checked``: the password already checked by
    :func:`check_password_first`; ``keep_staged``: on a wrong password keep (and commit) what
    the caller staged, because it stands without the signature. ``witnessable``: the action
    may be signed by a witness in place (its rule says so); a witness always gives both
    components (11.200(a)(1)(i): the witness signs only once in this session).
    """
    if ctx.in_session_of is not None:
        if not witnessable:
            raise NotAuthorised(
                "This signature cannot be given by a witness in place.",
                what_to_do="The logged-in user signs it themselves.",
            )
        first_signing_in_session = True
    user = acting_user(uow, ctx)
    # Lock the signer's row before the audit chain's head, the order every service keeps, so a
    # signature and a concurrent failed login of the same user cannot deadlock.
    users.lock_user(uow.session, user.id)
    holder = user_by_badge(uow, credentials.badge) if credentials.badge else None
    method = check_signer_identity(
        user.username,
        credentials.username,
        first_signing_in_session,
        badge_given=bool(credentials.badge),
        badge_holder=holder.username if holder is not None else None,
        session_method=ctx.signed_with,
        allowed_methods=signing_methods(uow).values,
    )
    if signer_roles is not None:
        check_signing_authority(user.role_names, signer_roles, meaning)
    if signing_roles_beside_admin(user.role_names):  # only then is the site's setting read
        check_segregation(
            user.username,
            user.role_names,
            administrators_may_sign=administrators_may_sign(uow).allowed,
            signing=True,
        )
    if uow.site.is_spoke and active_terminal(uow, ctx.terminal_id) is None:
        raise TerminalNotRegistered(
            "This browser is not a registered terminal of the site, so it cannot sign.",
            what_to_do="Sign at a registered terminal, or ask an administrator to register this one.",
        )
    if record_type != ATTESTATION_RECORD_TYPE and user.attested_at is None:
        raise AttestationRequired(
            "Before your first signature you must acknowledge the e-signature "
            "accountability statement.",
            what_to_do="Open 'My account' and acknowledge the statement.",
        )
    check_secret(
        uow,
        ctx,
        user,
        credentials.password,
        method,
        "signature failed",
        checked=checked,
        keep_staged=keep_staged,
    )
    if user.failed_attempts:
        user.failed_attempts = 0
    manifestation = Manifestation.for_record(
        record_type=record_type,
        record_id=record_id,
        record=record,
        signer_id=user.id,
        username=user.username,
        printed_name=user.full_name,
        meaning=meaning,
        at=ctx.at,
        terminal=ctx.terminal,
        site=uow.site.code,
    )
    return user, manifestation


def check_secret(
    uow: UnitOfWork,
    ctx: Context,
    user: User,
    secret: str,
    method: SigningMethod,
    action: str,
    *,
    checked: PasswordCheck | None = None,
    keep_staged: bool = False,
) -> None:
    """The secret of ``method``: the PIN by badge (set, not expired), else the password.

    A wrong one is counted toward the user's lockout, the PIN and the password in one counter
    (11.300(d)), and recorded as ``action``. ``checked``: the password already checked before
    the caller's locks (:func:`check_password_first`), used if it is still the user's hash.
    """
    by_pin = method is SigningMethod.BADGE_PIN
    if by_pin:
        check_pin_usable(user, ctx, uow)
    stored = user.pin_hash if by_pin else user.password_hash
    known = (
        checked.matches
        if checked is not None and checked.user_id == user.id and checked.password_hash == stored
        else None
    )
    if by_pin and known is None:
        known = pin_matches(stored, secret)
    verify_credentials(
        uow,
        ctx,
        user,
        secret,
        action,
        matches=known,
        keep_staged=keep_staged,
        wrong=WRONG_PIN if by_pin else "The user ID or password is wrong.",
    )


def unlock_methods(uow: UnitOfWork, ctx: Context) -> list[SigningMethod]:
    """The secrets that unlock the logged-in user's session, the one to offer first first.

    The PIN where the user has one and the site allows badge + PIN, then the password.
    """
    user = acting_user(uow, ctx, changing_password=True)
    allowed = set(signing_methods(uow).values)
    if user.pin_hash is not None and SigningMethod.BADGE_PIN.value in allowed:
        return [SigningMethod.BADGE_PIN, SigningMethod.PASSWORD]
    return [SigningMethod.PASSWORD]


def reauthenticate(
    uow: UnitOfWork, ctx: Context, secret: str, method: str = SigningMethod.PASSWORD
) -> User:
    """Unlock a session locked by inactivity: the logged-in user's password, or their PIN.

    The PIN only where the site allows badge + PIN (checked as a signature checks it); the
    secret is judged as a signature's is (:func:`check_secret`), a wrong one counted toward the
    same lockout. The badge is not asked again: the session already knows who it is.
    """
    user = acting_user(uow, ctx, changing_password=True)
    try:
        chosen = SigningMethod(method)
    except ValueError:
        raise InvalidInput(
            "That is not a way to unlock the session.", what_to_do="Type your PIN or password."
        ) from None
    if chosen is SigningMethod.BADGE_PIN:
        check_signing_method(chosen, signing_methods(uow).values)
    check_secret(uow, ctx, user, secret, chosen, "session unlock failed")
    user.failed_attempts = 0
    uow.commit()
    return user


def check_pin_usable(user: User, ctx: Context, uow: UnitOfWork) -> None:
    """A badge signing needs a PIN that is set and not expired (11.300(b)); not counted."""
    if user.pin_hash is None:
        raise InvalidInput(
            "You have no PIN yet, so you cannot sign with your badge.",
            what_to_do="Set a PIN on My account, or sign with your user ID and password.",
        )
    if pin_expired(user.pin_changed_at, ctx.at, uow.site.password_policy):
        raise PasswordChangeRequired(
            "Your PIN has expired.",
            what_to_do="Set a new PIN on My account, or sign with your user ID and password.",
        )


def acknowledge_accountability(
    uow: UnitOfWork, ctx: Context, credentials: Credentials, first_signing_in_session: bool
) -> AppliedSignature:
    """11.10(j): the user signs the accountability statement once, before any other signature."""
    user = acting_user(uow, ctx)
    signature = sign_record(
        uow,
        ctx,
        record_type=ATTESTATION_RECORD_TYPE,
        record_id=user.id,
        record=attestation_record(user.id, user.username),
        meaning=Meaning.ACKNOWLEDGED,
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
    )
    if user.attested_at is None:
        user.attested_at = ctx.at
    uow.commit()
    return signature


def signatures_of(uow: UnitOfWork, record_type: str, record_id: str) -> list[Manifestation]:
    """Every signature applied to a record, in order (to show wherever the record is shown)."""
    return [Manifestation(**row) for row in signature_bodies(uow.session, record_type, record_id)]


def valid_signatures(
    uow: UnitOfWork, record_type: str, record_id: str, record: Mapping[str, Any]
) -> list[Manifestation]:
    """11.70: only the signatures made over exactly this content of the record."""
    return [
        m
        for m in signatures_of(uow, record_type, record_id)
        if signature_binds(m.as_dict(), record)
    ]
