"""The hub's side of sync: spokes and their enrollment, signed requests, and batch-record ingest.

Every piece of sync state — spokes and their pinned keys, enrollment codes, request nonces, the
received ledgers and the sync log — lives in the database, so any number of hub worker processes
serve the same network and a replayed request is refused by all of them.

Ingest (:func:`ingest_chunk`) verifies a chunk completely before it takes any lock: the JWS over
the chunk, then every entry's hash and the spoke's signature of it. Under the batch's row lock it
then checks continuity with the hub's copy (:func:`mes.core.sync.continuation`), that the recipe
version was deployed to that spoke, stores the new entries exactly as received and brings the
hub's projection of the batch up to date by replaying them — one transaction. A refusal stores
nothing and is logged with its reason. Entries dated ahead of the hub's clock are stored as the
spoke sealed them and flagged (:func:`_clock_flag`): the review then blocks their release.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import UnsupportedAlgorithm
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError

from mes.core.access import Permission
from mes.core.audit import Actor, EntryKind
from mes.core.batch import Batch
from mes.core.chronology import dated_ahead
from mes.core.errors import (
    ChunkConflict,
    ChunkUnreadable,
    ConfigurationError,
    EnrollmentRefused,
    InvalidInput,
    MesError,
    NotFound,
    RecipeNotDeployed,
    RequestReplayed,
    RequestUnauthenticated,
    SpokeNotActive,
    SyncRefused,
)
from mes.core.keys import SitePublicKey
from mes.core.sync import (
    SITE_HEADER,
    Chunk,
    SignedRequest,
    ack_message,
    check_request,
    continuation,
    enrollment_code_hash,
    open_chunk,
)
from mes.core.text import one_line
from mes.core.throttle import UNKNOWN_SOURCE, Attempt
from mes.core.throttle import reason_key as throttle_reason
from mes.services import throttle
from mes.services.audit import record_change
from mes.services.batches import procedure_for, verify_ledger
from mes.services.context import Context, authorise, system_actor
from mes.services.ids import new_id
from mes.settings import SITE_CODE, check_site_code
from mes.store import batches as store
from mes.store.audit import append_audit
from mes.store.models import (
    Batch as BatchRow,
)
from mes.store.models import (
    BatchEntry,
    BatchReview,
    Deviation,
    EnrollmentCode,
    RecipePublication,
    RecipeVersion,
    Spoke,
    SyncEvent,
)
from mes.store.sync import log_event, note_clock, note_contact, remember_nonce
from mes.store.uow import UnitOfWork

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
ENROLLMENT_HOURS = 72


def _require_hub(uow: UnitOfWork) -> None:
    if uow.site.role != "hub":
        raise InvalidInput(
            f"Spokes are managed at the hub; this site ({uow.site.code}) is a spoke.",
            what_to_do="Run this at the hub.",
        )


def _spoke(uow: UnitOfWork, code: str, *, lock: bool = False) -> Spoke:
    query = select(Spoke).where(Spoke.code == code.strip().upper())
    spoke = uow.session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
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
    return list(uow.session.execute(select(Spoke).order_by(Spoke.code)).scalars())


@dataclass(frozen=True)
class EnrollmentTicket:
    """A one-time enrollment code, shown once to the hub administrator (only its hash is kept)."""

    spoke: str
    code: str
    expires_at: datetime


def add_spoke(
    uow: UnitOfWork, ctx: Context, code: str, name: str, time_zone: str
) -> EnrollmentTicket:
    """Register a spoke site and issue its first one-time enrollment code."""
    actor = authorise(uow, ctx, Permission.MANAGE_SPOKES)
    _require_hub(uow)
    try:
        code = check_site_code(code.strip().upper())
    except ConfigurationError as err:
        raise InvalidInput(err.message, what_to_do=err.what_to_do) from None
    name = " ".join(one_line(name, "The site name", max_length=200).split())
    if not name:
        raise InvalidInput("A spoke needs a name.", what_to_do="Give the site's name.")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"'{time_zone}' is not a known time zone.",
            what_to_do="Use an IANA name such as Europe/London.",
        ) from None
    if code == uow.site.code or uow.session.get(Spoke, code) is not None:
        raise InvalidInput(
            f"Site code {code} is already taken.", what_to_do="Choose another site code."
        )
    uow.session.add(
        Spoke(
            code=code,
            name=name,
            time_zone=time_zone,
            status="awaiting_enrollment",
            created_at=ctx.at,
            created_by=ctx.user_id,
            status_changed_at=ctx.at,
        )
    )
    uow.session.flush()
    record_change(
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
    _require_hub(uow)
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
    uow.session.execute(
        update(EnrollmentCode)
        .where(
            EnrollmentCode.spoke_code == spoke_code,
            EnrollmentCode.used_at.is_(None),
            EnrollmentCode.expires_at > ctx.at,
        )
        .values(expires_at=ctx.at)
    )
    plain = "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(4)) for _ in range(5))
    expires = ctx.at + timedelta(hours=ENROLLMENT_HOURS)
    uow.session.add(
        EnrollmentCode(
            id=new_id(),
            spoke_code=spoke_code,
            code_hash=enrollment_code_hash(plain),
            created_at=ctx.at,
            created_by=ctx.user_id,
            expires_at=expires,
        )
    )
    record_change(
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
    _require_hub(uow)
    throttle.refuse_if_too_many(uow, Attempt.ENROLLMENT, source, at)
    site_code = site_code.strip().upper()[:12]
    ctx = Context(at=at, user_id=None, terminal=f"enrollment of {site_code}")
    try:
        enrollment = _enroll(uow, ctx, site_code, code, public_key_pem, hub_certificate_pem)
    except SyncRefused as refusal:
        uow.session.rollback()
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
        append_audit(
            uow.session,
            uow.site,
            at=at,
            actor=system_actor(ctx),
            terminal=ctx.terminal,
            kind=EntryKind.SECURITY,
            action="spoke enrollment refused",
            record_type="spoke",
            record_id=site_code[:200],
            new={"source": source},
            reason=refusal.message,
        )
        uow.commit()
        raise
    try:
        uow.commit()
    except IntegrityError:  # another spoke enrolled with the same key at the same moment
        uow.session.rollback()
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
    ticket = uow.session.execute(
        select(EnrollmentCode)
        .where(EnrollmentCode.code_hash == enrollment_code_hash(code))
        .with_for_update()
    ).scalar_one_or_none()
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
    other = uow.session.execute(
        select(Spoke.code).where(Spoke.key_id == key.key_id, Spoke.code != spoke.code)
    ).scalar_one_or_none()
    if other is not None or key.key_id == uow.site.key.public.key_id:
        raise EnrollmentRefused(
            f"This key already belongs to {other or 'the hub'}: every site has its own key."
        )
    if spoke.key_id not in (None, key.key_id) and _holds_records_of(uow, spoke.code):
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
    record_change(
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
def _holds_records_of(uow: UnitOfWork, site: str) -> bool:
    return (
        uow.session.execute(select(BatchRow.id).where(BatchRow.site == site).limit(1)).first()
        is not None
    )


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
    _require_hub(uow)
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
        uow.session.execute(
            update(EnrollmentCode)
            .where(EnrollmentCode.spoke_code == spoke.code, EnrollmentCode.used_at.is_(None))
            .values(expires_at=ctx.at)
        )
    record_change(
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


# --- signed requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The enrolled, active spoke that signed a request (its nonce not yet remembered)."""

    site: str
    key: SitePublicKey
    nonce: str
    clock_offset: float | None = None  # its timestamp minus the hub's clock (s)


def _check_signature(
    uow: UnitOfWork,
    at: datetime,
    headers: Any,
    method: str,
    path: str,
    body: bytes,
    skew_seconds: int,
) -> Caller:
    """Who signed the request, checked without writing (and without the write lock)."""
    claimed = str(headers.get(SITE_HEADER) or "")
    signed = SignedRequest.from_headers(headers)
    if not SITE_CODE.fullmatch(claimed):  # before the database sees it (no NUL in PostgreSQL)
        raise RequestUnauthenticated(
            f"The request's site {claimed[:20]!r} is not a site code.",
            what_to_do="Sync requests come from an enrolled spoke ('mes sync').",
        )
    with uow.reader() as reader:
        spoke = reader.session.get(Spoke, signed.site)
        if spoke is None or spoke.public_key_pem is None:
            raise RequestUnauthenticated(
                f"{signed.site!r} is not a spoke enrolled at this hub.",
                what_to_do="Enroll the spoke with a one-time code from the hub administrator.",
            )
        key = spoke_key(spoke)
        status, reason = spoke.status, spoke.status_reason
    try:
        offset = check_request(
            signed, method, path, body, key=key, now=at, skew_seconds=skew_seconds
        )
    except RequestUnauthenticated as stale:
        if stale.clock_offset_seconds is not None:
            _note_stale_clock(uow, signed.site, at, stale.clock_offset_seconds)
        raise
    require_active(signed.site, status, reason, "requests")
    return Caller(signed.site, key, signed.nonce, offset)


def _note_stale_clock(uow: UnitOfWork, site: str, at: datetime, offset: float) -> None:
    """A correctly signed request refused for its clock: keep the offset for the Network page.

    Its own short transaction, as the refusal's log line is; the signature verified, so only the
    spoke can report its clock this way (a replayed old request shows an old offset until the
    spoke's next request measures it again).
    """
    note_clock(uow.session, site, at, offset)
    uow.commit()


def _admit(
    uow: UnitOfWork, caller: Caller, at: datetime, skew_seconds: int, *, prune: bool = True
) -> None:
    """Remember the request's nonce (a replay is refused by every worker) and the contact."""
    keep = timedelta(seconds=2 * skew_seconds + 60)
    # Read again in this transaction: it may have been suspended while the request was checked.
    status, reason = uow.session.execute(
        select(Spoke.status, Spoke.status_reason).where(Spoke.code == caller.site)
    ).one()
    require_active(caller.site, status, reason, "requests")
    if not remember_nonce(uow.session, caller.site, caller.nonce, at, keep, prune=prune):
        raise RequestReplayed(
            "This request was received before (its nonce was used): a replay is refused.",
            what_to_do="Each request carries a new nonce; sync again.",
        )
    note_contact(uow.session, caller.site, at, caller.clock_offset)


def _refused_request(
    uow: UnitOfWork,
    at: datetime,
    headers: Any,
    method: str,
    path: str,
    refusal: SyncRefused,
    source: str,
) -> None:
    """Log a refused sync request: in full if it is the source's first of a window, else counted.

    Anyone can send requests that are not signed by an enrolled spoke, and a suspended spoke
    keeps asking every few seconds; the sync log is append-only, so each source's refusals are
    counted per window and recorded once as a burst (:mod:`mes.services.throttle`).
    """
    claimed = str(headers.get(SITE_HEADER) or "")
    uow.session.rollback()
    # Each distinct refusal (its code and words: not enrolled, revoked, clock off by …) is
    # logged in full the first time in a source's window, up to the window's few distinct
    # reasons; repeats are counted, so the log stays bounded whatever a source sends.
    reason = throttle_reason(f"{refusal.code}: {refusal.message}")
    # A request whose signature verified comes from an enrolled spoke (refused for its clock,
    # a replay, or its status): counted per spoke, so one spoke's refusals never hide another's
    # behind the same address; anyone else is counted by address alone.
    signed = isinstance(refusal, RequestReplayed | SpokeNotActive) or (
        isinstance(refusal, RequestUnauthenticated) and refusal.clock_offset_seconds is not None
    )
    counted_as = f"{source} ({claimed})" if signed and SITE_CODE.fullmatch(claimed) else source
    window = throttle.count_refusal(uow, Attempt.SYNC_REQUEST, counted_as, at, reason)
    if window.reasons.get(reason) != 1:
        uow.commit()
        return
    log_event(
        uow.session,
        at=at,
        action="request",
        outcome="refused",
        peer=claimed if SITE_CODE.fullmatch(claimed) else None,  # no NUL reaches PostgreSQL
        item=f"{method} {path} from {source}".replace("\x00", "\\x00"),  # no NUL in PostgreSQL
        code=refusal.code,
        reason=refusal.message,
    )
    uow.commit()


def authenticate(
    uow: UnitOfWork,
    at: datetime,
    headers: Any,
    method: str,
    path: str,
    body: bytes,
    skew_seconds: int,
    source: str = UNKNOWN_SOURCE,
) -> str:
    """Check a sync request's signature headers; return the spoke's code. One transaction.

    The nonce is remembered in the database (so every worker refuses a replay) and the spoke's
    last contact is noted. Refusals are logged with the reason.
    """
    _require_hub(uow)
    try:
        caller = _check_signature(uow, at, headers, method, path, body, skew_seconds)
        _admit(uow, caller, at, skew_seconds)
    except SyncRefused as refusal:
        _refused_request(uow, at, headers, method, path, refusal, source)
        raise
    uow.commit()
    return caller.site


def receive_chunk(
    uow: UnitOfWork,
    at: datetime,
    headers: Any,
    method: str,
    path: str,
    body: bytes,
    skew_seconds: int,
    source: str = UNKNOWN_SOURCE,
) -> Ack:
    """A signed push of a chunk: authenticate it and store what is new, in one transaction.

    The request's signature and every signature and hash of the chunk are checked first,
    without any lock; then the nonce, the contact and the new entries are written together.
    """
    _require_hub(uow)
    try:
        caller = _check_signature(uow, at, headers, method, path, body, skew_seconds)
    except SyncRefused as refusal:
        _refused_request(uow, at, headers, method, path, refusal, source)
        raise
    try:
        token = body.decode("ascii").strip()
    except UnicodeDecodeError:
        token = ""  # not a JWS: open_chunk says so

    def admit() -> None:
        try:
            # Old nonces are forgotten by the short requests (every round lists the bundles
            # first), not inside a push's transaction, where two workers would queue on them.
            _admit(uow, caller, at, skew_seconds, prune=False)
        except (RequestReplayed, SpokeNotActive) as refusal:
            _refused_request(uow, at, headers, method, path, refusal, source)
            raise

    ack = _ingest(uow, at, caller.site, caller.key, token, "network", admit)
    message = ack_message(caller.site, ack.batch, ack.last_seq, ack.last_hash, caller.nonce)
    return replace(ack, signature=uow.site.key.sign(message))


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
    rows = uow.session.execute(
        select(RecipePublication, RecipeVersion.recipe_code, RecipeVersion.version)
        .join(RecipeVersion, RecipeVersion.id == RecipePublication.version_id)
        .where(RecipePublication.token.is_not(None))
        .order_by(RecipeVersion.recipe_code, RecipeVersion.version, RecipePublication.published_at)
    ).all()
    return [
        Offer(p.bundle_hash, code, version, p.published_at)
        for p, code, version in rows
        if site in p.sites
    ]


def bundle_token(uow: UnitOfWork, site: str, bundle_hash: str) -> str:
    """The JWS of a bundle published for ``site``."""
    for publication in uow.session.execute(
        select(RecipePublication).where(RecipePublication.bundle_hash == bundle_hash)
    ).scalars():
        if site in publication.sites and publication.token:
            return publication.token
    raise NotFound(
        f"No bundle {bundle_hash[:16]}… was published for {site}.",
        what_to_do="List the bundles for this site first.",
    )


# --- batch-record ingest ------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """The hub's answer to a chunk: what it stored, and where its copy of the chain ends."""

    batch: str
    stored: int
    duplicates: int
    last_seq: int
    last_hash: str
    signature: str | None = None  # the hub's, over ack_message (answers to a network push)
    flagged: str | None = None  # entries dated ahead of the hub's clock, in words (_clock_flag)

    def as_json(self) -> dict[str, Any]:
        """The acknowledgement's JSON body."""
        body: dict[str, Any] = {
            "batch": self.batch,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
        }
        if self.signature is not None:
            body["signature"] = self.signature
        return body


def ingest_chunk(
    uow: UnitOfWork, at: datetime, site: str, token: str, *, via: str = "network"
) -> Ack:
    """Verify a chunk from ``site`` and store what is new of it; refuse (and log) otherwise.

    For chunks that come in a file (or are handed over already authenticated).
    """
    _require_hub(uow)
    try:
        with uow.reader() as reader:  # read the key without taking the write lock
            spoke = reader.session.get(Spoke, site)
            if spoke is None or spoke.public_key_pem is None:
                raise SpokeNotActive(f"{site!r} is not a spoke enrolled at this hub.")
            require_active(site, spoke.status, spoke.status_reason, "records")
            key = spoke_key(spoke)
    except SyncRefused as refusal:
        _refused_ingest(uow, at, site, via, None, refusal)
        raise
    return _ingest(uow, at, site, key, token, via, None)


def _ingest(
    uow: UnitOfWork,
    at: datetime,
    site: str,
    key: SitePublicKey,
    token: str,
    via: str,
    admit: Callable[[], None] | None,
) -> Ack:
    batch_id = None
    try:
        chunk = open_chunk(token, key, site)  # all the cryptography, before any lock
        batch_id = chunk.batch
        for attempt in (1, 2):
            try:
                if admit is not None:
                    admit()
                ack = _store_chunk(uow, at, chunk, via)
                uow.commit()
                return ack
            except IntegrityError:
                # Another worker stored the batch's first chunk at the same moment: look again.
                uow.session.rollback()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
    except (RequestReplayed, SpokeNotActive) as refusal:
        if admit is None:
            _refused_ingest(uow, at, site, via, batch_id, refusal)
        raise  # a push's admission refusal was logged as a refused request already
    except SyncRefused as refusal:
        _refused_ingest(uow, at, site, via, batch_id, refusal)
        raise


def _refused_ingest(
    uow: UnitOfWork, at: datetime, site: str, via: str, batch_id: str | None, refusal: SyncRefused
) -> None:
    uow.session.rollback()
    log_event(
        uow.session,
        at=at,
        action="ingest",
        outcome="refused",
        peer=site[:12],
        via=via,
        batch_id=batch_id,
        code=refusal.code,
        reason=refusal.message,
    )
    uow.commit()


def _store_chunk(uow: UnitOfWork, at: datetime, chunk: Chunk, via: str) -> Ack:
    session = uow.session
    row = store.lock_batch(session, chunk.batch)
    if row is None:
        last_seq, last_hash, held = 0, None, {}
    else:
        if row.site != chunk.site:
            raise ChunkConflict(f"Batch {row.number} belongs to {row.site}, not to {chunk.site}.")
        last_seq, last_hash = row.last_seq, row.last_hash
        top = min(chunk.last_seq, last_seq)
        held = (
            dict(
                session.execute(
                    select(BatchEntry.seq, BatchEntry.hash).where(
                        BatchEntry.batch_id == chunk.batch,
                        BatchEntry.seq >= chunk.first_seq,
                        BatchEntry.seq <= top,
                    )
                ).all()
            )
            if chunk.first_seq <= top
            else {}
        )
    follow = continuation(chunk, last_seq, last_hash, held)
    if follow.new and row is not None:
        _refuse_after_decision(session, row)
    if not follow.new:  # all held already: acknowledged again, nothing written
        assert row is not None
        flagged = _clock_flag(uow, at, chunk, row.number, via)
        return Ack(chunk.batch, 0, follow.duplicates, row.last_seq, row.last_hash, flagged=flagged)
    try:
        if row is None:
            first = follow.new[0].body
            recipe = first["payload"]["recipe"] if first["kind"] == "batch_created" else {}
            _check_number(session, chunk.site, str(first["payload"].get("number", "")))
            procedure = _deployed_procedure(session, chunk.site, recipe)
            batch = Batch.replay(procedure, follow.new)
            batch.new_entries = list(follow.new)
            stored = None
        else:
            procedure = _deployed_procedure(
                session,
                chunk.site,
                {
                    "code": row.recipe_code,
                    "version": row.recipe_version,
                    "content_hash": row.content_hash,
                },
            )
            batch = Batch.replay(procedure, store.ledger(session, row.id))
            stored = store.saved_state(batch, received=True)
            for entry in follow.new:
                batch.receive(entry)
    except SyncRefused:
        raise
    except (MesError, KeyError, ValueError, TypeError, AttributeError) as err:
        raise ChunkUnreadable(
            f"The entries of batch {chunk.batch} verify but cannot be replayed: {err}.",
            what_to_do="Check that hub and spoke run compatible versions.",
        ) from None
    store.save(session, batch, stored, key=uow.site.key, received=True)
    flagged = _clock_flag(uow, at, chunk, batch.state.number, via)
    log_event(
        session,
        at=at,
        action="ingest",
        outcome="accepted",
        peer=chunk.site,
        via=via,
        batch_id=chunk.batch,
        item=batch.state.number,
        first_seq=chunk.first_seq,
        last_seq=chunk.last_seq,
        stored=len(follow.new),
        duplicates=follow.duplicates,
        reason=flagged,
    )
    return Ack(
        chunk.batch,
        len(follow.new),
        follow.duplicates,
        batch.state.last_seq,
        batch.state.last_hash,
        flagged=flagged,
    )


def _clock_flag(uow: UnitOfWork, at: datetime, chunk: Chunk, number: str, via: str) -> str | None:
    """The chunk's entries dated ahead of the hub's clock at receipt, in words (None if none).

    The same rule as the review's blocking finding (mes.core.chronology.dated_ahead, with the
    skew of signed requests). They are stored as the spoke sealed them — refusing them would
    hold the rest of the batch back at the spoke for good — and flagged: the sync log's line of
    the ingest says so (and the server's log, for a push; 'mes import' prints it), and the review
    by exception blocks the batch's release.
    """
    skew = uow.site.review.clock_skew_seconds
    problems = dated_ahead(chunk.entries, dict.fromkeys((e.seq for e in chunk.entries), at), skew)
    if not problems:
        return None
    note = (
        f"Batch {number} from {chunk.site}: "
        + " ".join(p.ahead_sentence(skew) for p in problems)
        + " Stored and flagged: QA cannot release the batch (its review page says why)."
    )
    if via == "network":
        logging.getLogger("mes.sync").warning("%s", note)
    return note


def _refuse_after_decision(session: Any, row: BatchRow) -> None:
    """QA released or rejected the record as it stood: nothing is added to it afterwards."""
    decided = session.get(BatchReview, row.id)
    if decided is not None and decided.decision:
        raise ChunkConflict(
            f"Batch {row.number} was {decided.decision} at the hub on its record up to entry "
            f"{row.last_seq}: no entry is added to it after the decision.",
            what_to_do="Investigate at the spoke: a decided batch records nothing more.",
        )


def _check_number(session: Any, site: str, number: str) -> None:
    """A new batch's number is the spoke's own (SITE-YYYY-NNNN) and no other batch has it.

    Numbers name files and labels, so only the form the spokes write is taken.
    """
    if not re.fullmatch(rf"{re.escape(site)}-\d{{4}}-\d{{4,9}}", number):
        raise ChunkConflict(
            f"Batch number {number[:40]!r} is not of the form {site}-YYYY-NNNN.",
            what_to_do="Investigate at the spoke: its batch numbers are made by the system.",
        )
    taken = session.execute(select(BatchRow.site).where(BatchRow.number == number)).scalar()
    if taken is not None:
        raise ChunkConflict(
            f"Batch number {number!r} is already held by another batch at the hub: batch "
            "numbers are unique across the network.",
            what_to_do="Investigate at the spoke (was its database restored from an old backup?).",
        )


def _deployed_procedure(session: Any, site: str, recipe: dict[str, Any]) -> Any:
    """The procedure of the batch's recipe version, if the hub deployed it to ``site``."""
    content_hash = recipe.get("content_hash")
    version = (
        session.execute(select(RecipeVersion).where(RecipeVersion.content_hash == content_hash))
        .scalars()
        .first()
    )
    deployed = version is not None and any(
        site in p.sites
        for p in session.execute(
            select(RecipePublication).where(RecipePublication.version_id == version.id)
        ).scalars()
    )
    if not deployed:
        raise RecipeNotDeployed(
            f"The batch was made with {recipe.get('code', '?')} v{recipe.get('version', '?')} "
            f"(content {str(content_hash)[:12]}…), which this hub never deployed to {site}.",
            what_to_do="Only recipe versions published to the site may run there; investigate "
            "at the spoke.",
        )
    return procedure_for(version.content_hash, version.compiled)


# --- reading what was received --------------------------------------------------------------


def verify_received(uow: UnitOfWork, batch_id: str) -> int:
    """Verify the hub's copy of a batch against the spoke's key: every hash, link, signature."""
    return verify_ledger(uow, batch_id)


@dataclass(frozen=True)
class SpokeSummary:
    """One spoke on the network page."""

    spoke: Spoke
    batches: int
    in_progress: int
    open_deviations: int
    last_received_at: datetime | None
    clock_beyond_skew: bool = False  # its clock, as last measured, is off by more than the skew


@dataclass(frozen=True)
class DeviationAlert:
    """An open deviation received from a spoke: where, which batch, phase and value."""

    id: str
    site: str
    batch_id: str
    batch_number: str
    phase: str | None
    value: str | None
    category: str
    description: str
    raised_at: str
    raised_by: str


@dataclass(frozen=True)
class NetworkView:
    """The hub's view of its spokes and the open deviations they raised."""

    spokes: list[SpokeSummary]
    alerts: list[DeviationAlert]
    refusals: list[SyncEvent]
    clock_skew_seconds: int = 300


def network(uow: UnitOfWork, ctx: Context, *, alerts_limit: int = 50) -> NetworkView:
    """Spokes with their batches and open deviations, the newest deviations, recent refusals."""
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    session = uow.session
    counts = {
        site: (total, active)
        for site, total, active in session.execute(
            select(
                BatchRow.site,
                func.count(),
                func.sum(
                    case((BatchRow.status.in_(("created", "in_progress", "on_hold")), 1), else_=0)
                ),
            ).group_by(BatchRow.site)
        ).all()
    }
    open_by_site = dict(
        session.execute(
            select(BatchRow.site, func.count())
            .join(Deviation, Deviation.batch_id == BatchRow.id)
            .where(Deviation.status == "open")
            .group_by(BatchRow.site)
        ).all()
    )
    last = dict(
        session.execute(
            select(SyncEvent.peer, func.max(SyncEvent.at))
            .where(SyncEvent.action == "ingest", SyncEvent.outcome == "accepted")
            .group_by(SyncEvent.peer)
        ).all()
    )
    spokes = [
        SpokeSummary(
            spoke=s,
            batches=counts.get(s.code, (0, 0))[0],
            in_progress=int(counts.get(s.code, (0, 0))[1] or 0),
            open_deviations=open_by_site.get(s.code, 0),
            last_received_at=last.get(s.code),
            clock_beyond_skew=clock_beyond_skew(uow, s),
        )
        for s in session.execute(select(Spoke).order_by(Spoke.code)).scalars()
    ]
    alerts = []
    for deviation, batch in session.execute(
        select(Deviation, BatchRow)
        .join(BatchRow, BatchRow.id == Deviation.batch_id)
        .where(Deviation.status == "open")
        .order_by(Deviation.raised_at.desc())
        .limit(alerts_limit)
    ).all():
        alerts.append(_alert(session, deviation, batch))
    refusals = list(
        session.execute(
            select(SyncEvent)
            .where(SyncEvent.outcome == "refused")
            .order_by(SyncEvent.id.desc())
            .limit(20)
        ).scalars()
    )
    return NetworkView(spokes, alerts, refusals, uow.site.review.clock_skew_seconds)


def clock_beyond_skew(uow: UnitOfWork, spoke: Spoke) -> bool:
    """Whether the spoke's clock, as last measured, is off by more than the allowed skew.

    Then its requests are refused and what it records is dated wrongly.
    """
    offset = spoke.clock_offset_seconds
    return offset is not None and abs(offset) > uow.site.review.clock_skew_seconds


def _alert(session: Any, deviation: Deviation, batch: BatchRow) -> DeviationAlert:
    """A deviation as the network page shows it: the phase's name, the value with its label."""
    from mes.store.models import BatchPhase, BatchValue

    phase_name = None
    value_text = None
    if deviation.phase_id:
        phase_name = session.execute(
            select(BatchPhase.name).where(
                BatchPhase.batch_id == deviation.batch_id, BatchPhase.phase_id == deviation.phase_id
            )
        ).scalar_one_or_none()
        if deviation.value_id:
            value = session.execute(
                select(BatchValue.value).where(
                    BatchValue.batch_id == deviation.batch_id,
                    BatchValue.phase_id == deviation.phase_id,
                    BatchValue.value_id == deviation.value_id,
                )
            ).scalar_one_or_none()
            if value is not None:
                spec = _value_spec(session, batch, deviation.phase_id, deviation.value_id)
                label = str(spec.get("label") or deviation.value_id)
                unit = f" {spec['unit']}" if spec.get("unit") else ""
                value_text = f"{label}: {value}{unit}"
    return DeviationAlert(
        id=deviation.id,
        site=batch.site,
        batch_id=deviation.batch_id,
        batch_number=batch.number,
        phase=phase_name or deviation.phase_id,
        value=value_text,
        category=deviation.category,
        description=deviation.description,
        raised_at=deviation.raised_at,
        raised_by=deviation.raised_by,
    )


def _value_spec(session: Any, batch: BatchRow, phase_id: str, value_id: str) -> dict[str, Any]:
    """The recipe's declaration of a value (label, unit), from the version the batch ran."""
    version = (
        session.execute(
            select(RecipeVersion).where(RecipeVersion.content_hash == batch.content_hash)
        )
        .scalars()
        .first()
    )
    if version is None:
        return {}
    plan = procedure_for(version.content_hash, version.compiled).phases.get(phase_id)
    return dict((plan.value_spec(value_id) if plan else None) or {})


def heads_of(uow: UnitOfWork, site: str) -> dict[str, tuple[int, str]]:
    """How far the hub holds each batch of ``site`` (for acknowledgements sent by file)."""
    return {
        b: (s, h)
        for b, s, h in uow.session.execute(
            select(BatchRow.id, BatchRow.last_seq, BatchRow.last_hash).where(BatchRow.site == site)
        ).all()
    }
