"""The batch's and phase's lifecycles: their states, their words, and the machines that move them.

Each machine is defined once (``transitions``, ``auto_transitions=False``); :func:`_fire` moves a
state along it after the action's guard, and :func:`mermaid` draws it for the docs.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from transitions import EventData, Machine

from mes.core.errors import (
    PhaseNotInProgress,
)
from mes.core.worded import Worded, words_of

# --- states and entry kinds --------------------------------------------------------------


class BatchStatus(Worded):
    """Where a batch is in its lifecycle."""

    CREATED = "created", "Created"
    IN_PROGRESS = "in_progress", "In progress"
    ON_HOLD = "on_hold", "On hold"
    COMPLETE = "complete", "Complete"
    ABORTED = "aborted", "Aborted"


BATCH_STATUS_TITLES = words_of(BatchStatus)


class PhaseStatus(Worded):
    """Where a phase is in its lifecycle."""

    LOCKED = "locked", "Waiting"
    READY = "ready", "Ready"
    IN_PROGRESS = "in_progress", "In progress"
    PERFORMED = "performed", "Performed"
    VERIFIED = "verified", "Verified"
    SKIPPED = "skipped", "Not applicable"


PHASE_STATUS_TITLES = words_of(PhaseStatus)


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
    # after completion (mes.core.after_release)
    RESULT_RECORDED = "result_recorded"
    PHYSICIAN_NOTIFIED = "physician_notified"
    # after release, at the clinic (docs/bedside.md): each signed one carries its own signature
    BEDSIDE_CHECKED = "bedside_checked"
    BEDSIDE_MISMATCH = "bedside_mismatch"
    INFUSION_STARTED = "infusion_started"
    INFUSION_ENDED = "infusion_ended"
    LOGGER_IMPORTED = "logger_imported"  # a phase kind's entry (mes.core.phases.temperature_log)
    CUSTODY_TRANSFERRED = "custody_transferred"  # material handed over, both sides signing


class DeviationStatus(StrEnum):
    """A deviation is open until a supervisor or QA acknowledges it (closure comes at the hub)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class DeviationCategory(Worded):
    """Why a deviation was raised."""

    ACTION_LIMIT = "action_limit", "Value outside action limits"
    TIMER = "timer", "Time window exceeded"
    IDENTITY = "identity", "Chain of identity mismatch"
    MANUAL = "manual", "Reported by a person"
    RESULT_AFTER_RELEASE = "result_after_release", "Result out of specification after release"
    TEMPERATURE_EXCURSION = "temperature_excursion", "Temperature excursion in transport"


DEVIATION_CATEGORY_TITLES = words_of(DeviationCategory)


class Action(StrEnum):
    """Every action on a batch (its rules: :data:`mes.core.batch.actions.BATCH_ACTIONS`).

    A signed action's value is written in its signature's record ("action"): never rename one.
    """

    START = "start"  # the batch, signed
    START_PHASE = "start_phase"
    RECORD = "record"
    PERFORM = "perform"
    VERIFY = "verify"
    CORRECT = "correct"
    REPORT = "report"
    COMMENT = "comment"
    ACKNOWLEDGE = "acknowledge"
    HOLD = "hold"
    RESUME = "resume"
    COMPLETE = "complete"
    ABORT = "abort"
    RECORD_RESULT = "record_result"  # a pending result, once the batch is complete
    NOTIFY_PHYSICIAN = "notify_physician"  # signed: the physician told of a result out of spec
    CHECK_AT_BEDSIDE = "check_at_bedside"  # after release, at the clinic (signed)
    START_INFUSION = "start_infusion"  # signed
    END_INFUSION = "end_infusion"  # signed
    TRANSFER_CUSTODY = "transfer_custody"  # signed by both sides (mes.core.custody)


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


def batch_step(status: BatchStatus, trigger: str, guard: Any = None) -> BatchStatus:
    """The batch's status after ``trigger`` (refused as :func:`_fire` says)."""
    return BatchStatus(_fire(_BATCH_MACHINE, status, trigger, guard))


def phase_step(status: PhaseStatus, trigger: str, guard: Any = None) -> PhaseStatus:
    """A phase's status after ``trigger`` (refused as :func:`_fire` says)."""
    return PhaseStatus(_fire(_PHASE_MACHINE, status, trigger, guard))


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
