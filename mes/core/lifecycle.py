"""The lifecycle of a master-recipe version: change control with e-signatures (Annex 11 §10).

    draft ──submit (author signs "authored")──▶ in_review
    in_review ──review (a reviewer signs "reviewed")──▶ in_review
    in_review ──approve (QA signs "approved")──▶ approved
    approved ──make_effective (QA signs "made effective", with a date)──▶ effective
    effective ──supersede (when a newer version of the recipe becomes effective)──▶ superseded
    draft | in_review | approved | effective ──retire (QA signs "retired", with a reason)──▶ retired

The machine is defined once, here; services load a version into a :class:`VersionModel`, fire
the event, and record what changed. Guards raise a named error before any state changes:
nobody reviews or approves their own recipe, review comes before approval by another person,
only a version in the right state moves, an effective date is never in the past and an older
version never displaces a newer effective one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Any

from transitions import EventData
from transitions.extensions import LockedMachine

from mes.core.access import Role
from mes.core.actions import ActionRule, Subject
from mes.core.errors import (
    EffectivityRefused,
    InvalidInput,
    LifecycleStepRefused,
    MesError,
    RecipeNotEditable,
    SeparationOfDuties,
)
from mes.core.esign import Meaning
from mes.core.worded import Worded, words_of


class VersionState(Worded):
    """Where a recipe version is in its lifecycle."""

    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    EFFECTIVE = "effective", "Effective"
    SUPERSEDED = "superseded", "Superseded"
    RETIRED = "retired", "Retired"


STATE_TITLES = words_of(VersionState)


class Step(StrEnum):
    """The lifecycle events; each (but supersede) is an e-signature."""

    SUBMIT = "submit"
    REVIEW = "review"
    APPROVE = "approve"
    MAKE_EFFECTIVE = "make_effective"
    SUPERSEDE = "supersede"
    RETIRE = "retire"


EDITABLE = frozenset({VersionState.DRAFT})
USABLE = frozenset({VersionState.EFFECTIVE})


@dataclass
class VersionModel:
    """A recipe version as the machine sees it: its state and who has signed what."""

    recipe_code: str
    version: int
    state: str
    author: str | None = None  # user ID of the "authored" signer
    reviewer: str | None = None
    approver: str | None = None
    effective_from: date | None = None
    newest_effective_version: int | None = None  # of the same recipe, other than this one

    def fire(self, step: Step, **context: Any) -> None:
        """Fire ``step`` with ``context`` (signer, today, effective_from, reason)."""
        allowed = _MACHINE.get_transitions(trigger=step.value, source=self.state)
        if not allowed:
            raise LifecycleStepRefused(
                f"A version that is {STATE_TITLES[VersionState(self.state)].lower()} cannot be "
                f"{_PAST[step]}.",
                what_to_do=_NEXT_STEP[VersionState(self.state)],
            )
        _MACHINE.add_model(self, initial=self.state)
        try:
            getattr(self, step.value)(**context)
        finally:
            _MACHINE.remove_model(self)


_PAST = {
    Step.SUBMIT: "submitted for review",
    Step.REVIEW: "reviewed",
    Step.APPROVE: "approved",
    Step.MAKE_EFFECTIVE: "made effective",
    Step.SUPERSEDE: "superseded",
    Step.RETIRE: "retired",
}
_NEXT_STEP = {
    VersionState.DRAFT: "The author must first sign it and submit it for review.",
    VersionState.IN_REVIEW: "It must first be reviewed and then approved by QA.",
    VersionState.APPROVED: "QA can make it effective or retire it.",
    VersionState.EFFECTIVE: "It can only be retired, or superseded by a newer effective version.",
    VersionState.SUPERSEDED: "A superseded version stays as it is; make a new version instead.",
    VersionState.RETIRED: "A retired version stays as it is; make a new version instead.",
}


# --- guards: each returns True or raises the named error -------------------------------


def _not_author(event: EventData) -> bool:
    model: VersionModel = event.model
    signer = event.kwargs["signer"]
    if signer == model.author:
        raise SeparationOfDuties(
            "The author of a recipe version cannot review or approve it.",
            what_to_do="Ask another qualified person to sign.",
        )
    return True


def _not_yet_reviewed(event: EventData) -> bool:
    if event.model.reviewer is not None:
        raise LifecycleStepRefused(
            "This version has already been reviewed.",
            what_to_do="QA can now approve it.",
        )
    return True


def _reviewed_by_another(event: EventData) -> bool:
    model: VersionModel = event.model
    if model.reviewer is None:
        raise LifecycleStepRefused(
            "This version has not been reviewed yet; QA approves after the technical review.",
            what_to_do="Ask a reviewer to sign the review first.",
        )
    if event.kwargs["signer"] == model.reviewer:
        raise SeparationOfDuties(
            "The reviewer of a recipe version cannot also approve it.",
            what_to_do="Ask another QA person to approve.",
        )
    return True


def _effective_date_allowed(event: EventData) -> bool:
    model: VersionModel = event.model
    effective_from: date = event.kwargs["effective_from"]
    today: date = event.kwargs["today"]
    if effective_from < today:
        raise EffectivityRefused(
            f"The effective date {effective_from.isoformat()} is in the past.",
            what_to_do="Choose today or a later date; effectivity is never backdated.",
        )
    newest = model.newest_effective_version
    if newest is not None and newest > model.version:
        raise EffectivityRefused(
            f"Version {newest} of {model.recipe_code} is already effective; the older version "
            f"{model.version} cannot become effective as well.",
            what_to_do="Retire the newer version first, or make a new version.",
        )
    return True


def _reason_given(event: EventData) -> bool:
    reason = (event.kwargs.get("reason") or "").strip()
    if len(reason) < 3:
        raise InvalidInput(
            "Retiring a version needs a reason.", what_to_do="Say why it is retired."
        )
    return True


# --- effects ---------------------------------------------------------------------------


def _record_author(event: EventData) -> None:
    event.model.author = event.kwargs["signer"]


def _record_reviewer(event: EventData) -> None:
    event.model.reviewer = event.kwargs["signer"]


def _record_approver(event: EventData) -> None:
    event.model.approver = event.kwargs["signer"]


def _record_effective_date(event: EventData) -> None:
    event.model.effective_from = event.kwargs["effective_from"]


def _step(
    meaning: Meaning, roles: set[Role], label: str, *guards: Callable[[EventData], bool]
) -> ActionRule:
    def guard(event: EventData) -> bool:
        return all(check(event) for check in guards)

    return ActionRule(
        Subject.VERSION,
        label,
        f"Signed: {meaning.value}.",
        frozenset(roles),
        meaning=meaning,
        guard=guard if guards else None,
    )


# Who may sign each step, what the signature means, the guards the machine checks before it
# moves, its button and its message (the shape of every workflow's actions, mes.core.actions).
STEP_RULES: dict[Step, ActionRule] = {
    Step.SUBMIT: _step(Meaning.AUTHORED, {Role.AUTHOR}, "Sign as author and submit for review"),
    Step.REVIEW: _step(
        Meaning.REVIEWED,
        {Role.AUTHOR, Role.SUPERVISOR, Role.QA},
        "Sign the technical review",
        _not_author,
        _not_yet_reviewed,
    ),
    Step.APPROVE: _step(
        Meaning.APPROVED, {Role.QA}, "Sign the QA approval", _not_author, _reviewed_by_another
    ),
    Step.MAKE_EFFECTIVE: _step(
        Meaning.MADE_EFFECTIVE, {Role.QA}, "Make effective", _effective_date_allowed
    ),
    Step.RETIRE: _step(Meaning.RETIRED, {Role.QA}, "Retire this version", _reason_given),
}


def _guarded(step: Step) -> dict[str, Any]:
    guard = STEP_RULES[step].guard
    return {"conditions": [guard]} if guard is not None else {}


TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": Step.SUBMIT, "source": VersionState.DRAFT, "dest": VersionState.IN_REVIEW,
     "after": _record_author},
    {"trigger": Step.REVIEW, "source": VersionState.IN_REVIEW, "dest": None,
     **_guarded(Step.REVIEW), "after": _record_reviewer},
    {"trigger": Step.APPROVE, "source": VersionState.IN_REVIEW, "dest": VersionState.APPROVED,
     **_guarded(Step.APPROVE), "after": _record_approver},
    {"trigger": Step.MAKE_EFFECTIVE, "source": VersionState.APPROVED,
     "dest": VersionState.EFFECTIVE, **_guarded(Step.MAKE_EFFECTIVE),
     "after": _record_effective_date},
    {"trigger": Step.SUPERSEDE, "source": VersionState.EFFECTIVE,
     "dest": VersionState.SUPERSEDED},
    {"trigger": Step.RETIRE,
     "source": [VersionState.DRAFT, VersionState.IN_REVIEW, VersionState.APPROVED,
                VersionState.EFFECTIVE],
     "dest": VersionState.RETIRED, **_guarded(Step.RETIRE)},
]  # fmt: skip

# Locked: one machine serves every request thread; models are added for one event at a time.
_MACHINE = LockedMachine(
    model=None,
    states=[s.value for s in VersionState],
    transitions=[
        {
            **t,
            "trigger": t["trigger"].value,
            "source": [s.value for s in t["source"]]
            if isinstance(t["source"], list)
            else t["source"].value,
            "dest": None if t["dest"] is None else t["dest"].value,
        }
        for t in TRANSITIONS
    ],
    initial=VersionState.DRAFT.value,
    auto_transitions=False,
    send_event=True,
    ignore_invalid_triggers=False,
)


def ensure_editable(state: str, recipe_code: str, version: int) -> None:
    """Content may change only while draft (Annex 11 §10: any change is a new version)."""
    if VersionState(state) not in EDITABLE:
        raise RecipeNotEditable(
            f"{recipe_code} version {version} is {STATE_TITLES[VersionState(state)].lower()}: "
            "its content can no longer change.",
            what_to_do="Import the change as a new version number with a change reason.",
        )


def steps_from(state: str) -> list[Step]:
    """The signed steps possible from ``state`` (for pages to offer the right buttons)."""
    return [
        step for step in STEP_RULES if _MACHINE.get_transitions(trigger=step.value, source=state)
    ]


def may_sign(
    model: VersionModel, step: Step, signer: str, roles: Iterable[str], today: date
) -> bool:
    """Whether ``signer`` (holding ``roles``) may sign ``step`` now: asked of the guards themselves.

    For pages to offer only the buttons that would work (an author sees no "review" button on
    their own version). The step is tried on a copy; nothing changes.
    """
    rule = STEP_RULES.get(step)
    if rule is None or not rule.roles & set(roles):
        return False
    trial = replace(model)
    try:
        trial.fire(step, signer=signer, today=today, effective_from=today, reason="(trial)")
    except MesError:
        return False
    return True


def mermaid() -> str:
    """The lifecycle as a Mermaid state diagram, generated from the machine itself."""
    lines = ["stateDiagram-v2", f"    [*] --> {VersionState.DRAFT.value}"]
    for t in TRANSITIONS:
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        for source in sources:
            dest = source if t["dest"] is None else t["dest"]
            lines.append(f"    {source.value} --> {dest.value}: {t['trigger'].value}")
    return "\n".join(lines)
