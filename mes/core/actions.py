"""The shape every workflow declares its actions in: one rule per action, one table per workflow.

A batch (:data:`mes.core.batch.actions.BATCH_ACTIONS`), a master-recipe version
(:data:`mes.core.lifecycle.STEP_RULES`) and a batch's review at the hub
(:data:`mes.core.review.REVIEW_ACTIONS`) each map their actions to an :class:`ActionRule`: who may
take it, whether the recipe's training is needed, the rule checked before it (``guard``), what
its e-signature means (21 CFR 11.50(a)(3)), what it is taken on, the button that offers it and
the message once it is done. The checks and the pages walk the same table, so a new action is
one row (as in Funnel's transitions, which carry their permission and their label).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mes.core.access import Role
from mes.core.esign import Meaning


class Subject(StrEnum):
    """What an action is taken on."""

    BATCH = "batch"
    PHASE = "phase"
    DEVIATION = "deviation"
    EXCEPTION = "exception"  # an exception found by the review
    VERSION = "version"  # a master-recipe version


@dataclass(frozen=True)
class ActionRule:
    """One action, declared once: who, which training, which guard, which signature, which words.

    ``roles``: any one of them allows the action (empty: the service's permission decides);
    ``phase_roles``: the roles the recipe gives the phase (``perform``, ``verify``) that allow it
    too; ``what``: the action in the words of a refusal ("To {what} you need the … role").
    ``training``: only people trained on the recipe version take it (11.10(i)).
    ``precondition``: checked before who acts (the subject exists and is in a state for it);
    ``guard``: checked after; each raises the named error of the first broken rule.
    ``meaning``: the e-signature's meaning; None for an action that is not signed.
    ``label``: the button; ``done``: the message once it is done (``{}`` fields are filled in
    by the page from the action's subject).
    ``witness``: the action may be signed by a witness in place — another person who signs at
    the logged-in user's terminal, in their session, with both components of their own
    signature (21 CFR 11.200(a)); every other rule of the action applies to the witness.
    """

    subject: Subject
    label: str
    done: str
    roles: frozenset[Role] = frozenset()
    training: bool = False
    meaning: Meaning | None = None
    guard: Callable[..., Any] | None = None
    precondition: Callable[..., Any] | None = None
    phase_roles: tuple[str, ...] = ()
    what: str = ""
    witness: bool = False

    @property
    def signed(self) -> bool:
        """Whether taking the action is an e-signature."""
        return self.meaning is not None
