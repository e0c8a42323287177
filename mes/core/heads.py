"""Signed and anchored chain heads: deleting the newest entries of a chain is detected.

A chain's head (its last seq and hash) is what lets verification notice entries deleted at the
end. Kept as a plain row beside the chain, a database superuser could delete the newest entries
and rewrite the row to match. So:

- **Signed heads.** Each time a head moves, the site that writes it signs ``(chain, seq, hash,
  time)`` with its key, in the same transaction (:func:`sign_head`). A head row rewritten
  without the key fails :func:`head_signed_by`.
- **Anchors outside the database.** A superuser can still put back an *older* signed head
  together with deleting the entries after it. Heads are therefore also kept where the site's
  database superuser cannot reach: the hub's signed acknowledgement of a spoke's batch head (kept
  by the spoke), the hub's countersignature of a spoke's audit head (kept by both), and the
  hub's own audit head in an append-only checkpoint file. An :class:`Anchor` is such a kept
  head; :func:`verify_anchored` checks the chain against its signed head and every anchor and
  names the missing range ("entries 50–50 missing: the hub HUB acknowledged seq 50 at …").

(21 CFR 11.10(a): detect altered records; 11.10(c): protect records; 11.10(e): audit trail.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mes.core.canonical import canonical_json
from mes.core.clock import utc_text
from mes.core.errors import ChainBroken, SyncRefused
from mes.core.keys import SiteKey, SitePublicKey
from mes.core.ledger import SealedEntry, verify_chain

HEAD_FORMAT = "MES-HEAD-1"
COUNTERSIGN_FORMAT = "MES-COUNTERSIGN-1"


class AuditHeadRefused(SyncRefused):
    """A spoke's audit head the hub will not countersign.

    It is not signed by the spoke, not of its audit chain, or behind (or other than) the head
    the hub countersigned before: the spoke's audit chain went backwards.
    """

    http_status = 422
    code = "audit-head-refused"


def audit_chain(site: str) -> str:
    """The identity of a site's audit chain (what its head signature names)."""
    return f"audit:{site}"


def batch_chain(batch_id: str) -> str:
    """The identity of a batch's ledger."""
    return f"batch:{batch_id}"


def review_chain(batch_id: str) -> str:
    """The identity of a batch's review chain (sealed by the hub)."""
    return f"review:{batch_id}"


@dataclass(frozen=True)
class SignedHead:
    """A chain's head as its holder signed it: which chain, how far, when, and the signature."""

    chain: str
    seq: int
    hash: str | None  # None only for an empty chain (seq 0)
    at: str | None
    signature: str | None

    def as_dict(self) -> dict[str, Any]:
        """As it travels (sync) and is written to the checkpoint file."""
        return {
            "chain": self.chain,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SignedHead:
        """Read a head sent or written by :meth:`as_dict`; ValueError if it is not one."""
        seq = data.get("seq") if isinstance(data, dict) else None
        if isinstance(seq, float) and seq.is_integer() and abs(seq) <= 2**53:
            data = {**data, "seq": int(seq)}  # 3.0 is an integer in JSON Schema
        ok = (
            isinstance(data, dict)
            and isinstance(data.get("chain"), str)
            and len(data["chain"]) <= 80
            and type(data.get("seq")) is int
            and 0 <= data["seq"] <= 2**53 - 1
            and isinstance(data.get("hash"), str)
            and len(data["hash"]) == 64
            and isinstance(data.get("at"), str)
            and len(data["at"]) <= 40
            and isinstance(data.get("signature"), str)
            and len(data["signature"]) <= 200
        )
        if not ok:
            raise ValueError("not a signed chain head (chain, seq, hash, at, signature)")
        return cls(data["chain"], data["seq"], data["hash"], data["at"], data["signature"])


def head_message(chain: str, seq: int, last_hash: str | None, at: str | None) -> bytes:
    """The exact bytes a head signature covers (one field per line)."""
    return "\n".join([HEAD_FORMAT, chain, str(seq), last_hash or "", at or ""]).encode("utf-8")


def sign_head(key: SiteKey, chain: str, seq: int, last_hash: str | None, at: str) -> SignedHead:
    """The holder's signature of a chain head that has just moved (same transaction)."""
    return SignedHead(chain, seq, last_hash, at, key.sign(head_message(chain, seq, last_hash, at)))


def head_signed_by(head: SignedHead, key: SitePublicKey) -> bool:
    """True when the head carries ``key``'s signature of exactly its chain, seq, hash and time."""
    if head.signature is None:
        return False
    return key.verifies(head_message(head.chain, head.seq, head.hash, head.at), head.signature)


def countersign_message(head: SignedHead, countersigned_at: str) -> bytes:
    """What the hub signs when it countersigns a spoke's signed head: the head and its own time."""
    return "\n".join(
        [COUNTERSIGN_FORMAT, canonical_json(head.as_dict()).decode("utf-8"), countersigned_at]
    ).encode("utf-8")


def countersign(key: SiteKey, head: SignedHead, at: datetime) -> tuple[str, str]:
    """The hub's countersignature of a spoke's head: ``(countersigned_at, signature)``."""
    when = utc_text(at)
    return when, key.sign(countersign_message(head, when))


def countersigned_by(
    head: SignedHead, countersigned_at: str, signature: str, key: SitePublicKey
) -> bool:
    """True when ``signature`` is ``key``'s countersignature of ``head`` at ``countersigned_at``."""
    return key.verifies(countersign_message(head, countersigned_at), signature)


def went_backwards(held: SignedHead, offered: SignedHead) -> str | None:
    """Why ``offered`` cannot follow the head ``held`` earlier for the same chain (None: it can).

    A chain only grows: a later head is further on, or the very same head.
    """
    if offered.seq < held.seq:
        return (
            f"it reports entry {offered.seq} as its last, but entry {held.seq} was countersigned "
            f"at {held.at}: entries {offered.seq + 1}–{held.seq} were removed"
        )
    if offered.seq == held.seq and offered.hash != held.hash:
        return f"its entry {held.seq} is not the one countersigned at {held.at}: it was rewritten"
    return None


# --- verification against the signed head and the anchors -----------------------------------


@dataclass(frozen=True)
class Anchor:
    """A head kept outside the chain's own database, and who vouches for it, in words.

    ``claim`` completes "the chain must reach …", e.g. "the hub HUB acknowledged seq 50 at …".
    """

    seq: int
    hash: str
    claim: str


@dataclass(frozen=True)
class AnchoredVerification:
    """What a verification established: entries, the signed head, the anchors reached."""

    count: int
    head_seq: int
    signer: str
    anchors: tuple[Anchor, ...]

    def summary(self) -> str:
        """One line for people: "49 entries; head 49 signed by HUB; anchored: …"."""
        text = f"{self.count} entries; head {self.head_seq} signed by {self.signer}"
        if self.anchors:
            return text + "; anchored: " + "; ".join(a.claim for a in self.anchors)
        return text + "; not yet anchored outside this database"


def verify_anchored(
    entries: Iterable[SealedEntry],
    entry_key: SitePublicKey,
    head: SignedHead,
    head_key: SitePublicKey,
    signer: str,
    anchors: Sequence[Anchor] = (),
) -> AnchoredVerification:
    """Verify a chain, its signed head and every anchor; raise :class:`ChainBroken` naming why.

    Rule: every entry verifies (:func:`mes.core.ledger.verify_chain`); the chain reaches every
    anchor with the very entry the anchor names (else the missing range, or the rewritten entry,
    is named with who vouches for it); the recorded head carries ``head_key``'s signature of the
    right chain, and the chain ends exactly there.
    """
    wanted = {a.seq for a in anchors}
    seen: dict[int, str] = {}
    last: list[str] = []

    def watched() -> Iterator[SealedEntry]:
        for entry in entries:
            if entry.seq in wanted:
                seen[entry.seq] = entry.hash
            last[:] = [entry.hash]
            yield entry

    count = verify_chain(watched(), entry_key)
    for anchor in sorted(anchors, key=lambda a: -a.seq):
        if anchor.seq > count:
            raise ChainBroken(
                count + 1, f"entries {count + 1}–{anchor.seq} missing: {anchor.claim}"
            )
    for anchor in sorted(anchors, key=lambda a: a.seq):
        if anchor.seq and seen.get(anchor.seq) != anchor.hash:
            raise ChainBroken(
                anchor.seq, f"differs from the entry {anchor.claim}: the chain was rewritten"
            )
    if (head.seq or count) and not head_signed_by(head, head_key):
        raise ChainBroken(
            head.seq or count,
            f"the recorded head (entry {head.seq}) is not signed by {signer}: the head row was "
            "rewritten, or the newest entries were deleted with it",
        )
    if head.seq != count:
        raise ChainBroken(
            count + 1 if head.seq > count else head.seq + 1,
            f"the chain ends at entry {count} but the signed head names entry {head.seq}: "
            "entries at the end were deleted or added",
        )
    if count and head.hash != last[0]:
        raise ChainBroken(count, "does not match the hash of the signed head")
    return AnchoredVerification(count, head.seq, signer, tuple(a for a in anchors if a.seq))


__all__ = [
    "Anchor",
    "AnchoredVerification",
    "AuditHeadRefused",
    "SignedHead",
    "audit_chain",
    "batch_chain",
    "countersign",
    "countersigned_by",
    "head_signed_by",
    "review_chain",
    "sign_head",
    "verify_anchored",
    "went_backwards",
]
