"""The executed batch record in words (mes.core.record): what the printed record says."""

from __future__ import annotations

import re

import pytest
from record_fixtures import CORRECTION_REASON, DEVIATION_TEXT, ZONE, executed_batch, sample_record

from mes.core.batch import Batch
from mes.core.clock import local_text, parse_utc_text
from mes.core.record import BatchRecord, PhaseSection, manifestation_text, shown_value


@pytest.fixture(scope="module")
def batch() -> Batch:
    return executed_batch()


@pytest.fixture(scope="module")
def record(batch: Batch) -> BatchRecord:
    return sample_record(batch)


def phases(record: BatchRecord) -> list[PhaseSection]:
    return [ph for unit in record.units for op in unit.operations for ph in op.phases]


def phase(record: BatchRecord, phase_id: str) -> PhaseSection:
    return next(ph for ph in phases(record) if ph.id == phase_id)


def test_phases_are_in_recipe_order_under_their_unit_procedures_and_operations(
    batch: Batch, record: BatchRecord
):
    expected = [p.id for p in sorted(batch.procedure.phases.values(), key=lambda p: p.position)]
    assert [ph.id for ph in phases(record)] == expected
    assert [ph.number for ph in phases(record)] == list(range(1, len(expected) + 1))
    assert [u.name for u in record.units] == ["Receipt", "Culture"]
    assert [op.name for op in record.units[1].operations] == ["Tests", "Monitoring", "Harvest"]
    assert record.phase_count == len(expected)


def test_every_recorded_value_appears_with_its_unit_limits_and_status(
    batch: Batch, record: BatchRecord
):
    for phase_id, state in batch.state.phases.items():
        plan = batch.procedure.phases[phase_id]
        lines = {v.label: v for v in phase(record, phase_id).values}
        assert len(lines) == len(state.values)
        for value_id, recorded in state.values.items():
            spec = plan.value_spec(value_id)
            assert spec is not None
            line = lines[spec["label"]]
            assert line.value_text == shown_value(recorded.value, spec, ZONE)
            if spec.get("unit"):
                assert line.value_text.endswith(f" {spec['unit']}")
    count = {v.label: v for v in phase(record, "count_cells").values}
    viability = count["Viability"]
    assert (viability.value_text, viability.status) == ("80.0 %", "alert")
    assert viability.status_title == "Outside alert limits"
    assert viability.limits == "acceptable ≥ 70 %; alert below 85 %; target 95 %"
    total = count["Total viable cells"]
    assert total.calculated
    assert (total.status, total.status_title, total.limits) == (
        "ok",
        "Within limits",
        "acceptable ≥ 100 ×10^6 cells",
    )
    # no limits: said so, not "Within limits"
    assert (count["Bag volume"].limits, count["Bag volume"].status_title) == ("", "no limits")
    assert "Bag volume = " in count["Bag volume"].text
    assert "no limits" in count["Bag volume"].text


def test_a_correction_shows_the_original_the_new_value_the_reason_and_who(record: BatchRecord):
    count = {v.label: v for v in phase(record, "count_cells").values}
    volume = count["Bag volume"]
    assert volume.value_text == "210 mL"
    (change,) = volume.changes
    assert (change.original, change.new, change.reason) == ("200 mL", "210 mL", CORRECTION_REASON)
    assert change.corrects is not None
    assert change.by == "Olivia Tester (olivia)"
    assert change.at_text == "2026-11-21 10:15:00 CET"
    # the calculation worked out again by the correction carries the same reason
    (recalculated,) = count["Total viable cells"].changes
    assert (recalculated.original, recalculated.new) == ("1000.0 ×10^6 cells", "1050.0 ×10^6 cells")
    assert recalculated.reason == CORRECTION_REASON


def test_every_signature_shows_printed_name_user_id_local_time_with_zone_and_meaning(
    batch: Batch, record: BatchRecord
):
    for phase_id, state in batch.state.phases.items():
        shown = phase(record, phase_id).signatures
        assert [s.text for s in shown] == [manifestation_text(s, ZONE) for s in state.signatures]
    check_bag = phase(record, "check_bag").signatures
    assert [(s.printed_name, s.user_id, s.meaning) for s in check_bag] == [
        ("Olivia Tester", "olivia", "Performed"),
        ("Sam Tester", "sam", "Verified"),
    ]
    assert check_bag[0].text == "Olivia Tester (olivia) — Performed — 2026-11-21 10:01:00 CET"
    assert re.fullmatch(r"[0-9a-f]{64}", check_bag[0].record_hash)
    assert [s.meaning for s in record.cover.batch_signatures] == ["Started", "Completed"]


def test_materials_equipment_and_identity_scans_are_in_their_phase(record: BatchRecord):
    count = phase(record, "count_cells")
    (syringe,) = count.materials
    assert (syringe.lot, syringe.quantity, syringe.expiry, syringe.lot_status) == (
        "LOT-SYR-001",
        "1 each",
        "2027-11-21",
        "released",
    )
    (counter,) = count.equipment
    assert (counter.equipment_id, counter.calibration) == ("CC-01", "calibration due 2027-05-01")
    identity = phase(record, "check_bag").identity
    assert [(i.label, i.matches) for i in identity] == [
        ("DIN on the bag", True),
        ("Patient ID on the bag", True),
    ]
    assert count.deviations == ("SPK1-2026-0001-D1",)


def test_the_cover_holds_the_batch_recipe_chain_of_identity_and_release(record: BatchRecord):
    cover = record.cover
    assert (cover.batch_number, cover.product, cover.recipe_code, cover.recipe_version) == (
        "SPK1-2026-0001",
        "Batch test product",
        "BATCH-TEST",
        1,
    )
    assert cover.recipe_content_hash == "0" * 64
    assert cover.chain_of_identity == (
        ("Donation identification number", "A9999 26 123456 00 T"),
        ("Patient identifier", "PAT-0001"),
    )
    assert cover.identity_code == "BATCH:SPK1-2026-0001|DIN:A999926123456|PATIENT_ID:PAT-0001"
    assert cover.status == "Complete"
    assert cover.release is not None
    assert cover.release.decision == "Released"
    assert cover.release.signature is not None
    assert cover.release.signature.text == (
        "Quinn Tester (quinn) — Released — 2026-11-21 15:05:00 CET"
    )
    assert record.generated_at == "2026-11-21 16:00:00 CET"


def test_a_deviation_shows_its_workflow_from_the_spoke_to_qa_closure(record: BatchRecord):
    (deviation,) = record.deviations
    assert deviation.description == DEVIATION_TEXT
    assert deviation.phase == "Count cells"
    assert deviation.raised == "Olivia Tester (olivia), 2026-11-21 10:10:00 CET"
    assert deviation.acknowledgement is not None
    assert deviation.acknowledgement.meaning == "Acknowledged"
    assert ("Classification", "minor") in deviation.assessment
    assert ("CAPA reference", "CAPA-2026-017") in deviation.assessment
    assert deviation.history == (
        "2026-11-21 15:00:00 CET, Quinn Tester (quinn): Classification: — → minor",
    )
    assert deviation.status == "Closed by QA"
    assert deviation.closure is not None
    assert deviation.closure.site == "HUB"
    (reviewed,) = record.reviewed
    assert reviewed.signature.meaning == "Reviewed"


def test_the_audit_trail_has_one_line_per_ledger_entry_in_site_time(
    batch: Batch, record: BatchRecord
):
    assert [a.seq for a in record.audit] == [e.seq for e in batch.new_entries]
    assert {a.chain for a in record.audit} == {"batch"}
    for line, entry in zip(record.audit, batch.new_entries, strict=True):
        assert line.at_text == local_text(parse_utc_text(entry.body["at"]), ZONE)
    corrected = next(a for a in record.audit if a.kind == "value_corrected")
    assert f"reason: {CORRECTION_REASON}" in corrected.text
    assert corrected.who == "Olivia Tester (olivia)"
    assert corrected.terminal == "Suite A 1"
