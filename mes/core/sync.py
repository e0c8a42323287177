"""What travels between a spoke and its hub, and the checks each side makes on it.

Three things cross the network (or a USB stick, for an air-gapped site), all signed with a
site's Ed25519 key and verifiable by any JOSE library:

- **Chunks** of a batch's ledger, from a spoke to the hub: a compact JWS (``typ``
  ``mes-batch-chunk+jws``) over the JSON of consecutive entries of one batch, each entry as the
  spoke sealed it (body, SHA-256 of the body's RFC 8785 JSON, the spoke's signature of the hash).
- **Requests**: every sync call is signed over its method, path, body hash, timestamp and a
  one-time nonce (:func:`sign_request` / :func:`check_request`), so a captured request cannot be
  replayed or altered and a stale one is refused.
- **Recipe bundles** from the hub (:mod:`mes.core.bundle`).

:func:`continuation` decides what of a chunk is new for the hub's copy of the chain: entries it
holds already are acknowledged (never stored twice), a chunk that leaves a gap is refused with
where the hub's copy ends, and a chunk that contradicts what the hub holds is refused as a fork.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from joserfc.errors import JoseError

from mes.core.canonical import canonical_json, content_hash, strict_loads
from mes.core.clock import parse_utc_text, utc_text
from mes.core.compact_jws import (
    ALGORITHM,
    read_document,
    sign,
    unverified_part,
    verified_by,
    verified_payload,
)
from mes.core.entry import read_sealed_entries
from mes.core.errors import (
    ChunkConflict,
    ChunkGap,
    ChunkTampered,
    ChunkUnreadable,
    RequestUnauthenticated,
)
from mes.core.keys import SiteKey, SitePublicKey
from mes.core.ledger import GENESIS, SealedEntry
from mes.core.worded import Worded, words_of

CHUNK_MEDIA_TYPE = "mes-batch-chunk+jws"
CHUNK_TYPE = "batch-chunk"
FORMAT = 1
MAX_CHUNK_BYTES = 8_000_000
TRANSFER_TYPE = "mes-transfer"

# Request signature headers (see docs/sync.md and the OpenAPI document).
SITE_HEADER = "X-MES-Site"
KEY_HEADER = "X-MES-Key-Id"
TIME_HEADER = "X-MES-Timestamp"
NONCE_HEADER = "X-MES-Nonce"
SIGNATURE_HEADER = "X-MES-Signature"
REQUEST_HEADERS = (SITE_HEADER, KEY_HEADER, TIME_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class OutboxState(StrEnum):
    """At a spoke: where a batch's ledger stands with the hub (the outbox mark)."""

    PENDING = "pending"
    SYNCED = "synced"
    REFUSED = "refused"


class SyncOutcome(Worded):
    """What became of one sync action (the sync log, both sides)."""

    ACCEPTED = "accepted", "done"
    DUPLICATE = "duplicate", "already held"
    REFUSED = "refused", "refused"


SYNC_OUTCOME_WORDS = words_of(SyncOutcome)
"""A sync action's outcome as the sync log says it."""


def _header_of(token: str) -> dict[str, Any]:
    try:
        header = unverified_part(token, 0)
    except (ValueError, UnicodeError):
        header = None
    if not isinstance(header, dict):
        raise ChunkUnreadable(
            "The body is not a signed batch-record chunk (not a compact JWS).",
            what_to_do="Send chunks written by 'mes sync' or 'mes export'.",
        )
    return header


# --- chunks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """A verified chunk: consecutive sealed entries of one batch made at one site."""

    site: str
    batch: str
    entries: tuple[SealedEntry, ...]
    issued_at: str
    token: str

    @property
    def first_seq(self) -> int:
        """The seq of the chunk's first entry."""
        return self.entries[0].seq

    @property
    def last_seq(self) -> int:
        """The seq of the chunk's last entry."""
        return self.entries[-1].seq


def make_chunk(
    entries: Sequence[SealedEntry], *, site: str, key: SiteKey, issued_at: datetime
) -> str:
    """The compact JWS of consecutive entries of one batch, signed with the spoke's key."""
    if not entries:
        raise ValueError("a chunk holds at least one entry")
    payload = {
        "type": CHUNK_TYPE,
        "format": FORMAT,
        "site": site,
        "batch": entries[0].body["batch"],
        "issued_at": utc_text(issued_at),
        "entries": [e.as_dict() for e in entries],
    }
    header = {"alg": ALGORITHM, "kid": key.public.key_id, "typ": CHUNK_MEDIA_TYPE}
    # The JWS signs these exact bytes, so they need not be canonical: each entry's own hash is
    # over its canonical JSON and the hub recomputes it. Plain JSON is several times faster.
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return sign(header, data.encode("utf-8"), key)


def chunk_site(token: str) -> str | None:
    """The site a chunk claims to come from (unverified: only to find the key to verify with)."""
    try:
        data = unverified_part(token, 1)
        return str(data["site"]) if isinstance(data, dict) else None
    except (ValueError, UnicodeError, KeyError, IndexError):
        return None


def open_chunk(token: str, spoke_key: SitePublicKey, site_code: str) -> Chunk:
    """Verify a chunk from ``site_code`` against its pinned key; refuse with the reason.

    Checks the JWS signature over the whole chunk, then each entry: it belongs to this site and
    batch, the entries are consecutive and linked (``prev``), each hash is the SHA-256 of the
    entry's canonical JSON and each entry carries the spoke's valid signature of its hash.
    """
    if len(token) > MAX_CHUNK_BYTES:
        raise ChunkUnreadable(f"The chunk is larger than {MAX_CHUNK_BYTES // 1_000_000} MB.")
    header = _header_of(token)
    if header.get("typ") != CHUNK_MEDIA_TYPE or header.get("alg") != ALGORITHM:
        raise ChunkUnreadable(
            f"The body is a JWS but not a batch-record chunk (type {header.get('typ')!r}).",
            what_to_do="Send chunks written by 'mes sync' or 'mes export'.",
        )
    verified = verified_by(
        token,
        header,
        spoke_key,
        MAX_CHUNK_BYTES,
        other_key=lambda kid: ChunkTampered(
            f"The chunk is signed with key {kid!r}, not the key {site_code} enrolled with.",
            what_to_do="Only the spoke's own key signs its chunks; if the spoke's key was "
            "replaced, ask the hub administrator (a key is never swapped silently).",
        ),
        altered=ChunkTampered(
            "The chunk's signature does not verify: it was altered after the spoke signed it.",
            what_to_do="Nothing was stored; the spoke sends it again from its own record.",
        ),
    )
    payload = _chunk_payload(verified)
    if payload["site"] != site_code:
        raise ChunkTampered(
            f"The chunk says it comes from {payload['site']}, but it was sent as {site_code}."
        )
    # A body with a field more or less could not be stored as it was hashed (a column a field).
    entries = tuple(
        read_sealed_entries(
            payload["entries"],
            ChunkUnreadable(
                "An entry of the chunk is not a ledger entry of this format (body with exactly "
                "the ledger's fields, hash, signature).",
                what_to_do="Check that hub and spoke run compatible versions.",
            ),
        )
    )
    batch = payload["batch"]
    for index, entry in enumerate(entries):
        body = entry.body
        if body.get("batch") != batch or body.get("site") != site_code:
            raise ChunkTampered(f"Entry {index + 1} of the chunk belongs to another batch or site.")
        if index and (
            entry.seq != entries[index - 1].seq + 1 or body.get("prev") != entries[index - 1].hash
        ):
            raise ChunkTampered(
                f"Entries {entries[index - 1].seq} and {entry.seq} of the chunk are not "
                "consecutive links of one chain."
            )
    for entry in entries:
        try:
            digest = content_hash(dict(entry.body))
        except (ValueError, TypeError):  # outside RFC 8785 (e.g. an integer beyond 2^53)
            raise ChunkUnreadable(
                f"Entry {entry.seq} of batch {batch} holds a value canonical JSON cannot write.",
                what_to_do="Check that hub and spoke run compatible versions.",
            ) from None
        if digest != entry.hash:
            raise ChunkTampered(
                f"Entry {entry.seq} of batch {batch} does not match its hash: it was edited.",
                what_to_do="Nothing was stored; check the spoke's record with 'mes batch verify'.",
            )
        if not spoke_key.verifies(entry.hash.encode("ascii"), entry.signature):
            raise ChunkTampered(
                f"Entry {entry.seq} of batch {batch} does not carry {site_code}'s signature.",
                what_to_do="Nothing was stored; check the spoke's record with 'mes batch verify'.",
            )
    return Chunk(
        site=site_code,
        batch=batch,
        entries=entries,
        issued_at=payload["issued_at"],
        token=token,
    )


def _chunk_payload(raw: bytes) -> dict[str, Any]:
    return read_document(
        raw,
        lambda payload: (
            payload.get("type") == CHUNK_TYPE
            and payload.get("format") == FORMAT
            and isinstance(payload.get("site"), str)
            and isinstance(payload.get("batch"), str)
            and isinstance(payload.get("issued_at"), str)
            and isinstance(payload.get("entries"), list)
            and len(payload["entries"]) > 0
        ),
        ChunkUnreadable(
            "The chunk's content is not a batch-record chunk of a format this hub understands.",
            what_to_do="Check that hub and spoke run compatible versions.",
        ),
    )


# --- what of a chunk is new ----------------------------------------------------------------


@dataclass(frozen=True)
class Continuation:
    """What a chunk adds to the hub's copy: the new entries, and how many it held already."""

    new: tuple[SealedEntry, ...]
    duplicates: int


def continuation(
    chunk: Chunk, last_seq: int, last_hash: str | None, held: Mapping[int, str]
) -> Continuation:
    """The entries of ``chunk`` that extend the hub's copy ending at ``last_seq``/``last_hash``.

    ``held`` maps the seq of every entry the hub holds within the chunk's range to its hash.
    Entries held already must be the very same (same hash): then they are acknowledged again,
    not stored twice. The first new entry must be ``last_seq + 1`` and link to ``last_hash``.
    """
    duplicates = 0
    new: list[SealedEntry] = []
    for entry in chunk.entries:
        if entry.seq <= last_seq:
            if held.get(entry.seq) != entry.hash:
                raise ChunkConflict(
                    f"Entry {entry.seq} of batch {chunk.batch} differs from the entry {entry.seq} "
                    "the hub already holds: the spoke's chain was forked or rewritten.",
                    what_to_do="Nothing was stored. Investigate at the spoke (mes batch verify) "
                    "and raise a deviation; the hub keeps what it received first.",
                )
            duplicates += 1
            continue
        new.append(entry)
    if new:
        first = new[0]
        if first.seq != last_seq + 1 or first.body.get("prev") != (last_hash or GENESIS):
            raise ChunkGap(
                f"The chunk starts at entry {first.seq} of batch {chunk.batch}, but the hub "
                f"holds entries up to {last_seq}: entries in between are missing.",
                last_seq=last_seq,
                last_hash=last_hash,
                what_to_do=f"Send the batch's entries from {last_seq + 1} on.",
            )
    return Continuation(tuple(new), duplicates)


# --- signed requests -----------------------------------------------------------------------


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of a request body (empty for GET)."""
    return hashlib.sha256(body).hexdigest()


def request_message(
    method: str, path: str, body: bytes, timestamp: str, nonce: str, site: str
) -> bytes:
    """The exact bytes a request signature covers (one field per line)."""
    return "\n".join(
        ["MES-SYNC-1", method.upper(), path, body_digest(body), timestamp, nonce, site]
    ).encode("utf-8")


def sign_request(
    method: str, path: str, body: bytes, *, site: str, key: SiteKey, at: datetime, nonce: str
) -> dict[str, str]:
    """The headers that authenticate one request (``path`` includes any query string)."""
    timestamp = utc_text(at)
    signature = key.sign(request_message(method, path, body, timestamp, nonce, site))
    return {
        SITE_HEADER: site,
        KEY_HEADER: key.public.key_id,
        TIME_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature,
    }


@dataclass(frozen=True)
class SignedRequest:
    """The signature headers of a request, as received."""

    site: str
    key_id: str
    timestamp: str
    nonce: str
    signature: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> SignedRequest:
        """Read the headers; refuse a request that lacks any of them."""
        missing = [h for h in REQUEST_HEADERS if not headers.get(h)]
        if missing:
            raise RequestUnauthenticated(
                f"The request is not signed (missing {', '.join(missing)}).",
                what_to_do="Sync requests come from an enrolled spoke ('mes sync').",
            )
        nonce = headers[NONCE_HEADER]
        if not NONCE.fullmatch(nonce):
            raise RequestUnauthenticated(
                "The request's nonce must be 16-64 characters of A-Z, a-z, 0-9, '-' and '_'.",
                what_to_do="Sync requests come from an enrolled spoke ('mes sync').",
            )
        return cls(
            site=headers[SITE_HEADER],
            key_id=headers[KEY_HEADER],
            timestamp=headers[TIME_HEADER],
            nonce=nonce,
            signature=headers[SIGNATURE_HEADER],
        )


def clock_offset(signed: SignedRequest, now: datetime) -> float:
    """How far the spoke's clock is from the hub's: the request's timestamp minus ``now``, in s.

    Positive: the spoke's clock is ahead. Network delay makes it read a little behind.
    """
    try:
        at = parse_utc_text(signed.timestamp)
    except ValueError:
        raise RequestUnauthenticated(
            f"The request's timestamp {signed.timestamp!r} is not UTC time "
            "(YYYY-MM-DDTHH:MM:SS.ffffffZ)."
        ) from None
    return (at - now).total_seconds()


def check_request(
    signed: SignedRequest,
    method: str,
    path: str,
    body: bytes,
    *,
    key: SitePublicKey,
    now: datetime,
    skew_seconds: int,
) -> float:
    """Refuse a request whose signature does not verify or that is stale; its clock offset.

    The signature must verify with the spoke's pinned key. Stale: its timestamp is off the hub's
    clock by more than ``skew_seconds`` (the refusal carries the offset: it is checked after
    the signature, so only the spoke itself can report its clock). Returns the
    offset (:func:`clock_offset`). Whether the nonce is new is the hub's to check.
    """
    if signed.key_id != key.key_id:
        raise RequestUnauthenticated(
            f"The request is signed with key {signed.key_id!r}, not the key {signed.site} "
            "enrolled with.",
            what_to_do="If the spoke's key was replaced, ask the hub administrator (a key is "
            "never swapped silently).",
        )
    off = clock_offset(signed, now)
    message = request_message(method, path, body, signed.timestamp, signed.nonce, signed.site)
    if not key.verifies(message, signed.signature):
        raise RequestUnauthenticated(
            "The request's signature does not verify: it was altered or not made by the spoke.",
            what_to_do="Sync again from the spoke ('mes sync').",
        )
    if abs(off) > skew_seconds:
        raise RequestUnauthenticated(
            f"The request's timestamp is {abs(off):.0f} s {'ahead of' if off > 0 else 'behind'} "
            f"the hub's clock (at most {skew_seconds} s are accepted).",
            clock_offset_seconds=off,
            what_to_do="Set the spoke's clock right (NTP), then sync again.",
        )
    return off


# --- the hub's answer to a push ------------------------------------------------------------


def ack_message(site: str, batch: str, last_seq: int, last_hash: str, nonce: str) -> bytes:
    """What the hub signs when it answers a push: how far it holds the batch, for that request.

    Bound to the request's nonce, so an answer cannot be replayed for another push; signed with
    the hub's key, so nobody on the way can make a spoke believe the hub holds what it does not.
    """
    return "\n".join(["MES-ACK-1", site, batch, str(last_seq), last_hash, nonce]).encode("utf-8")


def ack_verifies(
    hub_key: SitePublicKey,
    signature: str,
    *,
    site: str,
    batch: str,
    last_seq: int,
    last_hash: str,
    nonce: str,
) -> bool:
    """True when ``signature`` is the hub's signature of this acknowledgement."""
    return hub_key.verifies(ack_message(site, batch, last_seq, last_hash, nonce), signature)


# --- files for air-gapped sites ------------------------------------------------------------


def transfer_file(
    *,
    source: str,
    target: str | None,
    created_at: datetime,
    chunks: Iterable[str] = (),
    bundles: Iterable[str] = (),
    acks: str | None = None,
) -> bytes:
    """A USB transfer file: the same signed chunks and bundles the network would carry.

    The wrapper itself is not signed (everything in it is), so nothing in it can be altered
    without the hub or spoke refusing that item.
    """
    return canonical_json(
        {
            "type": TRANSFER_TYPE,
            "format": FORMAT,
            "source": source,
            "target": target,
            "created_at": utc_text(created_at),
            "chunks": list(chunks),
            "bundles": list(bundles),
            "acks": acks,
        }
    )


@dataclass(frozen=True)
class TransferFile:
    """A transfer file's content."""

    source: str
    target: str | None
    created_at: str
    chunks: tuple[str, ...]
    bundles: tuple[str, ...]
    acks: str | None = None


def read_transfer_file(data: bytes) -> TransferFile:
    """Read a transfer file; refuse anything else with what it is not."""
    raw = read_document(
        data,
        lambda raw: (
            raw.get("type") == TRANSFER_TYPE
            and raw.get("format") == FORMAT
            and isinstance(raw.get("chunks"), list)
            and isinstance(raw.get("bundles"), list)
            and all(isinstance(t, str) for t in raw["chunks"] + raw["bundles"])
        ),
        ChunkUnreadable(
            "The file is not a transfer file written by 'mes export'.",
            what_to_do="Use the file 'mes export --out FILE' wrote.",
        ),
    )
    return TransferFile(
        source=str(raw.get("source")),
        target=raw.get("target"),
        created_at=str(raw.get("created_at")),
        chunks=tuple(raw["chunks"]),
        bundles=tuple(raw["bundles"]),
        acks=raw.get("acks") if isinstance(raw.get("acks"), str) else None,
    )


def enrollment_code_hash(code: str) -> str:
    """How the hub keeps a one-time enrollment code: SHA-256 of it without spaces or dashes."""
    normal = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normal.encode("ascii", "ignore")).hexdigest()


# --- acknowledgements carried by file (air-gapped spokes) ----------------------------------

ACKS_MEDIA_TYPE = "mes-sync-acks+jws"
ACKS_TYPE = "sync-acks"


def make_acks(
    heads: Mapping[str, tuple[int, str]], *, hub: str, site: str, key: SiteKey, at: datetime
) -> str:
    """The hub's signed statement of how far it holds each batch of ``site`` (batch → head)."""
    payload = {
        "type": ACKS_TYPE,
        "format": FORMAT,
        "hub": hub,
        "site": site,
        "issued_at": utc_text(at),
        "heads": {b: {"last_seq": s, "last_hash": h} for b, (s, h) in sorted(heads.items())},
    }
    header = {"alg": ALGORITHM, "kid": key.public.key_id, "typ": ACKS_MEDIA_TYPE}
    return sign(header, canonical_json(payload), key)


def open_acks(token: str, hub_key: SitePublicKey, site: str) -> dict[str, tuple[int, str]]:
    """Verify the hub's acknowledgements for this spoke; batch → (last_seq, last_hash)."""
    try:
        header = _header_of(token)
    except ChunkUnreadable:
        raise ChunkUnreadable(
            "The hub's acknowledgements in the file are not a signed JWS.",
            what_to_do="Use the file the hub wrote for this site ('mes export --site').",
        ) from None
    if header.get("typ") != ACKS_MEDIA_TYPE or header.get("kid") != hub_key.key_id:
        raise ChunkTampered(
            "The acknowledgements are not signed with the hub key this spoke pinned.",
            what_to_do="Use the file the hub wrote for this site ('mes export --site').",
        )
    try:
        payload = strict_loads(verified_payload(token, hub_key, MAX_CHUNK_BYTES))
        if payload.get("type") != ACKS_TYPE or payload.get("site") != site:
            raise ValueError("not for this site")
        return {b: (int(v["last_seq"]), str(v["last_hash"])) for b, v in payload["heads"].items()}
    except (JoseError, ValueError, UnicodeError, KeyError, TypeError, AttributeError):
        raise ChunkTampered(
            "The hub's acknowledgements do not verify or are not for this site.",
            what_to_do="Use the file the hub wrote for this site ('mes export --site').",
        ) from None
