"""The batch's actions and their rules: who may act, when, and what each signature binds to.

:meth:`Actions.refusal` asks the same guards (``_check_*``) that :meth:`Actions.prepare` and the
actions run, so pages offer only what would be accepted (21 CFR 11.10(f) sequencing, (g)
authority, (i) training).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Self

from mes.core.access import Role
from mes.core.batch.aggregate import Aggregate
from mes.core.batch.machines import (
    _BATCH_MACHINE,
    _PHASE_MACHINE,
    BATCH_STATUS_TITLES,
    PHASE_STATUS_TITLES,
    Action,
    BatchStatus,
    DeviationCategory,
    DeviationStatus,
    EntryKind,
    PhaseStatus,
    _fire,
    format_duration,
)
from mes.core.batch.plan import PhasePlan, Procedure
from mes.core.batch.state import (
    Operator,
    Outcome,
    PhaseState,
)
from mes.core.clock import as_utc, utc_text
from mes.core.errors import (
    BatchIncomplete,
    BatchNotActive,
    DeviationsOpen,
    InvalidInput,
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
)
from mes.core.esign import Manifestation
from mes.core.identity import normalise_identifier
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, SealedEntry, seal
from mes.core.limits import (
    InvalidValue,
    parse_value,
)
from mes.core.text import free_text

SUPERVISION = frozenset({Role.SUPERVISOR, Role.QA})
STARTERS = frozenset({Role.OPERATOR, Role.SUPERVISOR})


class Actions(Aggregate):
    """The batch's actions, their guards and the signed records (a part of :class:`~mes.core.batch.Batch`)."""

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
    ) -> Self:
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

    def _phase_summary(self) -> dict[str, str]:
        return {pid: p.status.value for pid, p in self.state.phases.items()}

    def _deviation_ids(self) -> list[str]:
        return list(self.state.deviations)

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
