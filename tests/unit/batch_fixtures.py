"""The batch aggregate without a database: the test recipe, people, lots, instruments, signing.

Shared by the batch unit tests (rules and the stateful machine). Everything here calls
:mod:`mes.core.batch` directly; signatures are built the way the signing service builds them
(:meth:`Manifestation.for_record` over the record :meth:`Batch.prepare` returns).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from batch_helpers import DIN, IDENTIFIERS, PATIENT, TEST_RECIPE

from mes.core.audit import Actor
from mes.core.batch import (
    ACTION_MEANINGS,
    Action,
    Batch,
    EquipmentInfo,
    LotInfo,
    Operator,
    Procedure,
)
from mes.core.esign import Manifestation
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry
from mes.core.recipe import load_recipe

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
TODAY = T0.date()
SITE = "SPK1"
TERMINAL = "Suite A 1"
NUMBER = "SPK1-2026-0001"
RECIPE_REF = {"code": "BATCH-TEST", "version": 1, "content_hash": "0" * 64}

COMPILED = load_recipe(TEST_RECIPE, "x.yaml").data
PROCEDURE = Procedure(COMPILED)


def person(user_id: str, username: str, *roles: str, qualified: bool = True) -> Operator:
    """Someone acting on the batch, trained on BATCH-TEST v1 unless ``qualified`` is False."""
    return Operator(
        Actor(user_id, username, f"{username.title()} Tester"), frozenset(roles), qualified
    )


def party(who: Operator, organisation: str = "Spoke Site") -> Any:
    """``who`` as one side of a custody transfer (mes.core.custody.Party)."""
    from mes.core.custody import Party

    return Party(who.actor.name, organisation, who.user_id, who.actor.username)


OLIVIA = person("u-olivia", "olivia", "operator")
OSCAR = person("u-oscar", "oscar", "operator")
SAM = person("u-sam", "sam", "supervisor")
SUE = person("u-sue", "sue", "supervisor")
QUINN = person("u-quinn", "quinn", "qa")
UNTRAINED = person("u-otto", "otto", "operator", qualified=False)
NINA = person("u-nina", "nina", "clinician")
UNTRAINED_SUPERVISOR = person("u-sid", "sid", "supervisor", qualified=False)

SYRINGES = LotInfo("LOT-SYR-001", "MAT-SYRINGE", "Sampling syringe", date(2027, 11, 21), "released")
SCANNER = EquipmentInfo(
    "SCN-01", "barcode_scanner", "Barcode scanner", "in_service", True, date(2027, 5, 1), None
)
COUNTER = EquipmentInfo(
    "CC-01", "cell_counter", "Cell counter", "in_service", True, date(2027, 5, 1), None
)
COUNT_VALUES = {"volume": "200", "viability": "92.0", "viable_conc": "5.00"}


def lot(**changes: Any) -> LotInfo:
    """The released syringe lot with ``changes``."""
    return replace(SYRINGES, **changes)


def instrument(base: EquipmentInfo = COUNTER, **changes: Any) -> EquipmentInfo:
    """A clean, calibrated instrument with ``changes``."""
    return replace(base, **changes)


def new_batch(
    *,
    key: SiteKey | None = None,
    who: Operator = OLIVIA,
    at: datetime = T0,
    identifiers: dict[str, str] | None = None,
    started: bool = True,
) -> Batch:
    """A BATCH-TEST batch created (and, unless ``started`` is False, signed as started)."""
    batch = Batch.create(
        PROCEDURE,
        batch_id="b-0001",
        number=NUMBER,
        site=SITE,
        recipe=RECIPE_REF,
        identifiers=IDENTIFIERS if identifiers is None else identifiers,
        who=who,
        at=at,
        terminal=TERMINAL,
        key=key or SiteKey.generate(),
        time_zone="Europe/Berlin",
    )
    if started:
        sign(batch, Action.START, who, at)
    return batch


def prepare_and_sign(
    batch: Batch, action: Action, who: Operator, at: datetime = T0, **options: Any
) -> tuple[dict[str, Any], SealedEntry]:
    """Prepare a signed action and append its signature, as the signing service does."""
    record = batch.prepare(action, who, at, terminal=TERMINAL, **options)
    manifestation = Manifestation.for_record(
        record_type=record["type"],
        record_id=batch.state.id,
        record=record,
        signer_id=who.user_id or "",
        username=who.actor.username,
        printed_name=who.actor.name,
        meaning=ACTION_MEANINGS[action],
        at=at,
        terminal=TERMINAL,
        site=SITE,
    )
    return record, batch.signed(record, manifestation, who, at, TERMINAL)


def sign_bedside(
    batch: Batch, action: Action, who: Operator, at: datetime = T0, **options: Any
) -> SealedEntry:
    """A bedside action prepared and signed as the bedside service does (badge + PIN)."""
    record = batch.prepare_bedside(action, who, at, **options)
    manifestation = Manifestation.for_record(
        record_type=record["type"],
        record_id=batch.state.id,
        record=record,
        signer_id=who.user_id or "",
        username=who.actor.username,
        printed_name=who.actor.name,
        meaning=ACTION_MEANINGS[action],
        at=at,
        terminal=TERMINAL,
        site=SITE,
    )
    return batch.bedside_signed(action, record, manifestation, who, at, TERMINAL)


def hand_over(
    batch: Batch,
    transfer: Any,
    signers: dict[Any, Operator],
    at: datetime = T0,
    *,
    decision: str | None = None,
) -> SealedEntry:
    """A custody transfer checked and signed by ``signers`` (by side), as the service does."""
    from mes.core.custody import RECORD_TYPE, SIDE_MEANINGS

    record = batch.prepare_custody(
        transfer, signers, at, site_organisation="Spoke Site", decision=decision
    )
    signed = {
        side: (
            Manifestation.for_record(
                record_type=RECORD_TYPE, record_id=batch.state.id, record=record,
                signer_id=who.user_id or "", username=who.actor.username,
                printed_name=who.actor.name, meaning=SIDE_MEANINGS[side], at=at,
                terminal=TERMINAL, site=SITE,
            ),
            who,
        )
        for side, who in signers.items()
    }  # fmt: skip
    first = next(iter(signers.values()))
    return batch.custody_signed(record, signed, first, at, TERMINAL)


def sign(batch: Batch, action: Action, who: Operator, at: datetime = T0, **options: Any) -> Any:
    """Sign ``action`` as ``who``; the signature entry."""
    return prepare_and_sign(batch, action, who, at, **options)[1]


def perform_check_bag(batch: Batch, at: datetime = T0, *, intact: str = "yes") -> None:
    """Check the bag: started, values, scanner, both labels, performed by Olivia (not verified)."""
    batch.start_phase("check_bag", OLIVIA, at, TERMINAL)
    batch.record_values("check_bag", {"bag_intact": intact}, OLIVIA, at, TERMINAL)
    batch.use_equipment("check_bag", 0, SCANNER, "SCN-01", OLIVIA, at, TERMINAL, at.date())
    batch.check_identity("check_bag", "bag_din", f"={DIN}00", OLIVIA, at, TERMINAL)
    batch.check_identity("check_bag", "bag_patient", PATIENT, OLIVIA, at, TERMINAL)
    sign(batch, Action.PERFORM, OLIVIA, at, phase_id="check_bag")


def do_check_bag(batch: Batch, at: datetime = T0, *, intact: str = "yes") -> None:
    """Check the bag: performed by Olivia (:func:`perform_check_bag`), verified by Sam."""
    perform_check_bag(batch, at, intact=intact)
    sign(batch, Action.VERIFY, SAM, at, phase_id="check_bag")


def fill_count(
    batch: Batch, at: datetime = T0, values: dict[str, str] | None = None, **options: Any
) -> None:
    """Count cells: started, counter and syringe lot scanned, values recorded (not signed)."""
    batch.start_phase("count_cells", OLIVIA, at, TERMINAL)
    batch.use_equipment("count_cells", 0, COUNTER, "CC-01", OLIVIA, at, TERMINAL, at.date())
    batch.use_material(
        "count_cells", "MAT-SYRINGE", SYRINGES, "LOT-SYR-001", OLIVIA, at, TERMINAL, at.date()
    )
    batch.record_values("count_cells", values or COUNT_VALUES, OLIVIA, at, TERMINAL, **options)


def do_count(batch: Batch, at: datetime = T0) -> None:
    """Count cells with values inside their limits, performed by Olivia."""
    fill_count(batch, at)
    sign(batch, Action.PERFORM, OLIVIA, at, phase_id="count_cells")


def do_simple(
    batch: Batch, phase_id: str, values: dict[str, str], at: datetime = T0, who: Operator = OLIVIA
) -> None:
    """A phase with values only: started, recorded, performed."""
    batch.start_phase(phase_id, who, at, TERMINAL)
    batch.record_values(phase_id, values, who, at, TERMINAL)
    sign(batch, Action.PERFORM, who, at, phase_id=phase_id)


def do_culture(batch: Batch, at: datetime = T0) -> None:
    """Tests A and B, then both monitors: every culture phase before the harvest."""
    do_simple(batch, "test_a", {"a": "3"}, at)
    do_simple(batch, "test_b", {"b": "pass"}, at)
    do_simple(batch, "mon_1", {"t1": "37.0"}, at)
    do_simple(batch, "mon_2", {"t2": "36.9"}, at)


def through_count(batch: Batch | None = None, at: datetime = T0) -> Batch:
    """A started batch with the bag checked and the cells counted."""
    batch = batch or new_batch(at=at)
    do_check_bag(batch, at)
    do_count(batch, at)
    return batch


def complete_run(at: datetime = T0) -> Batch:
    """A batch with every phase done (the harvest 3 h after the count); not yet completed."""
    batch = through_count(at=at)
    do_culture(batch, at)
    do_simple(batch, "harvest", {"harvested": "yes"}, at + timedelta(hours=3))
    return batch


def status(batch: Batch, phase_id: str) -> str:
    """The phase's status as text."""
    return batch.state.phases[phase_id].status.value
