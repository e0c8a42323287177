"""What travels between hub and spoke, checked without a database (mes.core.sync).

Chunks of a batch ledger open only when the JWS, every entry's hash and every entry's signature
verify with the spoke's pinned key; any alteration is refused as unreadable or tampered (never
with another exception). :func:`continuation` tells new entries from held ones, and refuses
gaps and forks. Signed requests, transfer files, the hub's acknowledgements and enrollment
codes each refuse what they must.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import OKPKey
from support import NOW

from mes.core.clock import utc_text
from mes.core.errors import (
    ChunkConflict,
    ChunkGap,
    ChunkTampered,
    ChunkUnreadable,
    EnrollmentRefused,
    RecipeNotDeployed,
    RequestReplayed,
    RequestUnauthenticated,
    SpokeNotActive,
    SyncRefused,
    TooLarge,
)
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, SealedEntry, seal
from mes.core.sync import (
    CHUNK_MEDIA_TYPE,
    MAX_CHUNK_BYTES,
    NONCE_HEADER,
    REQUEST_HEADERS,
    SIGNATURE_HEADER,
    SITE_HEADER,
    TIME_HEADER,
    SignedRequest,
    check_request,
    chunk_site,
    continuation,
    enrollment_code_hash,
    make_acks,
    make_chunk,
    open_acks,
    open_chunk,
    read_transfer_file,
    sign_request,
    transfer_file,
)

SPOKE_KEY = SiteKey.generate()
HUB_KEY = SiteKey.generate()
STRANGER = SiteKey.generate()
SITE = "SPK1"
BATCH = "0b7c9a52-0000-4000-8000-000000000001"
NONCE = "n0nce-of-22-characters"
PATH = "/api/v1/sync/chunks"


# --- building chains and chunks -------------------------------------------------------------


def body(seq: int, prev: str, *, batch: str = BATCH, site: str = SITE, n: int = 0) -> dict:
    """A batch ledger entry body (``n`` varies the content, e.g. for a forked chain)."""
    return {
        "batch": batch,
        "seq": seq,
        "prev": prev,
        "at": utc_text(NOW + timedelta(seconds=seq)),
        "site": site,
        "terminal": "Suite A 1",
        "actor": {"user_id": "u-olivia", "username": "olivia", "name": "Olivia Tester"},
        "kind": "batch_created" if seq == 1 else "value_recorded",
        "payload": {"value": seq, "variant": n},
    }


def chain(length: int, *, key: SiteKey = SPOKE_KEY, n: int = 0, **where: str) -> list[SealedEntry]:
    """A valid sealed chain of ``length`` entries (1…length)."""
    entries: list[SealedEntry] = []
    prev = GENESIS
    for seq in range(1, length + 1):
        entries.append(seal(body(seq, prev, n=n, **where), key))
        prev = entries[-1].hash
    return entries


CHAIN = chain(8)
HASHES = {e.seq: e.hash for e in CHAIN}


def chunk_of(entries: list[SealedEntry], key: SiteKey = SPOKE_KEY, site: str = SITE) -> str:
    return make_chunk(entries, site=site, key=key, issued_at=NOW)


def payload_of(entries: list[SealedEntry], /, **changes: Any) -> dict[str, Any]:
    """The payload make_chunk signs, with ``changes`` applied."""
    payload = {
        "type": "batch-chunk",
        "format": 1,
        "site": SITE,
        "batch": BATCH,
        "issued_at": utc_text(NOW),
        "entries": [
            {"body": copy.deepcopy(dict(e.body)), "hash": e.hash, "signature": e.signature}
            for e in entries
        ],
    }
    payload.update(changes)
    return payload


def signed(payload: Any, key: SiteKey = SPOKE_KEY, **header: Any) -> str:
    """A compact JWS of ``payload`` (JSON, or raw bytes) with the chunk header unless changed."""
    # Plain JSON, as make_chunk writes it (it may hold values canonical JSON cannot write).
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    protected = {"alg": "Ed25519", "kid": key.public.key_id, "typ": CHUNK_MEDIA_TYPE, **header}
    protected = {k: v for k, v in protected.items() if v is not None}  # None: leave it out
    return jws.serialize_compact(
        protected, raw, OKPKey.import_key(key.private_pem()), algorithms=["Ed25519"]
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def opened(token: str):
    return open_chunk(token, SPOKE_KEY.public, SITE)


def refusal(token: str, error: type[SyncRefused]) -> str:
    with pytest.raises(error) as caught:
        opened(token)
    assert type(caught.value) is error
    return caught.value.message


# --- chunks: the round trip -----------------------------------------------------------------


def test_a_chunk_opens_to_the_very_entries_the_spoke_sealed():
    entries = CHAIN[:5]
    token = chunk_of(entries)
    chunk = opened(token)
    assert (chunk.site, chunk.batch, chunk.issued_at, chunk.token) == (
        SITE,
        BATCH,
        utc_text(NOW),
        token,
    )
    assert [(dict(e.body), e.hash, e.signature) for e in chunk.entries] == [
        (dict(e.body), e.hash, e.signature) for e in entries
    ]
    assert (chunk.first_seq, chunk.last_seq) == (1, 5)
    assert chunk_site(token) == SITE
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "Ed25519", "kid": SPOKE_KEY.public.key_id, "typ": CHUNK_MEDIA_TYPE}


def test_a_chunk_counts_its_deviations_and_a_later_slice_opens_on_its_own():
    entries = CHAIN[:3]
    deviation = body(4, entries[-1].hash)
    deviation["kind"] = "deviation_raised"
    entries.append(seal(deviation, SPOKE_KEY))
    chunk = opened(chunk_of(entries[1:]))
    assert (chunk.first_seq, chunk.last_seq) == (2, 4)


def test_a_chunk_larger_than_joserfcs_default_cap_still_opens():
    entries, prev = [], GENESIS
    for seq in range(1, 41):
        entry = body(seq, prev)
        entry["payload"] = {"text": "x" * 4000}
        entries.append(seal(entry, SPOKE_KEY))
        prev = entries[-1].hash
    token = chunk_of(entries)
    assert len(token) > 128_000 * 4 // 3
    assert opened(token).last_seq == 40


def test_an_empty_chunk_cannot_be_made():
    with pytest.raises(ValueError, match="at least one entry"):
        chunk_of([])


def test_chunk_site_reads_the_claimed_site_or_none():
    assert chunk_site(signed(payload_of(CHAIN[:1], site="SPK2"))) == "SPK2"
    for token in ("", "garbage", "a.b.c", f"x.{b64(b'[1, 2]')}.y", f"x.{b64(b'{}')}.y"):
        assert chunk_site(token) is None


# --- chunks: each refusal -------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "a.b.c",
        f"{b64(b'[1, 2]')}.{b64(b'{}')}.sig",
        f"{b64(b'not json')}.e30.sig",
        f"{b64(bytes([0xFF, 0xFE]))}.e30.sig",
        "é.e30.sig",
    ],
)
def test_what_is_not_a_compact_jws_is_unreadable(token):
    message = refusal(token, ChunkUnreadable)
    assert message == "The body is not a signed batch-record chunk (not a compact JWS)."


def test_a_jws_of_another_type_or_algorithm_is_unreadable():
    token = signed(payload_of(CHAIN[:2]), typ="JWT")
    assert refusal(token, ChunkUnreadable) == (
        "The body is a JWS but not a batch-record chunk (type 'JWT')."
    )
    real = chunk_of(CHAIN[:2])
    header = b64(
        json.dumps(
            {"alg": "EdDSA", "kid": SPOKE_KEY.public.key_id, "typ": CHUNK_MEDIA_TYPE}
        ).encode()
    )
    refusal(header + real[real.index(".") :], ChunkUnreadable)
    refusal(signed(payload_of(CHAIN[:2]), typ=None), ChunkUnreadable)


def test_a_chunk_signed_with_another_key_is_tampered():
    message = refusal(chunk_of(CHAIN[:2], key=STRANGER), ChunkTampered)
    assert message == (
        f"The chunk is signed with key {STRANGER.public.key_id!r}, not the key {SITE} "
        "enrolled with."
    )
    # Claiming the spoke's key id does not help: the signature does not verify with it.
    forged = signed(payload_of(CHAIN[:2]), key=STRANGER, kid=SPOKE_KEY.public.key_id)
    assert refusal(forged, ChunkTampered).startswith("The chunk's signature does not verify")


def test_a_chunk_whose_signature_part_is_replaced_is_tampered():
    token = chunk_of(CHAIN[:2])
    other = chunk_of(CHAIN[:3])
    spliced = token[: token.rindex(".")] + other[other.rindex(".") :]
    assert refusal(spliced, ChunkTampered).startswith("The chunk's signature does not verify")
    assert refusal(token[: token.rindex(".")] + ".", ChunkTampered).startswith(
        "The chunk's signature does not verify"
    )


TOKEN = chunk_of(CHAIN[:3])


@settings(max_examples=400, database=None, deadline=None)
@given(position=st.integers(0, len(TOKEN) - 1), mask=st.integers(1, 127))
def test_flipping_any_byte_of_a_chunk_is_refused_as_unreadable_or_tampered(position, mask):
    flipped = chr(ord(TOKEN[position]) ^ mask)
    altered = TOKEN[:position] + flipped + TOKEN[position + 1 :]
    with pytest.raises((ChunkUnreadable, ChunkTampered)):
        opened(altered)


@settings(max_examples=200, database=None, deadline=None)
@given(
    position=st.integers(0, len(TOKEN) - 1),
    replacement=st.sampled_from(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="
    ),
)
def test_replacing_any_character_of_a_chunk_by_a_base64url_one_is_refused(position, replacement):
    assume(TOKEN[position] != replacement)
    altered = TOKEN[:position] + replacement + TOKEN[position + 1 :]
    with pytest.raises((ChunkUnreadable, ChunkTampered)):
        opened(altered)


def test_a_chunk_sent_as_another_site_is_tampered():
    token = chunk_of(CHAIN[:2])
    with pytest.raises(ChunkTampered) as caught:
        open_chunk(token, SPOKE_KEY.public, "SPK2")
    assert caught.value.message == "The chunk says it comes from SPK1, but it was sent as SPK2."


def test_an_entry_of_another_batch_or_site_is_tampered():
    other_batch = payload_of(CHAIN[:3])
    other_batch["entries"][1]["body"]["batch"] = "another-batch"
    message = "Entry 2 of the chunk belongs to another batch or site."
    assert refusal(signed(other_batch), ChunkTampered) == message
    # Whole entries sealed (validly) for another site, in a chunk that says SPK1.
    elsewhere = chain(3, site="SPK2")
    assert refusal(signed(payload_of([CHAIN[0], *elsewhere[1:]])), ChunkTampered) == message
    assert refusal(signed(payload_of(CHAIN[:2], batch="another-batch")), ChunkTampered) == (
        "Entry 1 of the chunk belongs to another batch or site."
    )


def test_entries_that_are_not_consecutive_links_are_tampered():
    skipping = [CHAIN[0], CHAIN[1], CHAIN[3]]
    assert refusal(signed(payload_of(skipping)), ChunkTampered) == (
        "Entries 2 and 4 of the chunk are not consecutive links of one chain."
    )
    # Consecutive numbers, but entry 3 belongs to another chain (its prev is not entry 2).
    mixed = [CHAIN[0], CHAIN[1], chain(3, n=1)[2]]
    assert refusal(signed(payload_of(mixed)), ChunkTampered) == (
        "Entries 2 and 3 of the chunk are not consecutive links of one chain."
    )
    reordered = [CHAIN[1], CHAIN[0]]
    refusal(signed(payload_of(reordered)), ChunkTampered)


def test_an_entry_edited_with_its_hash_unchanged_is_tampered():
    payload = payload_of(CHAIN[:3])
    payload["entries"][1]["body"]["payload"]["value"] = 999
    assert refusal(signed(payload), ChunkTampered) == (
        f"Entry 2 of batch {BATCH} does not match its hash: it was edited."
    )


def test_an_entry_not_signed_by_the_spoke_is_tampered():
    payload = payload_of(CHAIN[:3])
    payload["entries"][2]["signature"] = STRANGER.sign(CHAIN[2].hash.encode("ascii"))
    expected = f"Entry 3 of batch {BATCH} does not carry {SITE}'s signature."
    assert refusal(signed(payload), ChunkTampered) == expected
    # Edited and re-hashed (the last entry, so no link breaks): the old signature fails.
    rehashed = payload_of(CHAIN[:3])
    edited = copy.deepcopy(dict(CHAIN[2].body))
    edited["payload"]["value"] = 999
    rehashed["entries"][2] = {
        "body": edited,
        "hash": seal(edited, STRANGER).hash,
        "signature": CHAIN[2].signature,
    }
    assert refusal(signed(rehashed), ChunkTampered) == expected
    # A whole chain sealed by another key inside a chunk the spoke's key signed.
    assert refusal(signed(payload_of(chain(2, key=STRANGER))), ChunkTampered) == (
        f"Entry 1 of batch {BATCH} does not carry {SITE}'s signature."
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"not json at all",
        b"[1, 2, 3]",
        b'"a string"',
        payload_of(CHAIN[:1], type="bundle"),
        payload_of(CHAIN[:1], format=2),
        payload_of(CHAIN[:1], entries=[]),
        payload_of(CHAIN[:1], entries={"1": "x"}),
        payload_of(CHAIN[:1], site=None),
        payload_of(CHAIN[:1], batch=7),
        payload_of(CHAIN[:1], issued_at=None),
        {k: v for k, v in payload_of(CHAIN[:1]).items() if k != "entries"},
    ],
    ids=lambda p: p[:12].decode() if isinstance(p, bytes) else None,
)
def test_a_payload_of_another_format_is_unreadable(payload):
    assert refusal(signed(payload), ChunkUnreadable) == (
        "The chunk's content is not a batch-record chunk of a format this hub understands."
    )


def _entry_with(**changes: Any) -> dict[str, Any]:
    item = {"body": copy.deepcopy(dict(CHAIN[0].body)), "hash": CHAIN[0].hash}
    item["signature"] = CHAIN[0].signature
    for key, value in changes.items():
        if key in item:
            item[key] = value
        elif value is None:
            del item["body"][key]
        else:
            item["body"][key] = value
    return item


@pytest.mark.parametrize(
    "item",
    [
        "just a string",
        {"hash": CHAIN[0].hash, "signature": CHAIN[0].signature},
        _entry_with(body=["not", "a", "dict"]),
        _entry_with(hash=None),
        _entry_with(signature=12),
        _entry_with(seq=True),
        _entry_with(seq=0),
        _entry_with(seq="1"),
        _entry_with(prev=None),
        _entry_with(kind=None),
        _entry_with(at=1),
        _entry_with(actor="olivia"),
        _entry_with(payload=[1]),
        # The hub stores each field in its own column: a field more or less could not be
        # stored as it was hashed (a newer spoke's field would make the hub's copy unverifiable).
        _entry_with(note="a field this hub does not know"),
        _entry_with(terminal=None),  # removed: every entry names its terminal (or null)
        _entry_with(actor={"user_id": None, "username": "olivia"}),
        _entry_with(actor={"user_id": 7, "username": "olivia", "name": "Olivia"}),
        _entry_with(seq=2**53),
    ],
)
def test_an_entry_that_is_not_a_ledger_entry_is_unreadable(item):
    assert refusal(signed(payload_of(CHAIN[:1], entries=[item])), ChunkUnreadable) == (
        "An entry of the chunk is not a ledger entry of this format (body with exactly the "
        "ledger's fields, hash, signature)."
    )


def test_a_value_canonical_json_cannot_write_is_unreadable_not_a_crash():
    item = _entry_with(payload={"count": 2**60})
    assert refusal(signed(payload_of(CHAIN[:1], entries=[item])), ChunkUnreadable) == (
        f"Entry 1 of batch {BATCH} holds a value canonical JSON cannot write."
    )


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"type": NaN}'])
def test_absurd_json_in_a_transfer_file_is_refused_not_a_crash(raw):
    with pytest.raises(ChunkUnreadable):
        read_transfer_file(raw)


def test_a_chunk_over_the_size_limit_is_refused_before_anything_is_decoded():
    assert refusal("A" * (MAX_CHUNK_BYTES + 1), ChunkUnreadable) == (
        "The chunk is larger than 8 MB."
    )


# --- continuation: what of a chunk is new ---------------------------------------------------


def chunk_from(first: int, last: int, entries: list[SealedEntry] = CHAIN):
    return opened(chunk_of(entries[first - 1 : last]))


def test_a_first_chunk_is_all_new():
    follow = continuation(chunk_from(1, 3), 0, None, {})
    assert [e.seq for e in follow.new] == [1, 2, 3]
    assert follow.duplicates == 0


def test_a_chunk_that_continues_the_hubs_copy_is_all_new():
    follow = continuation(chunk_from(4, 6), 3, HASHES[3], {})
    assert [e.seq for e in follow.new] == [4, 5, 6]
    assert follow.duplicates == 0


def test_a_chunk_the_hub_holds_entirely_is_all_duplicates():
    held = {s: HASHES[s] for s in (1, 2, 3)}
    follow = continuation(chunk_from(1, 3), 5, HASHES[5], held)
    assert (follow.new, follow.duplicates) == ((), 3)


def test_an_overlapping_chunk_yields_the_duplicates_and_the_new_tail():
    held = {2: HASHES[2], 3: HASHES[3]}
    follow = continuation(chunk_from(2, 6), 3, HASHES[3], held)
    assert [e.seq for e in follow.new] == [4, 5, 6]
    assert follow.duplicates == 2


def test_a_chunk_that_leaves_a_gap_is_refused_with_where_the_hub_ends():
    with pytest.raises(ChunkGap) as caught:
        continuation(chunk_from(5, 6), 3, HASHES[3], {})
    gap = caught.value
    assert (gap.last_seq, gap.last_hash, gap.http_status, gap.code) == (
        3,
        HASHES[3],
        409,
        "chain-gap",
    )
    assert gap.message == (
        f"The chunk starts at entry 5 of batch {BATCH}, but the hub holds entries up to 3: "
        "entries in between are missing."
    )
    assert gap.what_to_do == "Send the batch's entries from 4 on."
    with pytest.raises(ChunkGap) as caught:
        continuation(chunk_from(2, 3), 0, None, {})
    assert (caught.value.last_seq, caught.value.last_hash) == (0, None)


def test_a_first_new_entry_that_does_not_link_to_the_hubs_last_hash_is_a_gap():
    forked = chain(6, n=1)  # the same seqs, other content: entry 4's prev is not HASHES[3]
    with pytest.raises(ChunkGap) as caught:
        continuation(chunk_from(4, 6, forked), 3, HASHES[3], {})
    assert (caught.value.last_seq, caught.value.last_hash) == (3, HASHES[3])


def test_a_chunk_that_contradicts_a_held_entry_is_a_conflict():
    held = {1: HASHES[1], 2: "f" * 64, 3: HASHES[3]}
    with pytest.raises(ChunkConflict) as caught:
        continuation(chunk_from(1, 4), 3, HASHES[3], held)
    assert caught.value.message == (
        f"Entry 2 of batch {BATCH} differs from the entry 2 the hub already holds: the spoke's "
        "chain was forked or rewritten."
    )
    assert (caught.value.http_status, caught.value.code) == (409, "chain-conflict")
    forked = chain(4, n=1)
    with pytest.raises(ChunkConflict):
        continuation(chunk_from(1, 4, forked), 3, HASHES[3], {s: HASHES[s] for s in (1, 2, 3)})
    # An entry the hub should hold but whose hash it cannot show is no duplicate either.
    with pytest.raises(ChunkConflict):
        continuation(chunk_from(1, 2), 3, HASHES[3], {1: HASHES[1]})


# --- signed requests ------------------------------------------------------------------------


def headers(
    method: str = "POST",
    path: str = PATH,
    body_bytes: bytes = b"chunk",
    *,
    key: SiteKey = SPOKE_KEY,
    at=NOW,
    nonce: str = NONCE,
    site: str = SITE,
) -> dict[str, str]:
    return sign_request(method, path, body_bytes, site=site, key=key, at=at, nonce=nonce)


def check(
    received: dict[str, str],
    method: str = "POST",
    path: str = PATH,
    body_bytes: bytes = b"chunk",
    *,
    now=NOW,
) -> None:
    signed_request = SignedRequest.from_headers(received)
    check_request(
        signed_request,
        method,
        path,
        body_bytes,
        key=SPOKE_KEY.public,
        now=now,
        skew_seconds=300,
    )


def unauthenticated(action) -> str:
    with pytest.raises(RequestUnauthenticated) as caught:
        action()
    assert (caught.value.http_status, caught.value.code) == (401, "unauthenticated")
    return caught.value.message


def test_a_signed_request_checks_out():
    sent = headers()
    assert sent == {
        "X-MES-Site": SITE,
        "X-MES-Key-Id": SPOKE_KEY.public.key_id,
        "X-MES-Timestamp": "2026-11-21T09:00:00.000000Z",
        "X-MES-Nonce": NONCE,
        "X-MES-Signature": sent[SIGNATURE_HEADER],
    }
    check(sent)
    check(sent, now=NOW + timedelta(seconds=300))
    check(sent, now=NOW - timedelta(seconds=300))
    check(sent, "post")  # the method is compared in capitals
    check(headers("GET", "/api/v1/sync/bundles?x=1", b""), "GET", "/api/v1/sync/bundles?x=1", b"")
    parsed = SignedRequest.from_headers(sent)
    assert (parsed.site, parsed.key_id, parsed.nonce) == (SITE, SPOKE_KEY.public.key_id, NONCE)


@pytest.mark.parametrize("missing", REQUEST_HEADERS)
def test_a_request_missing_any_signature_header_is_refused(missing):
    sent = headers()
    del sent[missing]
    assert unauthenticated(lambda: check(sent)) == (
        f"The request is not signed (missing {missing})."
    )
    sent[missing] = ""
    assert unauthenticated(lambda: check(sent)).endswith(f"(missing {missing}).")


def test_all_headers_missing_are_named():
    assert unauthenticated(lambda: SignedRequest.from_headers({})) == (
        "The request is not signed (missing " + ", ".join(REQUEST_HEADERS) + ")."
    )


@pytest.mark.parametrize(
    "nonce",
    ["a" * 15, "a" * 65, "sixteen-chars!!!", "with space in it 123", "a/b" * 8, "é" * 16, "٣" * 16],
)
def test_a_request_with_a_malformed_nonce_is_refused(nonce):
    sent = headers(nonce=nonce)
    assert unauthenticated(lambda: check(sent)) == (
        "The request's nonce must be 16-64 characters of A-Z, a-z, 0-9, '-' and '_'."
    )


@pytest.mark.parametrize("nonce", ["a" * 16, "Z9" * 32, "ab_cd-ef_gh-ij_kl", "-" * 20])
def test_a_nonce_of_16_to_64_letters_digits_dashes_or_underscores_is_accepted(nonce):
    check(headers(nonce=nonce))


def test_a_request_signed_with_another_key_is_refused():
    message = unauthenticated(lambda: check(headers(key=STRANGER)))
    assert message == (
        f"The request is signed with key {STRANGER.public.key_id!r}, not the key {SITE} "
        "enrolled with."
    )
    forged = headers(key=STRANGER)
    forged["X-MES-Key-Id"] = SPOKE_KEY.public.key_id
    assert unauthenticated(lambda: check(forged)).startswith(
        "The request's signature does not verify"
    )


def test_a_stale_or_early_request_is_refused_naming_ahead_or_behind():
    ahead = unauthenticated(lambda: check(headers(at=NOW + timedelta(seconds=301))))
    assert ahead == (
        "The request's timestamp is 301 s ahead of the hub's clock (at most 300 s are accepted)."
    )
    behind = unauthenticated(lambda: check(headers(at=NOW - timedelta(seconds=900))))
    assert behind == (
        "The request's timestamp is 900 s behind the hub's clock (at most 300 s are accepted)."
    )


@pytest.mark.parametrize("timestamp", ["2026-11-21T09:00:00Z", "yesterday", "2026-11-21 09:00"])
def test_a_request_timestamp_not_in_utc_text_is_refused(timestamp):
    sent = headers()
    sent[TIME_HEADER] = timestamp
    assert unauthenticated(lambda: check(sent)) == (
        f"The request's timestamp {timestamp!r} is not UTC time (YYYY-MM-DDTHH:MM:SS.ffffffZ)."
    )


ALTERATIONS = {
    "method": lambda h: check(h, "PUT"),
    "path": lambda h: check(h, "POST", "/api/v1/sync/bundles"),
    "query": lambda h: check(h, "POST", PATH + "?site=SPK2"),
    "body": lambda h: check(h, "POST", PATH, b"chunk!"),
    "timestamp": lambda h: check({**h, TIME_HEADER: "2026-11-21T09:00:01.000000Z"}),
    "nonce": lambda h: check({**h, NONCE_HEADER: "another-nonce-of-22-ch"}),
    "site": lambda h: check({**h, SITE_HEADER: "SPK2"}),
    "signature": lambda h: check({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER][::-1]}),
}


@pytest.mark.parametrize("altered", ALTERATIONS)
def test_altering_any_signed_part_of_a_request_is_refused(altered):
    sent = headers()
    check(sent)  # as sent, it checks out
    assert unauthenticated(lambda: ALTERATIONS[altered](sent)) == (
        "The request's signature does not verify: it was altered or not made by the spoke."
    )


# --- transfer files -------------------------------------------------------------------------


def test_a_transfer_file_round_trips():
    tokens = (chunk_of(CHAIN[:2]), chunk_of(CHAIN[2:4]))
    data = transfer_file(
        source=SITE, target="HUB", created_at=NOW, chunks=tokens, bundles=["b.u.n"], acks="a.c.k"
    )
    read = read_transfer_file(data)
    assert (read.source, read.target, read.created_at) == (SITE, "HUB", utc_text(NOW))
    assert (read.chunks, read.bundles, read.acks) == (tokens, ("b.u.n",), "a.c.k")
    empty = read_transfer_file(transfer_file(source="HUB", target=None, created_at=NOW))
    assert (empty.target, empty.chunks, empty.bundles, empty.acks) == (None, (), (), None)
    assert [opened(t).last_seq for t in read.chunks] == [2, 4]


def _file(**changes: Any) -> bytes:
    data = json.loads(transfer_file(source=SITE, target="HUB", created_at=NOW, chunks=["x"]))
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        bytes([0xFF, 0xFE, 0x00]),
        b"[]",
        b'"mes-transfer"',
        _file(type="mes-backup"),
        _file(format=2),
        _file(chunks="x"),
        _file(bundles=None),
        _file(chunks=[1]),
        _file(bundles=[{"token": "x"}]),
    ],
)
def test_what_is_not_a_transfer_file_is_refused(data):
    with pytest.raises(ChunkUnreadable) as caught:
        read_transfer_file(data)
    assert caught.value.message == "The file is not a transfer file written by 'mes export'."


# --- the hub's acknowledgements (carried by file) -------------------------------------------

HEADS = {"batch-a": (3, "a" * 64), "batch-b": (12, "b" * 64)}


def acks(key: SiteKey = HUB_KEY, site: str = SITE) -> str:
    return make_acks(HEADS, hub="HUB", site=site, key=key, at=NOW)


def test_acknowledgements_round_trip():
    assert open_acks(acks(), HUB_KEY.public, SITE) == HEADS
    assert (
        open_acks(make_acks({}, hub="HUB", site=SITE, key=HUB_KEY, at=NOW), HUB_KEY.public, SITE)
        == {}
    )


def acks_refusal(token: str, site: str = SITE) -> str:
    with pytest.raises(ChunkTampered) as caught:
        open_acks(token, HUB_KEY.public, site)
    return caught.value.message


def test_acknowledgements_signed_by_another_key_are_refused():
    assert acks_refusal(acks(key=STRANGER)) == (
        "The acknowledgements are not signed with the hub key this spoke pinned."
    )
    forged = make_acks(HEADS, hub="HUB", site=SITE, key=STRANGER, at=NOW)
    header = b64(
        json.dumps(
            {"alg": "Ed25519", "kid": HUB_KEY.public.key_id, "typ": "mes-sync-acks+jws"}
        ).encode()
    )
    assert acks_refusal(header + forged[forged.index(".") :]) == (
        "The hub's acknowledgements do not verify or are not for this site."
    )


def test_acknowledgements_for_another_site_are_refused():
    assert acks_refusal(acks(), site="SPK2") == (
        "The hub's acknowledgements do not verify or are not for this site."
    )


def test_tampered_or_malformed_acknowledgements_are_refused():
    token = acks()
    middle = token.index(".") + 10
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    assert acks_refusal(altered).startswith("The hub's acknowledgements do not verify")
    assert acks_refusal(chunk_of(CHAIN[:1])).startswith("The acknowledgements are not signed")
    for payload in (
        {"type": "sync-acks", "site": SITE, "heads": [1, 2]},
        {"type": "sync-acks", "site": SITE, "heads": {"b": {"last_seq": "x", "last_hash": "h"}}},
        {"type": "sync-acks", "site": SITE},
        {"type": "batch-chunk", "site": SITE, "heads": {}},
        [1, 2],
    ):
        token = signed(payload, key=HUB_KEY, typ="mes-sync-acks+jws")
        assert acks_refusal(token).startswith("The hub's acknowledgements do not verify")
    with pytest.raises(ChunkUnreadable):
        open_acks("garbage", HUB_KEY.public, SITE)


# --- enrollment codes -----------------------------------------------------------------------


def test_an_enrollment_code_is_kept_as_the_sha256_of_its_letters_and_digits():
    expected = hashlib.sha256(b"ABCDEFGHJKLM").hexdigest()
    for typed in ("ABCD-EFGH-JKLM", "abcd efgh jklm", "  abcdEFGH-jklm ", "ABCDEFGHJKLM"):
        assert enrollment_code_hash(typed) == expected
    assert enrollment_code_hash("ABCD-EFGH-JKLN") != expected


@settings(max_examples=200, database=None, deadline=None)
@given(
    code=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=1, max_size=24),
    separators=st.lists(st.sampled_from(["-", " ", "--", "\t"]), max_size=24),
    lower=st.lists(st.booleans(), max_size=24),
)
def test_dashes_spaces_and_case_never_change_an_enrollment_codes_hash(code, separators, lower):
    typed = ""
    for index, char in enumerate(code):
        typed += char.lower() if index < len(lower) and lower[index] else char
        if index < len(separators):
            typed += separators[index]
    assert enrollment_code_hash(typed) == enrollment_code_hash(code)


# --- the refusals' stable codes and statuses ------------------------------------------------


def test_each_sync_refusal_has_its_stable_code_and_http_status():
    table = {
        SyncRefused: ("sync-refused", 422),
        EnrollmentRefused: ("enrollment-refused", 403),
        RequestUnauthenticated: ("unauthenticated", 401),
        RequestReplayed: ("replayed", 409),
        SpokeNotActive: ("spoke-not-active", 403),
        ChunkUnreadable: ("chunk-unreadable", 422),
        ChunkTampered: ("chunk-tampered", 422),
        ChunkGap: ("chain-gap", 409),
        ChunkConflict: ("chain-conflict", 409),
        RecipeNotDeployed: ("recipe-not-deployed", 422),
        TooLarge: ("too-large", 413),
    }
    assert {cls: (cls.code, cls.http_status) for cls in table} == table
    assert len({code for code, _ in table.values()}) == len(table)
