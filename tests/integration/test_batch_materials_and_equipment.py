"""Materials, lots and equipment at a spoke, on both databases: who may register and change
them, QA's signed lot decisions, every instrument event in its logbook, every master change in
the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_checks import snapshot, unchanged_by
from batch_helpers import COUNTER, LOT, SCANNER, spoke
from sqlalchemy import select
from support import NOW, PASSWORD

from mes.core.errors import AuthenticationFailed, InvalidInput, NotAuthorised, NotFound
from mes.services import equipment, materials
from mes.services.esign import Credentials, valid_signatures
from mes.store.models import AuditEntry

TODAY = NOW.date()


def audit_of(site, record_type: str, record_id: str) -> list[AuditEntry]:
    """The audit entries of one master record, oldest first."""
    with site.uow() as uow:
        return list(
            uow.session.execute(
                select(AuditEntry)
                .where(AuditEntry.record_type == record_type, AuditEntry.record_id == record_id)
                .order_by(AuditEntry.seq)
            ).scalars()
        )


def logbook(site, equipment_id: str) -> list[tuple[str, str | None, str | None, str, str]]:
    """An instrument's logbook, oldest first: (action, batch, phase, by, detail)."""
    with site.uow() as uow:
        _, lines = equipment.logbook(uow, site.ctx("olivia"), equipment_id)
    return [
        (e.action, e.batch_number, e.phase_id, e.by_username, e.detail) for e in reversed(lines)
    ]


# --- materials and lots ---------------------------------------------------------------------


def test_a_material_is_registered_once_by_a_supervisor_or_qa_and_audited(make_uow):
    site = spoke(make_uow)

    def add(who: str, code: str = "MAT-BUFFER", unit: str = "bag") -> object:
        with site.uow() as uow:
            return materials.add_material(
                uow, site.ctx(who), code=code, name="Wash buffer", unit=unit
            )

    refusal = unchanged_by(site, lambda: add("olivia"), NotAuthorised)
    assert str(refusal) == (
        "You are not allowed to register materials and lots. Ask a user with the qa or "
        "supervisor role."
    )
    assert str(unchanged_by(site, lambda: add("sam", code="buffer!"), InvalidInput)) == (
        "'buffer!' is not a material code. Use capital letters, digits and '-', as in the "
        "recipes (e.g. MAT-TS520)."
    )
    assert str(unchanged_by(site, lambda: add("sam", unit="bucket"), InvalidInput)) == (
        "'bucket' is not a unit the recipes use. Use e.g. each, vial, mL, set."
    )
    assert add("quinn", code="mat-buffer").code == "MAT-BUFFER"
    assert str(unchanged_by(site, lambda: add("sam"), InvalidInput)) == (
        "Material MAT-BUFFER is already registered."
    )
    [entry] = audit_of(site, "material", "MAT-BUFFER")
    assert (entry.action, entry.actor_username, entry.new) == (
        "material registered",
        "quinn",
        {"code": "MAT-BUFFER", "name": "Wash buffer", "unit": "bag"},
    )


def test_a_lot_arrives_in_quarantine_with_a_unique_number_and_an_audit_entry(make_uow):
    site = spoke(make_uow)

    def receive(number: str, material: str = "MAT-SYRINGE", who: str = "sam") -> object:
        with site.uow() as uow:
            return materials.add_lot(
                uow, site.ctx(who), material_code=material, lot_number=number,
                expiry=TODAY + timedelta(days=90),
            )  # fmt: skip

    lot = receive("LOT-SYR-002")
    assert (lot.status, lot.material_code) == ("quarantine", "MAT-SYRINGE")
    assert str(unchanged_by(site, lambda: receive("lot-syr-002"), InvalidInput)) == (
        "Lot lot-syr-002 is already registered. Lot numbers are unique at a site; check the label."
    )
    assert str(unchanged_by(site, lambda: receive("LOT-X", "MAT-NONE"), NotFound)) == (
        "Material MAT-NONE is not registered. Register the material first."
    )
    assert isinstance(unchanged_by(site, lambda: receive("LOT-Y", who="oscar"), NotAuthorised),
                      NotAuthorised)  # fmt: skip
    [entry] = audit_of(site, "material-lot", lot.id)
    assert (entry.action, entry.actor_username, entry.new) == (
        "material lot received",
        "sam",
        {
            "lot_number": "LOT-SYR-002",
            "material": "MAT-SYRINGE",
            "expiry": (TODAY + timedelta(days=90)).isoformat(),
            "status": "quarantine",
        },
    )


def decide(site, who: str, status: str, reason: str | None = "QC passed", password=PASSWORD):
    with site.uow() as uow:
        return materials.change_lot_status(
            uow, site.ctx(who), "LOT-SYR-002", status, reason, Credentials(password, who),
            first_signing_in_session=True,
        )  # fmt: skip


def test_only_qa_releases_rejects_or_quarantines_a_lot_with_a_reason_and_a_signature(make_uow):
    site = spoke(make_uow)
    site.add_lot("LOT-SYR-002", "MAT-SYRINGE", TODAY + timedelta(days=90), "quarantine")
    for who in ("olivia", "sam"):
        refusal = unchanged_by(site, lambda who=who: decide(site, who, "released"), NotAuthorised)
        assert str(refusal) == (
            "You are not allowed to release, reject or quarantine material lots. Ask a user "
            "with the qa role."
        )
    refusal = unchanged_by(site, lambda: decide(site, "quinn", "released", " "), InvalidInput)
    assert (
        str(refusal) == "A reason is required to set a lot to released. Say why the change is made."
    )
    refusal = unchanged_by(site, lambda: decide(site, "quinn", "approved"), InvalidInput)
    assert str(refusal) == "'approved' is not a lot status. Use released, rejected or quarantine."
    before = snapshot(site)
    with pytest.raises(AuthenticationFailed):
        decide(site, "quinn", "released", password="wrong")
    assert snapshot(site)["failed_attempts"]["quinn"] == before["failed_attempts"]["quinn"] + 1

    lot = decide(site, "quinn", "released", "CoA reviewed, QC passed")
    assert (lot.status, lot.status_reason) == ("released", "CoA reviewed, QC passed")
    refusal = unchanged_by(site, lambda: decide(site, "quinn", "released"), InvalidInput)
    assert str(refusal) == "Lot LOT-SYR-002 already is released."
    decide(site, "quinn", "rejected", "Supplier recall")
    decide(site, "quinn", "quarantine", "Recall under investigation")

    trail = audit_of(site, "material-lot", lot.id)
    assert [(e.kind, e.action) for e in trail] == [
        ("change", "material lot received"),
        ("signature", "signed: released"),
        ("change", "material lot released"),
        ("signature", "signed: rejected"),
        ("change", "material lot rejected"),
        ("signature", "signed: quarantined"),
        ("change", "material lot quarantine"),
    ]
    released = trail[2]
    assert (released.old, released.new, released.reason) == (
        {"status": "quarantine"},
        {"status": "released", "signature_entry": trail[1].seq},
        "CoA reviewed, QC passed",
    )
    assert all(e.actor_username == "quinn" for e in trail[1:])
    with site.uow() as uow:
        signed = valid_signatures(
            uow, "material-lot", lot.id, materials.lot_record(lot, "released")
        )
    assert [(s.username, s.meaning) for s in signed] == [("quinn", "released")]


# --- equipment and its logbook ------------------------------------------------------------------


def test_registering_an_instrument_writes_its_logbook_and_an_audit_entry(make_uow):
    site = spoke(make_uow)

    def register(who: str, equipment_id: str = "BSC-01", kind: str = "biosafety_cabinet"):
        with site.uow() as uow:
            return equipment.add_equipment(
                uow, site.ctx(who), equipment_id=equipment_id, equipment_class=kind,
                name="Biosafety cabinet 1", location="Suite A",
                calibration_due=TODAY + timedelta(days=365),
            )  # fmt: skip

    refusal = unchanged_by(site, lambda: register("olivia"), NotAuthorised)
    assert str(refusal) == (
        "You are not allowed to register equipment and record calibration and status. Ask a "
        "user with the qa or supervisor role."
    )
    assert str(unchanged_by(site, lambda: register("sam", "BSC 01"), InvalidInput)) == (
        "'BSC 01' is not an equipment ID. Use capital letters, digits and '-' as on the ID "
        "label (e.g. CC-01)."
    )
    assert str(unchanged_by(site, lambda: register("sam", kind="Big Cabinet"), InvalidInput)) == (
        "'Big Cabinet' is not an equipment class. Use the class ID the recipes use, e.g. "
        "cell_counter."
    )
    cabinet = register("sam")
    assert (cabinet.status, cabinet.clean) == ("in_service", True)
    assert str(unchanged_by(site, lambda: register("quinn"), InvalidInput)) == (
        "Equipment BSC-01 is already registered."
    )
    due = (TODAY + timedelta(days=365)).isoformat()
    assert logbook(site, "BSC-01") == [
        (
            "registered",
            None,
            None,
            "sam",
            f"Biosafety cabinet 1, biosafety_cabinet; calibration due {due}",
        )
    ]
    [entry] = audit_of(site, "equipment", "BSC-01")
    assert (entry.action, entry.actor_username, entry.new) == (
        "equipment registered",
        "sam",
        {
            "class": "biosafety_cabinet",
            "name": "Biosafety cabinet 1",
            "location": "Suite A",
            "calibration_due": due,
        },
    )


def test_using_an_instrument_in_a_phase_writes_a_logbook_line_naming_the_batch_and_phase(
    make_uow,
):
    site = spoke(make_uow)
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    site.start_phase(batch_id, "count_cells")
    lines_before = logbook(site, COUNTER)
    refused = site.record(batch_id, "count_cells", equipment={0: SCANNER})  # another class
    assert refused.field_errors == {
        "equipment:0": "SCN-01 (Barcode Scanner) is a barcode scanner, not a cell counter. Use "
        "a cell counter."
    }
    site.record(batch_id, "count_cells", equipment={0: COUNTER}, lots={"MAT-SYRINGE": LOT})
    assert logbook(site, SCANNER)[1:] == [
        ("used", "SPK1-2026-0001", "check_bag", "olivia", "Check the bag (BATCH-TEST v1)")
    ]
    assert logbook(site, COUNTER) == [
        *lines_before,
        ("used", "SPK1-2026-0001", "count_cells", "olivia", "Count cells (BATCH-TEST v1)"),
    ]
    with site.uow() as uow:
        [row] = [
            r for r in equipment.list_equipment(uow, site.ctx("sam")) if r.equipment.id == COUNTER
        ]
    assert row.in_use_by == "SPK1-2026-0001"


def test_cleaning_calibration_and_status_changes_are_logged_audited_and_checked(make_uow):
    site = spoke(make_uow)

    def clean(who: str, is_clean: bool, note: str | None = None) -> object:
        with site.uow() as uow:
            return equipment.record_cleaning(uow, site.ctx(who), COUNTER, clean=is_clean, note=note)

    def calibrate(who: str, next_due, certificate: str = "CAL-2026-118") -> object:
        with site.uow() as uow:
            return equipment.record_calibration(
                uow, site.ctx(who), COUNTER, next_due=next_due, certificate=certificate
            )

    def status(who: str, new: str, reason: str | None = "Display broken") -> object:
        with site.uow() as uow:
            return equipment.set_status(uow, site.ctx(who), COUNTER, new, reason)

    refusal = unchanged_by(site, lambda: clean("quinn", True), NotAuthorised)
    assert str(refusal) == (
        "You are not allowed to record equipment cleaning. Ask a user with the operator or "
        "supervisor role."
    )
    assert str(unchanged_by(site, lambda: clean("oscar", False, " "), InvalidInput)) == (
        "Say why the instrument needs cleaning. For example: 'spill after harvest'."
    )
    assert clean("oscar", False, "Spill after the count").clean is False
    assert clean("olivia", True).clean is True

    assert str(unchanged_by(site, lambda: calibrate("sam", TODAY), InvalidInput)) == (
        f"The next due date {TODAY.isoformat()} is not in the future. Enter the date the next "
        "calibration is due."
    )
    assert str(unchanged_by(site, lambda: calibrate("sam", TODAY + timedelta(days=1), ""),
                            InvalidInput)) == (
        "A calibration needs its certificate or report reference. Enter the certificate number."
    )  # fmt: skip
    assert isinstance(
        unchanged_by(site, lambda: calibrate("olivia", TODAY + timedelta(days=1)), NotAuthorised),
        NotAuthorised,
    )
    next_due = TODAY + timedelta(days=365)
    assert calibrate("sam", next_due).calibration_due == next_due

    assert str(unchanged_by(site, lambda: status("sam", "out_of_service", ""), InvalidInput)) == (
        "A reason is required to change the status of an instrument. Say why the change is made."
    )
    assert str(unchanged_by(site, lambda: status("sam", "in_service"), InvalidInput)) == (
        "CC-01 already is in service."
    )
    assert str(unchanged_by(site, lambda: status("sam", "broken"), InvalidInput)) == (
        "'broken' is not an equipment status. Use in_service or out_of_service."
    )
    assert isinstance(
        unchanged_by(site, lambda: status("olivia", "out_of_service"), NotAuthorised),
        NotAuthorised,
    )
    status("sam", "out_of_service")
    status("quinn", "in_service", "Display replaced and checked")

    assert [(a, by, detail) for a, _b, _p, by, detail in logbook(site, COUNTER)[1:]] == [
        ("needs cleaning", "oscar", "Spill after the count"),
        ("cleaned", "olivia", "—"),
        ("calibrated", "sam", f"certificate CAL-2026-118; next due {next_due.isoformat()}"),
        ("out of service", "sam", "Display broken"),
        ("in service", "quinn", "Display replaced and checked"),
    ]
    trail = audit_of(site, "equipment", COUNTER)
    assert [(e.action, e.actor_username, e.old, e.new, e.reason) for e in trail[1:]] == [
        ("equipment cleaning recorded", "oscar", {"clean": True}, {"clean": False},
         "Spill after the count"),
        ("equipment cleaning recorded", "olivia", {"clean": False}, {"clean": True}, None),
        ("equipment calibrated", "sam",
         {"calibration_due": (TODAY + timedelta(days=180)).isoformat()},
         {"calibration_due": next_due.isoformat(), "certificate": "CAL-2026-118"},
         "calibration CAL-2026-118"),
        ("equipment status changed", "sam", {"status": "in_service"},
         {"status": "out_of_service"}, "Display broken"),
        ("equipment status changed", "quinn", {"status": "out_of_service"},
         {"status": "in_service"}, "Display replaced and checked"),
    ]  # fmt: skip
