"""A batch driven by random operator actions, its invariants checked after every step.

Hypothesis plays a crowd at the bench: anyone starts any phase, types good and bad values,
scans good and bad lots, instruments and labels, signs as performer or verifier, comments and
acknowledges deviations, holds and resumes, corrects signed values, lets time pass. Most of it
is refused. After every step:

* nothing refused left a trace: a refused action appended no entry and changed nothing;
* the ledger is whole: seq 1..n without gaps or repeats, each ``prev`` the hash before it;
* replaying the ledger gives exactly the live projection;
* an independent model of the recipe's ordering (worked out here from the compiled recipe's
  structure and the ledger, not from the core's readiness code) agrees with the phase statuses,
  and no phase was ever started before the phases it follows were done, before its timer's
  minimum, or while its condition said it does not apply;
* nobody verified a phase they recorded data in or performed; every value outside action
  limits raised a deviation naming it; a phase started past its timer's maximum raised one;
* asking the rules first (:meth:`Batch.refusal`, what pages use) predicts each action's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from batch_fixtures import (
    COMPILED,
    COUNTER,
    OLIVIA,
    OSCAR,
    PROCEDURE,
    QUINN,
    SAM,
    SCANNER,
    SUE,
    SYRINGES,
    T0,
    TERMINAL,
    UNTRAINED,
    instrument,
    lot,
    new_batch,
    person,
    sign,
)
from batch_helpers import DIN, OTHER_DIN, PATIENT
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mes.core.batch import Action, Batch, BatchStatus, DeviationStatus, PhaseStatus
from mes.core.clock import parse_utc_text
from mes.core.errors import IdentityMismatch, MesError
from mes.core.identity import mod37_2
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, verify_chain
from mes.core.limits import InvalidValue

OLGA = person("u-olga", "olga", "operator", "supervisor")  # may record data, and verify
PEOPLE = [OLIVIA, OSCAR, SAM, SUE, QUINN, UNTRAINED, OLGA]
WORKERS = [OLIVIA, OSCAR, OLGA]
SUPERVISORS = [SAM, SUE, OLGA]
HOURS = 3600

# --- the recipe's structure, read here from the compiled recipe ------------------------------

SPECS: dict[str, dict[str, Any]] = {}
OPERATION: dict[str, str] = {}  # the operation each phase belongs to
PREDECESSORS: dict[str, set[str]] = {}  # the phases each one follows
SIBLINGS_ONE_AT_A_TIME: dict[str, set[str]] = {}  # the other phases of its any_order operation


def _read_structure() -> None:
    earlier: list[str] = []
    for unit in COMPILED["unit_procedures"]:
        for operation in unit["operations"]:
            ids = [p["id"] for p in operation["phases"]]
            for index, phase in enumerate(operation["phases"]):
                SPECS[phase["id"]] = phase
                OPERATION[phase["id"]] = operation["id"]
                follows = set(earlier)
                if operation["ordering"] == "sequence":
                    follows |= set(ids[:index])
                PREDECESSORS[phase["id"]] = follows
                SIBLINGS_ONE_AT_A_TIME[phase["id"]] = (
                    set(ids) - {phase["id"]} if operation["ordering"] == "any_order" else set()
                )
            earlier += ids


_read_structure()
PHASES = list(SPECS)
DATA_KINDS = {
    "phase_started",
    "value_recorded",
    "value_corrected",
    "calculated",
    "material_used",
    "equipment_used",
    "identity_checked",
}

# Values people type: well-formed and inside limits first, then the rest.
VALUES: dict[str, list[str]] = {
    "bag_intact": ["yes", "no", "maybe", ""],
    "damage": ["Seal torn at the spike port", "", "torn\x07"],
    "volume": ["200", "150", "0", "200.5", "abc"],
    "viability": ["92.0", "80.0", "60.0", "85", "9,5"],
    "viable_conc": ["5.00", "0.40", "5.001"],
    "a": ["3", "-1", "3.5"],
    "b": ["pass", "fail", "maybe"],
    "t1": ["37.0", "40.0", "37.05"],
    "t2": ["36.9", "x"],
    "harvested": ["yes", "no", "perhaps"],
}
LOTS = [
    SYRINGES,
    None,
    lot(status="quarantine"),
    lot(status="rejected"),
    lot(expiry=T0.date() - timedelta(days=1)),
    lot(material_code="MAT-BAG", material_name="Transfer bag"),
]
INSTRUMENTS = {
    "check_bag": [SCANNER, None, COUNTER, instrument(SCANNER, clean=False)],
    "count_cells": [
        COUNTER,
        None,
        SCANNER,
        instrument(status="out_of_service"),
        instrument(calibration_due=T0.date() - timedelta(days=1)),
        instrument(in_use_by="SPK1-2026-0002"),
    ],
}
LABELS = {
    "bag_din": [f"={DIN}00", f"{DIN}00{mod37_2(DIN)}", f"={OTHER_DIN}00", "nonsense"],
    "bag_patient": [PATIENT, " pat-0001 ", "PAT 0001", "PAT-0002"],
}
MATCHING_LABELS = {"bag_din": LABELS["bag_din"][:2], "bag_patient": LABELS["bag_patient"][:2]}
UNREADABLE_LABELS = {"nonsense"}  # not a DIN at all: a refused scan, not another patient


class BatchAtTheBench(RuleBasedStateMachine):
    """One batch of the test recipe, and everyone acting on it at random."""

    @initialize()
    def create_the_batch(self) -> None:
        self.key = SiteKey.generate()
        self.batch = new_batch(key=self.key)
        self.now = T0
        self.decided: dict[str, bool] = {}  # conditional phase → applies, once decidable
        self.model: dict[str, dict[str, Any]] = {
            pid: {"started": False, "performed_at": None, "verified": False, "values": {}}
            for pid in SPECS
        }
        self.absorbed = 0  # ledger entries taken into the model

    # -- the model: the recipe's ordering, from the ledger alone -----------------------------

    def facts(self) -> dict[str, dict[str, Any]]:
        """Per phase: started, performed (and when), verified since its last correction, values.

        Taken from the entries appended since last asked; conditions are then decided.
        """
        for entry in self.batch.new_entries[self.absorbed :]:
            kind, payload = entry.body["kind"], entry.body["payload"]
            if kind == "phase_started":
                self.model[payload["phase"]]["started"] = True
            elif kind in ("value_recorded", "value_corrected", "calculated"):
                self.model[payload["phase"]]["values"][payload["value"]] = payload["recorded"]
            elif kind == "signature" and "phase" in payload["record"]:
                phase = self.model[payload["record"]["phase"]]
                action = payload["record"]["action"]
                if action == "perform":
                    phase["performed_at"] = entry.body["at"]
                elif action == "verify":
                    phase["verified"] = True
                elif action == "correct":
                    phase["verified"] = False
            self.absorbed += 1
        self.decide_conditions(self.model)
        return self.model

    def done(self, pid: str, facts: dict[str, dict[str, Any]]) -> bool:
        """Performed, and verified where the recipe asks; or decided not to apply."""
        if self.decided.get(pid) is False:
            return True
        fact = facts[pid]
        return fact["performed_at"] is not None and (
            SPECS[pid]["verify"] is None or fact["verified"]
        )

    def decide_conditions(self, facts: dict[str, dict[str, Any]]) -> None:
        """A condition is decided when every phase before its phase is done, until it starts.

        Decided after every action that succeeds (a correction counts with its signature, so
        a phase that must be verified again decides nothing until it is). A phase found not to
        apply stays so: a corrected answer does not bring it back (the known gap shown by the
        strict xfail in test_batch_rules).
        """
        for pid, spec in SPECS.items():
            when = spec["when"]
            if when is None or self.decided.get(pid) is False or facts[pid]["started"]:
                continue
            if all(self.done(p, facts) for p in PREDECESSORS[pid]):
                source, value_id = when["input"].split(".", 1)
                answer = facts[source]["values"].get(value_id)
                self.decided[pid] = self.decided.get(source) is not False and answer in when["in"]

    def startable(self, pid: str, facts: dict[str, dict[str, Any]]) -> bool:
        """What the ordering allows: every phase it follows done, it applies, no busy sibling."""
        if facts[pid]["started"] or self.decided.get(pid) is False:
            return False
        if not all(self.done(p, facts) for p in PREDECESSORS[pid]):
            return False
        if SPECS[pid]["when"] is not None and pid not in self.decided:
            return False
        return not any(
            facts[s]["started"] and facts[s]["performed_at"] is None
            for s in SIBLINGS_ONE_AT_A_TIME[pid]
        )

    # -- acting ---------------------------------------------------------------------------

    def act(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``action``; a refusal must leave no trace. Returns its result, or the refusal."""
        entries, before = len(self.batch.new_entries), self.batch.projection()
        try:
            result = action(*args, **kwargs)
        except MesError as refusal:
            assert len(self.batch.new_entries) == entries, f"{refusal!r} left entries behind"
            assert self.batch.projection() == before, f"{refusal!r} changed the batch"
            return refusal
        self.facts()  # the model takes in what was appended, as the core did
        return result

    @staticmethod
    def predicted(asked: MesError | None, outcome: Any) -> None:
        """What :meth:`Batch.refusal` said before the action is what the action did."""
        refusal = outcome if isinstance(outcome, MesError) else None
        assert type(asked) is type(refusal), (asked, refusal)

    def ask(self, action: Action, who: Any, **ids: Any) -> MesError | None:
        return self.batch.refusal(action, who, self.now, **ids)

    def start(self, pid: str, who: Any) -> None:
        facts = self.facts()
        allowed = self.startable(pid, facts)
        since = {t["after"]: facts[t["after"]]["performed_at"] for t in SPECS[pid]["timers"]}
        asked = self.ask(Action.START_PHASE, who, phase_id=pid)
        outcome = self.act(self.batch.start_phase, pid, who, self.now, TERMINAL)
        self.predicted(asked, outcome)
        if isinstance(outcome, MesError):
            return
        # Started: the ordering allowed it, its condition holds, its timers' minimum is past.
        assert allowed, f"{pid} started out of order"
        assert SPECS[pid]["when"] is None or self.decided[pid] is True
        for timer in SPECS[pid]["timers"]:
            assert since[timer["after"]] is not None
            elapsed = (self.now - parse_utc_text(since[timer["after"]])).total_seconds()
            assert elapsed >= timer["min_seconds"], f"{pid} started {elapsed} s after"

    def sign_as(self, action: Action, who: Any, **ids: Any) -> Any:
        correction = ids.pop("correction", None)
        asked = self.ask(action, who, **ids)
        if correction is not None:
            ids["correction"] = correction
        outcome = self.act(sign, self.batch, action, who, self.now, **ids)
        if correction is None:
            self.predicted(asked, outcome)
        elif asked is not None and correction["reason"]:
            # The rules asked first know the phase, role and training, not the value typed.
            assert type(outcome) is type(asked), (asked, outcome)
        return outcome

    # -- rules ------------------------------------------------------------------------------

    @rule(seconds=st.one_of(st.integers(0, 600), st.integers(0, 5 * 3600)))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    def pick_phase(self, data: st.DataObject, *statuses: PhaseStatus) -> str:
        """Mostly a phase people work on now (or in ``statuses``), sometimes any phase."""
        likely = self.batch.phases_in(*statuses) if statuses else self.batch.current_phases()
        if likely and data.draw(st.integers(0, 3), label="any phase") > 0:
            return data.draw(st.sampled_from(likely), label="phase")
        return data.draw(st.sampled_from(PHASES), label="phase")

    @rule(who=st.sampled_from(PEOPLE), data=st.data())
    def start_a_phase(self, who: Any, data: st.DataObject) -> None:
        busy = {OPERATION[p] for p in self.batch.phases_in(PhaseStatus.IN_PROGRESS)}
        siblings = [p for p in self.batch.phases_in(PhaseStatus.LOCKED) if OPERATION[p] in busy]
        if siblings and data.draw(st.booleans(), label="a sibling"):
            self.start(data.draw(st.sampled_from(siblings), label="phase"), who)
        else:
            self.start(self.pick_phase(data, PhaseStatus.READY, PhaseStatus.LOCKED), who)

    @rule(who=st.sampled_from(PEOPLE), data=st.data())
    def record_values(self, who: Any, data: st.DataObject) -> None:
        pid = self.pick_phase(data, PhaseStatus.IN_PROGRESS)
        inputs = [i["id"] for i in SPECS[pid]["inputs"]]
        chosen = data.draw(st.lists(st.sampled_from(inputs), unique=True, max_size=len(inputs)))
        raw = {i: data.draw(st.sampled_from(VALUES[i]), label=i) for i in chosen}
        if data.draw(st.booleans(), label="unknown input"):
            raw["colour"] = "red"
        comments = {i: "Reported to QA at once" for i in chosen if data.draw(st.booleans())}
        asked = self.ask(Action.RECORD, who, phase_id=pid)
        outcome = self.act(
            self.batch.record_values, pid, raw, who, self.now, TERMINAL, comments=comments
        )
        if asked is not None:
            assert type(outcome) is type(asked), (asked, outcome)

    @rule(who=st.sampled_from(PEOPLE), scanned=st.sampled_from(LOTS))
    def scan_a_lot(self, who: Any, scanned: Any) -> None:
        self.scan(self.batch.use_material, "count_cells", "MAT-SYRINGE", scanned, who)

    @rule(pid=st.sampled_from(sorted(INSTRUMENTS)), who=st.sampled_from(PEOPLE), data=st.data())
    def scan_an_instrument(self, pid: str, who: Any, data: st.DataObject) -> None:
        scanned = data.draw(st.sampled_from(INSTRUMENTS[pid]))
        self.scan(self.batch.use_equipment, pid, 0, scanned, who)

    def scan(self, action: Callable[..., Any], pid: str, slot: Any, found: Any, who: Any) -> None:
        """A scan is used or refused; either way exactly one entry keeps it."""
        entries = len(self.batch.new_entries)
        text = getattr(found, "lot_number", None) or getattr(found, "equipment_id", "UNKNOWN-1")
        outcome = self.act(action, pid, slot, found, text, who, self.now, TERMINAL, self.now.date())
        if isinstance(outcome, MesError):
            return
        appended = self.batch.new_entries[entries:]
        assert list(outcome.entries) == appended
        usable = found is SYRINGES if slot == "MAT-SYRINGE" else found is INSTRUMENTS[pid][0]
        assert (outcome.refusal is None) == usable, (pid, found, outcome.refusal)
        expected = (
            ("material_used" if slot == "MAT-SYRINGE" else "equipment_used")
            if usable
            else "scan_refused"
        )
        assert [e.body["kind"] for e in appended] == [expected]

    @rule(check=st.sampled_from(sorted(LABELS)), who=st.sampled_from(PEOPLE), data=st.data())
    def scan_a_label(self, check: str, who: Any, data: st.DataObject) -> None:
        self.scan_label(check, data.draw(st.sampled_from(LABELS[check])), who)

    def scan_label(self, check: str, label: str, who: Any) -> None:
        """A label of this patient is checked; another patient's raises a deviation and blocks;
        a DIN label that cannot be read is a refused scan, kept, with no deviation."""
        outcome = self.act(
            self.batch.check_identity, "check_bag", check, label, who, self.now, TERMINAL
        )
        if not isinstance(outcome, MesError):
            kinds = [e.body["kind"] for e in outcome.entries]
            if label in UNREADABLE_LABELS:
                assert isinstance(outcome.refusal, InvalidValue), (label, outcome)
                assert kinds == ["scan_refused"]
                return
            matches = label in MATCHING_LABELS[check]
            assert isinstance(outcome.refusal, IdentityMismatch) is not matches, (label, outcome)
            assert kinds == ["identity_checked"] + ([] if matches else ["deviation_raised"])

    @rule(who=st.sampled_from(PEOPLE), data=st.data())
    def sign_performed(self, who: Any, data: st.DataObject) -> None:
        self.sign_as(Action.PERFORM, who, phase_id=self.pick_phase(data, PhaseStatus.IN_PROGRESS))

    @rule(who=st.sampled_from(PEOPLE), data=st.data())
    def sign_verified(self, who: Any, data: st.DataObject) -> None:
        self.sign_as(Action.VERIFY, who, phase_id=self.pick_phase(data, PhaseStatus.PERFORMED))

    @precondition(lambda self: self.batch.state.deviations)
    @rule(who=st.sampled_from(PEOPLE), data=st.data())
    def comment_a_deviation(self, who: Any, data: st.DataObject) -> None:
        deviation = data.draw(st.sampled_from(sorted(self.batch.state.deviations)))
        asked = self.ask(Action.COMMENT, who, deviation_id=deviation)
        outcome = self.act(
            self.batch.comment_deviation, deviation, "Looked into it", who, self.now, TERMINAL
        )
        self.predicted(asked, outcome)

    @precondition(lambda self: self.batch.state.deviations)
    @rule(who=st.sampled_from(PEOPLE), data=st.data())
    def acknowledge_a_deviation(self, who: Any, data: st.DataObject) -> None:
        deviation = data.draw(st.sampled_from(sorted(self.batch.state.deviations)))
        self.sign_as(Action.ACKNOWLEDGE, who, deviation_id=deviation)

    @rule(who=st.sampled_from(PEOPLE))
    def hold_the_batch(self, who: Any) -> None:
        asked = self.ask(Action.HOLD, who)
        outcome = self.act(self.batch.hold, "Line stopped", who, self.now, TERMINAL)
        self.predicted(asked, outcome)

    @rule(who=st.sampled_from(PEOPLE))
    def resume_the_batch(self, who: Any) -> None:
        asked = self.ask(Action.RESUME, who)
        outcome = self.act(self.batch.resume, "All clear", who, self.now, TERMINAL)
        self.predicted(asked, outcome)

    @rule(who=st.sampled_from(PEOPLE), data=st.data())
    def correct_a_value(self, who: Any, data: st.DataObject) -> None:
        pid = self.pick_phase(data, PhaseStatus.PERFORMED, PhaseStatus.VERIFIED)
        value_id = data.draw(st.sampled_from([i["id"] for i in SPECS[pid]["inputs"]]))
        current = self.batch.state.phases[pid].values.get(value_id)
        others = [v for v in VALUES[value_id][:3] if current is None or v != current.value]
        new = data.draw(st.sampled_from(others or VALUES[value_id]), label="new value")
        reason = data.draw(st.sampled_from(["Transcription error", "Misread", ""]))
        correction = {"value": value_id, "new": new, "reason": reason}
        self.sign_as(Action.CORRECT, who, phase_id=pid, correction=correction)

    @rule(who=st.sampled_from(PEOPLE))
    def complete_the_batch(self, who: Any) -> None:
        self.sign_as(Action.COMPLETE, who)

    @rule(
        worker=st.sampled_from(WORKERS),
        checker=st.sampled_from(SUPERVISORS),
        steps=st.integers(1, 40),
        data=st.data(),
    )
    def get_on_with_the_work(
        self, worker: Any, checker: Any, steps: int, data: st.DataObject
    ) -> None:
        """A diligent pair moves the batch on, while the crowd keeps getting in the way.

        Without them random play rarely gets far. They resume a held batch, comment and
        acknowledge deviations, wait out a timer, and take the first current phase one step
        further, ``steps`` times; between their steps anyone may do anything (the other rules).
        """
        for _ in range(steps):
            if data.draw(st.integers(0, 2), label="interrupted") == 0:
                self.interruption(data)
                continue
            if self.batch.state.status is BatchStatus.ON_HOLD:
                self.act(self.batch.resume, "All clear", checker, self.now, TERMINAL)
            for deviation in list(self.batch.state.deviations.values()):
                if deviation.comment is None:
                    self.act(self.batch.comment_deviation, deviation.id, "Assessed", worker, self.now, TERMINAL)  # fmt: skip
                if deviation.status is DeviationStatus.OPEN:
                    self.sign_as(Action.ACKNOWLEDGE, checker, deviation_id=deviation.id)
            current = self.batch.current_phases()
            if not current:
                self.sign_as(Action.COMPLETE, SAM)
                return
            signed = len(self.batch.state.phases[current[0]].signatures)
            self.work_on(current[0], worker, checker, data)
            if len(self.batch.state.phases[current[0]].signatures) > signed:
                # A break after signing: the crowd has the floor for a while.
                for _ in range(data.draw(st.integers(0, 4), label="break")):
                    self.interruption(data)

    def interruption(self, data: st.DataObject) -> None:
        """Any other rule, drawn here so that it lands in the middle of the work."""
        who = data.draw(st.sampled_from(PEOPLE), label="who")
        match data.draw(st.integers(0, 13), label="interruption"):
            case 0:
                self.time_passes(data.draw(st.integers(0, 5 * 3600), label="seconds"))
            case 1:
                self.start_a_phase(who, data)
            case 2 | 3:
                self.record_values(who, data)
            case 4:
                self.scan_a_lot(who, data.draw(st.sampled_from(LOTS), label="lot"))
            case 5:
                self.scan_an_instrument(data.draw(st.sampled_from(sorted(INSTRUMENTS))), who, data)
            case 6:
                self.scan_a_label(data.draw(st.sampled_from(sorted(LABELS))), who, data)
            case 7:
                self.sign_performed(who, data)
            case 8:
                self.sign_verified(who, data)
            case 9 | 10:
                self.correct_a_value(who, data)
            case 11:
                self.hold_the_batch(who)
            case 12 if self.batch.state.deviations:
                self.comment_a_deviation(who, data)
            case 13 if self.batch.state.deviations:
                self.acknowledge_a_deviation(who, data)

    def work_on(self, pid: str, worker: Any, checker: Any, data: st.DataObject) -> None:
        """One step further: start, record, scan, or sign, whatever the phase lacks first.

        Now and then they take the wrong lot or instrument, scan the wrong label or read a
        value outside its limits: the rules must then refuse, or raise a deviation.
        """

        def choose(options: list[Any]) -> Any:
            careless = data.draw(st.integers(0, 2), label="careless") == 0
            return data.draw(st.sampled_from(options), label="took") if careless else options[0]

        status = self.batch.state.phases[pid].status
        if status is PhaseStatus.READY:
            if data.draw(st.booleans(), label="impatient"):
                self.start(pid, worker)  # refused while a timer's minimum has not passed
            for window in self.batch.timer_windows(pid):
                if window["earliest"] is not None and self.now < window["earliest"]:
                    late = data.draw(st.sampled_from([0, 0, 1, 3 * HOURS]), label="late by")
                    self.now = window["earliest"] + timedelta(seconds=late)  # they wait
            self.start(pid, worker)
            return
        if status is PhaseStatus.PERFORMED:
            # Someone who also holds the supervisor role may try to check their own work.
            verifier = checker
            if "supervisor" in worker.roles:
                verifier = data.draw(st.sampled_from([checker, worker]), label="verifier")
            self.sign_as(Action.VERIFY, verifier, phase_id=pid)
            return
        spec, phase = SPECS[pid], self.batch.state.phases[pid]
        missing = [i["id"] for i in spec["inputs"] if i["id"] not in phase.values]
        if missing:
            values = {i: choose(VALUES[i][:3]) for i in missing}
            self.act(self.batch.record_values, pid, values, worker, self.now, TERMINAL)
        elif spec["equipment"] and 0 not in phase.equipment:
            self.scan(self.batch.use_equipment, pid, 0, choose(INSTRUMENTS[pid]), worker)
        elif spec["materials"] and "MAT-SYRINGE" not in phase.materials:
            self.scan(self.batch.use_material, pid, "MAT-SYRINGE", choose(LOTS), worker)
        elif unchecked := [
            c["id"]
            for c in spec["identity_checks"]
            if not phase.identity.get(c["id"], {}).get("match")
        ]:
            self.scan_label(unchecked[0], choose(LABELS[unchecked[0]]), worker)
        else:
            self.sign_as(Action.PERFORM, worker, phase_id=pid)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def the_ledger_is_whole(self) -> None:
        entries = self.batch.new_entries
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert [e.body["prev"] for e in entries] == [GENESIS] + [e.hash for e in entries[:-1]]
        assert self.batch.state.last_seq == len(entries)

    @invariant()
    def replaying_the_ledger_gives_the_live_batch(self) -> None:
        replayed = Batch.replay(PROCEDURE, self.batch.new_entries, time_zone="Europe/Berlin")
        assert replayed.projection() == self.batch.projection()

    @invariant()
    def the_phase_statuses_follow_the_recipe_ordering(self) -> None:
        if self.batch.state.status not in (BatchStatus.IN_PROGRESS, BatchStatus.ON_HOLD):
            return
        facts = self.facts()
        for pid in PHASES:
            status = self.batch.state.phases[pid].status
            assert self.batch.is_done(pid) == self.done(pid, facts), pid
            assert (status is PhaseStatus.SKIPPED) == (self.decided.get(pid) is False), pid
            if status in (PhaseStatus.LOCKED, PhaseStatus.READY):
                assert (status is PhaseStatus.READY) == self.startable(pid, facts), pid

    @invariant()
    def nobody_verified_their_own_work(self) -> None:
        contributed: dict[str, set[str]] = {pid: set() for pid in SPECS}
        for entry in self.batch.new_entries:
            body, payload = entry.body, entry.body["payload"]
            who = body["actor"]["user_id"]
            if body["kind"] in DATA_KINDS:
                contributed[payload["phase"]].add(who)
            elif body["kind"] == "signature" and "phase" in payload["record"]:
                pid, action = payload["record"]["phase"], payload["record"]["action"]
                if action == "verify":
                    assert who not in contributed[pid], f"{who} verified {pid}"
                else:
                    contributed[pid].add(who)

    @invariant()
    def every_value_outside_action_limits_and_every_late_start_raised_a_deviation(self) -> None:
        entries = self.batch.new_entries
        performed: dict[str, str] = {}
        for index, entry in enumerate(entries):
            body, payload = entry.body, entry.body["payload"]
            following = entries[index + 1].body if index + 1 < len(entries) else None
            if body["kind"] == "signature" and payload["record"]["action"] == "perform":
                performed.setdefault(payload["record"]["phase"], body["at"])
            if payload.get("status") == "action":
                assert following is not None and following["kind"] == "deviation_raised"
                assert following["payload"]["value"] == payload["value"]
                assert following["payload"]["category"] == "action_limit"
            if body["kind"] == "phase_started":
                for timer in SPECS[payload["phase"]]["timers"]:
                    since = parse_utc_text(performed[timer["after"]])
                    late = parse_utc_text(body["at"]) - since > timedelta(
                        seconds=timer["max_seconds"]
                    )
                    raised = following is not None and following["kind"] == "deviation_raised"
                    assert late == (raised and following["payload"]["category"] == "timer")

    def teardown(self) -> None:
        if hasattr(self, "batch"):
            # How far the examples got (pytest --hypothesis-show-statistics).
            entries = self.batch.new_entries
            event(f"phases done: {sum(self.batch.is_done(p) for p in PHASES)}")
            event(f"batch {self.batch.state.status.value}")
            kinds = {e.body["kind"] for e in entries}
            for kind in ("value_corrected", "scan_refused", "deviation_raised", "batch_held"):
                event(f"{kind}: {kind in kinds}")
            assert verify_chain(entries, self.key.public) == len(entries)


BatchAtTheBench.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_a_batch_keeps_its_rules_whatever_people_do = BatchAtTheBench.TestCase
