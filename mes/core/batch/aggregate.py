"""The batch aggregate's core: built by replaying its ledger, and each new entry sealed and applied.

:class:`Aggregate` holds the procedure and the state; :meth:`Aggregate._apply` runs the
``_on_<entry kind>`` handler of each entry, live and on replay alike (replay does not judge again:
it re-applies, checking only that each transition exists).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Self

from mes.core import phases
from mes.core.after_release import AfterRelease, after_release_state
from mes.core.audit import Actor
from mes.core.batch.machines import (
    Action,
    BatchStatus,
    DeviationCategory,
    DeviationStatus,
    EntryKind,
    PhaseStatus,
    batch_step,
    phase_step,
)
from mes.core.batch.ordering import Ordering
from mes.core.batch.plan import Procedure
from mes.core.batch.state import (
    BatchState,
    DeviationState,
    PhaseState,
)
from mes.core.clock import utc_text
from mes.core.entry import EntryBody
from mes.core.errors import (
    InvalidInput,
    NotFound,
)
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry, seal

# Only these entries can change which phases are ready: a phase starting (one at a time in an
# any_order operation), a signature (a phase done, or undone by a correction), the batch held or
# resumed. Values and scans go into phases in progress; conditions read the values of phases
# that are done, which change only with a signed correction.
_MOVES_READINESS = frozenset(
    {EntryKind.PHASE_STARTED, EntryKind.SIGNATURE, EntryKind.BATCH_HELD, EntryKind.BATCH_RESUMED}
)

# The entries after_release reads from the ledger (kept as the batch replays).
_FOLLOWUPS = frozenset(
    {EntryKind.RESULT_RECORDED, EntryKind.PHYSICIAN_NOTIFIED, EntryKind.DEVIATION_RAISED}
)


class Aggregate(Ordering):
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
        # After release (mes.core.after_release): this ledger's result, notification and
        # deviation entries, and the review chain's bodies as this site holds them (set by the
        # service that loads the batch; empty when it holds none).
        self.followups: list[Mapping[str, Any]] = []
        self.review_bodies: list[Mapping[str, Any]] = []

    def after_release(self) -> AfterRelease:
        """This batch after release, from its ledger and the review chain held here."""
        return after_release_state(self.procedure, self.followups, self.review_bodies)

    @classmethod
    def replay(
        cls,
        procedure: Procedure,
        entries: Iterable[SealedEntry],
        *,
        key: SiteKey | None = None,
        time_zone: str = "UTC",
    ) -> Self:
        """The batch as its ledger says it is (entries in seq order)."""
        batch: Self | None = None
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
    ) -> Self:
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

    # -- appending ---------------------------------------------------------------------------

    def _append(
        self,
        kind: str,  # an EntryKind, or the entry kind of a phase kind (mes.core.phases)
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
        body = EntryBody(
            batch=self.state.id,
            seq=self.state.last_seq + 1,
            prev=self.state.last_hash,
            at=at_text,
            site=self.state.site,
            terminal=terminal,
            actor=who,
            kind=kind,
            payload=payload,
        )
        entry = seal(body.as_dict(), self.key)
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

    # -- applying one entry (live and replay) --------------------------------------------------

    def _apply(self, entry: SealedEntry) -> None:
        body = entry.body
        payload = body["payload"]
        actor = Actor.from_dict(body["actor"])
        kind = phases.for_entry(body["kind"])
        if kind is not None:  # a phase kind's entry: the kind applies it to its phase
            phase = self.state.phases[payload["phase"]]
            what = kind.apply(self, phase, payload, entry)  # type: ignore[arg-type]
            phase.data.append(entry.hash)
            self._contribute(phase, actor)
            self._touch(phase, entry, what)
        else:
            handler = getattr(self, f"_on_{EntryKind(body['kind']).value}")
            handler(payload, actor, body["at"], entry)
        self._after(entry)
        if body["kind"] in _MOVES_READINESS:
            self._refresh()

    def _on_result_recorded(self, *_: Any) -> None:
        """A result after completion: kept in :attr:`followups` (read by after_release)."""

    def _on_physician_notified(self, *_: Any) -> None:
        """The physician told of a result: kept in :attr:`followups` (read by after_release)."""

    def _after(self, entry: SealedEntry) -> None:
        if entry.body["kind"] in _FOLLOWUPS:
            self.followups.append(entry.body)
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
        phase.status = phase_step(phase.status, "start")
        phase.started_at, phase.started_by = at, actor
        self._contribute(phase, actor)
        self._touch(phase, entry, "started")

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
        self.state.status = batch_step(self.state.status, "hold")
        self.state.status_reason = payload["reason"]

    def _on_batch_resumed(self, payload: Mapping[str, Any], *_: Any) -> None:
        self.state.status = batch_step(self.state.status, "resume")
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
            self.state.status = batch_step(self.state.status, "start")
            self.state.started_at = at
        elif action is Action.COMPLETE:
            self.state.status = batch_step(self.state.status, "complete")
            self.state.completed_at = at
        elif action is Action.ABORT:
            self.state.status = batch_step(self.state.status, "abort")
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
            new_status = phase_step(phase.status, trigger)
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
            self._touch(phase, entry, f"signed {signature['meaning']}")

    def _on_custody_transferred(
        self, payload: Mapping[str, Any], actor: Actor, at: str, entry: SealedEntry
    ) -> None:
        self.state.custody.append(
            {**payload["record"], "seq": entry.seq, "signatures": list(payload["signatures"])}
        )

    @staticmethod
    def _contribute(phase: PhaseState, actor: Actor) -> None:
        if actor.user_id:
            phase.contributors.add(actor.user_id)

    # -- reading -----------------------------------------------------------------------------

    def phase_state(self, phase_id: str) -> PhaseState:
        """The state of ``phase_id`` (:class:`NotFound` if the recipe has no such phase)."""
        self.procedure.phase(phase_id)
        return self.state.phases[phase_id]

    def deviation(self, deviation_id: str) -> DeviationState:
        """One deviation of this batch."""
        deviation = self.state.deviations.get(deviation_id)
        if deviation is None:
            raise NotFound(f"Batch {self.state.number} has no deviation {deviation_id}.")
        return deviation

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
