"""The site an instance runs as (code, role, time zone, signing key, password policy); spokes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mes.core.keys import SiteKey, SitePublicKey
from mes.core.passwords import PasswordPolicy
from mes.core.review import ReviewSettings
from mes.core.worded import Worded, words_of


@dataclass(frozen=True)
class Site:
    """Everything a service needs to know about where it runs."""

    code: str
    name: str
    role: str  # "hub" or "spoke"
    time_zone: str
    key: SiteKey
    password_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    hub_key: SitePublicKey | None = None  # at a spoke: the pinned hub key
    review: ReviewSettings = field(default_factory=ReviewSettings)
    # The hub's append-only checkpoint file of its audit head, outside its database
    # (mes.core.heads); None where no checkpoint is kept.
    checkpoint_path: Path | None = None

    @property
    def is_spoke(self) -> bool:
        """Spokes execute batches; signing there needs a registered terminal (11.10(h))."""
        return self.role == "spoke"


class SpokeStatus(Worded):
    """At the hub: where a spoke is in its enrollment, and whether it may push."""

    AWAITING_ENROLLMENT = "awaiting_enrollment", "awaiting enrollment"
    ACTIVE = "active", "active"
    SUSPENDED = "suspended", "suspended"
    REVOKED = "revoked", "revoked"


SPOKE_STATUS_WORDS = words_of(SpokeStatus)
"""A spoke's status in a sentence: "Spoke SPK2 is awaiting enrollment"."""
