"""The system audit trail (21 CFR 11.10(e), Annex 11 §9, §12.3-12.4).

Each create or change of users, roles, training, terminals and configuration — and each
signature and security event — is one entry of the site's hash chain (see :mod:`mes.core.ledger`):
who, what (record type and id), when (server UTC), where (site and terminal), the old and new
values, and why. Corrections and removals require a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from mes.core.clock import utc_text
from mes.core.errors import InvalidInput
from mes.core.text import free_text


class EntryKind(StrEnum):
    """What an audit entry records."""

    CHANGE = "change"  # a record was created or changed
    SIGNATURE = "signature"  # an e-signature (11.50, 11.70)
    SECURITY = "security"  # failed authentication, lockout, unlock, terminal binding


@dataclass(frozen=True)
class Actor:
    """Who acted: the authenticated user (or the system itself, for set-up)."""

    user_id: str | None
    username: str
    name: str

    def as_dict(self) -> dict[str, Any]:
        """As stored in the entry."""
        return {"user_id": self.user_id, "username": self.username, "name": self.name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actor:
        """As read back from an entry (inverse of :meth:`as_dict`)."""
        return cls(user_id=data.get("user_id"), username=data["username"], name=data["name"])


SYSTEM = Actor(user_id=None, username="system", name="System")


def require_reason(reason: str | None, what: str) -> str:
    """A reason is required for corrections (ALCOA+: why a record changed).

    It is free text (:func:`mes.core.text.free_text`): refused, never cut, when too long.
    """
    text = free_text(reason, "The reason")
    if not text:
        raise InvalidInput(
            f"A reason is required to {what}.", what_to_do="Say why the change is made."
        )
    return text


@dataclass(frozen=True)
class AuditEvent:
    """What one audit entry says: who acted, when and where, on which record, before → after, why."""

    at: datetime
    actor: Actor
    terminal: str | None
    kind: EntryKind
    action: str
    record_type: str
    record_id: str
    old: Mapping[str, Any] | None = None
    new: Mapping[str, Any] | None = None
    reason: str | None = None


def entry_body(*, seq: int, prev: str, site: str, event: AuditEvent) -> dict[str, Any]:
    """The content of one audit entry (``event`` at chain link ``seq``), exactly as it is sealed."""
    return {
        "seq": seq,
        "prev": prev,
        "at": utc_text(event.at),
        "site": site,
        "terminal": event.terminal,
        "actor": event.actor.as_dict(),
        "kind": event.kind.value,
        "action": event.action,
        "record": {"type": event.record_type, "id": event.record_id},
        "old": dict(event.old) if event.old is not None else None,
        "new": dict(event.new) if event.new is not None else None,
        "reason": event.reason,
    }


@dataclass(frozen=True)
class FieldChange:
    """One field's before → after, for people to read."""

    field: str
    before: Any
    after: Any


def describe_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[FieldChange]:
    """Field-by-field differences between two values, in a stable order (for the audit viewer)."""
    old = old or {}
    new = new or {}
    changes = []
    for field in sorted(set(old) | set(new)):
        before, after = old.get(field), new.get(field)
        if before != after:
            changes.append(FieldChange(field, before, after))
    return changes
