"""The hub's side of sync: signed requests from spokes, and the ingest of their batch records.

Ingest (:func:`ingest_chunk`) verifies a chunk completely before it takes any lock: the JWS over
the chunk, then every entry's hash and the spoke's signature of it. Under the batch's row lock it
then checks continuity with the hub's copy (:func:`mes.core.sync.continuation`), that the recipe
version was deployed to that spoke, stores the new entries exactly as received and brings the
hub's projection of the batch up to date by replaying them — one transaction. A refusal stores
nothing and is logged with its reason. Entries dated ahead of the hub's clock are stored as the
spoke sealed them and flagged (:func:`_clock_flag`): the review then blocks their release.
Every request is signed by an enrolled, active spoke (:func:`authenticate`); the spokes and
their enrollment are in :mod:`mes.services.spokes`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mes.core.batch import Batch
from mes.core.batch.machines import AFTER_RELEASE_ENTRY_KINDS
from mes.core.chronology import dated_ahead
from mes.core.errors import (
    ChunkConflict,
    ChunkUnreadable,
    MesError,
    RecipeNotDeployed,
    RequestReplayed,
    RequestUnauthenticated,
    SpokeNotActive,
    SyncRefused,
)
from mes.core.keys import SitePublicKey
from mes.core.ledger import SealedEntry
from mes.core.review import replay_review
from mes.core.sync import (
    SITE_HEADER,
    Chunk,
    SignedRequest,
    ack_message,
    check_request,
    continuation,
    open_chunk,
)
from mes.core.throttle import UNKNOWN_SOURCE, Attempt
from mes.core.throttle import reason_key as throttle_reason
from mes.services import throttle
from mes.services.batches import procedure_for, verify_ledger
from mes.services.cpv import keep_new_trends
from mes.services.spokes import require_active, require_hub, spoke_key
from mes.settings import SITE_CODE
from mes.store import batches as store
from mes.store import cpv as cpv_store
from mes.store import recipes
from mes.store import spokes as spokes_store
from mes.store.models import Batch as BatchRow
from mes.store.read_models import refresh_batch
from mes.store.review import disposition, review_ledger
from mes.store.sync import log_event, note_clock, note_contact, remember_nonce
from mes.store.uow import UnitOfWork

# --- signed requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The enrolled, active spoke that signed a request (its nonce not yet remembered)."""

    site: str
    key: SitePublicKey
    nonce: str
    clock_offset: float | None = None  # its timestamp minus the hub's clock (s)


@dataclass(frozen=True)
class Received:
    """A sync request as the hub received it: what its signature covers, and how it is judged.

    ``skew_seconds``: how far the spoke's clock may be from the hub's; ``source``: the address
    its refusals are counted under.
    """

    at: datetime
    headers: Any
    method: str
    path: str
    body: bytes
    skew_seconds: int
    source: str = UNKNOWN_SOURCE


def _check_signature(uow: UnitOfWork, request: Received) -> Caller:
    """Who signed the request, checked without writing (and without the write lock)."""
    at, headers, skew_seconds = request.at, request.headers, request.skew_seconds
    claimed = str(headers.get(SITE_HEADER) or "")
    signed = SignedRequest.from_headers(headers)
    if not SITE_CODE.fullmatch(claimed):  # before the database sees it (no NUL in PostgreSQL)
        raise RequestUnauthenticated(
            f"The request's site {claimed[:20]!r} is not a site code.",
            what_to_do="Sync requests come from an enrolled spoke ('mes sync').",
        )
    with uow.reader() as reader:
        spoke = spokes_store.spoke(reader.session, signed.site)
        if spoke is None or spoke.public_key_pem is None:
            raise RequestUnauthenticated(
                f"{signed.site!r} is not a spoke enrolled at this hub.",
                what_to_do="Enroll the spoke with a one-time code from the hub administrator.",
            )
        key = spoke_key(spoke)
        status, reason = spoke.status, spoke.status_reason
    try:
        offset = check_request(
            signed,
            request.method,
            request.path,
            request.body,
            key=key,
            now=at,
            skew_seconds=skew_seconds,
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


def _admit(uow: UnitOfWork, caller: Caller, request: Received, *, prune: bool = True) -> None:
    """Remember the request's nonce (a replay is refused by every worker) and the contact."""
    at = request.at
    keep = timedelta(seconds=2 * request.skew_seconds + 60)
    # Read again in this transaction: it may have been suspended while the request was checked.
    status, reason = spokes_store.spoke_status(uow.session, caller.site)
    require_active(caller.site, status, reason, "requests")
    if not remember_nonce(uow.session, caller.site, caller.nonce, at, keep, prune=prune):
        raise RequestReplayed(
            "This request was received before (its nonce was used): a replay is refused.",
            what_to_do="Each request carries a new nonce; sync again.",
        )
    note_contact(uow.session, caller.site, at, caller.clock_offset)


def _refused_request(uow: UnitOfWork, request: Received, refusal: SyncRefused) -> None:
    """Log a refused sync request: in full if it is the source's first of a window, else counted.

    Anyone can send requests that are not signed by an enrolled spoke, and a suspended spoke
    keeps asking every few seconds; the sync log is append-only, so each source's refusals are
    counted per window and recorded once as a burst (:mod:`mes.services.throttle`).
    """
    claimed = str(request.headers.get(SITE_HEADER) or "")
    uow.rollback()
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
    source = request.source
    counted_as = f"{source} ({claimed})" if signed and SITE_CODE.fullmatch(claimed) else source
    window = throttle.count_refusal(uow, Attempt.SYNC_REQUEST, counted_as, request.at, reason)
    if window.reasons.get(reason) != 1:
        uow.commit()
        return
    log_event(
        uow.session,
        at=request.at,
        action="request",
        outcome="refused",
        peer=claimed if SITE_CODE.fullmatch(claimed) else None,  # no NUL reaches PostgreSQL
        item=f"{request.method} {request.path} from {source}".replace("\x00", "\\x00"),
        code=refusal.code,
        reason=refusal.message,
    )
    uow.commit()


def authenticate(uow: UnitOfWork, request: Received) -> str:
    """Check a sync request's signature headers; return the spoke's code. One transaction.

    The nonce is remembered in the database (so every worker refuses a replay) and the spoke's
    last contact is noted. Refusals are logged with the reason.
    """
    require_hub(uow)
    try:
        caller = _check_signature(uow, request)
        _admit(uow, caller, request)
    except SyncRefused as refusal:
        _refused_request(uow, request, refusal)
        raise
    uow.commit()
    return caller.site


def receive_chunk(uow: UnitOfWork, request: Received) -> Ack:
    """A signed push of a chunk: authenticate it and store what is new, in one transaction.

    The request's signature and every signature and hash of the chunk are checked first,
    without any lock; then the nonce, the contact and the new entries are written together.
    """
    require_hub(uow)
    try:
        caller = _check_signature(uow, request)
    except SyncRefused as refusal:
        _refused_request(uow, request, refusal)
        raise
    try:
        token = request.body.decode("ascii").strip()
    except UnicodeDecodeError:
        token = ""  # not a JWS: open_chunk says so

    def admit() -> None:
        try:
            # Old nonces are forgotten by the short requests (every round lists the bundles
            # first), not inside a push's transaction, where two workers would queue on them.
            _admit(uow, caller, request, prune=False)
        except (RequestReplayed, SpokeNotActive) as refusal:
            _refused_request(uow, request, refusal)
            raise

    ack = _ingest(uow, request.at, caller.site, caller.key, token, "network", admit)
    message = ack_message(caller.site, ack.batch, ack.last_seq, ack.last_hash, caller.nonce)
    return replace(ack, signature=uow.site.key.sign(message))


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
    require_hub(uow)
    try:
        with uow.reader() as reader:  # read the key without taking the write lock
            spoke = spokes_store.spoke(reader.session, site)
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
                uow.rollback()
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
    uow.rollback()
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
        held = store.held_hashes(
            session, chunk.batch, chunk.first_seq, min(chunk.last_seq, last_seq)
        )
    follow = continuation(chunk, last_seq, last_hash, held)
    if follow.new and row is not None:
        _refuse_after_decision(session, row, follow.new)
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
            record = list(follow.new)
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
            record = store.ledger(session, row.id)
            batch = Batch.replay(procedure, record)
            stored = store.saved_state(batch, received=True)
            for entry in follow.new:
                batch.receive(entry)
            record += follow.new
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
    # The network's read models move with the record (the chunk's receipt is logged above).
    review = replay_review(chunk.batch, review_ledger(session, chunk.batch))
    refresh_batch(session, batch, record, review, settings=uow.site.review)
    # Continued process verification: signals on frozen baselines become trends for QA now.
    # Only complete batches enter the series: a batch is judged (all its values) once complete.
    if batch.state.status.value == "complete":
        keep_new_trends(uow, at, cpv_store.batch_results(session, chunk.batch))
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


def _refuse_after_decision(session: Session, row: BatchRow, new: Sequence[SealedEntry]) -> None:
    """QA released or rejected the record as it stood: nothing is added to it afterwards.

    Except what is recorded after release (:data:`AFTER_RELEASE_ENTRY_KINDS`: the bedside
    check and the infusion, and their deviations), which continues the same ledger.
    """
    decided = disposition(session, row.id)
    after_release = all(e.body["kind"] in AFTER_RELEASE_ENTRY_KINDS for e in new)
    if decided is not None and decided.decision and not after_release:
        raise ChunkConflict(
            f"Batch {row.number} was {decided.decision} at the hub on its record up to entry "
            f"{row.last_seq}: no entry is added to it after the decision.",
            what_to_do="Investigate at the spoke: a decided batch records nothing more.",
        )


def _check_number(session: Session, site: str, number: str) -> None:
    """A new batch's number is the spoke's own (SITE-YYYY-NNNN) and no other batch has it.

    Numbers name files and labels, so only the form the spokes write is taken.
    """
    if not re.fullmatch(rf"{re.escape(site)}-\d{{4}}-\d{{4,9}}", number):
        raise ChunkConflict(
            f"Batch number {number[:40]!r} is not of the form {site}-YYYY-NNNN.",
            what_to_do="Investigate at the spoke: its batch numbers are made by the system.",
        )
    taken = store.site_holding_number(session, number)
    if taken is not None:
        raise ChunkConflict(
            f"Batch number {number!r} is already held by another batch at the hub: batch "
            "numbers are unique across the network.",
            what_to_do="Investigate at the spoke (was its database restored from an old backup?).",
        )


def _deployed_procedure(session: Session, site: str, recipe: dict[str, Any]) -> Any:
    """The procedure of the batch's recipe version, if the hub deployed it to ``site``."""
    content_hash = recipe.get("content_hash")
    version = recipes.version_with_content(session, content_hash)
    deployed = version is not None and any(
        site in p.sites for p in recipes.publications_of(session, version.id)
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


def heads_of(uow: UnitOfWork, site: str) -> dict[str, tuple[int, str]]:
    """How far the hub holds each batch of ``site`` (for acknowledgements sent by file)."""
    return store.heads_of_site(uow.session, site)
