"""Batch execution: one patient's batch, run phase by phase from an installed master recipe.

Everything that happens to a batch is an **entry** of the batch's own hash chain (its ledger):
the batch created with its chain of identity, a phase started, each value recorded or
corrected, each calculation, each lot, instrument and identity label scanned (refused scans
included), each deviation and its comment, each hold and resume, and every e-signature —
performed, verified, acknowledged, corrected, reviewed, aborted. :class:`Batch` is the
aggregate: it replays a ledger into the current state and, for a new action, checks the rules
and appends the entries that record it. The database tables of batches, phases, values and
deviations are projections of that state (:meth:`Batch.projection`); replaying the ledger
rebuilds them exactly.

Two lifecycles, defined once here with ``transitions``::

    batch:  created ─start─▶ in_progress ⇄ on_hold ; in_progress ─complete─▶ complete
            created | in_progress | on_hold ─abort─▶ aborted
    phase:  locked ⇄ ready ─start─▶ in_progress ─perform─▶ performed ─verify─▶ verified
            locked | ready ─skip─▶ skipped (its condition is not met)
            performed | verified ─correct─▶ performed (verified again where the recipe asks)

The rules (21 CFR 11.10(f) sequencing, (g) authority, (i) training; ALCOA+):

* a phase becomes ready only when the recipe's ordering allows it: every phase of earlier
  operations done; in a ``sequence`` the phase before it done; in ``any_order`` no sibling in
  progress; any sibling it refers to done. "Done" means performed — and verified where the
  recipe asks for a second person — or not applicable;
* starting before a timer's minimum hold is refused with the time left; starting after its
  maximum raises a deviation;
* a value outside its action limits is recorded as entered and raises a deviation, which
  needs a comment before the phase is signed and an acknowledgement before the batch completes;
* a lot that is unknown, of another material, expired, quarantined or rejected, an instrument
  of another class, out of service, not clean, in use by another batch or past its calibration
  due date, is refused at the scan (and the refused scan is kept in the record);
* a label that does not match the chain of identity raises a deviation and blocks the phase
  until a supervisor acknowledges it;
* only people holding the phase's role and trained on the recipe version act and sign; nobody
  verifies their own work;
* a correction is a new entry naming the entry it corrects, with a reason, re-signed; the
  original value stays in the record.

Replay does not judge again: the ledger is the signed record of what the rules allowed when
it was written (training, clocks and master data have moved on since); it re-applies it,
checking only that each transition exists.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from transitions import EventData, Machine

from mes.core.access import Role
from mes.core.audit import Actor
from mes.core.clock import as_utc, parse_utc_text, utc_text
from mes.core.errors import (
    BatchIncomplete,
    BatchNotActive,
    CalibrationOverdue,
    DeviationsOpen,
    EquipmentInUse,
    EquipmentNotClean,
    EquipmentOutOfService,
    IdentityMismatch,
    InvalidInput,
    LotExpired,
    LotQuarantined,
    LotRejected,
    MesError,
    NotAuthorised,
    NotFound,
    NotQualified,
    PhaseIncomplete,
    PhaseNotInProgress,
    PhaseOutOfOrder,
    SelfVerificationForbidden,
    StaleRecord,
    TimerNotElapsed,
    UnknownEquipment,
    UnknownLot,
    WrongEquipmentClass,
    WrongMaterial,
)
from mes.core.esign import Manifestation, Meaning
from mes.core.identity import InvalidDin, normalise_identifier, parse_din, scan_matches
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, SealedEntry, seal
from mes.core.limits import (
    InvalidValue,
    LimitStatus,
    calculate,
    limit_status,
    limits_text,
    numeric,
    parse_value,
)
from mes.core.text import free_text

# --- states and entry kinds --------------------------------------------------------------


class BatchStatus(StrEnum):
    """Where a batch is in its lifecycle."""

    CREATED = "created"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETE = "complete"
    ABORTED = "aborted"


BATCH_STATUS_TITLES = {
    BatchStatus.CREATED: "Created",
    BatchStatus.IN_PROGRESS: "In progress",
    BatchStatus.ON_HOLD: "On hold",
    BatchStatus.COMPLETE: "Complete",
    BatchStatus.ABORTED: "Aborted",
}


class PhaseStatus(StrEnum):
    """Where a phase is in its lifecycle."""

    LOCKED = "locked"
    READY = "ready"
    IN_PROGRESS = "in_progress"
    PERFORMED = "performed"
    VERIFIED = "verified"
    SKIPPED = "skipped"


PHASE_STATUS_TITLES = {
    PhaseStatus.LOCKED: "Waiting",
    PhaseStatus.READY: "Ready",
    PhaseStatus.IN_PROGRESS: "In progress",
    PhaseStatus.PERFORMED: "Performed",
    PhaseStatus.VERIFIED: "Verified",
    PhaseStatus.SKIPPED: "Not applicable",
}


class EntryKind(StrEnum):
    """What a batch ledger entry records."""

    BATCH_CREATED = "batch_created"
    PHASE_STARTED = "phase_started"
    VALUE_RECORDED = "value_recorded"
    VALUE_CORRECTED = "value_corrected"
    CALCULATED = "calculated"
    MATERIAL_USED = "material_used"
    EQUIPMENT_USED = "equipment_used"
    IDENTITY_CHECKED = "identity_checked"
    SCAN_REFUSED = "scan_refused"
    DEVIATION_RAISED = "deviation_raised"
    DEVIATION_COMMENTED = "deviation_commented"
    BATCH_HELD = "batch_held"
    BATCH_RESUMED = "batch_resumed"
    SIGNATURE = "signature"


class DeviationStatus(StrEnum):
    """A deviation is open until a supervisor or QA acknowledges it (closure comes at the hub)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class DeviationCategory(StrEnum):
    """Why a deviation was raised."""

    ACTION_LIMIT = "action_limit"
    TIMER = "timer"
    IDENTITY = "identity"
    MANUAL = "manual"


DEVIATION_CATEGORY_TITLES = {
    DeviationCategory.ACTION_LIMIT: "Value outside action limits",
    DeviationCategory.TIMER: "Time window exceeded",
    DeviationCategory.IDENTITY: "Chain of identity mismatch",
    DeviationCategory.MANUAL: "Reported by a person",
}


class Action(StrEnum):
    """The signed actions on a batch, and what each signature means."""

    START = "start"
    PERFORM = "perform"
    VERIFY = "verify"
    CORRECT = "correct"
    ACKNOWLEDGE = "acknowledge"
    COMPLETE = "complete"
    ABORT = "abort"


ACTION_MEANINGS = {
    Action.START: Meaning.STARTED,
    Action.PERFORM: Meaning.PERFORMED,
    Action.VERIFY: Meaning.VERIFIED,
    Action.CORRECT: Meaning.CORRECTED,
    Action.ACKNOWLEDGE: Meaning.ACKNOWLEDGED,
    Action.COMPLETE: Meaning.REVIEWED,
    Action.ABORT: Meaning.ABORTED,
}

SUPERVISION = frozenset({Role.SUPERVISOR, Role.QA})
STARTERS = frozenset({Role.OPERATOR, Role.SUPERVISOR})


def training_procedure(recipe_code: str, version: int) -> str:
    """The training a person needs to execute a recipe version (11.10(i)): 'CODE vN'."""
    return f"{recipe_code} v{version}"


def format_duration(seconds: float) -> str:
    """'2 h 05 min', '3 d 4 h', '45 s' — a time span as operators read it."""
    seconds = max(0, math.ceil(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min" if not secs else f"{minutes} min {secs:02d} s"
    return f"{secs} s"


# --- the procedure, as execution needs it ----------------------------------------------------


@dataclass(frozen=True)
class PhasePlan:
    """One phase of the recipe with where it sits in the procedure."""

    id: str
    position: int  # 0, 1, 2 … in document order
    spec: Mapping[str, Any]
    unit_procedure: Mapping[str, Any]
    operation: Mapping[str, Any]
    operation_index: int
    waits_for: frozenset[str]  # siblings in an any_order/parallel operation it refers to

    @property
    def name(self) -> str:
        """The phase's title."""
        return str(self.spec["name"])

    @property
    def ordering(self) -> str:
        """The ordering of its operation: sequence, any_order or parallel."""
        return str(self.operation["ordering"])

    @property
    def needs_verification(self) -> bool:
        """Whether a second person verifies it."""
        return self.spec.get("verify") is not None

    def input_spec(self, value_id: str) -> Mapping[str, Any] | None:
        """The declared input ``value_id``, if any."""
        return next((i for i in self.spec["inputs"] if i["id"] == value_id), None)

    def value_spec(self, value_id: str) -> Mapping[str, Any] | None:
        """The declared input or calculation ``value_id``, if any."""
        return self.input_spec(value_id) or next(
            (c for c in self.spec["calculations"] if c["id"] == value_id), None
        )


def _references(spec: Mapping[str, Any]) -> set[str]:
    """Phases a phase refers to: timers, conditions and calculation names ``phase.value``."""
    from mes.core.expressions import parse

    refs = {t["after"] for t in spec["timers"]}
    if spec.get("when"):
        refs.add(spec["when"]["input"].split(".", 1)[0])
    for calc in spec["calculations"]:
        for name in parse(calc["expression"]).names:
            if "." in name:
                refs.add(name.split(".", 1)[0])
    return refs


class Procedure:
    """The compiled recipe's phases in order, with their operations; read-only."""

    def __init__(self, compiled: Mapping[str, Any]) -> None:
        self.compiled = compiled
        self.recipe_code: str = compiled["recipe_code"]
        self.version: int = compiled["version"]
        self.chain_of_identity: list[Mapping[str, Any]] = list(compiled["chain_of_identity"])
        self.phases: dict[str, PhasePlan] = {}
        self.operations: list[list[str]] = []
        position = 0
        for unit in compiled["unit_procedures"]:
            for operation in unit["operations"]:
                ids = [p["id"] for p in operation["phases"]]
                siblings = set(ids)
                for phase in operation["phases"]:
                    waits = (
                        frozenset((_references(phase) & siblings) - {phase["id"]})
                        if operation["ordering"] != "sequence"
                        else frozenset()
                    )
                    self.phases[phase["id"]] = PhasePlan(
                        id=phase["id"],
                        position=position,
                        spec=phase,
                        unit_procedure=unit,
                        operation=operation,
                        operation_index=len(self.operations),
                        waits_for=waits,
                    )
                    position += 1
                self.operations.append(ids)

    def phase(self, phase_id: str) -> PhasePlan:
        """The phase ``phase_id``, or :class:`NotFound`."""
        plan = self.phases.get(phase_id)
        if plan is None:
            raise NotFound(
                f"The recipe {self.recipe_code} v{self.version} has no phase '{phase_id}'."
            )
        return plan

    def coi_spec(self, coi_id: str) -> Mapping[str, Any]:
        """The chain-of-identity identifier ``coi_id``."""
        return next(c for c in self.chain_of_identity if c["id"] == coi_id)

    @property
    def training(self) -> str:
        """The training record people need to execute this recipe version."""
        return training_procedure(self.recipe_code, self.version)


# --- who acts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """A person acting on a batch: who, with which roles, and whether trained on the recipe.

    ``qualified`` is current training on the batch's recipe version, decided by the caller at
    the time of acting.
    """

    actor: Actor
    roles: frozenset[str]
    qualified: bool

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
    last_seq: int = 0
    last_hash: str = GENESIS
    last_at: str | None = None


# --- the lifecycles (transitions), defined once ---------------------------------------------


class _Model:
    """Lets a state object ride a shared machine for one event (``transitions`` needs a model)."""

    def __init__(self, state: str) -> None:
        self.state = state


def _machine(states: Iterable[str], transitions: list[dict[str, Any]], initial: str) -> Machine:
    return Machine(
        model=None,
        states=list(states),
        transitions=transitions,
        initial=initial,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )


def _guard(event: EventData) -> bool:
    """Run the guard passed with the event (live actions); replay passes none."""
    check = event.kwargs.get("guard")
    if check is not None:
        check()
    return True


BATCH_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "start", "source": "created", "dest": "in_progress"},
    {"trigger": "hold", "source": "in_progress", "dest": "on_hold"},
    {"trigger": "resume", "source": "on_hold", "dest": "in_progress"},
    {"trigger": "complete", "source": "in_progress", "dest": "complete"},
    {"trigger": "abort", "source": ["created", "in_progress", "on_hold"], "dest": "aborted"},
]
PHASE_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "unlock", "source": "locked", "dest": "ready"},
    {"trigger": "relock", "source": "ready", "dest": "locked"},
    {"trigger": "skip", "source": ["locked", "ready"], "dest": "skipped"},
    {"trigger": "start", "source": "ready", "dest": "in_progress"},
    {"trigger": "perform", "source": "in_progress", "dest": "performed"},
    {"trigger": "verify", "source": "performed", "dest": "verified"},
    {"trigger": "correct", "source": ["performed", "verified"], "dest": "performed"},
]
_BATCH_MACHINE = _machine(
    [s.value for s in BatchStatus],
    [{**t, "conditions": [_guard]} for t in BATCH_TRANSITIONS],
    BatchStatus.CREATED.value,
)
_PHASE_MACHINE = _machine(
    [s.value for s in PhaseStatus],
    [{**t, "conditions": [_guard]} for t in PHASE_TRANSITIONS],
    PhaseStatus.LOCKED.value,
)


_IDLE: dict[int, queue.SimpleQueue[_Model]] = {}
_IDLE_LOCK = threading.Lock()


def _idle_runners(machine: Machine) -> queue.SimpleQueue[_Model]:
    with _IDLE_LOCK:
        return _IDLE.setdefault(id(machine), queue.SimpleQueue())


def _fire(machine: Machine, state: str, trigger: str, guard: Any = None) -> str:
    """Fire ``trigger`` from ``state``; the guard (if any) raises a named error first.

    Returns the new state. Where no transition leaves ``state``, the guard is asked first (it
    names the broken rule in the people's words); otherwise :class:`PhaseNotInProgress` says
    the lifecycle does not allow it.
    """
    state = str(state.value if isinstance(state, StrEnum) else state)
    if not machine.get_transitions(trigger=trigger, source=state):
        if guard is not None:
            guard()
        raise PhaseNotInProgress(f"'{trigger}' is not possible when the state is '{state}'.")
    # A model only carries one event at a time: borrow an idle one (a machine keeps as many as
    # events ever ran at once, never one per thread or per request), add one if none is idle.
    idle = _idle_runners(machine)
    try:
        model = idle.get_nowait()
    except queue.Empty:
        model = _Model(machine.initial)
        machine.add_model(model, initial=machine.initial)
    try:
        model.state = state
        getattr(model, trigger)(guard=guard)
        return model.state
    finally:
        idle.put(model)


def mermaid(lifecycle: str) -> str:
    """The ``batch`` or ``phase`` lifecycle as a Mermaid state diagram, made from the machine."""
    table, initial = {
        "batch": (BATCH_TRANSITIONS, "created"),
        "phase": (PHASE_TRANSITIONS, "locked"),
    }[lifecycle]
    lines = ["stateDiagram-v2", f"    [*] --> {initial}"]
    for t in table:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        lines += [f"    {source} --> {t['dest']}: {t['trigger']}" for source in sources]
    return "\n".join(lines)


# --- the aggregate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What an action did: the entries appended, and a refusal to report *after* they are kept.

    A mismatching identity label, for example, is recorded (with its deviation) and the phase
    is then blocked: the caller commits the entries and reports the refusal.
    """

    entries: tuple[SealedEntry, ...]
    refusal: MesError | None = None


# Only these entries can change which phases are ready: a phase starting (one at a time in an
# any_order operation), a signature (a phase done, or undone by a correction), the batch held or
# resumed. Values and scans go into phases in progress; conditions read the values of phases
# that are done, which change only with a signed correction.
_MOVES_READINESS = frozenset(
    {EntryKind.PHASE_STARTED, EntryKind.SIGNATURE, EntryKind.BATCH_HELD, EntryKind.BATCH_RESUMED}
)


class Batch:
    """One batch: its procedure, its state, and the entries appended in this unit of work."""

    def __init__(
        self,
        procedure: Procedure,
        state: BatchState,
        *,
        key: SiteKey | None = None,
        time_zone: str = "UTC",
    ) -> None:
        self.procedure = procedure
        self.state = state
        self.key = key
        self.time_zone = time_zone
        self.new_entries: list[SealedEntry] = []

    # -- building from the ledger ------------------------------------------------------------

    @classmethod
    def replay(
        cls,
        procedure: Procedure,
        entries: Iterable[SealedEntry],
        *,
        key: SiteKey | None = None,
        time_zone: str = "UTC",
    ) -> Batch:
        """The batch as its ledger says it is (entries in seq order)."""
        batch: Batch | None = None
        for entry in entries:
            if batch is None:
                batch = cls._from_first(procedure, entry, key=key, time_zone=time_zone)
            else:
                batch._apply(entry)
        if batch is None:
            raise NotFound("The batch has no ledger entries.")
        return batch

    @classmethod
    def _from_first(
        cls, procedure: Procedure, entry: SealedEntry, *, key: SiteKey | None, time_zone: str
    ) -> Batch:
        body = entry.body
        if body["kind"] != EntryKind.BATCH_CREATED:
            raise InvalidInput("A batch ledger must begin with the batch's creation.")
        payload = body["payload"]
        state = BatchState(
            id=body["batch"],
            number=payload["number"],
            site=body["site"],
            recipe=dict(payload["recipe"]),
            chain_of_identity=dict(payload["chain_of_identity"]),
            created_at=body["at"],
            created_by=Actor.from_dict(body["actor"]),
            phases={pid: PhaseState(id=pid) for pid in procedure.phases},
        )
        batch = cls(procedure, state, key=key, time_zone=time_zone)
        batch._after(entry)
        batch._refresh()
        return batch

    @classmethod
    def create(
        cls,
        procedure: Procedure,
        *,
        batch_id: str,
        number: str,
        site: str,
        recipe: Mapping[str, Any],
        identifiers: Mapping[str, str],
        who: Operator,
        at: datetime,
        terminal: str | None,
        key: SiteKey,
        time_zone: str,
    ) -> Batch:
        """A new batch with its chain of identity checked (every identifier the recipe asks for).

        Only an operator or supervisor trained on the recipe version creates a batch; the start
        signature (:meth:`prepare` with :attr:`Action.START`) follows in the same transaction.
        """
        _require_roles(who, STARTERS, "start a batch")
        _require_training(who, procedure)
        coi, problems = {}, []
        for spec in procedure.chain_of_identity:
            try:
                coi[spec["id"]] = normalise_identifier(
                    spec["kind"], identifiers.get(spec["id"], ""), spec["label"], spec["pattern"]
                )
            except InvalidInput as err:
                problems.append(str(err))
        if problems:
            raise InvalidValue(" ".join(problems))
        body = {
            "batch": batch_id,
            "seq": 1,
            "prev": GENESIS,
            "at": utc_text(at),
            "site": site,
            "terminal": terminal,
            "actor": who.actor.as_dict(),
            "kind": EntryKind.BATCH_CREATED.value,
            "payload": {"number": number, "recipe": dict(recipe), "chain_of_identity": coi},
        }
        entry = seal(body, key)
        batch = cls._from_first(procedure, entry, key=key, time_zone=time_zone)
        batch.new_entries.append(entry)
        return batch

    # -- appending ---------------------------------------------------------------------------

    def _append(
        self,
        kind: EntryKind,
        payload: Mapping[str, Any],
        who: Actor,
        at: datetime,
        terminal: str | None,
    ) -> SealedEntry:
        if self.key is None:
            raise RuntimeError("this batch was loaded read-only (no site key)")
        at_text = utc_text(at)
        if self.state.last_at is not None and at_text < self.state.last_at:
            at_text = self.state.last_at  # never earlier than the entry before (clock steps back)
        body = {
            "batch": self.state.id,
            "seq": self.state.last_seq + 1,
            "prev": self.state.last_hash,
            "at": at_text,
            "site": self.state.site,
            "terminal": terminal,
            "actor": who.as_dict(),
            "kind": kind.value,
            "payload": dict(payload),
        }
        entry = seal(body, self.key)
        self._apply(entry)
        self.new_entries.append(entry)
        return entry

    def receive(self, entry: SealedEntry) -> None:
        """Apply an entry sealed elsewhere (at the hub: one the spoke sent) as a new entry.

        It must follow this batch's last entry (next seq, linked by ``prev``); its content was
        verified by whoever received it (:func:`mes.core.sync.open_chunk`).
        """
        if entry.seq != self.state.last_seq + 1 or entry.body.get("prev") != self.state.last_hash:
            raise InvalidInput(
                f"Entry {entry.seq} does not follow entry {self.state.last_seq} of batch "
                f"{self.state.number}."
            )
        self._apply(entry)
        self.new_entries.append(entry)

    # -- applying one entry (live and replay) --------------------------------------------------

    def _apply(self, entry: SealedEntry) -> None:
        body = entry.body
        kind = EntryKind(body["kind"])
        payload = body["payload"]
        actor = Actor.from_dict(body["actor"])
        at = body["at"]
        handler = getattr(self, f"_on_{kind.value}")
        handler(payload, actor, at, entry)
        self._after(entry)
        if kind in _MOVES_READINESS:
            self._refresh()

    def _after(self, entry: SealedEntry) -> None:
        self.state.last_seq = entry.seq
        self.state.last_hash = entry.hash
        self.state.last_at = entry.body["at"]

    def _touch(self, phase: PhaseState, entry: SealedEntry, what: str) -> None:
        phase.last_seq = entry.seq
        phase.last_at = entry.body["at"]
        phase.last_by = Actor.from_dict(entry.body["actor"])
        phase.last_what = what

    def _on_batch_created(self, *_: Any) -> None:  # pragma: no cover - only the first entry
        raise InvalidInput("A batch is created only once.")

    def _on_phase_started(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        phase = self.state.phases[payload["phase"]]
        phase.status = PhaseStatus(_fire(_PHASE_MACHINE, phase.status, "start"))
        phase.started_at, phase.started_by = at, actor
        self._contribute(phase, actor)
        self._touch(phase, entry, "started")

    def _on_value_recorded(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        phase = self.state.phases[payload["phase"]]
        earlier = phase.values.get(payload["value"])
        history, corrections = [], 0
        if earlier is not None:
            history = [*earlier.history, _history_item(earlier)]
            # a calculation worked out again by a correction counts as corrected too
            corrections = earlier.corrections + (1 if payload.get("corrects") else 0)
        phase.values[payload["value"]] = Recorded(
            payload["recorded"], payload.get("status"), entry.seq, at, actor, history, corrections
        )
        phase.data.append(entry.hash)
        self._contribute(phase, actor)
        self._touch(phase, entry, f"recorded {payload['value']}")

    _on_calculated = _on_value_recorded

    def _on_value_corrected(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        phase = self.state.phases[payload["phase"]]
        earlier = phase.values[payload["value"]]
        phase.values[payload["value"]] = Recorded(
            payload["recorded"],
            payload.get("status"),
            entry.seq,
            at,
            actor,
            [*earlier.history, _history_item(earlier)],
            earlier.corrections + 1,
        )
        phase.data.append(entry.hash)
        self._contribute(phase, actor)
        self._touch(phase, entry, f"corrected {payload['value']}")

    def _on_material_used(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        phase = self.state.phases[payload["phase"]]
        phase.materials[payload["material"]] = {**payload, "seq": entry.seq, "at": at, "by": actor}
        phase.data.append(entry.hash)
        self._contribute(phase, actor)
        self._touch(phase, entry, f"used lot {payload['lot']}")

    def _on_equipment_used(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        phase = self.state.phases[payload["phase"]]
        phase.equipment[int(payload["slot"])] = {
            **payload,
            "seq": entry.seq,
            "at": at,
            "by": actor,
        }
        phase.data.append(entry.hash)
        self._contribute(phase, actor)
        self._touch(phase, entry, f"used {payload['equipment']}")

    def _on_identity_checked(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        phase = self.state.phases[payload["phase"]]
        phase.identity[payload["check"]] = {**payload, "seq": entry.seq, "at": at, "by": actor}
        phase.data.append(entry.hash)
        self._contribute(phase, actor)
        self._touch(phase, entry, "scanned " + payload["check"])

    def _on_scan_refused(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        phase = self.state.phases[payload["phase"]]
        phase.refused_scans += 1
        phase.data.append(entry.hash)
        self._touch(phase, entry, "scan refused")

    def _on_deviation_raised(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        self.state.deviations[payload["deviation"]] = DeviationState(
            id=payload["deviation"],
            number=payload["number"],
            phase=payload.get("phase"),
            category=payload["category"],
            description=payload["description"],
            raised_at=at,
            raised_by=actor,
            seq=entry.seq,
            value_id=payload.get("value"),
        )
        if payload.get("phase"):
            self._touch(self.state.phases[payload["phase"]], entry, "deviation raised")

    def _on_deviation_commented(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        deviation = self.state.deviations[payload["deviation"]]
        deviation.comment = payload["comment"]
        deviation.commented_by, deviation.commented_at = actor, at
        if deviation.phase:
            self._touch(self.state.phases[deviation.phase], entry, "deviation commented")

    def _on_batch_held(self, payload: Mapping[str, Any], *_: Any) -> None:
        self.state.status = BatchStatus(_fire(_BATCH_MACHINE, self.state.status, "hold"))
        self.state.status_reason = payload["reason"]

    def _on_batch_resumed(self, payload: Mapping[str, Any], *_: Any) -> None:
        self.state.status = BatchStatus(_fire(_BATCH_MACHINE, self.state.status, "resume"))
        self.state.status_reason = None

    def _on_signature(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        record = payload["record"]
        action = Action(record["action"])
        signature = {**payload["manifestation"], "seq": entry.seq, "action": action.value}
        if action in (Action.START, Action.COMPLETE, Action.ABORT):
            self.state.signatures.append(signature)
        if action is Action.START:
            self.state.status = BatchStatus(_fire(_BATCH_MACHINE, self.state.status, "start"))
            self.state.started_at = at
        elif action is Action.COMPLETE:
            self.state.status = BatchStatus(_fire(_BATCH_MACHINE, self.state.status, "complete"))
            self.state.completed_at = at
        elif action is Action.ABORT:
            self.state.status = BatchStatus(_fire(_BATCH_MACHINE, self.state.status, "abort"))
            self.state.status_reason = record["reason"]
            self.state.completed_at = at
        elif action is Action.ACKNOWLEDGE:
            deviation = self.state.deviations[record["deviation"]]
            deviation.status = DeviationStatus.ACKNOWLEDGED
            deviation.acknowledged_at, deviation.acknowledged_by = at, actor
            deviation.signature = signature
            if deviation.phase:
                self._touch(self.state.phases[deviation.phase], entry, "deviation acknowledged")
        else:
            phase = self.state.phases[record["phase"]]
            trigger = {Action.PERFORM: "perform", Action.VERIFY: "verify"}.get(action, "correct")
            new_status = PhaseStatus(_fire(_PHASE_MACHINE, phase.status, trigger))
            if action is Action.PERFORM:
                phase.performed_at, phase.performed_by = at, actor
            elif action is Action.VERIFY:
                phase.verified_at, phase.verified_by = at, actor
            else:
                phase.corrections += 1
                if not self.procedure.phase(phase.id).needs_verification:
                    new_status = phase.status  # nothing to verify again: it stays as it was
                else:
                    phase.verified_at = phase.verified_by = None
            phase.status = new_status
            phase.signatures.append(signature)
            if action is not Action.VERIFY:  # checking is not contributing: after a correction
                self._contribute(phase, actor)  # the same verifier may check again
            self._touch(phase, entry, f"signed {ACTION_MEANINGS[action].value}")

    @staticmethod
    def _contribute(phase: PhaseState, actor: Actor) -> None:
        if actor.user_id:
            phase.contributors.add(actor.user_id)

    # -- what the ordering allows (derived, deterministic) -----------------------------------

    def is_done(self, phase_id: str) -> bool:
        """Performed (and verified where the recipe asks), or not applicable."""
        phase = self.state.phases[phase_id]
        if phase.status in (PhaseStatus.VERIFIED, PhaseStatus.SKIPPED):
            return True
        return (
            phase.status is PhaseStatus.PERFORMED
            and not self.procedure.phases[phase_id].needs_verification
        )

    def _refresh(self) -> None:
        """Move waiting phases to ready, back to waiting, or to not applicable."""
        if self.state.status not in (BatchStatus.IN_PROGRESS, BatchStatus.ON_HOLD):
            return
        done_before = True  # every phase of the operations before this one is done
        for ids in self.procedure.operations:
            op_done = True
            for index, phase_id in enumerate(ids):
                phase = self.state.phases[phase_id]
                if phase.status is PhaseStatus.LOCKED and not done_before:
                    op_done = False  # behind an operation not done: it stays waiting
                    continue
                if phase.status in (PhaseStatus.LOCKED, PhaseStatus.READY):
                    target = self._readiness(phase_id, ids, index, done_before)
                    if target is not None and target != phase.status:
                        trigger = {
                            PhaseStatus.READY: "unlock",
                            PhaseStatus.LOCKED: "relock",
                            PhaseStatus.SKIPPED: "skip",
                        }[target]
                        phase.status = PhaseStatus(_fire(_PHASE_MACHINE, phase.status, trigger))
                op_done = op_done and self.is_done(phase_id)
            done_before = done_before and op_done

    def _readiness(
        self, phase_id: str, ids: list[str], index: int, done_before: bool
    ) -> PhaseStatus | None:
        plan = self.procedure.phases[phase_id]
        open_now = done_before
        if plan.ordering == "sequence":  # every phase before it, not only the one before: a
            # corrected phase waiting to be verified again holds back the whole rest of the
            # sequence, even past a phase that was not applicable
            open_now = open_now and all(self.is_done(earlier) for earlier in ids[:index])
        open_now = open_now and all(self.is_done(w) for w in plan.waits_for)
        if not open_now:
            return PhaseStatus.LOCKED
        when = plan.spec.get("when")
        if when is not None:
            source_phase, value_id = when["input"].split(".", 1)
            recorded = self.state.phases[source_phase].values.get(value_id)
            if self.state.phases[source_phase].status is PhaseStatus.SKIPPED or recorded is None:
                return PhaseStatus.SKIPPED
            if recorded.value not in when["in"]:
                return PhaseStatus.SKIPPED
        if plan.ordering == "any_order" and any(
            self.state.phases[s].status is PhaseStatus.IN_PROGRESS for s in ids if s != phase_id
        ):
            return PhaseStatus.LOCKED
        return PhaseStatus.READY

    def blocking_reason(self, phase_id: str) -> str | None:
        """Why a waiting phase cannot start yet, in words (None when it can).

        Names the phase to act on: when the phase before it is itself waiting, the reason is
        followed back to the first one that is not (a conditional phase not yet decided waits
        for the phase whose answer decides it).
        """
        seen: set[str] = set()
        current = phase_id
        suffix = ""
        while True:
            blocker = self._blocker(current)
            if blocker is None:
                return (
                    None
                    if current == phase_id
                    else f"'{self.procedure.phases[current].name}' must be done first{suffix}"
                )
            other, busy = blocker
            if busy:
                return (
                    f"'{self.procedure.phases[other].name}' is in progress; the phases of this "
                    "operation are done one at a time"
                )
            state = self.state.phases[other]
            if state.status is PhaseStatus.LOCKED and other not in seen:
                seen.add(other)
                current = other
                continue
            if state.status is PhaseStatus.PERFORMED:
                suffix = " (it waits for its verification)"
            return f"'{self.procedure.phases[other].name}' must be done first{suffix}"

    def _blocker(self, phase_id: str) -> tuple[str, bool] | None:
        """The first phase a waiting phase waits for, and whether it is a busy sibling."""
        if self.state.phases[phase_id].status is not PhaseStatus.LOCKED:
            return None
        plan = self.procedure.phases[phase_id]
        for ids in self.procedure.operations[: plan.operation_index]:
            for other in ids:
                if not self.is_done(other):
                    return other, False
        ids = self.procedure.operations[plan.operation_index]
        index = ids.index(phase_id)
        if plan.ordering == "sequence":
            for earlier in ids[:index]:
                if not self.is_done(earlier):
                    return earlier, False
        for other in sorted(plan.waits_for):
            if not self.is_done(other):
                return other, False
        if plan.ordering == "any_order":
            busy = [s for s in ids if self.state.phases[s].status is PhaseStatus.IN_PROGRESS]
            if busy:
                return busy[0], True
        return None

    # -- timers ----------------------------------------------------------------------------

    def timer_windows(self, phase_id: str) -> list[dict[str, Any]]:
        """The time windows of a phase whose reference phase is done: earliest and latest start."""
        windows = []
        for timer in self.procedure.phases[phase_id].spec["timers"]:
            ref = self.state.phases[timer["after"]]
            if ref.performed_at is None:
                continue
            since = parse_utc_text(ref.performed_at)
            windows.append(
                {
                    "after": timer["after"],
                    "after_name": self.procedure.phases[timer["after"]].name,
                    "since": since,
                    "earliest": since + timedelta(seconds=timer["min_seconds"])
                    if timer.get("min_seconds") is not None
                    else None,
                    "latest": since + timedelta(seconds=timer["max_seconds"])
                    if timer.get("max_seconds") is not None
                    else None,
                }
            )
        return windows

    # -- guards shared by the actions --------------------------------------------------------

    def _active(self) -> None:
        status = self.state.status
        if status is not BatchStatus.IN_PROGRESS:
            if status is BatchStatus.ON_HOLD:
                raise BatchNotActive(
                    f"Batch {self.state.number} is on hold ({self.state.status_reason}).",
                    what_to_do="A supervisor must resume it before work continues.",
                )
            raise BatchNotActive(
                f"Batch {self.state.number} is {BATCH_STATUS_TITLES[status].lower()}: "
                "nothing more can be recorded in it.",
            )

    def phase_state(self, phase_id: str) -> PhaseState:
        """The state of ``phase_id`` (:class:`NotFound` if the recipe has no such phase)."""
        self.procedure.phase(phase_id)
        return self.state.phases[phase_id]

    def check_current(self, phase_id: str, seen_seq: int | None) -> None:
        """Refuse an action made on a page older than the phase's last entry (stale page)."""
        if seen_seq is None:
            return
        phase = self.phase_state(phase_id)
        if phase.last_seq > seen_seq and phase.last_by is not None:
            raise StaleRecord(
                f"{phase.last_by.name} ({phase.last_by.username}) {phase.last_what} in this "
                f"phase at {phase.last_at} while your page was open; nothing of yours was "
                "recorded.",
                what_to_do="Look at the phase as it is now and act again if still needed.",
            )

    def _performer_checks(self, plan: PhasePlan, who: Operator, what: str) -> None:
        _require_roles(who, {Role(plan.spec["perform"])}, what)
        _require_training(who, self.procedure)

    def _in_progress(self, phase_id: str) -> tuple[PhasePlan, PhaseState]:
        plan = self.procedure.phase(phase_id)
        phase = self.state.phases[phase_id]
        self._active()
        if phase.status is not PhaseStatus.IN_PROGRESS:
            raise PhaseNotInProgress(
                f"'{plan.name}' is {PHASE_STATUS_TITLES[phase.status].lower()}, not in progress.",
                what_to_do=(
                    "Start it first."
                    if phase.status is PhaseStatus.READY
                    else "To change a signed value, use a correction with a reason."
                    if phase.status in (PhaseStatus.PERFORMED, PhaseStatus.VERIFIED)
                    else "Go to the phase that is ready."
                ),
            )
        return plan, phase

    # -- actions -----------------------------------------------------------------------------

    def start_phase(
        self, phase_id: str, who: Operator, at: datetime, terminal: str | None
    ) -> Outcome:
        """Start a ready phase when ordering, timers, role and training allow it.

        Starting after a timer's maximum raises a deviation (the phase still starts).
        """
        plan = self.procedure.phase(phase_id)  # NotFound for a phase the recipe does not have
        phase = self.state.phases[phase_id]
        self._active()
        mark = len(self.new_entries)

        def guard() -> None:
            self._check_start(phase_id, who, at)

        _fire(_PHASE_MACHINE, phase.status, "start", guard)  # checks only; the entry applies it
        self._append(EntryKind.PHASE_STARTED, {"phase": phase_id}, who.actor, at, terminal)
        for window in self.timer_windows(phase_id):
            if window["latest"] is not None and as_utc(at) > window["latest"]:
                late = (as_utc(at) - window["latest"]).total_seconds()
                self._raise_deviation(
                    DeviationCategory.TIMER,
                    f"'{plan.name}' started {format_duration(late)} after the latest allowed "
                    f"time ({format_duration((window['latest'] - window['since']).total_seconds())} "
                    f"after '{window['after_name']}').",
                    who.actor,
                    at,
                    terminal,
                    phase_id,
                )
        return Outcome(tuple(self.new_entries[mark:]))

    def _check_start(self, phase_id: str, who: Operator, at: datetime) -> None:
        plan = self.procedure.phase(phase_id)
        phase = self.state.phases[phase_id]
        self._active()
        if phase.status is PhaseStatus.LOCKED:
            raise PhaseOutOfOrder(
                f"'{plan.name}' cannot start yet: {self.blocking_reason(phase_id)}.",
                what_to_do="Do the phases before it first.",
            )
        if phase.status is PhaseStatus.SKIPPED:
            raise PhaseNotInProgress(
                f"'{plan.name}' does not apply to this batch: its condition is not met.",
                what_to_do="Go to the phase that is ready.",
            )
        if phase.status is not PhaseStatus.READY:
            by = f" by {phase.last_by.name}" if phase.last_by else ""
            raise PhaseNotInProgress(
                f"'{plan.name}' is already {PHASE_STATUS_TITLES[phase.status].lower()}"
                f"{by} (at {phase.last_at}).",
                what_to_do="Continue it, or go to the phase that is ready.",
            )
        self._performer_checks(plan, who, f"perform '{plan.name}'")
        for window in self.timer_windows(phase_id):
            if window["earliest"] is not None and as_utc(at) < window["earliest"]:
                left = (window["earliest"] - as_utc(at)).total_seconds()
                hold = format_duration((window["earliest"] - window["since"]).total_seconds())
                raise TimerNotElapsed(
                    f"'{plan.name}' may start only {hold} after '{window['after_name']}': "
                    f"{format_duration(left)} left.",
                    seconds_left=math.ceil(left),
                    what_to_do="Wait until the time shown, then start it.",
                )

    def refusal(
        self,
        action: str,
        who: Operator,
        at: datetime,
        *,
        phase_id: str | None = None,
        deviation_id: str | None = None,
    ) -> MesError | None:
        """Why ``who`` may not do ``action`` now (None when the rules allow it); nothing changes.

        For pages to offer only what would be accepted, asked of the same guards the actions
        use. ``action``: start, record, perform, verify, correct, acknowledge, comment, report,
        complete, abort, hold, resume.
        """
        try:
            if action == "start":
                self._check_start(str(phase_id), who, at)
            elif action == "record":
                plan, _phase = self._in_progress(str(phase_id))
                self._performer_checks(plan, who, f"record values in '{plan.name}'")
            elif action == "perform":
                plan = self.procedure.phase(str(phase_id))
                self._performer_checks(plan, who, f"sign '{plan.name}' as performed")
                self._check_perform(plan)
            elif action == "verify":
                plan = self.procedure.phase(str(phase_id))
                self._active()
                self._check_verify(plan, self.state.phases[plan.id], who)
            elif action == "correct":
                plan = self.procedure.phase(str(phase_id))
                self._active()
                self._check_correct(plan, self.state.phases[plan.id], who)
            elif action == "acknowledge":
                self._check_acknowledge(str(deviation_id), who)
            elif action == "comment":
                self._check_comment(str(deviation_id), who)
            elif action == "report":
                self._check_report(who)
            elif action == "complete":
                _require_roles(who, {Role.SUPERVISOR}, "complete a batch")
                _require_training(who, self.procedure)
                self._active()
                self._check_complete()
            elif action == "abort":
                self._check_abort(who)
            elif action == "hold":
                self._check_hold(who)
            elif action == "resume":
                self._check_resume(who)
            else:
                raise InvalidInput(f"'{action}' is not a batch action.")
        except MesError as refusal:
            return refusal
        return None

    def record_values(
        self,
        phase_id: str,
        raw: Mapping[str, Any],
        who: Operator,
        at: datetime,
        terminal: str | None,
        comments: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Record the values entered for a phase in progress (unchanged ones are not re-recorded).

        Every value is checked for its type first; if any is malformed nothing is recorded and
        :class:`InvalidValue` lists them all. A value outside its action limits is recorded as
        entered and raises a deviation; a comment given with it is attached at once. The
        phase's calculations are worked out when the values they need are there.
        """
        plan, phase = self._in_progress(phase_id)
        self._performer_checks(plan, who, f"record values in '{plan.name}'")
        parsed: dict[str, Any] = {}
        problems: dict[str, str] = {}
        comments = self._comments(plan, comments or {}, problems)
        for spec in plan.spec["inputs"]:
            if spec["id"] not in raw:
                continue
            entered = raw[spec["id"]]
            if (entered is None or entered == "") and spec["id"] not in phase.values:
                continue  # left empty and never recorded: nothing to record yet
            try:
                parsed[spec["id"]] = parse_value(
                    {**spec, "required": True}, entered, at=at, time_zone=self.time_zone
                )
            except InvalidInput as err:
                problems[spec["id"]] = str(err)
        for unknown in sorted(set(raw) - {s["id"] for s in plan.spec["inputs"]}):
            problems[unknown] = f"'{plan.name}' has no input '{unknown}'."
        if problems:
            raise InvalidValue(
                " ".join(problems.values()),
                what_to_do="Nothing was recorded: correct the values shown and save again.",
                fields=problems,
            )
        mark = len(self.new_entries)
        for value_id, value in parsed.items():
            current = phase.values.get(value_id)
            if current is not None and current.value == value:
                continue
            self._record_one(plan, value_id, value, who.actor, at, terminal, comments)
        self._calculate(plan, who.actor, at, terminal, comments)
        return Outcome(tuple(self.new_entries[mark:]))

    def _record_one(
        self,
        plan: PhasePlan,
        value_id: str,
        value: Any,
        actor: Actor,
        at: datetime,
        terminal: str | None,
        comments: Mapping[str, str],
        *,
        kind: EntryKind = EntryKind.VALUE_RECORDED,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        spec = plan.value_spec(value_id)
        assert spec is not None
        status = None
        if spec["type"] in ("number", "integer", "calculation") and value is not None:
            status = limit_status(value, spec).value
        payload = {
            "phase": plan.id,
            "value": value_id,
            "recorded": value,
            "unit": spec.get("unit"),
            "status": status,
            **(extra or {}),
        }
        self._append(kind, payload, actor, at, terminal)
        if status == LimitStatus.ACTION.value:
            unit = f" {spec['unit']}" if spec.get("unit") else ""
            deviation = self._raise_deviation(
                DeviationCategory.ACTION_LIMIT,
                f"{spec['label']} {value}{unit} is outside the action limits "
                f"({limits_text(spec)}).",
                actor,
                at,
                terminal,
                plan.id,
                value_id,
            )
            comment = comments.get(value_id)
            if comment:
                self._append(
                    EntryKind.DEVIATION_COMMENTED,
                    {"deviation": deviation, "comment": comment},
                    actor,
                    at,
                    terminal,
                )

    @staticmethod
    def _comments(
        plan: PhasePlan, comments: Mapping[str, str], problems: dict[str, str]
    ) -> dict[str, str]:
        """The comments given with values, as kept; one too long is a problem, never cut."""
        labels = {spec["id"]: spec["label"] for spec in plan.spec["inputs"]}
        kept = {}
        for value_id, comment in comments.items():
            try:
                kept[value_id] = free_text(
                    comment, f"{labels.get(value_id, value_id)}: the comment"
                )
            except InvalidInput as err:
                problems[value_id] = str(err)
        return kept

    def _calculate(
        self,
        plan: PhasePlan,
        actor: Actor,
        at: datetime,
        terminal: str | None,
        comments: Mapping[str, str],
        *,
        correcting: str | None = None,
    ) -> None:
        """Work out every calculation of the phase whose values are all recorded (in order)."""
        phase = self.state.phases[plan.id]
        for spec in plan.spec["calculations"]:
            values = self._calculation_inputs(plan, spec)
            if values is None:
                continue
            try:
                value = calculate(spec, values)
            except InvalidValue:
                continue  # shown to the operator as "cannot be calculated" (see calculation_problem)
            current = phase.values.get(spec["id"])
            if current is not None and current.value == value:
                continue
            extra = {"from": dict(sorted(values.items())), "expression": spec["expression"]}
            if correcting is not None and current is not None:
                extra["corrects"] = current.seq
                extra["reason"] = correcting
            self._record_one(
                plan, spec["id"], value, actor, at, terminal, comments,
                kind=EntryKind.CALCULATED, extra=extra,
            )  # fmt: skip

    def _calculation_inputs(
        self, plan: PhasePlan, spec: Mapping[str, Any]
    ) -> dict[str, float] | None:
        from mes.core.expressions import parse

        values: dict[str, float] = {}
        for name in parse(spec["expression"]).names:
            phase_id, _, value_id = name.rpartition(".")
            source = self.state.phases[phase_id or plan.id]
            recorded = source.values.get(value_id)
            number = numeric(recorded.value) if recorded is not None else None
            if number is None:
                return None
            values[name] = number
        return values

    def calculation_problem(self, phase_id: str, calc_id: str) -> str | None:
        """Why a calculation whose values are all recorded cannot be worked out (e.g. ÷ 0)."""
        plan = self.procedure.phase(phase_id)
        spec = next(c for c in plan.spec["calculations"] if c["id"] == calc_id)
        values = self._calculation_inputs(plan, spec)
        if values is None:
            return None
        try:
            calculate(spec, values)
        except InvalidValue as err:
            return err.message
        return None

    def use_material(
        self,
        phase_id: str,
        material_code: str,
        lot: LotInfo | None,
        scanned: str,
        who: Operator,
        at: datetime,
        terminal: str | None,
        today: date,
    ) -> Outcome:
        """Record the lot scanned for one of the phase's materials, or refuse it.

        Refused (and the refused scan kept in the record): unknown, of another material,
        rejected, quarantined, expired.
        """
        plan, _phase = self._in_progress(phase_id)
        self._performer_checks(plan, who, f"record materials in '{plan.name}'")
        spec = next((m for m in plan.spec["materials"] if m["code"] == material_code), None)
        if spec is None:
            raise NotFound(f"'{plan.name}' uses no material {material_code}.")
        mark = len(self.new_entries)
        refusal = _lot_refusal(spec, lot, scanned, today)
        if refusal is not None:
            self._refused(phase_id, "material", material_code, scanned, refusal, who, at, terminal)
            return Outcome(tuple(self.new_entries[mark:]), refusal)
        assert lot is not None
        self._append(
            EntryKind.MATERIAL_USED,
            {
                "phase": phase_id,
                "material": material_code,
                "material_name": spec["name"],
                "lot": lot.lot_number,
                "expiry": lot.expiry.isoformat(),
                "lot_status": lot.status,
                "quantity": spec["quantity"],
                "unit": spec["unit"],
            },
            who.actor,
            at,
            terminal,
        )
        return Outcome(tuple(self.new_entries[mark:]))

    def use_equipment(
        self,
        phase_id: str,
        slot: int,
        equipment: EquipmentInfo | None,
        scanned: str,
        who: Operator,
        at: datetime,
        terminal: str | None,
        today: date,
    ) -> Outcome:
        """Record the instrument scanned for one of the phase's equipment slots, or refuse it.

        Refused (and the refused scan kept): unknown, another class, out of service, not clean,
        calibration overdue, in use by another batch.
        """
        plan, _phase = self._in_progress(phase_id)
        self._performer_checks(plan, who, f"record equipment in '{plan.name}'")
        slots = plan.spec["equipment"]
        if not 0 <= slot < len(slots):
            raise NotFound(f"'{plan.name}' has no equipment slot {slot + 1}.")
        spec = slots[slot]
        mark = len(self.new_entries)
        refusal = _equipment_refusal(spec, equipment, scanned, today, self.state.number)
        if refusal is not None:
            self._refused(phase_id, "equipment", spec["class"], scanned, refusal, who, at, terminal)
            return Outcome(tuple(self.new_entries[mark:]), refusal)
        assert equipment is not None
        self._append(
            EntryKind.EQUIPMENT_USED,
            {
                "phase": phase_id,
                "slot": slot,
                "class": spec["class"],
                "equipment": equipment.equipment_id,
                "equipment_name": equipment.name,
                "calibration_due": equipment.calibration_due.isoformat()
                if equipment.calibration_due
                else None,
            },
            who.actor,
            at,
            terminal,
        )
        return Outcome(tuple(self.new_entries[mark:]))

    def check_identity(
        self,
        phase_id: str,
        check_id: str,
        scanned: str,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> Outcome:
        """Compare a scanned label with the chain of identity.

        A mismatch is recorded, raises a deviation and blocks the phase until a supervisor
        acknowledges it (the refusal is returned for the caller to report after keeping the
        entries).
        """
        plan, _phase = self._in_progress(phase_id)
        self._performer_checks(plan, who, f"scan labels in '{plan.name}'")
        spec = next((c for c in plan.spec["identity_checks"] if c["id"] == check_id), None)
        if spec is None:
            raise NotFound(f"'{plan.name}' has no identity check '{check_id}'.")
        text = (scanned or "").strip()
        if not text:
            raise InvalidValue(
                f"{spec['label']}: nothing was scanned.", what_to_do="Scan the label."
            )
        coi = self.procedure.coi_spec(spec["matches"])
        expected = self.state.chain_of_identity[spec["matches"]]
        mark = len(self.new_entries)
        if coi["kind"] == "isbt128_din":
            try:
                parse_din(text)
            except InvalidDin as err:
                # Unreadable (a typing error, a torn label): not evidence of another patient.
                # The refused scan is kept; the operator scans or types it again.
                unreadable = InvalidValue(
                    f"{spec['label']}: {err.message}", what_to_do=err.what_to_do
                )
                self._refused(phase_id, "identity", check_id, text, unreadable, who, at, terminal)
                return Outcome(tuple(self.new_entries[mark:]), unreadable)
        match = scan_matches(coi["kind"], expected, text)
        self._append(
            EntryKind.IDENTITY_CHECKED,
            {
                "phase": phase_id,
                "check": check_id,
                "matches": spec["matches"],
                "scanned": text[:200],
                "match": match,
            },
            who.actor,
            at,
            terminal,
        )
        if match:
            return Outcome(tuple(self.new_entries[mark:]))
        self._raise_deviation(
            DeviationCategory.IDENTITY,
            f"{spec['label']}: the label scanned ('{text[:80]}') does not match the batch's "
            f"{coi['label']}.",
            who.actor,
            at,
            terminal,
            phase_id,
        )
        refusal = IdentityMismatch(
            f"{spec['label']} does not match this batch's chain of identity. A deviation was "
            "raised and the phase is blocked.",
            what_to_do="Stop. Do not use the material. Quarantine it and call the supervisor.",
        )
        return Outcome(tuple(self.new_entries[mark:]), refusal)

    def _refused(
        self,
        phase_id: str,
        what: str,
        slot: str,
        scanned: str,
        refusal: MesError,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> None:
        self._append(
            EntryKind.SCAN_REFUSED,
            {
                "phase": phase_id,
                "what": what,
                "for": slot,
                "scanned": (scanned or "").strip()[:200],
                "refusal": type(refusal).__name__,
                "reason": refusal.message,
            },
            who.actor,
            at,
            terminal,
        )

    def _raise_deviation(
        self,
        category: DeviationCategory,
        description: str,
        actor: Actor,
        at: datetime,
        terminal: str | None,
        phase_id: str | None,
        value_id: str | None = None,
    ) -> str:
        number = len(self.state.deviations) + 1
        deviation_id = f"{self.state.number}-D{number}"
        self._append(
            EntryKind.DEVIATION_RAISED,
            {
                "deviation": deviation_id,
                "number": number,
                "phase": phase_id,
                "value": value_id,
                "category": category.value,
                "description": description,
            },
            actor,
            at,
            terminal,
        )
        return deviation_id

    def report_deviation(
        self,
        description: str,
        who: Operator,
        at: datetime,
        terminal: str | None,
        phase_id: str | None = None,
    ) -> Outcome:
        """A person reports a deviation (anything unplanned), optionally against a phase."""
        text = free_text(description, "The description")  # refused when too long, never cut
        if len(text) < 5:
            raise InvalidInput(
                "Describe the deviation in a few words.", what_to_do="Say what happened."
            )
        if phase_id is not None:
            self.procedure.phase(phase_id)
        self._check_report(who)
        mark = len(self.new_entries)
        deviation = self._raise_deviation(
            DeviationCategory.MANUAL, text, who.actor, at, terminal, phase_id
        )
        self._append(
            EntryKind.DEVIATION_COMMENTED,
            {"deviation": deviation, "comment": text},
            who.actor,
            at,
            terminal,
        )
        return Outcome(tuple(self.new_entries[mark:]))

    def _check_report(self, who: Operator) -> None:
        if self.state.status in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
            raise BatchNotActive(f"Batch {self.state.number} is closed.")
        _require_roles(who, STARTERS | SUPERVISION, "report a deviation")

    def comment_deviation(
        self, deviation_id: str, comment: str, who: Operator, at: datetime, terminal: str | None
    ) -> Outcome:
        """Say what happened: every deviation needs a comment before its phase is signed."""
        deviation = self.deviation(deviation_id)
        text = free_text(comment, "The comment")  # refused when too long, never cut
        if len(text) < 3:
            raise InvalidInput(
                "The comment is empty.", what_to_do="Say what happened and what you did."
            )
        self._check_comment(deviation.id, who)
        mark = len(self.new_entries)
        self._append(
            EntryKind.DEVIATION_COMMENTED,
            {"deviation": deviation_id, "comment": text},
            who.actor,
            at,
            terminal,
        )
        return Outcome(tuple(self.new_entries[mark:]))

    def _check_comment(self, deviation_id: str, who: Operator) -> None:
        deviation = self.deviation(deviation_id)
        if deviation.status is not DeviationStatus.OPEN:
            raise BatchNotActive(f"Deviation {deviation_id} is already acknowledged.")
        if self.state.status in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
            raise BatchNotActive(
                f"Batch {self.state.number} is closed: its deviations are worked at the hub."
            )
        _require_roles(who, STARTERS | SUPERVISION, "comment on a deviation")

    def deviation(self, deviation_id: str) -> DeviationState:
        """One deviation of this batch."""
        deviation = self.state.deviations.get(deviation_id)
        if deviation is None:
            raise NotFound(f"Batch {self.state.number} has no deviation {deviation_id}.")
        return deviation

    def hold(self, reason: str, who: Operator, at: datetime, terminal: str | None) -> Outcome:
        """Put the batch on hold (anyone working on it may stop the line); a reason is required."""
        text = _reason(reason, "put the batch on hold")
        self._check_hold(who)
        _fire(_BATCH_MACHINE, self.state.status, "hold")
        mark = len(self.new_entries)
        self._append(EntryKind.BATCH_HELD, {"reason": text}, who.actor, at, terminal)
        return Outcome(tuple(self.new_entries[mark:]))

    def resume(self, reason: str, who: Operator, at: datetime, terminal: str | None) -> Outcome:
        """A supervisor resumes a batch on hold, saying why it may continue."""
        text = _reason(reason, "resume the batch")
        self._check_resume(who)
        _fire(_BATCH_MACHINE, self.state.status, "resume")
        mark = len(self.new_entries)
        self._append(EntryKind.BATCH_RESUMED, {"reason": text}, who.actor, at, terminal)
        return Outcome(tuple(self.new_entries[mark:]))

    def _check_hold(self, who: Operator) -> None:
        _require_roles(who, STARTERS | SUPERVISION, "put a batch on hold")
        self._active()

    def _check_resume(self, who: Operator) -> None:
        _require_roles(who, SUPERVISION, "resume a batch")
        if self.state.status is not BatchStatus.ON_HOLD:
            raise BatchNotActive(f"Batch {self.state.number} is not on hold.")

    # -- signed actions: prepare (guards, the record to sign), then signed ------------------

    def prepare(
        self,
        action: Action,
        who: Operator,
        at: datetime,
        *,
        phase_id: str | None = None,
        deviation_id: str | None = None,
        reason: str | None = None,
        terminal: str | None = None,
        correction: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Check every rule of a signed action and return the record the signature binds to.

        Nothing changes except for a correction, whose new value entries are appended first
        (they are part of what is signed). Raises the named error of the first broken rule.
        """
        base = {
            "type": "batch",
            "action": action.value,
            "batch": self.state.id,
            "number": self.state.number,
        }
        if action is Action.START:
            _require_roles(who, STARTERS, "start a batch")
            _require_training(who, self.procedure)
            if self.state.status is not BatchStatus.CREATED:
                raise BatchNotActive(f"Batch {self.state.number} was already started.")
            return {
                **base,
                "recipe": self.state.recipe,
                "chain_of_identity": self.state.chain_of_identity,
            }
        if action is Action.COMPLETE:
            _require_roles(who, {Role.SUPERVISOR}, "complete a batch")
            _require_training(who, self.procedure)
            self._active()
            _fire(_BATCH_MACHINE, self.state.status, "complete", self._check_complete)
            return {**base, "phases": self._phase_summary(), "deviations": self._deviation_ids()}
        if action is Action.ABORT:
            text = _reason(reason, "abort the batch")
            self._check_abort(who)
            _fire(_BATCH_MACHINE, self.state.status, "abort")
            return {**base, "reason": text}
        if action is Action.ACKNOWLEDGE:
            assert deviation_id is not None
            return {**base, "type": "deviation", **self._check_acknowledge(deviation_id, who)}
        assert phase_id is not None
        plan = self.procedure.phase(phase_id)
        phase = self.state.phases[phase_id]
        if action is Action.PERFORM:
            self._performer_checks(plan, who, f"sign '{plan.name}' as performed")
            _fire(_PHASE_MACHINE, phase.status, "perform", lambda: self._check_perform(plan))
        elif action is Action.VERIFY:
            self._active()
            _fire(
                _PHASE_MACHINE, phase.status, "verify", lambda: self._check_verify(plan, phase, who)
            )
        elif action is Action.CORRECT:
            assert correction is not None
            self._correct(plan, phase, correction, who, at, terminal)
        return {**base, "type": "batch-phase", "phase": phase_id, **self._phase_record(phase)}

    def signed(
        self,
        record: Mapping[str, Any],
        manifestation: Manifestation,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> SealedEntry:
        """Append the e-signature entry for a prepared ``record`` (11.50, 11.70).

        The entry holds the manifestation bound to the record's hash; applying it moves the
        lifecycle.
        """
        return self._append(
            EntryKind.SIGNATURE,
            {"record": dict(record), "manifestation": manifestation.as_dict()},
            who.actor,
            at,
            terminal,
        )

    def _phase_record(self, phase: PhaseState) -> dict[str, Any]:
        return {
            "values": {vid: rec.value for vid, rec in sorted(phase.values.items())},
            "materials": {c: m["lot"] for c, m in sorted(phase.materials.items())},
            "equipment": {str(s): e["equipment"] for s, e in sorted(phase.equipment.items())},
            "identity": {c: i["match"] for c, i in sorted(phase.identity.items())},
            "data": list(phase.data),
        }

    def _phase_summary(self) -> dict[str, str]:
        return {pid: p.status.value for pid, p in self.state.phases.items()}

    def _deviation_ids(self) -> list[str]:
        return list(self.state.deviations)

    def missing_for_performance(self, phase_id: str) -> list[str]:
        """What the phase still needs before it can be signed as performed, in words."""
        plan = self.procedure.phase(phase_id)
        phase = self.state.phases[phase_id]
        missing = []
        for spec in plan.spec["inputs"]:
            if spec["required"] and spec["id"] not in phase.values:
                missing.append(f"{spec['label']} is not recorded")
        for spec in plan.spec["calculations"]:
            # Asked even when a value is recorded: a calculation that fails on the values now
            # recorded keeps its earlier result, which no longer follows from them.
            problem = self.calculation_problem(phase_id, spec["id"])
            if problem:
                missing.append(f"{spec['label']} cannot be calculated ({problem})")
            elif spec["id"] not in phase.values:
                missing.append(f"{spec['label']} is not calculated yet")
        for spec in plan.spec["materials"]:
            if spec["code"] not in phase.materials:
                missing.append(f"no lot of {spec['name']} ({spec['code']}) is scanned")
        for slot, spec in enumerate(plan.spec["equipment"]):
            if slot not in phase.equipment:
                missing.append(f"no {_equipment_title(spec)} is scanned")
        for spec in plan.spec["identity_checks"]:
            scan = phase.identity.get(spec["id"])
            if scan is None:
                missing.append(f"{spec['label']} is not scanned")
            elif not scan["match"]:
                missing.append(f"{spec['label']} did not match: scan the right label")
        for deviation in self.state.deviations.values():
            if deviation.phase != phase_id:
                continue
            if deviation.comment is None:
                missing.append(f"deviation {deviation.id} needs a comment")
            if (
                deviation.category == DeviationCategory.IDENTITY
                and deviation.status is DeviationStatus.OPEN
            ):
                missing.append(
                    f"deviation {deviation.id} (identity) must be acknowledged by a supervisor"
                )
        return missing

    def _check_perform(self, plan: PhasePlan) -> None:
        phase = self.state.phases[plan.id]
        if phase.performed_by is not None and phase.status in (
            PhaseStatus.PERFORMED,
            PhaseStatus.VERIFIED,
        ):
            self._active()
            raise PhaseNotInProgress(
                f"'{plan.name}' was already performed by {phase.performed_by.name} "
                f"({phase.performed_by.username}) at {phase.performed_at}.",
                what_to_do="Look at the phase as it is now; to change a signed value, use a "
                "correction with a reason.",
            )
        self._in_progress(plan.id)
        missing = self.missing_for_performance(plan.id)
        if missing:
            raise PhaseIncomplete(missing)

    def _check_verify(self, plan: PhasePlan, phase: PhaseState, who: Operator) -> None:
        if not plan.needs_verification:
            raise PhaseNotInProgress(f"'{plan.name}' is not verified by a second person.")
        if phase.status is PhaseStatus.VERIFIED and phase.verified_by is not None:
            raise PhaseNotInProgress(
                f"'{plan.name}' was already verified by {phase.verified_by.name} "
                f"({phase.verified_by.username}) at {phase.verified_at}."
            )
        if phase.status is not PhaseStatus.PERFORMED:
            raise PhaseNotInProgress(
                f"'{plan.name}' is {PHASE_STATUS_TITLES[phase.status].lower()}: it is verified "
                "after it is performed."
            )
        if who.user_id in phase.contributors:
            raise SelfVerificationForbidden(
                f"You recorded or signed data in '{plan.name}': you cannot verify it.",
                what_to_do="Ask another trained person to verify.",
            )
        _require_roles(who, {Role(plan.spec["verify"])}, f"verify '{plan.name}'")
        _require_training(who, self.procedure)

    def _check_acknowledge(self, deviation_id: str, who: Operator) -> dict[str, Any]:
        deviation = self.deviation(deviation_id)
        _require_roles(who, SUPERVISION, "acknowledge a deviation")
        if deviation.status is not DeviationStatus.OPEN:
            raise BatchNotActive(
                f"Deviation {deviation_id} was already acknowledged by "
                f"{deviation.acknowledged_by.name if deviation.acknowledged_by else 'someone'}."
            )
        if deviation.comment is None:
            raise PhaseIncomplete([f"deviation {deviation_id} needs a comment first"])
        if who.user_id is not None and who.user_id == deviation.raised_by.user_id:
            raise SelfVerificationForbidden(
                "You raised this deviation: another person acknowledges it.",
                what_to_do="Ask another supervisor or QA.",
            )
        if self.state.status in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
            raise BatchNotActive(f"Batch {self.state.number} is closed.")
        return {
            "deviation": deviation.id,
            "category": deviation.category,
            "description": deviation.description,
            "comment": deviation.comment,
        }

    def _check_abort(self, who: Operator) -> None:
        _require_roles(who, {Role.SUPERVISOR}, "abort a batch")
        if self.state.status in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
            raise BatchNotActive(
                f"Batch {self.state.number} is "
                f"{BATCH_STATUS_TITLES[self.state.status].lower()}: it cannot be aborted."
            )

    def _check_complete(self) -> None:
        not_done = [
            self.procedure.phases[pid].name for pid in self.state.phases if not self.is_done(pid)
        ]
        if not_done:
            shown = ", ".join(f"'{n}'" for n in not_done[:5])
            more = f" and {len(not_done) - 5} more" if len(not_done) > 5 else ""
            raise BatchIncomplete(
                f"{len(not_done)} phase(s) are not done: {shown}{more}.",
                what_to_do="Every phase must be performed, and verified where required.",
            )
        open_ = [d.id for d in self.state.deviations.values() if d.status is DeviationStatus.OPEN]
        if open_:
            raise DeviationsOpen(
                f"Deviation(s) {', '.join(open_)} are not acknowledged.",
                what_to_do="A supervisor or QA must acknowledge each deviation first.",
            )

    def _correct(
        self,
        plan: PhasePlan,
        phase: PhaseState,
        correction: Mapping[str, Any],
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> None:
        self._active()
        value_id = correction["value"]
        reason = _reason(correction.get("reason"), "correct a value")
        spec = plan.input_spec(value_id)
        if spec is None:
            raise NotFound(f"'{plan.name}' has no input '{value_id}' (calculations follow inputs).")

        def guard() -> None:
            if value_id not in phase.values:
                raise PhaseNotInProgress(f"{spec['label']} was never recorded: nothing to correct.")

        self._check_correct(plan, phase, who)
        _fire(_PHASE_MACHINE, phase.status, "correct", guard)
        value = parse_value(
            {**spec, "required": True}, correction.get("new"), at=at, time_zone=self.time_zone
        )
        current = phase.values[value_id]
        if current.value == value:
            raise InvalidInput(
                f"{spec['label']} already is {value}.", what_to_do="Enter the corrected value."
            )
        comments = {value_id: f"Correction: {reason}"}
        self._record_one(
            plan, value_id, value, who.actor, at, terminal, comments,
            kind=EntryKind.VALUE_CORRECTED, extra={"corrects": current.seq, "reason": reason},
        )  # fmt: skip
        self._calculate(plan, who.actor, at, terminal, comments, correcting=reason)

    def _check_correct(self, plan: PhasePlan, phase: PhaseState, who: Operator) -> None:
        if phase.status not in (PhaseStatus.PERFORMED, PhaseStatus.VERIFIED):
            raise PhaseNotInProgress(
                f"'{plan.name}' is {PHASE_STATUS_TITLES[phase.status].lower()}; corrections are "
                "for signed phases.",
                what_to_do="While the phase is in progress, just record the value again.",
            )
        _require_roles(who, {Role(plan.spec["perform"]), Role.SUPERVISOR}, "correct a value")
        _require_training(who, self.procedure)

    # -- reading -----------------------------------------------------------------------------

    def phases_in(self, *statuses: PhaseStatus) -> list[str]:
        """Phase IDs in the given statuses, in recipe order."""
        return [pid for pid, p in self.state.phases.items() if p.status in statuses]

    def current_phases(self) -> list[str]:
        """What operators work on now: phases in progress, then ready, then awaiting verification.

        Nothing is current in a batch that is not started, complete or aborted.
        """
        if self.state.status not in (BatchStatus.IN_PROGRESS, BatchStatus.ON_HOLD):
            return []
        return (
            self.phases_in(PhaseStatus.IN_PROGRESS)
            + self.phases_in(PhaseStatus.READY)
            + [
                pid
                for pid in self.phases_in(PhaseStatus.PERFORMED)
                if self.procedure.phases[pid].needs_verification
            ]
        )

    def projection(self) -> dict[str, Any]:
        """The batch as the current-state tables hold it (rows as plain dicts).

        The database keeps these rows in step with the ledger; replaying the ledger and calling
        this must give exactly the stored rows.
        """
        s = self.state
        batch = {
            "id": s.id,
            "number": s.number,
            "site": s.site,
            "recipe_code": s.recipe["code"],
            "recipe_version": s.recipe["version"],
            "content_hash": s.recipe["content_hash"],
            "installed_recipe_id": s.recipe.get("installed_id"),
            "chain_of_identity": s.chain_of_identity,
            "status": s.status.value,
            "status_reason": s.status_reason,
            "created_at": s.created_at,
            "created_by": s.created_by.username,
            "started_at": s.started_at,
            "completed_at": s.completed_at,
            "last_seq": s.last_seq,
            "last_hash": s.last_hash,
        }
        phases, values, uses, equipment = [], [], [], []
        current = set(self.current_phases())
        for pid, phase in s.phases.items():
            plan = self.procedure.phases[pid]
            windows = self.timer_windows(pid)
            earliest = max((w["earliest"] for w in windows if w["earliest"]), default=None)
            latest = min((w["latest"] for w in windows if w["latest"]), default=None)
            phases.append(
                {
                    "batch_id": s.id,
                    "phase_id": pid,
                    "position": plan.position,
                    "name": plan.name,
                    "status": phase.status.value,
                    "started_at": phase.started_at,
                    "performed_at": phase.performed_at,
                    "performed_by": phase.performed_by.username if phase.performed_by else None,
                    "verified_at": phase.verified_at,
                    "verified_by": phase.verified_by.username if phase.verified_by else None,
                    "needs_verification": plan.needs_verification,
                    "earliest_start": utc_text(earliest) if earliest else None,
                    "latest_start": utc_text(latest) if latest else None,
                    "corrections": phase.corrections,
                    "current": pid in current,
                    "last_seq": phase.last_seq,
                }
            )
            for value_id, rec in phase.values.items():
                values.append(
                    {
                        "batch_id": s.id,
                        "phase_id": pid,
                        "value_id": value_id,
                        "value": rec.value,
                        "status": rec.status,
                        "entry_seq": rec.seq,
                        "recorded_at": rec.at,
                        "recorded_by": rec.by.username,
                        "corrections": rec.corrections,
                    }
                )
            for code, use in phase.materials.items():
                uses.append(
                    {
                        "batch_id": s.id,
                        "phase_id": pid,
                        "material_code": code,
                        "lot_number": use["lot"],
                        "quantity": use["quantity"],
                        "unit": use["unit"],
                        "entry_seq": use["seq"],
                    }
                )
            for slot, use in phase.equipment.items():
                equipment.append(
                    {
                        "batch_id": s.id,
                        "phase_id": pid,
                        "slot": slot,
                        "equipment_id": use["equipment"],
                        "entry_seq": use["seq"],
                        "in_use": phase.status is PhaseStatus.IN_PROGRESS
                        and s.status in (BatchStatus.IN_PROGRESS, BatchStatus.ON_HOLD),
                    }
                )
        deviations = [
            {
                "id": d.id,
                "batch_id": s.id,
                "number": d.number,
                "phase_id": d.phase,
                "value_id": d.value_id,
                "category": d.category,
                "description": d.description,
                "comment": d.comment,
                "status": d.status.value,
                "raised_at": d.raised_at,
                "raised_by": d.raised_by.username,
                "acknowledged_at": d.acknowledged_at,
                "acknowledged_by": d.acknowledged_by.username if d.acknowledged_by else None,
                "entry_seq": d.seq,
            }
            for d in s.deviations.values()
        ]
        return {
            "batch": batch,
            "phases": phases,
            "values": values,
            "materials": uses,
            "equipment": equipment,
            "deviations": deviations,
        }


# --- small rules ----------------------------------------------------------------------------


def _history_item(rec: Recorded) -> dict[str, Any]:
    return {"value": rec.value, "status": rec.status, "seq": rec.seq, "at": rec.at, "by": rec.by}


def _reason(reason: str | None, what: str) -> str:
    """A reason as kept: at least 3 characters; a longer one than allowed is refused, not cut."""
    text = free_text(reason, "The reason")
    if len(text) < 3:
        raise InvalidInput(f"A reason is required to {what}.", what_to_do="Say why.")
    return text


def _require_roles(who: Operator, roles: Iterable[Role], what: str) -> None:
    needed = set(roles) - {Role.ADMIN}
    if not set(who.roles) & {r.value for r in needed}:
        names = " or ".join(sorted(r.value for r in needed))
        raise NotAuthorised(
            f"To {what} you need the {names} role.", what_to_do="Ask a person who holds it."
        )


def _require_training(who: Operator, procedure: Procedure) -> None:
    if not who.qualified:
        raise NotQualified(
            f"{who.actor.name} has no current training record for '{procedure.training}'.",
            what_to_do="Ask your supervisor: training on this recipe version must be recorded "
            "(and not expired) before you can work on the batch.",
        )


def _equipment_title(spec: Mapping[str, Any]) -> str:
    """'cell counter', or the recipe's label for the instrument with its class."""
    title = equipment_class_title(str(spec["class"]))
    return f"{spec['label']} ({title})" if spec.get("label") else title


def equipment_class_title(equipment_class: str) -> str:
    """'fridge_2_8c' → 'fridge 2–8 °C' : a class ID as people say it."""
    special = {"fridge_2_8c": "fridge 2–8 °C", "freezer_minus_80": "freezer −80 °C"}
    return special.get(equipment_class, equipment_class.replace("_", " "))


def _lot_refusal(
    spec: Mapping[str, Any], lot: LotInfo | None, scanned: str, today: date
) -> MesError | None:
    name = f"{spec['name']} ({spec['code']})"
    if lot is None:
        return UnknownLot(
            f"No lot '{scanned.strip()}' is registered at this site.",
            what_to_do=f"Scan the lot label of {name}, or ask for the lot to be registered.",
        )
    if lot.material_code != spec["code"]:
        return WrongMaterial(
            f"Lot {lot.lot_number} is {lot.material_name} ({lot.material_code}), not {name}.",
            what_to_do=f"Take a lot of {name}.",
        )
    if lot.status == "rejected":
        return LotRejected(
            f"Lot {lot.lot_number} of {name} was rejected by QA.",
            what_to_do="Do not use it; take a released lot.",
        )
    if lot.status != "released":
        return LotQuarantined(
            f"Lot {lot.lot_number} of {name} is in quarantine (not released by QA).",
            what_to_do="Take a released lot, or ask QA.",
        )
    if lot.expiry < today:
        return LotExpired(
            f"Lot {lot.lot_number} of {name} expired on {lot.expiry.isoformat()}.",
            what_to_do="Take a lot within its expiry date.",
        )
    return None


def _equipment_refusal(
    spec: Mapping[str, Any],
    equipment: EquipmentInfo | None,
    scanned: str,
    today: date,
    batch_number: str,
) -> MesError | None:
    title = _equipment_title(spec)
    if equipment is None:
        return UnknownEquipment(
            f"No instrument '{scanned.strip()}' is registered at this site.",
            what_to_do=f"Scan the ID label of the {title}.",
        )
    label = f"{equipment.equipment_id} ({equipment.name})"
    if equipment.equipment_class != spec["class"]:
        return WrongEquipmentClass(
            f"{label} is a {equipment.equipment_class.replace('_', ' ')}, not a {title}.",
            what_to_do=f"Use a {title}.",
        )
    if equipment.status != "in_service":
        return EquipmentOutOfService(
            f"{label} is out of service.", what_to_do="Use another instrument of the same class."
        )
    if not equipment.clean:
        return EquipmentNotClean(
            f"{label} is not clean.", what_to_do="Clean it and record the cleaning first."
        )
    if equipment.calibration_due is not None and equipment.calibration_due < today:
        return CalibrationOverdue(
            f"{label} was due for calibration on {equipment.calibration_due.isoformat()}.",
            what_to_do="Use a calibrated instrument; have this one calibrated.",
        )
    if equipment.in_use_by is not None and equipment.in_use_by != batch_number:
        return EquipmentInUse(
            f"{label} is in use by batch {equipment.in_use_by}.",
            what_to_do="Use another instrument, or wait until that phase is done.",
        )
    return None
