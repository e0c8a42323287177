"""The batch's actions, declared once: who may act, when, and what each signature binds to.

:data:`BATCH_ACTIONS` gives each action its rule (:class:`~mes.core.actions.ActionRule`): its
subject (the batch, a phase, a deviation), the roles and training it needs, the checks before and
after who acts, the meaning of its signature, its button and its message. :meth:`Actions.refusal`
(why not, for pages), :meth:`Actions.available_actions` (the buttons), :meth:`Actions.prepare`
(the signed actions) and the unsigned actions all walk that one table (21 CFR 11.10(f)
sequencing, (g) authority, (i) training).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from mes.core.access import SIGNING_ROLES, Role
from mes.core.actions import ActionRule, Subject
from mes.core.after_release import (
    check_may_sign,
    notification_payload,
    result_payload,
)
from mes.core.audit import Actor
from mes.core.batch.aggregate import Aggregate
from mes.core.batch.bedside import checkable, infusion_endable, infusion_startable
from mes.core.batch.machines import (
    BATCH_STATUS_TITLES,
    PHASE_STATUS_TITLES,
    Action,
    BatchStatus,
    DeviationCategory,
    DeviationStatus,
    EntryKind,
    PhaseStatus,
    batch_step,
    format_duration,
    phase_step,
)
from mes.core.batch.plan import PhasePlan, Procedure
from mes.core.batch.state import (
    Operator,
    Outcome,
    PhaseState,
)
from mes.core.clock import as_utc, utc_text
from mes.core.custody import (
    MATERIAL_TITLES,
    SIDE_MEANINGS,
    Side,
    Transfer,
    check_transfer,
    excursion_text,
    transfer_record,
)
from mes.core.entry import EntryBody
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
from mes.core.esign import Manifestation, Meaning
from mes.core.identity import normalise_identifier
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, SealedEntry, seal
from mes.core.limits import (
    InvalidValue,
    parse_value,
)
from mes.core.text import free_text

SUPERVISION = frozenset({Role.SUPERVISOR, Role.QA})
# A phase whose first entry would start it (a locked or skipped one: the start says why not).
_NOT_STARTED = frozenset({PhaseStatus.LOCKED, PhaseStatus.READY, PhaseStatus.SKIPPED})
STARTERS = frozenset({Role.OPERATOR, Role.SUPERVISOR})
CLINICIANS = frozenset({Role.CLINICIAN})
# Who signs a custody transfer: the site's signing roles (not recipe authors) — operators,
# supervisors, QA, and the roles other packages add (a clinician receiving at the clinic).
CUSTODY_ROLES = SIGNING_ROLES - {Role.AUTHOR}
# Custody is recorded while the batch is made and after it is complete (the product travels).
_CUSTODY_STATUSES = frozenset({BatchStatus.IN_PROGRESS, BatchStatus.ON_HOLD, BatchStatus.COMPLETE})


@dataclass(frozen=True)
class Ask:
    """Who asks to take an action, when, and on which phase or deviation of the batch."""

    who: Operator
    at: datetime
    phase_id: str | None = None
    deviation_id: str | None = None


# --- the checks of the table: each raises the named error of the first broken rule ----------


def _not_started(batch: Actions, ask: Ask) -> None:
    if batch.state.status is not BatchStatus.CREATED:
        raise BatchNotActive(f"Batch {batch.state.number} was already started.")


def _startable(batch: Actions, ask: Ask) -> None:
    plan = batch.procedure.phase(str(ask.phase_id))
    phase = batch.state.phases[plan.id]
    batch._active()
    if phase.status is PhaseStatus.LOCKED:
        raise PhaseOutOfOrder(
            f"'{plan.name}' cannot start yet: {batch.blocking_reason(plan.id)}.",
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


def _timers_elapsed(batch: Actions, ask: Ask) -> None:
    plan = batch.procedure.phase(str(ask.phase_id))
    for window in batch.timer_windows(plan.id):
        if window["earliest"] is not None and as_utc(ask.at) < window["earliest"]:
            left = (window["earliest"] - as_utc(ask.at)).total_seconds()
            hold = format_duration((window["earliest"] - window["since"]).total_seconds())
            raise TimerNotElapsed(
                f"'{plan.name}' may start only {hold} after '{window['after_name']}': "
                f"{format_duration(left)} left.",
                seconds_left=math.ceil(left),
                what_to_do="Wait until the time shown, then start it.",
            )


def _phase_in_progress(batch: Actions, ask: Ask) -> None:
    batch._in_progress(str(ask.phase_id))


def _performable(batch: Actions, ask: Ask) -> None:
    plan = batch.procedure.phase(str(ask.phase_id))
    phase = batch.state.phases[plan.id]
    if phase.performed_by is not None and phase.status in (
        PhaseStatus.PERFORMED,
        PhaseStatus.VERIFIED,
    ):
        batch._active()
        raise PhaseNotInProgress(
            f"'{plan.name}' was already performed by {phase.performed_by.name} "
            f"({phase.performed_by.username}) at {phase.performed_at}.",
            what_to_do="Look at the phase as it is now; to change a signed value, use a "
            "correction with a reason.",
        )
    batch._in_progress(plan.id)
    missing = batch.missing_for_performance(plan.id)
    if missing:
        raise PhaseIncomplete(missing)


def _verifiable(batch: Actions, ask: Ask) -> None:
    plan = batch.procedure.phase(str(ask.phase_id))
    phase = batch.state.phases[plan.id]
    batch._active()
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
    if ask.who.user_id in phase.contributors:
        raise SelfVerificationForbidden(
            f"You recorded or signed data in '{plan.name}': you cannot verify it.",
            what_to_do="Ask another trained person to verify.",
        )


def _correctable(batch: Actions, ask: Ask) -> None:
    plan = batch.procedure.phase(str(ask.phase_id))
    phase = batch.state.phases[plan.id]
    batch._active()
    if phase.status not in (PhaseStatus.PERFORMED, PhaseStatus.VERIFIED):
        raise PhaseNotInProgress(
            f"'{plan.name}' is {PHASE_STATUS_TITLES[phase.status].lower()}; corrections are "
            "for signed phases.",
            what_to_do="While the phase is in progress, just record the value again.",
        )


def _deviation_known(batch: Actions, ask: Ask) -> None:
    batch.deviation(str(ask.deviation_id))


def _acknowledgeable(batch: Actions, ask: Ask) -> None:
    deviation = batch.deviation(str(ask.deviation_id))
    if deviation.status is not DeviationStatus.OPEN:
        raise BatchNotActive(
            f"Deviation {deviation.id} was already acknowledged by "
            f"{deviation.acknowledged_by.name if deviation.acknowledged_by else 'someone'}."
        )
    if deviation.comment is None:
        raise PhaseIncomplete([f"deviation {deviation.id} needs a comment first"])
    if ask.who.user_id is not None and ask.who.user_id == deviation.raised_by.user_id:
        raise SelfVerificationForbidden(
            "You raised this deviation: another person acknowledges it.",
            what_to_do="Ask another supervisor or QA.",
        )
    if batch.state.status in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
        raise BatchNotActive(f"Batch {batch.state.number} is closed.")


def _commentable(batch: Actions, ask: Ask) -> None:
    deviation = batch.deviation(str(ask.deviation_id))
    if deviation.status is not DeviationStatus.OPEN:
        raise BatchNotActive(f"Deviation {deviation.id} is already acknowledged.")
    if batch.state.status in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
        raise BatchNotActive(
            f"Batch {batch.state.number} is closed: its deviations are worked at the hub."
        )


def _not_closed(batch: Actions, ask: Ask) -> None:
    if batch.state.status in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
        raise BatchNotActive(f"Batch {batch.state.number} is closed.")


def _active(batch: Actions, ask: Ask) -> None:
    batch._active()


def _on_hold(batch: Actions, ask: Ask) -> None:
    if batch.state.status is not BatchStatus.ON_HOLD:
        raise BatchNotActive(f"Batch {batch.state.number} is not on hold.")


def _completable(batch: Actions, ask: Ask) -> None:
    batch._active()
    batch._check_complete()


def _abortable(batch: Actions, ask: Ask) -> None:
    if batch.state.status in (BatchStatus.COMPLETE, BatchStatus.ABORTED):
        raise BatchNotActive(
            f"Batch {batch.state.number} is "
            f"{BATCH_STATUS_TITLES[batch.state.status].lower()}: it cannot be aborted."
        )


def _complete(batch: Actions, ask: Ask) -> None:
    if batch.state.status is not BatchStatus.COMPLETE:
        raise BatchNotActive(
            f"Batch {batch.state.number} is "
            f"{BATCH_STATUS_TITLES[batch.state.status].lower()}: results that arrive after "
            "release are entered once the batch is complete.",
            what_to_do="Record in-process and release results in the batch's phases.",
        )


def _notification_pending(batch: Actions, ask: Ask) -> None:
    if not batch.after_release().notification_pending:
        raise InvalidInput(
            f"Batch {batch.state.number} has no result out of specification waiting for the "
            "physician's notification.",
            what_to_do="Nothing to notify.",
        )


def _custody_open(batch: Actions, ask: Ask) -> None:
    status = batch.state.status
    if status not in _CUSTODY_STATUSES:
        raise BatchNotActive(
            f"Batch {batch.state.number} is {BATCH_STATUS_TITLES[status].lower()}: custody "
            "transfers are recorded once it is started, while it is made and after it is complete.",
            what_to_do="Record the transfer on the batch the material belongs to.",
        )


def _rule(subject: Subject, label: str, done: str, what: str, **rule: Any) -> ActionRule:
    return ActionRule(subject, label, done, what=what, **rule)


_PERFORMER = ("perform",)

# Every action on a batch, one rule each: the table the refusal, the buttons, the signed
# records and the actions themselves walk. Order: the checks run precondition → roles →
# training → guard. ``witness=True``: the actions a second person signs at the performer's
# panel without logging them out (a verification, an acknowledgement, the completion — the
# ones that need a role or a person the performer is not).
BATCH_ACTIONS: dict[Action, ActionRule] = {
    Action.START: _rule(
        Subject.BATCH, "Start the batch", "Batch {number} started.", "start a batch",
        roles=STARTERS, training=True, meaning=Meaning.STARTED, guard=_not_started,
    ),
    Action.START_PHASE: _rule(
        Subject.PHASE, "Start this phase", "", "perform '{phase}'",
        phase_roles=_PERFORMER, training=True, precondition=_startable, guard=_timers_elapsed,
    ),
    Action.RECORD: _rule(
        Subject.PHASE, "Save", "Saved.", "record values in '{phase}'",
        phase_roles=_PERFORMER, training=True, precondition=_phase_in_progress,
    ),
    Action.PERFORM: _rule(
        Subject.PHASE, "Sign performed", "Signed: performed.", "sign '{phase}' as performed",
        phase_roles=_PERFORMER, training=True, meaning=Meaning.PERFORMED, guard=_performable,
    ),
    Action.VERIFY: _rule(
        Subject.PHASE, "Verify", "Signed: verified.", "verify '{phase}'",
        phase_roles=("verify",), training=True, meaning=Meaning.VERIFIED,
        precondition=_verifiable, witness=True,
    ),
    Action.CORRECT: _rule(
        Subject.PHASE, "Sign the correction",
        "Correction signed. The original value stays in the record.", "correct a value",
        roles=frozenset({Role.SUPERVISOR}), phase_roles=_PERFORMER, training=True,
        meaning=Meaning.CORRECTED, precondition=_correctable,
    ),
    Action.REPORT: _rule(
        Subject.BATCH, "Report", "Deviation reported.", "report a deviation",
        roles=STARTERS | SUPERVISION, precondition=_not_closed,
    ),
    Action.COMMENT: _rule(
        Subject.DEVIATION, "Add the comment", "Comment added to deviation {deviation}.",
        "comment on a deviation", roles=STARTERS | SUPERVISION, precondition=_commentable,
    ),
    Action.ACKNOWLEDGE: _rule(
        Subject.DEVIATION, "Acknowledge", "Deviation {deviation} acknowledged.",
        "acknowledge a deviation", roles=SUPERVISION, meaning=Meaning.ACKNOWLEDGED,
        precondition=_deviation_known, guard=_acknowledgeable, witness=True,
    ),
    Action.HOLD: _rule(
        Subject.BATCH, "Put the batch on hold", "The batch is on hold.", "put a batch on hold",
        roles=STARTERS | SUPERVISION, guard=_active,
    ),
    Action.RESUME: _rule(
        Subject.BATCH, "Resume the batch", "The batch is in progress again.", "resume a batch",
        roles=SUPERVISION, guard=_on_hold,
    ),
    Action.COMPLETE: _rule(
        Subject.BATCH, "Sign the batch complete", "The batch is complete.", "complete a batch",
        roles=frozenset({Role.SUPERVISOR}), training=True, meaning=Meaning.COMPLETED,
        guard=_completable, witness=True,
    ),
    Action.ABORT: _rule(
        Subject.BATCH, "Abort the batch", "The batch is aborted. Its record stays.",
        "abort a batch", roles=frozenset({Role.SUPERVISOR}), meaning=Meaning.ABORTED,
        guard=_abortable,
    ),
    Action.RECORD_RESULT: _rule(
        Subject.BATCH, "Enter the result", "Result entered.", "enter a release test result",
        roles=frozenset({Role.QC}), precondition=_complete,
    ),
    Action.NOTIFY_PHYSICIAN: _rule(
        Subject.BATCH, "Record the physician's notification",
        "The physician's notification is recorded.", "record the physician's notification",
        roles=frozenset({Role.SUPERVISOR, Role.QA, Role.QC}), meaning=Meaning.NOTIFIED,
        precondition=_complete, guard=_notification_pending,
    ),
    # After release, at the clinic (mes/core/batch/bedside.py): allowed in status complete
    # while QA's release at the hub stands; each entry carries its own signature.
    Action.CHECK_AT_BEDSIDE: _rule(
        Subject.BATCH, "Sign the identity check", "Identity checked: the product matches the "
        "patient.", "check identity at the bedside", roles=CLINICIANS,
        meaning=Meaning.PERFORMED, guard=checkable,
    ),
    Action.START_INFUSION: _rule(
        Subject.BATCH, "Sign: infusion started", "Infusion started.", "start the infusion",
        roles=CLINICIANS, meaning=Meaning.PERFORMED, guard=infusion_startable,
    ),
    Action.END_INFUSION: _rule(
        Subject.BATCH, "Sign: infusion ended", "Infusion ended.", "end the infusion",
        roles=CLINICIANS, meaning=Meaning.PERFORMED, guard=infusion_endable,
    ),
    # Both sides sign, each with their own meaning (mes.core.custody.SIDE_MEANINGS): the
    # logged-in user, and the other side in place at the same panel (a witness) — or, for a
    # person who is not a user, the logged-in user alone with that person typed.
    Action.TRANSFER_CUSTODY: _rule(
        Subject.BATCH, "Sign the custody transfer",
        "Custody transfer recorded.",
        "record a custody transfer", roles=CUSTODY_ROLES, meaning=Meaning.RECEIVED,
        precondition=_custody_open, witness=True,
    ),
}  # fmt: skip

# The actions a witness may sign in place, in words (for the refusal of any other).
WITNESSED_LABELS = tuple(rule.label for rule in BATCH_ACTIONS.values() if rule.witness)

# A reason is required to … (the words of the refusal of an empty reason).
_REASON_FOR = {Action.HOLD: "put the batch on hold", Action.RESUME: "resume the batch"}

# What each signed action's signature means (11.50(a)(3)).
ACTION_MEANINGS: dict[Action, Meaning] = {
    action: rule.meaning for action, rule in BATCH_ACTIONS.items() if rule.meaning is not None
}


class Actions(Aggregate):
    """The batch's actions, their checks and the signed records (a part of :class:`~mes.core.batch.Batch`)."""

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
        _authorise(BATCH_ACTIONS[Action.START], who, procedure)
        coi: dict[str, Any] = {}
        problems: dict[str, str] = {}  # by identifier, so a page shows each at its field
        for spec in procedure.chain_of_identity:
            try:
                coi[spec["id"]] = normalise_identifier(
                    spec["kind"],
                    identifiers.get(spec["id"], ""),
                    spec["label"],
                    spec["pattern"],
                    time_zone=time_zone,
                )
            except InvalidInput as err:
                problems[spec["id"]] = str(err)
        if problems:
            raise InvalidValue(" ".join(problems.values()), fields=problems)
        body = EntryBody(
            batch=batch_id,
            seq=1,
            prev=GENESIS,
            at=utc_text(at),
            site=site,
            terminal=terminal,
            actor=who.actor,
            kind=EntryKind.BATCH_CREATED,
            payload={"number": number, "recipe": dict(recipe), "chain_of_identity": coi},
        )
        entry = seal(body.as_dict(), key)
        batch = cls._from_first(procedure, entry, key=key, time_zone=time_zone)
        batch.new_entries.append(entry)
        return batch

    # -- the table, walked ---------------------------------------------------------------------

    def _check(
        self, action: Action, ask: Ask, *, what: str | None = None, unsigned: bool = False
    ) -> ActionRule:
        """Every rule of ``action`` for ``ask``, in the table's order; nothing changes.

        ``unsigned``: what is recorded is not the action's signature (a bedside mismatch, the
        hard stop, is recorded unsigned): the physician-notification gate does not hold it.
        """
        rule = BATCH_ACTIONS[action]
        if ask.who.in_session_of is not None and not rule.witness:
            raise NotAuthorised(
                f"'{rule.label}' cannot be signed by a witness in place: only "
                f"{', '.join(WITNESSED_LABELS)} can.",
                what_to_do="The logged-in user signs it themselves.",
            )
        if self.state.status is BatchStatus.COMPLETE and self.after_release().rejected:
            # The hub adds nothing to a rejected record (its ingest refuses it): nor does the
            # spoke seal an entry its sync could never deliver.
            raise BatchNotActive(
                f"Batch {self.state.number} was rejected by QA at the hub: nothing more is "
                "added to its record.",
                what_to_do="Keep the product in quarantine and follow QA's instructions; QA "
                "records what happens to it at the hub.",
            )
        if rule.signed and not unsigned:  # the physician-notification gate (after_release)
            check_may_sign(
                self.after_release(),
                self.state.number,
                notifying=action is Action.NOTIFY_PHYSICIAN,
            )
        if rule.precondition is not None:
            rule.precondition(self, ask)
        plan = self.procedure.phase(str(ask.phase_id)) if rule.subject is Subject.PHASE else None
        _authorise(rule, ask.who, self.procedure, plan, what=what)
        if rule.guard is not None:
            rule.guard(self, ask)
        return rule

    def refusal(
        self,
        action: Action | str,
        who: Operator,
        at: datetime,
        *,
        phase_id: str | None = None,
        deviation_id: str | None = None,
    ) -> MesError | None:
        """Why ``who`` may not take ``action`` now (None when the rules allow it); nothing changes.

        For pages to offer only what would be accepted, asked of the same table the actions
        walk (:data:`BATCH_ACTIONS`).
        """
        try:
            try:
                chosen = Action(action)
            except ValueError:
                raise InvalidInput(f"'{action}' is not a batch action.") from None
            self._check(chosen, Ask(who, at, phase_id, deviation_id))
        except MesError as refusal:
            return refusal
        return None

    def witness_may_take(
        self,
        action: Action,
        viewer: Operator,
        at: datetime,
        *,
        phase_id: str | None = None,
        deviation_id: str | None = None,
    ) -> bool:
        """Whether another person could sign ``action`` in place at ``viewer``'s panel now.

        The action must be one the table lets a witness sign, and every rule that does not
        depend on who signs must pass (asked of a stand-in holding every role and trained):
        the page then offers "Sign as another person"; the witness's own roles, training and
        independence are checked when they sign.
        """
        if not BATCH_ACTIONS[action].witness:
            return False
        stand_in = Operator(
            actor=Actor(user_id=None, username="", name="A witness"),
            roles=frozenset(role.value for role in Role),
            qualified=True,
            in_session_of=viewer.actor,
        )
        return (
            self.refusal(action, stand_in, at, phase_id=phase_id, deviation_id=deviation_id) is None
        )

    def available_actions(
        self,
        who: Operator,
        at: datetime,
        *,
        phase_id: str | None = None,
        deviation_id: str | None = None,
    ) -> list[Action]:
        """The actions ``who`` may take now on the batch, the phase or the deviation named."""
        subject = (
            Subject.PHASE
            if phase_id is not None
            else Subject.DEVIATION
            if deviation_id is not None
            else Subject.BATCH
        )
        return [
            action
            for action, rule in BATCH_ACTIONS.items()
            if rule.subject is subject
            and self.refusal(action, who, at, phase_id=phase_id, deviation_id=deviation_id) is None
        ]

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
        """Who records in a phase: its performer's role and the training (``what``: in words)."""
        _authorise(BATCH_ACTIONS[Action.RECORD], who, self.procedure, plan, what=what)

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
        ask = Ask(who, at, phase_id)
        # checks only; the entry applies it
        phase_step(phase.status, "start", lambda: self._check(Action.START_PHASE, ask))
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

    def start_with_entry(
        self, phase_id: str, who: Operator, at: datetime, terminal: str | None
    ) -> Outcome:
        """A phase not yet started starts with its first entry or its performed signature.

        The start is :meth:`start_phase` itself (every rule of :attr:`Action.START_PHASE`:
        order, role, training, timer waits; a late start's deviation), by the same person at
        the same time as the entry that follows it; its refusal refuses the entry, in the
        start's words. A phase already started (or signed) is left as it is: the entry's own
        rules answer.
        """
        self.procedure.phase(phase_id)  # NotFound for a phase the recipe does not have
        if self.state.phases[phase_id].status not in _NOT_STARTED:
            return Outcome(())
        return self.start_phase(phase_id, who, at, terminal)

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
        self._check(Action.REPORT, Ask(who, at))
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
        self._check(Action.COMMENT, Ask(who, at, deviation_id=deviation.id))
        mark = len(self.new_entries)
        self._append(
            EntryKind.DEVIATION_COMMENTED,
            {"deviation": deviation_id, "comment": text},
            who.actor,
            at,
            terminal,
        )
        return Outcome(tuple(self.new_entries[mark:]))

    def record_result(
        self,
        fields: Mapping[str, Any],
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> Outcome:
        """QC enters a result the recipe declared pending at release (mes.core.after_release).

        ``fields``: result, value, reference, within_specification (where the recipe gives no
        rule), method, and for a correction corrects and reason. A result out of specification
        raises a deviation (``result_after_release``) in the same transaction: QA works it at
        the hub, and the physician-notification gate closes every other signature meanwhile.
        """
        self._check(Action.RECORD_RESULT, Ask(who, at))
        payload = result_payload(self.after_release(), self.state.number, **fields)
        mark = len(self.new_entries)
        self._append(EntryKind.RESULT_RECORDED, payload, who.actor, at, terminal)
        if not payload["within_specification"]:
            number = len(self.state.deviations) + 1
            unit = f" {payload['unit']}" if payload["unit"] else ""
            self._append(
                EntryKind.DEVIATION_RAISED,
                {
                    "deviation": f"{self.state.number}-D{number}",
                    "number": number,
                    "phase": None,
                    "value": None,
                    "result": payload["result"],
                    "category": DeviationCategory.RESULT_AFTER_RELEASE.value,
                    "description": f"{payload['result']} = {payload['value']}{unit} after "
                    f"release; specification {payload['specification']} (report "
                    f"{payload['reference']}). Notify the treating physician.",
                },
                who.actor,
                at,
                terminal,
            )
        return Outcome(tuple(self.new_entries[mark:]))

    def notification_record(self, who: Operator, at: datetime, **fields: str) -> dict[str, Any]:
        """What recording the physician's notification signs (who was told, when, how).

        ``fields``: result, physician, how, told_at (UTC text). By whom is the signer.
        """
        self._check(Action.NOTIFY_PHYSICIAN, Ask(who, at))
        notification = notification_payload(
            self.after_release(), self.state.number, time_zone=self.time_zone, now=at, **fields
        )
        return {
            "type": "batch",
            "action": Action.NOTIFY_PHYSICIAN.value,
            "batch": self.state.id,
            "number": self.state.number,
            "notification": notification,
        }

    def notify_physician(
        self,
        record: Mapping[str, Any],
        manifestation: Manifestation,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> SealedEntry:
        """Append the signed notification (its record and manifestation in the one entry)."""
        return self._append(
            EntryKind.PHYSICIAN_NOTIFIED,
            {
                **record["notification"],
                "record": dict(record),
                "manifestation": manifestation.as_dict(),
            },
            who.actor,
            at,
            terminal,
        )

    def hold(self, reason: str, who: Operator, at: datetime, terminal: str | None) -> Outcome:
        """Put the batch on hold (anyone working on it may stop the line); a reason is required."""
        return self._move(Action.HOLD, EntryKind.BATCH_HELD, reason, who, at, terminal)

    def resume(self, reason: str, who: Operator, at: datetime, terminal: str | None) -> Outcome:
        """A supervisor resumes a batch on hold, saying why it may continue."""
        return self._move(Action.RESUME, EntryKind.BATCH_RESUMED, reason, who, at, terminal)

    def _move(
        self,
        action: Action,
        kind: EntryKind,
        reason: str,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> Outcome:
        """Hold or resume: the reason, the table's rules, the batch machine, the entry."""
        text = _reason(reason, _REASON_FOR[action])
        self._check(action, Ask(who, at))
        batch_step(self.state.status, action.value)
        mark = len(self.new_entries)
        self._append(kind, {"reason": text}, who.actor, at, terminal)
        return Outcome(tuple(self.new_entries[mark:]))

    # -- signed actions: prepare (the table's rules, the record to sign), then signed --------

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
        if not BATCH_ACTIONS[action].signed:
            raise InvalidInput(f"'{action.value}' is not signed.")
        base = {
            "type": "batch",
            "action": action.value,
            "batch": self.state.id,
            "number": self.state.number,
        }
        ask = Ask(who, at, phase_id, deviation_id)
        if action is Action.CORRECT:  # the correction's reason and value come first
            assert correction is not None and phase_id is not None
            self._correct(correction, ask, terminal)
        elif action is Action.ABORT:  # the reason comes first
            base["reason"] = _reason(reason, "abort the batch")
            self._check(action, ask)
        else:
            self._check(action, ask)
        if action in (Action.COMPLETE, Action.ABORT):
            batch_step(self.state.status, action.value)
        elif action in (Action.PERFORM, Action.VERIFY):
            phase_step(self.state.phases[str(phase_id)].status, action.value)
        if action is Action.START:
            return {
                **base,
                "recipe": self.state.recipe,
                "chain_of_identity": self.state.chain_of_identity,
            }
        if action is Action.COMPLETE:
            return {**base, "phases": self._phase_summary(), "deviations": self._deviation_ids()}
        if action is Action.ABORT:
            return base
        if action is Action.ACKNOWLEDGE:
            deviation = self.deviation(str(deviation_id))
            return {
                **base,
                "type": "deviation",
                "deviation": deviation.id,
                "category": deviation.category,
                "description": deviation.description,
                "comment": deviation.comment,
            }
        phase = self.state.phases[str(phase_id)]
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
        lifecycle. A witness's signature also names, beside the manifestation (whose fields stay
        as they are), the logged-in user at whose terminal and session it was given.
        """
        payload: dict[str, Any] = {"record": dict(record), "manifestation": manifestation.as_dict()}
        if who.in_session_of is not None:  # a witness signed at another user's session
            payload["in_session_of"] = who.in_session_of.as_dict()
        return self._append(
            EntryKind.SIGNATURE,
            payload,
            who.actor,
            at,
            terminal,
        )

    # -- custody of the material (mes.core.custody) -------------------------------------------

    def prepare_custody(
        self,
        transfer: Transfer,
        signers: Mapping[Side, Operator],
        at: datetime,
        *,
        site_organisation: str,
        decision: str | None,
    ) -> dict[str, Any]:
        """Check a custody transfer and return the record both signatures bind to (11.70).

        ``signers``: the site users who sign, by side (one or both; a side not given is an
        external party, typed). Each signer passes the action's rules (role, the batch started
        and not aborted; a witness in place where the table allows it); then the chain of
        custody's (:func:`mes.core.custody.check_transfer`). Nothing changes.
        """
        for side, who in signers.items():
            party = transfer.handed_over_by if side is Side.HANDED_OVER else transfer.received_by
            if party.user_id != who.user_id:
                raise InvalidInput(
                    f"The signer of the side '{side.words}' is not that side's person."
                )
            self._check(Action.TRANSFER_CUSTODY, Ask(who, at))
        check_transfer(
            self.state.custody, transfer, site_organisation=site_organisation, decision=decision
        )
        return transfer_record(self.state.id, self.state.number, transfer, utc_text(at))

    def custody_signed(
        self,
        record: Mapping[str, Any],
        signatures: Mapping[Side, tuple[Manifestation, Operator]],
        who: Operator,
        at: datetime,
        terminal: str | None,
        transfer: Transfer | None = None,
    ) -> SealedEntry:
        """Append the transfer with its signatures as one entry: never half-signed.

        ``transfer``: as prepared; when its uploaded logger file is outside its window's
        allowance, a TEMPERATURE_EXCURSION deviation follows the entry (same transaction).

        Each signature's meaning is its side's; a witness's names the logged-in user at whose
        session it was given.
        """
        signed = []
        for side, (manifestation, signer) in signatures.items():
            if manifestation.meaning != SIDE_MEANINGS[side].value:  # pragma: no cover - service
                raise InvalidInput(f"The '{side.words}' signature has another meaning.")
            one: dict[str, Any] = {"side": side.value, "manifestation": manifestation.as_dict()}
            if signer.in_session_of is not None:
                one["in_session_of"] = signer.in_session_of.as_dict()
            signed.append(one)
        payload = {"record": dict(record), "signatures": signed}
        entry = self._append(EntryKind.CUSTODY_TRANSFERRED, payload, who.actor, at, terminal)
        evidence = transfer.logger if transfer is not None else None
        if evidence is not None and not evidence.within_window:  # the logger's excursion
            self._raise_deviation(  # type: ignore[attr-defined]
                DeviationCategory.TEMPERATURE_EXCURSION,
                excursion_text(evidence, MATERIAL_TITLES[transfer.material].lower()),  # type: ignore[union-attr]
                who.actor,
                at,
                terminal,
                None,
            )
        return entry

    def _phase_summary(self) -> dict[str, str]:
        return {pid: p.status.value for pid, p in self.state.phases.items()}

    def _deviation_ids(self) -> list[str]:
        return list(self.state.deviations)

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

    def _correct(self, correction: Mapping[str, Any], ask: Ask, terminal: str | None) -> None:
        plan = self.procedure.phase(str(ask.phase_id))
        phase = self.state.phases[plan.id]
        self._active()
        value_id = correction["value"]
        reason = _reason(correction.get("reason"), "correct a value")
        spec = plan.input_spec(value_id)
        if spec is None:
            raise NotFound(f"'{plan.name}' has no input '{value_id}' (calculations follow inputs).")

        def guard() -> None:
            if value_id not in phase.values:
                raise PhaseNotInProgress(f"{spec['label']} was never recorded: nothing to correct.")

        self._check(Action.CORRECT, ask)
        phase_step(phase.status, "correct", guard)
        value = parse_value(
            {**spec, "required": True}, correction.get("new"), at=ask.at, time_zone=self.time_zone
        )
        current = phase.values[value_id]
        if current.value == value:
            raise InvalidInput(
                f"{spec['label']} already is {value}.", what_to_do="Enter the corrected value."
            )
        comments = {value_id: f"Correction: {reason}"}
        self._record_one(
            plan, value_id, value, ask.who.actor, ask.at, terminal, comments,
            kind=EntryKind.VALUE_CORRECTED, extra={"corrects": current.seq, "reason": reason},
        )  # fmt: skip
        self._calculate(plan, ask.who.actor, ask.at, terminal, comments, correcting=reason)


def rule_roles(rule: ActionRule, plan: PhasePlan | None = None) -> frozenset[Role]:
    """Who may take the action: the rule's roles, with those the recipe gives the phase."""
    roles = set(rule.roles)
    if plan is not None:
        roles |= {Role(plan.spec[key]) for key in rule.phase_roles}
    return frozenset(roles)


def _authorise(
    rule: ActionRule,
    who: Operator,
    procedure: Procedure,
    plan: PhasePlan | None = None,
    *,
    what: str | None = None,
) -> None:
    """The rule's roles (with the phase's own, from the recipe) and, where needed, training."""
    roles = rule_roles(rule, plan)
    _require_roles(who, roles, (what or rule.what).format(phase=plan.name if plan else ""))
    if rule.training:
        _require_training(who, procedure)


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
