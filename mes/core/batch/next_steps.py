"""What a batch waits for, and who can do it: the guidance the batch page and the board show.

Worked out from the batch's state and the table of its actions (:data:`BATCH_ACTIONS`: who may
take each one), so the words never disagree with what the rules allow. A step is guidance, not
a refusal: a phase that waits for a second person, a timer still running, the supervisor's
signature that completes the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mes.core.access import Role
from mes.core.batch.actions import BATCH_ACTIONS, rule_roles
from mes.core.batch.machines import (
    Action,
    BatchStatus,
    DeviationStatus,
    PhaseStatus,
    format_duration,
)
from mes.core.clock import as_utc

if TYPE_CHECKING:
    from mes.core.batch import Batch
    from mes.core.batch.plan import PhasePlan

# A role as a sentence names who can act: "a supervisor", "QA".
_ROLE_WORDS = {
    Role.OPERATOR: "an operator",
    Role.SUPERVISOR: "a supervisor",
    Role.QA: "QA",
    Role.AUTHOR: "an author",
    Role.ADMIN: "an administrator",
}
_ROLE_ORDER = (Role.OPERATOR, Role.SUPERVISOR, Role.QA, Role.AUTHOR, Role.ADMIN)


def who_can(roles: frozenset[Role]) -> str:
    """``{supervisor, qa}`` → ``"a supervisor or QA"``."""
    named = [_ROLE_WORDS[r] for r in _ROLE_ORDER if r in roles]
    if not named:
        return "someone"
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " or " + named[-1]


@dataclass(frozen=True)
class NextStep:
    """One thing the batch waits for: in words, who can do it, and when a wait ends.

    ``action`` (with ``phase_id`` or ``deviation_id``) is the batch action that does it, so a
    page can ask the core whether the viewer may take it; ``due`` is when a timer lets it.
    """

    text: str
    roles: frozenset[Role]
    action: Action | None = None
    phase_id: str | None = None
    deviation_id: str | None = None
    due: datetime | None = None
    lead: str | None = None  # a wait's words before the time left ("'X' may start in")

    @property
    def who(self) -> str:
        """Who can do it, in words: "a supervisor or QA"."""
        return who_can(self.roles)


def next_steps(batch: Batch, at: datetime) -> list[NextStep]:
    """What the batch waits for at ``at``, most pressing first; empty once it is closed.

    On hold: a supervisor or QA resumes it. In progress: open deviations (a comment, then an
    acknowledgement), phases in progress, phases awaiting their second person, phases ready
    (or their timers still running, with the time left); with every phase done, the
    supervisor's signature that completes the batch.
    """
    state = batch.state
    if state.status is BatchStatus.ON_HOLD:
        roles = _roles(Action.RESUME)
        return [
            NextStep(
                f"On hold ({state.status_reason}): waiting for {who_can(roles)} to resume "
                "the batch",
                roles,
                Action.RESUME,
            )
        ]
    if state.status is not BatchStatus.IN_PROGRESS:
        return []
    steps = _deviation_steps(batch)
    for phase_id in batch.phases_in(PhaseStatus.IN_PROGRESS):
        plan = batch.procedure.phases[phase_id]
        roles = _roles(Action.PERFORM, plan)
        steps.append(
            NextStep(
                f"'{plan.name}' is in progress: {who_can(roles)} records and signs it",
                roles,
                Action.PERFORM,
                phase_id,
            )
        )
    for phase_id in batch.phases_in(PhaseStatus.PERFORMED):
        plan = batch.procedure.phases[phase_id]
        if not plan.needs_verification:
            continue
        roles = _roles(Action.VERIFY, plan)
        steps.append(
            NextStep(
                f"Waiting for a second person ({who_can(roles)}) to verify '{plan.name}'",
                roles,
                Action.VERIFY,
                phase_id,
            )
        )
    for phase_id in batch.phases_in(PhaseStatus.READY):
        steps.append(_ready_step(batch, batch.procedure.phases[phase_id], at))
    if all(batch.is_done(pid) for pid in state.phases):
        roles = _roles(Action.COMPLETE)
        waiting = any(d.status is DeviationStatus.OPEN for d in state.deviations.values())
        text = (
            f"Every phase is done: once the open deviations are acknowledged, {who_can(roles)} "
            "signs the batch complete"
            if waiting
            else f"Every phase is done: waiting for {who_can(roles)} to sign the batch complete"
        )
        steps.append(NextStep(text, roles, Action.COMPLETE))
    return steps


def _roles(action: Action, plan: PhasePlan | None = None) -> frozenset[Role]:
    return rule_roles(BATCH_ACTIONS[action], plan) - {Role.ADMIN}


def _deviation_steps(batch: Batch) -> list[NextStep]:
    steps = []
    for deviation in batch.state.deviations.values():
        if deviation.status is not DeviationStatus.OPEN:
            continue
        if deviation.comment is None:
            roles = _roles(Action.COMMENT)
            text = f"Deviation {deviation.id} needs a comment: what happened, and what was done"
            action = Action.COMMENT
        else:
            roles = _roles(Action.ACKNOWLEDGE)
            text = (
                f"Waiting for {who_can(roles)} to acknowledge deviation {deviation.id} "
                f"(not {deviation.raised_by.name}, who raised it)"
            )
            action = Action.ACKNOWLEDGE
        steps.append(NextStep(text, roles, action, deviation_id=deviation.id))
    return steps


def _ready_step(batch: Batch, plan: PhasePlan, at: datetime) -> NextStep:
    roles = _roles(Action.START_PHASE, plan)
    now = as_utc(at)
    due = max(
        (w["earliest"] for w in batch.timer_windows(plan.id) if w["earliest"] is not None),
        default=None,
    )
    if due is not None and due > now:
        left = format_duration((due - now).total_seconds())
        lead = f"'{plan.name}' may start in"
        return NextStep(f"{lead} {left}", roles, Action.START_PHASE, plan.id, due=due, lead=lead)
    return NextStep(
        f"'{plan.name}' is ready: {who_can(roles)} may start it", roles, Action.START_PHASE, plan.id
    )
