"""What the recipe's ordering allows: which phases are ready, waiting or not applicable, and why.

One decision per phase (:meth:`Ordering._ordering`), used both to move phases (``_refresh``) and
to say why a waiting phase cannot start (:meth:`Ordering.blocking_reason`): a phase becomes
ready only when every phase of earlier operations is done; in a ``sequence`` every phase before
it is done; any sibling it refers to is done; in ``any_order`` no sibling is in progress. A phase
whose condition is not met is not applicable. "Done" means performed — and verified where the
recipe asks for a second person — or not applicable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mes.core.batch.machines import BatchStatus, PhaseStatus, phase_step
from mes.core.batch.plan import Procedure
from mes.core.batch.state import BatchState
from mes.core.clock import parse_utc_text
from mes.core.ordering import PhaseOrdering


@dataclass(frozen=True)
class Decision:
    """Where the ordering puts a waiting or ready phase, and the phase it waits for (if any).

    ``busy`` says the phase it waits for is a sibling in progress (``any_order``: one at a time).
    """

    status: PhaseStatus
    waits_for: str | None = None
    busy: bool = False


_TRIGGERS = {
    PhaseStatus.READY: "unlock",
    PhaseStatus.LOCKED: "relock",
    PhaseStatus.SKIPPED: "skip",
}


class Ordering:
    """The ordering rules of a batch (a part of :class:`~mes.core.batch.Batch`); derived, deterministic."""

    procedure: Procedure
    state: BatchState

    def is_done(self, phase_id: str) -> bool:
        """Performed (and verified where the recipe asks), or not applicable."""
        phase = self.state.phases[phase_id]
        if phase.status in (PhaseStatus.VERIFIED, PhaseStatus.SKIPPED):
            return True
        return (
            phase.status is PhaseStatus.PERFORMED
            and not self.procedure.phases[phase_id].needs_verification
        )

    def _ordering(self, phase_id: str, *, earlier_done: bool = False) -> Decision:
        """The ordering's decision for a phase, with the first phase it waits for.

        ``earlier_done``: the caller knows every phase of the earlier operations is done.
        """
        plan = self.procedure.phases[phase_id]
        if not earlier_done:
            for ids in self.procedure.operations[: plan.operation_index]:
                for other in ids:
                    if not self.is_done(other):
                        return Decision(PhaseStatus.LOCKED, other)
        ids = self.procedure.operations[plan.operation_index]
        if (
            plan.ordering == PhaseOrdering.SEQUENCE
        ):  # every phase before it, not only the one before: a
            # corrected phase waiting to be verified again holds back the whole rest of the
            # sequence, even past a phase that was not applicable
            for earlier in ids[: ids.index(phase_id)]:
                if not self.is_done(earlier):
                    return Decision(PhaseStatus.LOCKED, earlier)
        for other in sorted(plan.waits_for):
            if not self.is_done(other):
                return Decision(PhaseStatus.LOCKED, other)
        when = plan.spec.get("when")
        if when is not None:
            source_phase, value_id = when["input"].split(".", 1)
            recorded = self.state.phases[source_phase].values.get(value_id)
            if self.state.phases[source_phase].status is PhaseStatus.SKIPPED or recorded is None:
                return Decision(PhaseStatus.SKIPPED)
            if recorded.value not in when["in"]:
                return Decision(PhaseStatus.SKIPPED)
        if plan.ordering == PhaseOrdering.ANY_ORDER:
            busy = [s for s in ids if self.state.phases[s].status is PhaseStatus.IN_PROGRESS]
            if busy:
                return Decision(PhaseStatus.LOCKED, busy[0], busy=True)
        return Decision(PhaseStatus.READY)

    def _refresh(self) -> None:
        """Move waiting phases to ready, back to waiting, or to not applicable."""
        if self.state.status not in (BatchStatus.IN_PROGRESS, BatchStatus.ON_HOLD):
            return
        done_before = True  # every phase of the operations before this one is done
        for ids in self.procedure.operations:
            op_done = True
            for phase_id in ids:
                phase = self.state.phases[phase_id]
                if phase.status is PhaseStatus.LOCKED and not done_before:
                    op_done = False  # behind an operation not done: it stays waiting
                    continue
                if phase.status in (PhaseStatus.LOCKED, PhaseStatus.READY):
                    target = self._ordering(phase_id, earlier_done=done_before).status
                    if target != phase.status:
                        phase.status = phase_step(phase.status, _TRIGGERS[target])
                op_done = op_done and self.is_done(phase_id)
            done_before = done_before and op_done

    def _blocker(self, phase_id: str) -> Decision | None:
        """The ordering's decision for a waiting phase when it names a phase it waits for."""
        if self.state.phases[phase_id].status is not PhaseStatus.LOCKED:
            return None
        decision = self._ordering(phase_id)
        return decision if decision.waits_for is not None else None

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
            other = str(blocker.waits_for)
            if blocker.busy:
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
