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

Two lifecycles, defined once with ``transitions`` (:mod:`mes.core.batch.machines`)::

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

The package, by what each part holds:

* :mod:`~mes.core.batch.machines` — states, their words, the two machines, their diagrams;
* :mod:`~mes.core.batch.plan` — the procedure as execution needs it (:class:`Procedure`);
* :mod:`~mes.core.batch.state` — the state dataclasses, who acts, what an action did;
* :mod:`~mes.core.batch.ordering` — the ordering's one decision (ready, waiting and on what,
  not applicable) and the timers;
* :mod:`~mes.core.batch.aggregate` — replay, append and apply (the ``_on_<kind>`` handlers);
* :mod:`~mes.core.batch.recording` — values, calculations, lots, instruments, labels;
* :mod:`~mes.core.batch.actions` — the actions declared once (:data:`BATCH_ACTIONS`: roles,
  training, checks, signature, words), the refusal and the signed records;
* :mod:`~mes.core.batch.projection` — the batch's current state, typed (the store builds its rows);
* :mod:`~mes.core.batch.bedside` — after release, at the clinic: the identity check at the
  bedside and the infusion;
* :mod:`~mes.core.batch.next_steps` — what the batch waits for and who can do it (guidance).

:class:`Batch` is these parts put together.
"""

from __future__ import annotations

from mes.core.batch.actions import ACTION_MEANINGS, BATCH_ACTIONS, Actions
from mes.core.batch.bedside import Bedside
from mes.core.batch.machines import (
    BATCH_STATUS_TITLES,
    DEVIATION_CATEGORY_TITLES,
    PHASE_STATUS_TITLES,
    Action,
    BatchStatus,
    DeviationCategory,
    DeviationStatus,
    EntryKind,
    PhaseStatus,
    format_duration,
    mermaid,
)
from mes.core.batch.next_steps import NextStep, next_steps, who_can
from mes.core.batch.plan import PhasePlan, Procedure, training_procedure
from mes.core.batch.projection import Projection
from mes.core.batch.recording import Recording, equipment_class_title
from mes.core.batch.state import (
    BatchState,
    DeviationState,
    EquipmentInfo,
    LotInfo,
    Operator,
    Outcome,
    PhaseState,
    Recorded,
)

__all__ = [
    "ACTION_MEANINGS",
    "BATCH_ACTIONS",
    "BATCH_STATUS_TITLES",
    "DEVIATION_CATEGORY_TITLES",
    "PHASE_STATUS_TITLES",
    "Action",
    "Batch",
    "BatchState",
    "BatchStatus",
    "DeviationCategory",
    "DeviationState",
    "DeviationStatus",
    "EntryKind",
    "EquipmentInfo",
    "LotInfo",
    "NextStep",
    "Operator",
    "Outcome",
    "PhasePlan",
    "PhaseState",
    "PhaseStatus",
    "Procedure",
    "Recorded",
    "equipment_class_title",
    "format_duration",
    "mermaid",
    "next_steps",
    "training_procedure",
    "who_can",
]


class Batch(Actions, Bedside, Recording, Projection):
    """One batch: its procedure, its state, and the entries appended in this unit of work."""
