"""Electronic signatures (21 CFR 11.50, 11.70, 11.100, 11.200).

A signature is a manifestation — printed name, user ID, UTC time, meaning, terminal, site —
bound to the SHA-256 content hash of the exact record it signs. It is stored as an entry of the
site's hash chain, so it shows wherever the record is shown and cannot be cut, copied or moved
to another record: :func:`signature_binds` fails for any other content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from mes.core.access import normalise_username
from mes.core.canonical import content_hash
from mes.core.clock import local_text, utc_text
from mes.core.errors import (
    InvalidInput,
    SignerMismatch,
    SigningMethodNotAllowed,
    UnknownBadge,
    UnknownMeaning,
)


class Meaning(StrEnum):
    """The controlled list of signature meanings (11.50(a)(3))."""

    AUTHORED = "authored"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    PERFORMED = "performed"
    VERIFIED = "verified"
    RELEASED = "released"
    REJECTED = "rejected"
    ACKNOWLEDGED = "acknowledged"
    MADE_EFFECTIVE = "made effective"
    RETIRED = "retired"
    STARTED = "started"
    CORRECTED = "corrected"
    ABORTED = "aborted"
    QUARANTINED = "quarantined"
    CLOSED = "closed"
    # The supervisor's signature that the batch was completed as recorded (issue 15: it was
    # "reviewed", printed the same as QA's review of an exception). Batches signed before keep
    # the meaning they were signed with.
    COMPLETED = "completed"
    # After release (mes.core.after_release): the treating physician told of a result out of
    # specification; QA's final certification once every pending result is in and within spec.
    NOTIFIED = "notified"
    CERTIFIED_FINAL = "certified final"
    # The two sides of a custody transfer (mes.core.custody).
    HANDED_OVER = "handed over"
    RECEIVED = "received"


MEANING_STATEMENTS: dict[Meaning, str] = {
    Meaning.AUTHORED: "I am the author of this record.",
    Meaning.REVIEWED: "I have reviewed this record and found it correct.",
    Meaning.APPROVED: "I approve this record.",
    Meaning.PERFORMED: "I performed this step as recorded.",
    Meaning.VERIFIED: "I verified this step, performed by another person, as recorded.",
    Meaning.RELEASED: "I release this batch (or material lot) for use.",
    Meaning.REJECTED: "I reject this batch (or material lot): it may not be used.",
    Meaning.ACKNOWLEDGED: "I have read and acknowledge this record.",
    Meaning.MADE_EFFECTIVE: "I make this approved version effective from the date shown.",
    Meaning.RETIRED: "I retire this version: it may no longer be used for new batches.",
    Meaning.STARTED: "I start this batch for the patient and starting material identified.",
    Meaning.CORRECTED: "I correct this entry as shown, for the reason given; the original stays "
    "in the record.",
    Meaning.ABORTED: "I abort this batch for the reason given.",
    Meaning.QUARANTINED: "I place this material lot in quarantine: it may not be used.",
    Meaning.COMPLETED: "I confirm this batch was completed as recorded.",
    Meaning.HANDED_OVER: "I handed over the material named, in the container named, to the "
    "person named, at the time and place recorded.",
    Meaning.RECEIVED: "I received the material named, in the container named, from the person "
    "named, at the time and place recorded.",
    Meaning.CLOSED: "I close this deviation: its investigation, impact assessment and CAPA are "
    "complete as recorded.",
    Meaning.NOTIFIED: "I told the treating physician of this result, as recorded.",
    Meaning.CERTIFIED_FINAL: "I certify this batch final: every result it was released "
    "pending is in and within specification.",
}

ACCOUNTABILITY_STATEMENT = (
    "I understand that my electronic signatures in this system are the legally binding "
    "equivalent of my handwritten signature, that I alone may use my user ID and password, "
    "and that I am accountable for every action taken under my electronic signature "
    "(21 CFR 11.10(j), 11.100(c))."
)
ATTESTATION_RECORD_TYPE = "esign-attestation"


def parse_meaning(value: str) -> Meaning:
    """A meaning from the controlled list, or :class:`UnknownMeaning` naming the valid ones."""
    try:
        return Meaning(value)
    except ValueError:
        valid = ", ".join(m.value for m in Meaning)
        raise UnknownMeaning(
            f"'{value}' is not a signature meaning.", what_to_do=f"Use one of: {valid}."
        ) from None


def attestation_record(user_id: str, username: str) -> dict[str, Any]:
    """The record a user signs once to accept accountability for their signatures."""
    return {
        "type": ATTESTATION_RECORD_TYPE,
        "user_id": user_id,
        "username": username,
        "statement": ACCOUNTABILITY_STATEMENT,
    }


class SigningMethod(StrEnum):
    """The two ways to identify and authenticate (21 CFR 11.200(a)(1): two distinct components).

    ``password``: the user ID and the password; ``badge_pin``: the badge (scanned, the
    identification code) and the PIN (the password that goes with it).
    """

    PASSWORD = "password"  # noqa: S105 - the name of a method, not a secret
    BADGE_PIN = "badge_pin"


SIGNING_METHOD_TITLES: dict[SigningMethod, str] = {
    SigningMethod.PASSWORD: "user ID and password",
    SigningMethod.BADGE_PIN: "badge and PIN",
}


def parse_signing_methods(values: Iterable[str]) -> frozenset[SigningMethod]:
    """A site's allowed signing methods: at least one, each from :class:`SigningMethod`."""
    try:
        methods = frozenset(SigningMethod(v) for v in values)
    except ValueError:
        valid = ", ".join(m.value for m in SigningMethod)
        raise InvalidInput(
            "That is not a signing method.", what_to_do=f"Use one or both of: {valid}."
        ) from None
    if not methods:
        raise InvalidInput(
            "At least one way to sign must stay allowed.",
            what_to_do="Allow user ID and password, badge and PIN, or both.",
        )
    return methods


def signing_method(
    *, badge_given: bool, first_signing_in_session: bool, session_method: str | None = None
) -> SigningMethod:
    """Which components this signing takes (11.200(a)(1)).

    A scanned badge makes it a badge + PIN signing (both components, at any time). Otherwise
    the first signing of a continuous session is by user ID + password; a later one takes the
    secret of the method the session's first signing used: the PIN after a badge, else the
    password.
    """
    if badge_given:
        return SigningMethod.BADGE_PIN
    if first_signing_in_session or not session_method:
        return SigningMethod.PASSWORD
    return SigningMethod(session_method)


def required_components(
    first_signing_in_session: bool, method: SigningMethod = SigningMethod.PASSWORD
) -> tuple[str, ...]:
    """11.200(a)(1): both components for a session's first signing, then the secret one.

    By password: user ID and password, then the password; by badge: badge and PIN, then the PIN.
    """
    if method is SigningMethod.BADGE_PIN:
        return ("badge", "pin") if first_signing_in_session else ("pin",)
    return ("username", "password") if first_signing_in_session else ("password",)


def check_signing_method(method: SigningMethod, allowed: Iterable[str]) -> None:
    """Only the ways to sign the site allows (its setting) are accepted."""
    if method.value not in set(allowed):
        other = [SIGNING_METHOD_TITLES[SigningMethod(m)] for m in sorted(allowed)]
        raise SigningMethodNotAllowed(
            f"This site does not allow signing with {SIGNING_METHOD_TITLES[method]}.",
            what_to_do=f"Sign with your {' or '.join(other)}."
            if other
            else "Ask an administrator.",
        )


def check_signer_identity(
    logged_in_username: str,
    given_username: str | None,
    first_signing_in_session: bool,
    *,
    badge_given: bool = False,
    badge_holder: str | None = None,
    session_method: str | None = None,
    allowed_methods: Iterable[str] = tuple(SigningMethod),
) -> SigningMethod:
    """11.200(a)(2): the signer is always the logged-in user; returns the method of this signing.

    The typed user ID, or the holder of the scanned badge (``badge_holder``: None when the badge
    is unknown or revoked), must be the logged-in user; the method must be allowed at the site.
    """
    allowed = {SigningMethod(m) for m in allowed_methods}
    method = signing_method(
        badge_given=badge_given,
        first_signing_in_session=first_signing_in_session,
        session_method=session_method,
    )
    check_signing_method(method, allowed)
    if badge_given:
        if badge_holder is None:
            raise UnknownBadge(
                "This badge is not enrolled, or it was revoked.",
                what_to_do="Scan your own badge, or sign with your user ID and password; "
                "a lost badge is replaced by an administrator.",
            )
        if badge_holder != logged_in_username:
            raise SignerMismatch(
                "You can only sign as yourself: the badge scanned is not the logged-in user's.",
                what_to_do="Scan your own badge, or log out and let the other person log in.",
            )
    elif (
        "username" in required_components(first_signing_in_session, method)
        and not (given_username or "").strip()
    ):
        or_badge = SigningMethod.BADGE_PIN in allowed
        raise InvalidInput(
            "The first signature of a session needs your user ID and password.",
            what_to_do="Type your user ID as well as your password"
            + (", or scan your badge and type your PIN." if or_badge else "."),
        )
    if given_username and normalise_username(given_username) != logged_in_username:
        raise SignerMismatch(
            "You can only sign as yourself: the user ID typed is not the logged-in user.",
            what_to_do="Type your own user ID, or log out and let the other person log in.",
        )
    return method


@dataclass(frozen=True)
class Manifestation:
    """What a signature shows and what it is bound to (11.50(a), 11.70)."""

    record_type: str
    record_id: str
    record_hash: str
    signer_id: str
    username: str
    printed_name: str
    meaning: str
    at: str  # UTC, ISO 8601, as hashed
    terminal: str | None
    site: str

    @classmethod
    def for_record(
        cls,
        *,
        record_type: str,
        record_id: str,
        record: Mapping[str, Any],
        signer_id: str,
        username: str,
        printed_name: str,
        meaning: Meaning,
        at: datetime,
        terminal: str | None,
        site: str,
    ) -> Manifestation:
        """The manifestation of signing ``record`` (its content hash is taken here)."""
        return cls(
            record_type=record_type,
            record_id=record_id,
            record_hash=content_hash(dict(record)),
            signer_id=signer_id,
            username=username,
            printed_name=printed_name,
            meaning=meaning.value,
            at=utc_text(at),
            terminal=terminal,
            site=site,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, as stored in the chain entry."""
        return asdict(self)

    def text(self, at: datetime, time_zone: str) -> str:
        """One line for screens and print: name, user ID, date and time with zone, meaning."""
        return (
            f"{self.printed_name} ({self.username}) — {Meaning(self.meaning).value.capitalize()} — "
            f"{local_text(at, time_zone)}"
        )


def signature_binds(manifestation: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """11.70: True only when the signature was made over exactly this record's content."""
    return manifestation.get("record_hash") == content_hash(dict(record))
