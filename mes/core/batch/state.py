"""What a batch is now: its phases, values, scans, deviations and signatures, as its ledger says.

Plain dataclasses the aggregate fills while it applies entries; also who acts (:class:`Operator`),
what the site knows of a scanned lot or instrument, and what an action did (:class:`Outcome`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mes.core.audit import Actor
from mes.core.batch.machines import BatchStatus, DeviationStatus, PhaseStatus
from mes.core.errors import (
    MesError,
)
from mes.core.ledger import GENESIS, SealedEntry


@dataclass(frozen=True)
class Operator:
    """A person acting on a batch: who, with which roles, and whether trained on the recipe.

    ``qualified`` is current training on the batch's recipe version, decided by the caller at
    the time of acting. ``in_session_of``: for a witness who signs in place, the logged-in user
    at whose terminal and session the witness signs (None when the person is that user).
    """

    actor: Actor
    roles: frozenset[str]
    qualified: bool
    in_session_of: Actor | None = None

    @property
    def user_id(self) -> str | None:
        """Their user ID (the internal id)."""
        return self.actor.user_id


@dataclass(frozen=True)
class LotInfo:
    """A material lot as registered at the site when it is scanned."""

    lot_number: str
    material_code: str
    material_name: str
    expiry: date
    status: str  # quarantine | released | rejected


@dataclass(frozen=True)
class EquipmentInfo:
    """An instrument as registered at the site when it is scanned."""

    equipment_id: str
    equipment_class: str
    name: str
    status: str  # in_service | out_of_service
    clean: bool
    calibration_due: date | None
    in_use_by: str | None  # the batch number using it now, if any


# --- state ------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """A value as recorded: by whom, when, in which entry; corrections keep the ones before."""

    value: Any
    status: str | None
    seq: int
    at: str
    by: Actor
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier values, oldest first
    corrections: int = 0  # how many of the earlier values were corrected after signing


@dataclass
class PhaseState:
    """One phase of one batch."""

    id: str
    status: PhaseStatus = PhaseStatus.LOCKED
    started_at: str | None = None
    started_by: Actor | None = None
    performed_at: str | None = None
    performed_by: Actor | None = None
    verified_at: str | None = None
    verified_by: Actor | None = None
    values: dict[str, Recorded] = field(default_factory=dict)
    materials: dict[str, dict[str, Any]] = field(default_factory=dict)  # material code → use
    equipment: dict[int, dict[str, Any]] = field(default_factory=dict)  # slot → use
    identity: dict[str, dict[str, Any]] = field(default_factory=dict)  # check id → last scan
    kinds: dict[str, dict[Any, Any]] = field(default_factory=dict)  # kinds added since: slot → what
    refused_scans: int = 0
    contributors: set[str] = field(default_factory=set)  # user ids who recorded or signed
    data: list[str] = field(default_factory=list)  # hashes of the phase's data entries
    corrections: int = 0
    signatures: list[dict[str, Any]] = field(default_factory=list)  # manifestations, in order
    last_seq: int = 0
    last_at: str | None = None
    last_by: Actor | None = None
    last_what: str = ""


@dataclass
class DeviationState:
    """A deviation raised in this batch."""

    id: str
    number: int
    phase: str | None
    category: str
    description: str
    raised_at: str
    raised_by: Actor
    seq: int
    value_id: str | None = None
    comment: str | None = None
    commented_by: Actor | None = None
    commented_at: str | None = None
    status: DeviationStatus = DeviationStatus.OPEN
    acknowledged_at: str | None = None
    acknowledged_by: Actor | None = None
    signature: dict[str, Any] | None = None


@dataclass
class BedsideRecord:
    """What the clinic recorded after release: identity checks at the bedside and the infusion.

    ``last_check`` is the last identity check (matched or not): the chain of identity is closed
    by the last one, and the infusion starts only after a matching one.
    """

    checks: int = 0
    mismatches: int = 0
    last_check: dict[str, Any] | None = None  # {"seq", "at", "by", "matched", "scans", …}
    timer: dict[str, Any] | None = None  # {"label", "starts_at", "from", "deadline", "max_minutes"}
    first_match_at: str | None = None  # the first matching check: the product at the bedside
    infusion_started_at: str | None = None
    infusion_started_by: Actor | None = None
    infusion_ended_at: str | None = None
    infusion_ended_by: Actor | None = None


@dataclass
class BatchState:
    """The whole batch as its ledger says it is now."""

    id: str
    number: str
    site: str
    recipe: dict[str, Any]
    chain_of_identity: dict[str, Any]
    created_at: str
    created_by: Actor
    status: BatchStatus = BatchStatus.CREATED
    started_at: str | None = None
    completed_at: str | None = None
    status_reason: str | None = None
    phases: dict[str, PhaseState] = field(default_factory=dict)
    deviations: dict[str, DeviationState] = field(default_factory=dict)
    signatures: list[dict[str, Any]] = field(default_factory=list)  # of the batch as a whole
    bedside: BedsideRecord = field(default_factory=BedsideRecord)
    # The chain of custody: each transfer's record with its seq and both sides' signatures.
    custody: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0
    last_hash: str = GENESIS
    last_at: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What an action did: the entries appended, and a refusal to report *after* they are kept.

    A mismatching identity label, for example, is recorded (with its deviation) and the phase
    is then blocked: the caller commits the entries and reports the refusal.
    """

    entries: tuple[SealedEntry, ...]
    refusal: MesError | None = None
