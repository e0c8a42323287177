"""Hash chains: the tamper-evident form of the audit trail and of every batch record.

Each entry is a JSON object with a ``seq`` (1, 2, 3 … without gaps) and ``prev`` (the hash of
entry ``seq - 1``, or ``GENESIS`` for the first). Its hash is the SHA-256 of its RFC 8785
canonical JSON, and the site signs that hash with its Ed25519 key, so an entry cannot be edited,
re-hashed, inserted, deleted or reordered without :func:`verify_chain` naming it.
(21 CFR 11.10(e): secure, computer-generated audit trail; 11.10(a): detect altered records.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.canonical import content_hash
from mes.core.errors import ChainBroken
from mes.core.keys import SiteKey, SitePublicKey

GENESIS = "0" * 64


@dataclass(frozen=True)
class SealedEntry:
    """An entry as stored: its body, the hash of the body and the site's signature of it."""

    body: Mapping[str, Any]
    hash: str
    signature: str

    @property
    def seq(self) -> int:
        """Position in the chain, from 1."""
        return int(self.body["seq"])

    def as_dict(self) -> dict[str, Any]:
        """The entry as it travels and is embedded: ``{body, hash, signature}``."""
        return {"body": dict(self.body), "hash": self.hash, "signature": self.signature}


def seal(body: Mapping[str, Any], key: SiteKey) -> SealedEntry:
    """Hash and sign an entry body that already carries its ``seq`` and ``prev``."""
    digest = content_hash(dict(body))
    return SealedEntry(body=body, hash=digest, signature=key.sign(digest.encode("ascii")))


def next_link(last_seq: int, last_hash: str | None) -> tuple[int, str]:
    """The ``(seq, prev)`` pair of the entry that follows the chain's current head."""
    return last_seq + 1, last_hash or GENESIS


@dataclass(frozen=True)
class ChainHead:
    """What the site recorded as its last entry, to detect deletions at the end of the chain."""

    last_seq: int
    last_hash: str | None


def verify_chain(
    entries: Iterable[SealedEntry], public_key: SitePublicKey, head: ChainHead | None = None
) -> int:
    """Check every link and signature, in seq order; return how many entries verified.

    Raises :class:`ChainBroken` naming the first entry that is wrong and what is wrong with it.
    """
    expected_seq, expected_prev = 1, GENESIS
    count = 0
    for entry in entries:
        try:
            seq = entry.seq
        except (KeyError, TypeError, ValueError):
            seq = 0
        if seq < 1:
            raise ChainBroken(expected_seq, "has no valid sequence number: it was edited")
        if seq != expected_seq:
            if seq > expected_seq:
                raise ChainBroken(
                    expected_seq,
                    f"is missing (the next stored entry is {seq}): an entry was deleted",
                )
            raise ChainBroken(seq, "appears twice or out of order: entries were inserted")
        if content_hash(dict(entry.body)) != entry.hash:
            raise ChainBroken(seq, "its content does not match its hash: it was edited")
        if not public_key.verifies(entry.hash.encode("ascii"), entry.signature):
            raise ChainBroken(seq, "the site signature does not match: it was rewritten or forged")
        if entry.body.get("prev") != expected_prev:
            raise ChainBroken(
                seq,
                "does not follow the entry before it (prev hash differs): "
                "entries were reordered, inserted or deleted",
            )
        expected_seq, expected_prev = seq + 1, entry.hash
        count += 1
    if head is not None:
        if head.last_seq != count:
            raise ChainBroken(
                count + 1 if head.last_seq > count else head.last_seq + 1,
                f"the chain ends at entry {count} but the site recorded {head.last_seq} "
                "entries: entries at the end were deleted or added",
            )
        if count and head.last_hash != expected_prev:
            raise ChainBroken(count, "does not match the hash the site recorded as its last")
    return count
