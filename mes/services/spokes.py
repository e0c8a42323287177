"""The hub's spokes: their enrollment with a one-time code, their status, the bundles offered them.

Every piece of sync state — spokes and their pinned keys, enrollment codes, request nonces, the
received ledgers and the sync log — lives in the database, so any number of hub worker processes
serve the same network and a replayed request is refused by all of them. Signed requests and the
ingest of batch records are in :mod:`mes.services.ingest`; the network overview in
:mod:`mes.services.network`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from sqlalchemy.exc import IntegrityError

from mes.core.access import Permission
from mes.core.audit import Actor, EntryKind
from mes.core.errors import (
    ConfigurationError,
    EnrollmentRefused,
    InvalidInput,
    NotFound,
    SpokeNotActive,
    SyncRefused,
)
from mes.core.keys import SitePublicKey
from mes.core.sync import enrollment_code_hash
from mes.core.text import one_line
from mes.core.throttle import UNKNOWN_SOURCE, Attempt
from mes.services import throttle
from mes.services.audit import record_entry
from mes.services.context import Context, authorise, system_actor
from mes.services.ids import new_id
from mes.settings import check_site_code, check_time_zone
from mes.store import recipes
from mes.store import spokes as store
from mes.store.models import Spoke
from mes.store.sync import log_event
from mes.store.uow import UnitOfWork

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
ENROLLMENT_HOURS = 72


def require_hub(uow: UnitOfWork) -> None:
    """Spokes are managed, and heard, at the hub only."""
    if uow.site.role != "hub":
        raise InvalidInput(
            f"Spokes are managed at the hub; this site ({uow.site.code}) is a spoke.",
            what_to_do="Run this at the hub.",
        )


def _spoke(uow: UnitOfWork, code: str, *, lock: bool = False) -> Spoke:
    spoke = store.spoke(uow.session, code.strip().upper(), lock=lock)
    if spoke is None:
        raise NotFound(
            f"There is no spoke {code!r} at this hub.",
            what_to_do="Add it first ('mes spoke add') or check the site code.",
        )
    return spoke


def spoke_key(spoke: Spoke) -> SitePublicKey:
    """The public key the spoke enrolled with."""
    key = spoke.public_key
    if key is None:
        raise SpokeNotActive(
            f"Spoke {spoke.code} has not enrolled yet.",
            what_to_do="Enroll it with its one-time code ('mes spoke enroll' at the spoke).",
        )
    return key


def require_active(site: str, status: str | None, reason: str | None, what: str) -> None:
    """Only an active spoke is heard: a suspended or revoked one is refused, with the reason.

    ``what`` names what is refused in the message: its "requests", or its "records" (by file).
    """
    if status != "active":
        raise SpokeNotActive(
            f"Spoke {site} is {status} at the hub{': ' + reason if reason else ''}; "
            f"its {what} are refused.",
            what_to_do="Ask the hub administrator; records stay queued at the spoke.",
        )


# --- spokes and enrollment ----------------------------------------------------------------


def list_spokes(uow: UnitOfWork, ctx: Context) -> list[Spoke]:
    """Every spoke of the hub, by code."""
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    return store.spokes(uow.session)


@dataclass(frozen=True)
class EnrollmentTicket:
    """A one-time enrollment code, shown once to the hub administrator (only its hash is kept)."""

    spoke: str
    code: str
    expires_at: datetime


def _as_input(check: Callable[[str], str], value: str) -> str:
    """A settings check of a value typed in a form: its refusal is bad input, not configuration."""
    try:
        return check(value)
    except ConfigurationError as err:
        raise InvalidInput(err.message, what_to_do=err.what_to_do) from None


def add_spoke(
    uow: UnitOfWork, ctx: Context, code: str, name: str, time_zone: str
) -> EnrollmentTicket:
    """Register a spoke site and issue its first one-time enrollment code."""
    actor = authorise(uow, ctx, Permission.MANAGE_SPOKES)
    require_hub(uow)
    code = _as_input(check_site_code, code.strip().upper())
    name = " ".join(one_line(name, "The site name", max_length=200).split())
    if not name:
        raise InvalidInput("A spoke needs a name.", what_to_do="Give the site's name.")
    _as_input(check_time_zone, time_zone)
    if code == uow.site.code or store.spoke(uow.session, code) is not None:
        raise InvalidInput(
            f"Site code {code} is already taken.", what_to_do="Choose another site code."
        )
    store.register_spoke(
        uow.session, code=code, name=name, time_zone=time_zone, at=ctx.at, by=ctx.user_id
    )
    record_entry(
        uow,
        ctx,
        actor,
        "spoke added",
        "spoke",
        code,
        new={"name": name, "time_zone": time_zone, "status": "awaiting_enrollment"},
    )
    ticket = _issue_code(uow, ctx, actor, code)
    uow.commit()
    return ticket


def issue_enrollment_code(uow: UnitOfWork, ctx: Context, code: str) -> EnrollmentTicket:
    """A new one-time code for a spoke (earlier unused codes stop working)."""
    actor = authorise(uow, ctx, Permission.MANAGE_SPOKES)
    require_hub(uow)
    spoke = _spoke(uow, code, lock=True)
    if spoke.status == "revoked":
        raise EnrollmentRefused(
            f"Spoke {spoke.code} is revoked; a revoked spoke never enrolls again.",
            what_to_do="Add the site under a new site code if it is to rejoin.",
        )
    ticket = _issue_code(uow, ctx, actor, spoke.code)
    uow.commit()
    return ticket


def _issue_code(uow: UnitOfWork, ctx: Context, actor: Actor, spoke_code: str) -> EnrollmentTicket:
    store.expire_unused_codes(uow.session, spoke_code, ctx.at, only_unexpired=True)
    plain = "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(4)) for _ in range(5))
    expires = ctx.at + timedelta(hours=ENROLLMENT_HOURS)
    store.add_enrollment_code(
        uow.session,
        code_id=new_id(),
        spoke_code=spoke_code,
        code_hash=enrollment_code_hash(plain),
        at=ctx.at,
        by=ctx.user_id,
        expires_at=expires,
    )
    record_entry(
        uow,
        ctx,
        actor,
        "enrollment code issued",
        "spoke",
        spoke_code,
        new={"expires_at": expires.isoformat()},
    )
    return EnrollmentTicket(spoke_code, plain, expires)


@dataclass(frozen=True)
class Enrollment:
    """What the hub answers an enrolling spoke: who the hub is and its key to pin."""

    spoke_code: str
    spoke_name: str
    time_zone: str
    hub_code: str
    hub_name: str
    hub_public_key_pem: str
    hub_key_id: str
    hub_certificate_pem: str | None

    def as_json(self) -> dict[str, Any]:
        """The enrollment response body."""
        return {
            "spoke": {
                "site_code": self.spoke_code,
                "name": self.spoke_name,
                "time_zone": self.time_zone,
            },
            "hub": {
                "site_code": self.hub_code,
                "name": self.hub_name,
                "public_key_pem": self.hub_public_key_pem,
                "key_id": self.hub_key_id,
                "certificate_pem": self.hub_certificate_pem,
            },
        }


def enroll(
    uow: UnitOfWork,
    at: datetime,
    site_code: str,
    code: str,
    public_key_pem: str,
    hub_certificate_pem: str | None = None,
    *,
    source: str = UNKNOWN_SOURCE,
) -> Enrollment:
    """A spoke presents its one-time code and public key; the hub pins the key and answers.

    The answer carries the hub's document-signing certificate (``hub_certificate_pem``, read
    from the instance by the caller), with which the spoke can check the hub's signed PDFs.
    Refused (and logged) when the code is unknown, used, expired or for another site, the key is
    not an Ed25519 key, or the spoke is revoked. The code is spent even if the spoke never hears
    the answer; a new code is then issued at the hub.

    Anyone can ask, so refusals are counted per ``source`` (the caller's address): the first of
    a window is recorded in full (sync log and audit trail), the rest once as a count when the
    window closes, and a source refused too often is turned away (:class:`TooManyAttempts`)
    until its window ends (:mod:`mes.services.throttle`).
    """
    require_hub(uow)
    throttle.refuse_if_too_many(uow, Attempt.ENROLLMENT, source, at)
    site_code = site_code.strip().upper()[:12]
    ctx = Context(at=at, user_id=None, terminal=f"enrollment of {site_code}")
    try:
        enrollment = _enroll(uow, ctx, site_code, code, public_key_pem, hub_certificate_pem)
    except SyncRefused as refusal:
        uow.rollback()
        window = throttle.count_refusal(uow, Attempt.ENROLLMENT, source, at, refusal.message)
        if window.refused > 1:  # counted; the window's summary records it
            uow.commit()
            raise
        log_event(
            uow.session,
            at=at,
            action="enroll",
            outcome="refused",
            peer=site_code[:12],
            code=refusal.code,
            reason=refusal.message,
        )
        record_entry(
            uow,
            ctx,
            system_actor(ctx),
            "spoke enrollment refused",
            "spoke",
            site_code[:200],
            kind=EntryKind.SECURITY,
            new={"source": source},
            reason=refusal.message,
        )
        uow.commit()
        raise
    try:
        uow.commit()
    except IntegrityError:  # another spoke enrolled with the same key at the same moment
        uow.rollback()
        refusal = EnrollmentRefused(
            "This key already belongs to another site: every site has its own key."
        )
        log_event(
            uow.session,
            at=at,
            action="enroll",
            outcome="refused",
            peer=site_code,
            code=refusal.code,
            reason=refusal.message,
        )
        uow.commit()
        raise refusal from None
    return enrollment


def _enroll(
    uow: UnitOfWork,
    ctx: Context,
    site_code: str,
    code: str,
    public_key_pem: str,
    hub_certificate_pem: str | None,
) -> Enrollment:
    ticket = store.enrollment_code(uow.session, enrollment_code_hash(code))
    refused = "The enrollment code is not valid"
    if ticket is None:
        raise EnrollmentRefused(
            f"{refused}: the hub never issued it.",
            what_to_do="Check the code, or ask the hub administrator for a new one.",
        )
    if ticket.spoke_code != site_code:
        raise EnrollmentRefused(
            f"{refused} for site {site_code}: it was issued for another site.",
            what_to_do="Use the code issued for this site's code.",
        )
    if ticket.used_at is not None:
        raise EnrollmentRefused(
            f"{refused}: it was used already (codes work once).",
            what_to_do="Ask the hub administrator for a new code.",
        )
    if ticket.expires_at <= ctx.at:
        raise EnrollmentRefused(
            f"{refused}: it expired.", what_to_do="Ask the hub administrator for a new code."
        )
    spoke = _spoke(uow, site_code, lock=True)
    if spoke.status not in ("awaiting_enrollment", "active"):
        raise EnrollmentRefused(
            f"Spoke {spoke.code} is {spoke.status}; it cannot enroll"
            + (" again." if spoke.status == "revoked" else " until it is reinstated."),
            what_to_do="Ask the hub administrator.",
        )
    try:
        key = SitePublicKey.from_pem(public_key_pem.encode("ascii"))
    except (ValueError, UnicodeError, TypeError, UnsupportedAlgorithm):
        raise EnrollmentRefused(
            "The public key sent is not an Ed25519 public key in PEM form.",
            what_to_do="Enroll with 'mes spoke enroll', which sends the site's key.",
        ) from None
    other = store.key_holder(uow.session, key.key_id, other_than=spoke.code)
    if other is not None or key.key_id == uow.site.key.public.key_id:
        raise EnrollmentRefused(
            f"This key already belongs to {other or 'the hub'}: every site has its own key."
        )
    if spoke.key_id not in (None, key.key_id) and store.holds_records_of(uow.session, spoke.code):
        raise EnrollmentRefused(
            f"Spoke {spoke.code} enrolled with key {spoke.key_id} and the hub holds its batch "
            "records, which that key verifies; the spoke's key cannot be replaced by enrolling.",
            what_to_do="Enroll the site under a new site code, or restore the spoke's key.",
        )
    old = {"status": spoke.status, "key_id": spoke.key_id}
    ticket.used_at = ctx.at
    spoke.public_key_pem = key.pem().decode("ascii")
    spoke.key_id = key.key_id
    spoke.enrolled_at = ctx.at
    spoke.status = "active"
    spoke.status_changed_at = ctx.at
    spoke.status_reason = None
    record_entry(
        uow,
        ctx,
        system_actor(ctx),
        "spoke enrolled",
        "spoke",
        spoke.code,
        old=old,
        new={"status": "active", "key_id": key.key_id},
    )
    log_event(uow.session, at=ctx.at, action="enroll", outcome="accepted", peer=spoke.code)
    hub_key = uow.site.key.public
    return Enrollment(
        spoke_code=spoke.code,
        spoke_name=spoke.name,
        time_zone=spoke.time_zone,
        hub_code=uow.site.code,
        hub_name=uow.site.name,
        hub_public_key_pem=hub_key.pem().decode("ascii"),
        hub_key_id=hub_key.key_id,
        hub_certificate_pem=hub_certificate_pem,
    )


# action: (status it applies to, status it leads to, past participle for messages)
STATUS_CHANGES = {
    "suspend": ("active", "suspended", "suspended"),
    "reinstate": ("suspended", "active", "reinstated"),
    "revoke": (None, "revoked", "revoked"),
}


def change_spoke_status(
    uow: UnitOfWork, ctx: Context, code: str, action: str, reason: str
) -> Spoke:
    """Suspend, reinstate or revoke a spoke (with a reason). A revoked spoke stays revoked."""
    actor = authorise(uow, ctx, Permission.MANAGE_SPOKES)
    require_hub(uow)
    if action not in STATUS_CHANGES:
        raise InvalidInput(f"Unknown action {action!r}: use suspend, reinstate or revoke.")
    before, new, done = STATUS_CHANGES[action]
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput(f"Say why the spoke is to be {done}.", what_to_do="Give a reason.")
    spoke = _spoke(uow, code, lock=True)
    if spoke.status == "revoked" or (before is not None and spoke.status != before):
        raise InvalidInput(
            f"Spoke {spoke.code} is {spoke.status.replace('_', ' ')}; "
            + (
                f"only an {before} spoke can be {done}."
                if before == "active"
                else f"only a {before} spoke can be {done}."
                if before
                else "a revoked spoke stays revoked."
            )
        )
    old = spoke.status
    spoke.status = new
    spoke.status_changed_at = ctx.at
    spoke.status_reason = reason
    if new in ("suspended", "revoked"):  # its unused codes stop working too
        store.expire_unused_codes(uow.session, spoke.code, ctx.at)
    record_entry(
        uow,
        ctx,
        actor,
        f"spoke {done}",
        "spoke",
        spoke.code,
        old={"status": old},
        new={"status": new},
        reason=reason,
    )
    uow.commit()
    return spoke


# --- recipe bundles for spokes ------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A bundle published for a spoke."""

    bundle_hash: str
    recipe_code: str
    version: int
    published_at: datetime


def bundles_for(uow: UnitOfWork, site: str) -> list[Offer]:
    """Every bundle published for ``site`` (oldest first, so versions install in order)."""
    return [
        Offer(p.bundle_hash, code, version, p.published_at)
        for p, code, version in recipes.served_publications(uow.session)
        if site in p.sites
    ]


def bundle_token(uow: UnitOfWork, site: str, bundle_hash: str) -> str:
    """The JWS of a bundle published for ``site``."""
    for publication in recipes.publications_of_bundle(uow.session, bundle_hash):
        if site in publication.sites and publication.token:
            return publication.token
    raise NotFound(
        f"No bundle {bundle_hash[:16]}… was published for {site}.",
        what_to_do="List the bundles for this site first.",
    )
