"""The entry of a batch's chains: what every entry of a batch ledger and of its review chain holds.

A batch's ledger (sealed by the spoke, :mod:`mes.core.batch`) and its review chain (sealed by the
hub, :mod:`mes.core.review`) are hash chains (:mod:`mes.core.ledger`) of entries with one body:
the batch, the entry's ``seq`` and ``prev`` hash, when (UTC text exactly as hashed), where (site
and terminal), who (the actor), what (``kind``) and its ``payload``. :class:`EntryBody` is that
body, typed; :meth:`EntryBody.as_dict` is the form that is hashed and signed, so its bytes never
change; :func:`read_sealed_entry` is the one check of an entry that arrives from outside (a
chunk from a spoke, review entries from the hub). (21 CFR 11.10(e): the audit trail records
who, when and what; ALCOA+: attributable, contemporaneous.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from mes.core.audit import Actor
from mes.core.ledger import SealedEntry

ENTRY_KEYS = frozenset(
    {"batch", "seq", "prev", "at", "site", "terminal", "actor", "kind", "payload"}
)
ACTOR_KEYS = frozenset({"user_id", "username", "name"})
SEALED_KEYS = frozenset({"body", "hash", "signature"})
MAX_SEQ = 2**53 - 1  # the largest whole number JSON carries exactly


class MalformedEntry(ValueError):
    """What arrived is not an entry of a batch's chains as :class:`EntryBody` defines it."""


@dataclass(frozen=True)
class EntryBody:
    """The body of an entry of a batch's ledger or review chain, exactly as it is sealed."""

    batch: str
    seq: int
    prev: str
    at: str  # UTC text exactly as hashed (mes.core.clock.utc_text)
    site: str
    terminal: str | None
    actor: Actor
    kind: str
    payload: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The body as it is hashed, signed, stored and sent (its canonical JSON is the entry)."""
        body = {f.name: getattr(self, f.name) for f in fields(self)}
        body["actor"] = self.actor.as_dict()
        body["kind"] = str(self.kind)  # an EntryKind is written as its plain value
        body["payload"] = dict(self.payload)
        return body

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> EntryBody:
        """The typed form of a body this site sealed or already checked (no check again)."""
        return cls(**{**body, "actor": Actor.from_dict(body["actor"])})


def _well_formed(item: Any) -> bool:
    body = item.get("body") if isinstance(item, dict) else None
    actor = body.get("actor") if isinstance(body, dict) else None
    return (
        isinstance(item, dict)
        and set(item) == SEALED_KEYS
        and isinstance(body, dict)
        and set(body) == ENTRY_KEYS
        and isinstance(actor, dict)
        and set(actor) == ACTOR_KEYS
        and isinstance(item["hash"], str)
        and len(item["hash"]) == 64
        and isinstance(item["signature"], str)
        and type(body["seq"]) is int
        and 1 <= body["seq"] <= MAX_SEQ
        and all(isinstance(body[k], str) for k in ("batch", "prev", "at", "site", "kind"))
        and isinstance(body["terminal"], str | None)
        and isinstance(actor["user_id"], str | None)
        and isinstance(actor["username"], str)
        and isinstance(actor["name"], str)
        and isinstance(body["payload"], dict)
    )


def read_sealed_entry(item: Any) -> SealedEntry:
    """A sealed entry from its JSON form ``{body, hash, signature}``, checked for form only.

    The body must hold exactly :class:`EntryBody`'s fields with their types: the stores keep each
    field in its own column, so a body with a field more or less could not be stored as it was
    hashed. Raises :class:`MalformedEntry`. Hash and signature are verified afterwards against
    the chain and the sealing site's key.
    """
    if not _well_formed(item):
        raise MalformedEntry("not an entry of a batch's chains")
    return SealedEntry(body=item["body"], hash=item["hash"], signature=item["signature"])


def read_sealed_entries(items: Iterable[Any], refusal: Exception) -> list[SealedEntry]:
    """Every item read by :func:`read_sealed_entry`; ``refusal`` (the reader's words) if one is not."""
    try:
        return [read_sealed_entry(item) for item in items]
    except MalformedEntry:
        raise refusal from None


__all__ = [
    "ACTOR_KEYS",
    "ENTRY_KEYS",
    "MAX_SEQ",
    "EntryBody",
    "MalformedEntry",
    "read_sealed_entries",
    "read_sealed_entry",
]
