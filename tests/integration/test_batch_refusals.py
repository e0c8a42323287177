"""Every way batch execution says no, on both databases: the plain message people read, a ledger
with no gap and no duplicate, and nothing half-written — except the refusals the record keeps
on purpose (a refused scan, a label that does not match the chain of identity)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_checks import (
    assert_sound,
    entries,
    new_entry_kinds,
    refused_by_trigger,
    snapshot,
    unchanged_by,
)
from batch_helpers import (
    COUNTER,
    DIN,
    DIN_BARCODE,
    IDENTIFIERS,
    LOT,
    OTHER_DIN,
    PATIENT,
    SCANNER,
    spoke,
)
from integration_helpers import outcomes
from support import NOW, PASSWORD

from mes.core.batch import Action, BatchStatus, PhaseStatus
from mes.core.errors import (
    AuthenticationFailed,
    BatchIncomplete,
    BatchNotActive,
    BatchRefused,
    ConfigurationError,
    DeviationsOpen,
    InvalidInput,
    NotAuthorised,
    NotQualified,
    PhaseIncomplete,
    PhaseNotInProgress,
    PhaseOutOfOrder,
    SelfVerificationForbidden,
    StaleRecord,
    TerminalNotRegistered,
    TimerNotElapsed,
)
from mes.core.identity import mod37_2
from mes.core.limits import InvalidValue
from mes.services import batches, equipment, materials
from mes.services.esign import Credentials
from mes.store.models import Batch as BatchRow
from mes.store.models import Counter, User

TODAY = NOW.date()
LATER = NOW + timedelta(hours=3)
OTHER_IDENTIFIERS = {"din": f"{OTHER_DIN} 00 {mod37_2(OTHER_DIN)}", "patient_id": "PAT-0002"}

CORRECTION_RECIPE = """\
format: gmp-mes/recipe/1
recipe_code: CORR-TEST
version: 1
title: Correction test recipe
product: {code: CT, name: Correction test product, modality: autologous_cell}
change_reason: For the correction tests.
chain_of_identity:
  patient_id: {label: Patient identifier, kind: identifier}
unit_procedures:
  - id: dosing
    name: Dosing
    operations:
      - id: dose
        name: Dose
        phases:
          - id: weigh
            name: Weigh the dose
            instructions: Weigh it.
            verify: supervisor
            inputs:
              weight: {label: Dose weight, type: number, unit: g, decimals: 1}
            calculations:
              doubled:
                label: Twice the weight
                expression: weight * 2
                unit: g
                decimals: 1
          - id: note
            name: Note the time
            instructions: Note it.
            inputs:
              remark: {label: Remark, type: text}
"""


def started(site, **identifiers):
    """A started BATCH-TEST batch; its ID."""
    return site.start(**identifiers).state.id


def counting(site, **identifiers) -> str:
    """A batch whose bag is checked and verified and whose cell count is in progress."""
    batch_id = started(site, **identifiers)
    site.do_check_bag(batch_id)
    site.start_phase(batch_id, "count_cells")
    return batch_id


def sign(site, batch_id, phase, action=Action.PERFORM, who="olivia", at=NOW, **options):
    """One phase signature, with options for the context and the password."""
    password = options.pop("password", PASSWORD)
    ctx = site.ctx(who, at, **options)
    with site.uow() as uow:
        return batches.sign_phase(
            uow, ctx, batch_id, phase, action, Credentials(password, who),
            first_signing_in_session=True, seen_seq=options.get("seen_seq"),
        )  # fmt: skip


def failed_attempts(site, username: str) -> int:
    with site.uow() as uow:
        return uow.session.get(User, site.ids[username]).failed_attempts


def scan_lot(site, batch_id: str, lot: str) -> batches.PhaseResult:
    return site.record(batch_id, "count_cells", lots={"MAT-SYRINGE": lot})


def assert_scan_refused_and_kept(site, batch_id, before, field: str) -> None:
    """Only the refused scan was written; no lot or instrument is recorded for the phase."""
    assert new_entry_kinds(before, snapshot(site)) == ["scan_refused"]
    entry = entries(site, batch_id)[-1]
    assert entry.kind == "scan_refused"
    assert entry.payload["for"] == field
    stored = snapshot(site)["batches"][batch_id]
    assert stored["materials"] == [] and [e["phase_id"] for e in stored["equipment"]] == [
        "check_bag"
    ]
    assert_sound(site, batch_id)


# --- ordering and timers ----------------------------------------------------------------


def test_a_phase_cannot_start_before_the_phases_before_it_are_done(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    refusal = unchanged_by(site, lambda: site.start_phase(batch_id, "count_cells"), PhaseOutOfOrder)
    assert str(refusal) == (
        "'Count cells' cannot start yet: 'Check the bag' must be done first. "
        "Do the phases before it first."
    )
    site.start_phase(batch_id, "check_bag")
    site.record(
        batch_id, "check_bag", values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": DIN_BARCODE, "bag_patient": PATIENT},
    )  # fmt: skip
    site.sign(batch_id, "check_bag")
    refusal = unchanged_by(site, lambda: site.start_phase(batch_id, "count_cells"), PhaseOutOfOrder)
    assert str(refusal) == (
        "'Count cells' cannot start yet: 'Check the bag' must be done first (it waits for its "
        "verification). Do the phases before it first."
    )
    assert site.view(batch_id).batch.state.phases["count_cells"].status is PhaseStatus.LOCKED
    assert_sound(site, batch_id)


def test_a_phase_cannot_start_before_its_timer_minimum_and_the_message_shows_the_time_left(
    make_uow,
):
    site = spoke(make_uow)
    batch_id = started(site)
    site.do_check_bag(batch_id)
    site.do_count(batch_id)  # performed at NOW: the harvest may start from NOW + 2 h
    soon = NOW + timedelta(minutes=10)
    for phase, values in (
        ("test_a", {"a": "3"}),
        ("test_b", {"b": "pass"}),
        ("mon_1", {"t1": "37.0"}),
        ("mon_2", {"t2": "36.9"}),
    ):
        site.do_simple(batch_id, phase, values, at=soon)
    early = NOW + timedelta(hours=1, minutes=30)
    refusal = unchanged_by(
        site, lambda: site.start_phase(batch_id, "harvest", at=early), TimerNotElapsed
    )
    assert str(refusal) == (
        "'Harvest' may start only 2 h 00 min after 'Count cells': 30 min left. "
        "Wait until the time shown, then start it."
    )
    assert refusal.seconds_left == 30 * 60
    site.start_phase(batch_id, "harvest", at=NOW + timedelta(hours=2))
    assert_sound(site, batch_id)


# --- materials ------------------------------------------------------------------------


def test_a_lot_of_another_material_is_refused_at_the_scan_and_the_refused_scan_is_kept(make_uow):
    site = spoke(make_uow)
    with site.uow() as uow:
        materials.add_material(
            uow, site.ctx("sam"), code="MAT-BUFFER", name="Wash buffer", unit="bag"
        )
    site.add_lot("LOT-BUF-001", "MAT-BUFFER", TODAY + timedelta(days=100))
    batch_id = counting(site)
    before = snapshot(site)
    result = scan_lot(site, batch_id, "LOT-BUF-001")
    assert result.field_errors == {
        "lot:MAT-SYRINGE": "Lot LOT-BUF-001 is Wash buffer (MAT-BUFFER), not Sampling syringe "
        "(MAT-SYRINGE). Take a lot of Sampling syringe (MAT-SYRINGE)."
    }
    assert_scan_refused_and_kept(site, batch_id, before, "MAT-SYRINGE")


def test_an_expired_lot_is_refused_at_the_scan(make_uow):
    site = spoke(make_uow)
    site.add_lot("LOT-SYR-OLD", "MAT-SYRINGE", TODAY - timedelta(days=1))
    batch_id = counting(site)
    before = snapshot(site)
    result = scan_lot(site, batch_id, "LOT-SYR-OLD")
    assert result.field_errors == {
        "lot:MAT-SYRINGE": "Lot LOT-SYR-OLD of Sampling syringe (MAT-SYRINGE) expired on "
        "2026-11-20. Take a lot within its expiry date."
    }
    assert_scan_refused_and_kept(site, batch_id, before, "MAT-SYRINGE")


def test_a_quarantined_or_rejected_lot_is_refused_at_the_scan(make_uow):
    site = spoke(make_uow)
    site.add_lot("LOT-SYR-Q", "MAT-SYRINGE", TODAY + timedelta(days=100), "quarantine")
    site.add_lot("LOT-SYR-R", "MAT-SYRINGE", TODAY + timedelta(days=100), "rejected")
    batch_id = counting(site)
    before = snapshot(site)
    assert scan_lot(site, batch_id, "LOT-SYR-Q").field_errors == {
        "lot:MAT-SYRINGE": "Lot LOT-SYR-Q of Sampling syringe (MAT-SYRINGE) is in quarantine "
        "(not released by QA). Take a released lot, or ask QA."
    }
    assert_scan_refused_and_kept(site, batch_id, before, "MAT-SYRINGE")
    before = snapshot(site)
    assert scan_lot(site, batch_id, "LOT-SYR-R").field_errors == {
        "lot:MAT-SYRINGE": "Lot LOT-SYR-R of Sampling syringe (MAT-SYRINGE) was rejected by QA. "
        "Do not use it; take a released lot."
    }
    assert_scan_refused_and_kept(site, batch_id, before, "MAT-SYRINGE")
    refusal = unchanged_by(site, lambda: site.sign(batch_id, "count_cells"), PhaseIncomplete)
    assert "no lot of Sampling syringe (MAT-SYRINGE) is scanned" in str(refusal)


# --- chain of identity ------------------------------------------------------------------


def test_a_wrong_patient_label_raises_a_deviation_blocks_the_phase_and_is_kept(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    site.start_phase(batch_id, "check_bag")
    before = snapshot(site)
    result = site.record(
        batch_id, "check_bag", values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": DIN_BARCODE, "bag_patient": "PAT-9999"},
    )  # fmt: skip
    assert result.field_errors == {
        "identity:bag_patient": "Patient ID on the bag does not match this batch's chain of "
        "identity. A deviation was raised and the phase is blocked. Stop. Do not use the "
        "material. Quarantine it and call the supervisor."
    }
    assert new_entry_kinds(before, snapshot(site)) == [
        "value_recorded",
        "equipment_used",
        "identity_checked",
        "identity_checked",
        "deviation_raised",
    ]
    deviation = snapshot(site)["batches"][batch_id]["deviations"][0]
    assert deviation["category"] == "identity" and deviation["status"] == "open"
    assert deviation["description"] == (
        "Patient ID on the bag: the label scanned ('PAT-9999') does not match the batch's "
        "Patient identifier."
    )
    refusal = unchanged_by(site, lambda: site.sign(batch_id, "check_bag"), PhaseIncomplete)
    number = deviation["id"]
    assert str(refusal) == (
        "The phase cannot be signed yet: Patient ID on the bag did not match: scan the right "
        f"label; deviation {number} needs a comment; deviation {number} (identity) must be "
        "acknowledged by a supervisor. Complete what is listed, then sign."
    )
    assert_sound(site, batch_id)


def test_a_din_with_a_wrong_check_character_is_refused_at_batch_start_and_consumes_nothing(
    make_uow,
):
    site = spoke(make_uow)
    wrong = "Z" if mod37_2(DIN) != "Z" else "Y"
    refusal = unchanged_by(
        site, lambda: site.start(din=f"{DIN} 00 {wrong}", patient_id=PATIENT), InvalidValue
    )
    assert str(refusal) == (
        f"Donation identification number: The check character '{wrong}' does not match DIN "
        f"{DIN}: the DIN or the check character was mistyped. Check the DIN for a typing "
        "error (compare it with the label), or scan the bar code instead."
    )
    with site.uow() as uow:
        assert uow.session.query(BatchRow).count() == 0
        assert uow.session.query(Counter).count() == 0
    assert site.start().state.number == "SPK1-2026-0001"


def test_a_din_already_used_by_another_batch_is_refused_and_consumes_nothing(make_uow):
    site = spoke(make_uow)
    first = started(site)
    refusal = unchanged_by(
        site, lambda: site.start(din=IDENTIFIERS["din"], patient_id="PAT-0002"), BatchRefused
    )
    assert str(refusal) == (
        f"The donation {DIN} is already the starting material of batch SPK1-2026-0001. "
        "Check the DIN on the bag; one donation feeds one batch."
    )
    assert site.start(**OTHER_IDENTIFIERS).state.number == "SPK1-2026-0002"
    assert_sound(site, first)


# --- signatures -------------------------------------------------------------------------


def test_nobody_verifies_a_phase_they_performed_even_holding_the_verify_role(make_uow):
    site = spoke(make_uow)
    site.add_person("sofia", ["operator", "supervisor"], train_on=("BATCH-TEST", 1))
    batch_id = started(site)
    site.start_phase(batch_id, "check_bag", who="sofia")
    site.record(
        batch_id, "check_bag", who="sofia", values={"bag_intact": "yes"},
        equipment={0: SCANNER}, identity={"bag_din": DIN_BARCODE, "bag_patient": PATIENT},
    )  # fmt: skip
    sign(site, batch_id, "check_bag", who="sofia")
    refusal = unchanged_by(
        site,
        lambda: sign(site, batch_id, "check_bag", Action.VERIFY, who="sofia"),
        SelfVerificationForbidden,
    )
    assert str(refusal) == (
        "You recorded or signed data in 'Check the bag': you cannot verify it. "
        "Ask another trained person to verify."
    )
    sign(site, batch_id, "check_bag", Action.VERIFY, who="sam")
    assert_sound(site, batch_id)


def test_an_untrained_verifier_is_refused_before_the_password_is_checked(make_uow):
    site = spoke(make_uow)
    site.add_person("steve", ["supervisor"])  # never trained on BATCH-TEST
    batch_id = started(site)
    site.start_phase(batch_id, "check_bag")
    site.record(
        batch_id, "check_bag", values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": DIN_BARCODE, "bag_patient": PATIENT},
    )  # fmt: skip
    site.sign(batch_id, "check_bag")
    refusal = unchanged_by(
        site,
        lambda: sign(site, batch_id, "check_bag", Action.VERIFY, who="steve", password="wrong"),
        NotQualified,
    )
    assert str(refusal) == (
        "Steve Tester has no current training record for 'BATCH-TEST v1'. Ask your supervisor: "
        "training on this recipe version must be recorded (and not expired) before you can "
        "work on the batch."
    )
    assert failed_attempts(site, "steve") == 0
    assert_sound(site, batch_id)


def test_training_that_expires_while_a_phase_is_open_blocks_the_signature_before_the_password(
    make_uow,
):
    site = spoke(make_uow)
    site.add_person("otto", ["operator"])
    site.train("otto", "BATCH-TEST", 1, expires_on=TODAY)
    batch_id = started(site)
    site.do_check_bag(batch_id)
    site.start_phase(batch_id, "count_cells", who="otto")
    site.record(
        batch_id, "count_cells", who="otto",
        values={"volume": "200", "viability": "92.0", "viable_conc": "5.00"},
        equipment={0: COUNTER}, lots={"MAT-SYRINGE": LOT},
    )  # fmt: skip
    next_day = NOW + timedelta(days=1)
    refusal = unchanged_by(
        site,
        lambda: sign(site, batch_id, "count_cells", who="otto", at=next_day, password="wrong"),
        NotQualified,
    )
    assert str(refusal).startswith(
        "Otto Tester has no current training record for 'BATCH-TEST v1'."
    )
    assert failed_attempts(site, "otto") == 0
    assert_sound(site, batch_id)


def test_a_wrong_password_is_counted_and_signs_nothing(make_uow):
    site = spoke(make_uow)
    batch_id = counting(site)
    site.record(
        batch_id, "count_cells", values={"volume": "200", "viability": "92.0", "viable_conc": "5.00"},
        equipment={0: COUNTER}, lots={"MAT-SYRINGE": LOT},
    )  # fmt: skip
    before = snapshot(site)
    with pytest.raises(AuthenticationFailed) as caught:
        sign(site, batch_id, "count_cells", password="not-my-password")
    assert str(caught.value) == (
        "The user ID or password is wrong. Try again; 4 more failed attempts will lock the account."
    )
    after = snapshot(site)
    assert after["failed_attempts"] == {**before["failed_attempts"], "olivia": 1}
    assert after["audit"] == before["audit"] + 1  # the failed attempt, for the security review
    assert {k: v for k, v in after.items() if k not in ("failed_attempts", "audit")} == {
        k: v for k, v in before.items() if k not in ("failed_attempts", "audit")
    }
    assert site.view(batch_id).batch.state.phases["count_cells"].status is PhaseStatus.IN_PROGRESS
    sign(site, batch_id, "count_cells")
    assert failed_attempts(site, "olivia") == 0
    assert_sound(site, batch_id)


def test_a_wrong_password_at_batch_start_creates_no_batch_and_consumes_no_number(make_uow):
    site = spoke(make_uow)
    before = snapshot(site)
    with site.uow() as uow, pytest.raises(AuthenticationFailed):
        batches.start_batch(
            uow, site.ctx("olivia"), "BATCH-TEST", IDENTIFIERS, Credentials("wrong", "olivia"),
            first_signing_in_session=True,
        )  # fmt: skip
    after = snapshot(site)
    assert after["batches"] == {} and after["counters"] == {} and after["entries"] == []
    assert after["failed_attempts"]["olivia"] == before["failed_attempts"]["olivia"] + 1
    assert site.start().state.number == "SPK1-2026-0001"


def test_the_same_phase_signature_submitted_twice_is_refused_the_second_time(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    site.do_check_bag(batch_id)
    site.do_count(batch_id)
    performed_at = site.view(batch_id).batch.state.phases["count_cells"].performed_at
    refusal = unchanged_by(
        site, lambda: sign(site, batch_id, "count_cells", at=NOW + timedelta(seconds=2)),
        PhaseNotInProgress,
    )  # fmt: skip
    assert str(refusal).startswith(
        f"'Count cells' was already performed by Olivia Tester (olivia) at {performed_at}."
    )
    refusal = unchanged_by(
        site,
        lambda: sign(site, batch_id, "check_bag", Action.VERIFY, who="sam"),
        PhaseNotInProgress,
    )
    verified_at = site.view(batch_id).batch.state.phases["check_bag"].verified_at
    assert str(refusal) == (
        f"'Check the bag' was already verified by Sam Tester (sam) at {verified_at}."
    )
    signatures = [
        (e.payload["record"]["phase"], e.payload["record"]["action"])
        for e in entries(site, batch_id)
        if e.kind == "signature" and "phase" in e.payload["record"]
    ]
    assert signatures == [
        ("check_bag", "perform"),
        ("check_bag", "verify"),
        ("count_cells", "perform"),
    ]
    assert_sound(site, batch_id)


def test_a_page_opened_before_someone_else_signed_is_refused_naming_who_and_when(make_uow):
    site = spoke(make_uow)
    batch_id = counting(site)
    site.record(
        batch_id, "count_cells", values={"volume": "200", "viability": "92.0", "viable_conc": "5.00"},
        equipment={0: COUNTER}, lots={"MAT-SYRINGE": LOT},
    )  # fmt: skip
    seen = site.view(batch_id, "oscar").batch.state.phases["count_cells"].last_seq
    signed = sign(site, batch_id, "count_cells", at=NOW + timedelta(minutes=1))
    at = signed.state.phases["count_cells"].performed_at

    def oscar_saves_his_page() -> object:
        with site.uow() as uow:
            return batches.record_phase(
                uow, site.ctx("oscar", NOW + timedelta(minutes=2)), batch_id, "count_cells",
                values={"volume": "210"}, seen_seq=seen,
            )  # fmt: skip

    refusal = unchanged_by(site, oscar_saves_his_page, StaleRecord)
    assert str(refusal) == (
        f"Olivia Tester (olivia) signed performed in this phase at {at} while your page was "
        "open; nothing of yours was recorded. Look at the phase as it is now and act again if "
        "still needed."
    )
    assert_sound(site, batch_id)


def test_a_signature_at_an_unregistered_terminal_is_refused_and_nothing_is_signed(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    site.start_phase(batch_id, "check_bag")
    site.record(
        batch_id, "check_bag", values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": DIN_BARCODE, "bag_patient": PATIENT},
    )  # fmt: skip
    refusal = unchanged_by(
        site,
        lambda: sign(site, batch_id, "check_bag", unregistered=True, terminal="Home laptop"),
        TerminalNotRegistered,
    )
    assert str(refusal) == (
        "This browser is not a registered terminal of the site: batch data is entered and "
        "signed only at one. Use a registered terminal, or ask an administrator to register "
        "this one."
    )
    assert_sound(site, batch_id)


def test_values_cannot_be_recorded_at_an_unregistered_terminal(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    site.start_phase(batch_id, "check_bag")

    def record_from_home() -> None:
        with site.uow() as uow:
            batches.record_phase(
                uow, site.ctx("olivia", unregistered=True, terminal="Home laptop"), batch_id,
                "check_bag", values={"bag_intact": "yes"},
            )  # fmt: skip

    refusal = unchanged_by(site, record_from_home, TerminalNotRegistered)
    assert "batch data is entered and signed only at one" in str(refusal)
    assert_sound(site, batch_id)


# --- equipment ------------------------------------------------------------------------


def scan_counter(site, batch_id: str, equipment_id: str) -> batches.PhaseResult:
    return site.record(batch_id, "count_cells", equipment={0: equipment_id})


def test_an_instrument_in_use_by_another_batch_is_refused_until_that_phase_is_done(make_uow):
    site = spoke(make_uow)
    first = counting(site)
    assert scan_counter(site, first, COUNTER).field_errors == {}
    second = started(site, **OTHER_IDENTIFIERS)
    site.start_phase(second, "check_bag")
    site.record(
        second, "check_bag", values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": f"={OTHER_DIN}00", "bag_patient": "PAT-0002"},
    )  # fmt: skip
    site.sign(second, "check_bag")
    site.sign(second, "check_bag", Action.VERIFY, who="sam")
    site.start_phase(second, "count_cells")
    before = snapshot(site)
    assert scan_counter(site, second, COUNTER).field_errors == {
        "equipment:0": "CC-01 (Cell Counter) is in use by batch SPK1-2026-0001. Use another "
        "instrument, or wait until that phase is done."
    }
    assert_scan_refused_and_kept(site, second, before, "cell_counter")
    site.record(
        first, "count_cells", values={"volume": "200", "viability": "92.0", "viable_conc": "5.00"},
        lots={"MAT-SYRINGE": LOT},
    )  # fmt: skip
    site.sign(first, "count_cells")
    assert scan_counter(site, second, COUNTER).field_errors == {}
    assert_sound(site, first) and assert_sound(site, second)


@pytest.mark.parametrize(
    ("change", "scanned", "message"),
    [
        (
            "out_of_service",
            COUNTER,
            "CC-01 (Cell Counter) is out of service. Use another instrument of the same class.",
        ),
        (
            "not_clean",
            COUNTER,
            "CC-01 (Cell Counter) is not clean. Clean it and record the cleaning first.",
        ),
        (
            "calibration_overdue",
            "CC-02",
            "CC-02 (Old cell counter) was due for calibration on 2026-11-20. Use a calibrated "
            "instrument; have this one calibrated.",
        ),
    ],
)
def test_an_instrument_out_of_service_not_clean_or_past_calibration_is_refused_at_the_scan(
    make_uow, change, scanned, message
):
    site = spoke(make_uow)
    with site.uow() as uow:
        if change == "out_of_service":
            equipment.set_status(uow, site.ctx("sam"), COUNTER, "out_of_service", "Display broken")
        elif change == "not_clean":
            equipment.record_cleaning(uow, site.ctx("oscar"), COUNTER, clean=False, note="Spill")
        else:
            equipment.add_equipment(
                uow, site.ctx("sam"), equipment_id="CC-02", equipment_class="cell_counter",
                name="Old cell counter", location="Suite A",
                calibration_due=TODAY - timedelta(days=1),
            )  # fmt: skip
    batch_id = counting(site)
    before = snapshot(site)
    assert scan_counter(site, batch_id, scanned).field_errors == {"equipment:0": message}
    assert_scan_refused_and_kept(site, batch_id, before, "cell_counter")


# --- hold, completion, abort -------------------------------------------------------------


def test_a_batch_on_hold_refuses_work_and_only_a_supervisor_resumes_it(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    site.start_phase(batch_id, "check_bag")

    def hold(reason: str) -> object:
        with site.uow() as uow:
            return batches.hold_batch(uow, site.ctx("olivia"), batch_id, reason)

    refusal = unchanged_by(site, lambda: hold(""), InvalidInput)
    assert str(refusal) == "A reason is required to put the batch on hold. Say why."
    hold("Spill in the cabinet")
    on_hold = (
        "Batch SPK1-2026-0001 is on hold (Spill in the cabinet). A supervisor must resume it "
        "before work continues."
    )
    work = {
        "record": lambda: site.record(batch_id, "check_bag", values={"bag_intact": "yes"}),
        "scan": lambda: site.record(batch_id, "check_bag", equipment={0: SCANNER}),
        "sign": lambda: site.sign(batch_id, "check_bag"),
    }
    for name, attempt in work.items():
        assert str(unchanged_by(site, attempt, BatchNotActive)) == on_hold, name

    def resume(who: str, reason: str = "Cabinet cleaned and released") -> object:
        with site.uow() as uow:
            return batches.resume_batch(uow, site.ctx(who), batch_id, reason)

    refusal = unchanged_by(site, lambda: resume("olivia"), NotAuthorised)
    assert str(refusal) == (
        "To resume a batch you need the qa or supervisor role. Ask a person who holds it."
    )
    refusal = unchanged_by(site, lambda: resume("sam", " "), InvalidInput)
    assert str(refusal) == "A reason is required to resume the batch. Say why."
    assert resume("sam").state.status is BatchStatus.IN_PROGRESS
    site.record(
        batch_id, "check_bag", values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": DIN_BARCODE, "bag_patient": PATIENT},
    )  # fmt: skip
    site.sign(batch_id, "check_bag")
    kinds = [e.kind for e in entries(site, batch_id)]
    assert kinds[2:5] == ["phase_started", "batch_held", "batch_resumed"]
    assert_sound(site, batch_id)


def complete(site, batch_id, who="sam", at=LATER):
    with site.uow() as uow:
        return batches.complete_batch(
            uow, site.ctx(who, at), batch_id, Credentials(PASSWORD, who),
            first_signing_in_session=True,
        )  # fmt: skip


def test_a_batch_cannot_be_completed_while_phases_are_not_done_or_deviations_are_open(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    refusal = unchanged_by(site, lambda: complete(site, batch_id), BatchIncomplete)
    assert str(refusal) == (
        "8 phase(s) are not done: 'Check the bag', 'Record the damage', 'Count cells', "
        "'Test A', 'Test B' and 3 more. Every phase must be performed, and verified where "
        "required."
    )
    site.do_check_bag(batch_id)
    site.do_count(batch_id, viability="60.0")  # outside the action limits: a deviation
    site.do_culture_and_harvest(batch_id, at=LATER)
    refusal = unchanged_by(site, lambda: complete(site, batch_id, who="olivia"), NotAuthorised)
    assert (
        str(refusal)
        == "To complete a batch you need the supervisor role. Ask a person who holds it."
    )
    refusal = unchanged_by(site, lambda: complete(site, batch_id), DeviationsOpen)
    assert str(refusal) == (
        "Deviation(s) SPK1-2026-0001-D1 are not acknowledged. A supervisor or QA must "
        "acknowledge each deviation first."
    )
    site.acknowledge(batch_id, "SPK1-2026-0001-D1", at=LATER)
    assert complete(site, batch_id).state.status is BatchStatus.COMPLETE
    assert_sound(site, batch_id)


def abort(site, batch_id, reason, who="sam"):
    with site.uow() as uow:
        return batches.abort_batch(
            uow, site.ctx(who), batch_id, reason, Credentials(PASSWORD, who),
            first_signing_in_session=True,
        )  # fmt: skip


def test_aborting_a_batch_needs_a_reason_and_a_supervisor_and_its_record_stays(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    site.do_check_bag(batch_id)
    refusal = unchanged_by(site, lambda: abort(site, batch_id, "  "), InvalidInput)
    assert str(refusal) == "A reason is required to abort the batch. Say why."
    refusal = unchanged_by(
        site, lambda: abort(site, batch_id, "Patient withdrawn", who="olivia"), NotAuthorised
    )
    assert str(refusal) == (
        "To abort a batch you need the supervisor role. Ask a person who holds it."
    )
    aborted = abort(site, batch_id, "Patient withdrawn from the study")
    assert aborted.state.status is BatchStatus.ABORTED
    assert aborted.state.status_reason == "Patient withdrawn from the study"
    refusal = unchanged_by(site, lambda: site.start_phase(batch_id, "count_cells"), BatchNotActive)
    assert str(refusal) == ("Batch SPK1-2026-0001 is aborted: nothing more can be recorded in it.")
    assert site.view(batch_id).batch.state.phases["check_bag"].status is PhaseStatus.VERIFIED
    assert_sound(site, batch_id)
    # The donation of an aborted batch may start a new one.
    assert site.start().state.number == "SPK1-2026-0002"


# --- corrections --------------------------------------------------------------------------


def correct(site, batch_id, phase, value_id, new, reason, who="olivia", at=LATER, **options):
    password = options.pop("password", PASSWORD)
    with site.uow() as uow:
        return batches.correct_value(
            uow, site.ctx(who, at), batch_id, phase, value_id, new, reason,
            Credentials(password, who), first_signing_in_session=True,
        )  # fmt: skip


def test_a_correction_keeps_the_original_value_needs_a_reason_and_is_verified_again(make_uow):
    site = spoke(make_uow, recipe_text=CORRECTION_RECIPE)
    with site.uow() as uow:
        batch_id = batches.start_batch(
            uow, site.ctx("olivia"), "CORR-TEST", {"patient_id": "PAT-0001"},
            Credentials(PASSWORD, "olivia"), first_signing_in_session=True,
        ).state.id  # fmt: skip
    site.start_phase(batch_id, "weigh")
    site.record(batch_id, "weigh", values={"weight": "12.5"})
    site.sign(batch_id, "weigh")
    site.sign(batch_id, "weigh", Action.VERIFY, who="sam")
    original = next(e for e in entries(site, batch_id) if e.kind == "value_recorded")

    refusal = unchanged_by(
        site, lambda: correct(site, batch_id, "weigh", "weight", "13.5", ""), InvalidInput
    )
    assert str(refusal) == "A reason is required to correct a value. Say why."
    with pytest.raises(AuthenticationFailed):
        correct(site, batch_id, "weigh", "weight", "13.5", "Misread", password="wrong")
    assert [e.kind for e in entries(site, batch_id)][-1] == "signature"  # nothing of it kept

    corrected = correct(site, batch_id, "weigh", "weight", "13.5", "Misread the balance")
    phase = corrected.state.phases["weigh"]
    assert phase.status is PhaseStatus.PERFORMED  # the recipe verifies: verified again
    weight = phase.values["weight"]
    assert weight.value == "13.5"
    assert [(h["value"], h["seq"]) for h in weight.history] == [("12.5", original.seq)]
    assert phase.values["doubled"].value == "27.0"
    ledger = entries(site, batch_id)
    assert original.payload["recorded"] == "12.5"  # the original entry is still there
    correction = next(e for e in ledger if e.kind == "value_corrected")
    assert correction.payload["corrects"] == original.seq
    assert correction.payload["reason"] == "Misread the balance"
    assert ledger[-1].payload["record"]["action"] == "correct"
    stored = snapshot(site)["batches"][batch_id]
    row = next(v for v in stored["values"] if v["value_id"] == "weight")
    assert (row["value"], row["corrections"]) == ("13.5", 1)

    refusal = unchanged_by(
        site, lambda: site.start_phase(batch_id, "note", at=LATER), PhaseOutOfOrder
    )
    assert str(refusal) == (
        "'Note the time' cannot start yet: 'Weigh the dose' must be done first (it waits for "
        "its verification). Do the phases before it first."
    )
    sign(site, batch_id, "weigh", Action.VERIFY, who="sam", at=LATER)
    assert site.view(batch_id).batch.state.phases["weigh"].status is PhaseStatus.VERIFIED
    assert_sound(site, batch_id)


# --- the hub and the database ----------------------------------------------------------------


def test_the_hub_refuses_every_batch_service(make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    ctx = site.ctx("olivia")
    password = Credentials(PASSWORD, "olivia")
    calls = {
        "start_batch": lambda uow: batches.start_batch(
            uow, ctx, "BATCH-TEST", OTHER_IDENTIFIERS, password, first_signing_in_session=True
        ),
        "start_phase": lambda uow: batches.start_phase(uow, ctx, batch_id, "check_bag"),
        "record_phase": lambda uow: batches.record_phase(
            uow, ctx, batch_id, "check_bag", values={"bag_intact": "yes"}
        ),
        "sign_phase": lambda uow: batches.sign_phase(
            uow,
            ctx,
            batch_id,
            "check_bag",
            Action.PERFORM,
            password,
            first_signing_in_session=True,
        ),
        "hold_batch": lambda uow: batches.hold_batch(uow, ctx, batch_id, "Hold at the hub"),
        "report_deviation": lambda uow: batches.report_deviation(
            uow, ctx, batch_id, "Something happened at the hub"
        ),
    }

    def at_the_hub(name: str) -> object:
        with make_uow("hub") as uow:
            return calls[name](uow)

    before = snapshot(site)
    assert outcomes(at_the_hub, calls) == dict.fromkeys(calls, "ConfigurationError")
    assert snapshot(site) == before
    assert_sound(site, batch_id)
    with make_uow("hub") as uow, pytest.raises(ConfigurationError) as caught:
        batches.start_phase(uow, ctx, batch_id, "check_bag")
    assert str(caught.value) == (
        "Batches are executed at a spoke; this site (TEST) is the hub. "
        "Run batches at the manufacturing site."
    )


def test_the_database_refuses_to_change_or_delete_batch_records_with_raw_sql(engine, make_uow):
    site = spoke(make_uow)
    batch_id = started(site)
    site.do_check_bag(batch_id)
    site.do_count(batch_id, viability="60.0")  # a deviation
    before = snapshot(site)
    statements = [
        "UPDATE batch_entries SET actor_username = 'mallory'",
        "UPDATE batch_entries SET payload = NULL WHERE seq = 1",
        "DELETE FROM batch_entries WHERE seq = (SELECT MAX(seq) FROM batch_entries)",
        "DELETE FROM batch_entries",
        "UPDATE equipment_log SET detail = 'never used'",
        "DELETE FROM equipment_log",
        "DELETE FROM deviations",
        "DELETE FROM batch_values",
        "DELETE FROM batch_phases",
        "DELETE FROM batches",
    ]
    tried = {sql: refused_by_trigger(engine, sql) for sql in statements}
    assert tried == dict.fromkeys(statements, "refused by a trigger")
    assert snapshot(site) == before
    assert_sound(site, batch_id)
