"""After release (mes.core.after_release): pending results, certification, the notification gate."""

from __future__ import annotations

from typing import Any

import pytest

from mes.core.after_release import (
    AlreadyCertifiedFinal,
    Certification,
    CertificationRefused,
    NotReleased,
    PhysicianNotificationPending,
    ResultAlreadyRecorded,
    ResultNotDeclared,
    after_release_state,
    awaiting_words,
    certification_record,
    check_may_be_infused,
    check_may_sign,
    follows_release,
    notification_payload,
    result_payload,
)
from mes.core.errors import InvalidInput, MesError, NotReleasedForInfusion
from mes.core.recipe import check_recipe

COMPILED = {
    "pending_results": [
        {
            "id": "sterility_final",
            "label": "Sterility (14-day culture)",
            "specification": "No growth",
            "accepted": ["No growth"],
        },
        {
            "id": "vcn",
            "label": "Vector copy number",
            "specification": "≤ 5 copies/cell",
            "unit": "copies/cell",
            "maximum": 5,
        },
    ]
}
ACTOR = {"user_id": "u1", "username": "qc1", "name": "Quinn Control"}


def body(kind: str, payload: dict[str, Any], seq: int, at: str = "2026-01-20T10:00:00Z") -> dict:
    return {"kind": kind, "payload": payload, "seq": seq, "at": at, "actor": ACTOR}


RELEASED = body("batch_released", {"decision": "released"}, 1)


def entered(state: Any, seq: int, chain: str = "ledger", **fields: Any) -> dict:
    payload = result_payload(state, "B-1", **{"reference": "LAB-7", **fields})
    return body("result_recorded", payload, seq)


def test_a_release_with_results_pending_is_provisional_and_lists_them() -> None:
    state = after_release_state(COMPILED, [], [RELEASED])
    assert state.certification is Certification.PROVISIONAL
    assert [p.id for p in state.pending] == ["sterility_final", "vcn"]
    assert after_release_state(COMPILED, [], []).certification is Certification.NOT_RELEASED
    assert after_release_state({}, [], [RELEASED]).certification is Certification.FINAL


def test_a_result_the_recipe_does_not_declare_is_refused() -> None:
    state = after_release_state(COMPILED, [], [RELEASED])
    with pytest.raises(ResultNotDeclared, match="declares no pending result 'mycoplasma'"):
        result_payload(state, "B-1", result="mycoplasma", value="Negative", reference="L1")


def test_a_result_entered_twice_is_refused_and_a_correction_needs_a_reason() -> None:
    state = after_release_state(COMPILED, [], [RELEASED])
    first = entered(state, 5, result="vcn", value="2.1")
    state = after_release_state(COMPILED, [first], [RELEASED])
    with pytest.raises(ResultAlreadyRecorded, match=r"already recorded: 2\.1"):
        result_payload(state, "B-1", result="vcn", value="2.2", reference="L2")
    with pytest.raises(InvalidInput, match="needs a reason"):
        result_payload(
            state, "B-1", result="vcn", value="2.2", reference="L2", corrects="spoke:5", reason=""
        )
    corrected = result_payload(
        state, "B-1", result="vcn", value="2.2", reference="L2", corrects="spoke:5",
        reason="transcription error",
    )  # fmt: skip
    assert corrected["corrects"] == "spoke:5"
    state = after_release_state(COMPILED, [first, body("result_recorded", corrected, 6)], [])
    assert state.result("vcn").value == "2.2"  # type: ignore[union-attr]


def test_the_specification_is_judged_from_the_recipe() -> None:
    state = after_release_state(COMPILED, [], [RELEASED])
    assert (
        result_payload(state, "B", result="vcn", value="6", reference="L")["within_specification"]
        is False
    )
    assert result_payload(state, "B", result="sterility_final", value="no growth", reference="L")[
        "within_specification"
    ]
    with pytest.raises(InvalidInput, match="not a number"):
        result_payload(state, "B", result="vcn", value="lots", reference="L")


def test_out_of_specification_closes_every_other_signature_until_the_physician_is_told() -> None:
    state = after_release_state(COMPILED, [], [RELEASED])
    growth = entered(state, 7, result="sterility_final", value="Growth: S. epidermidis")
    state = after_release_state(COMPILED, [growth], [RELEASED])
    assert state.notification_pending and state.open_events
    with pytest.raises(PhysicianNotificationPending, match="treating physician"):
        check_may_sign(state, "B-1")
    check_may_sign(state, "B-1", notifying=True)  # the notification itself goes through
    told = notification_payload(
        state, "B-1", result="sterility_final", physician="Dr Ada Haem", how="phone",
        told_at="2026-01-21T09:00:00Z",
    )  # fmt: skip
    state = after_release_state(COMPILED, [growth, body("physician_notified", told, 8)], [RELEASED])
    check_may_sign(state, "B-1")
    assert not state.open_events  # no ledger deviation: closed by the notification


def test_final_certification_waits_for_every_result_within_specification_and_is_given_once() -> (
    None
):
    state = after_release_state(COMPILED, [], [])
    with pytest.raises(NotReleased):
        certification_record(state, "id", "B-1")
    state = after_release_state(COMPILED, [], [RELEASED])
    with pytest.raises(CertificationRefused, match=r"Sterility .* is pending"):
        certification_record(state, "id", "B-1")
    ledger = [entered(state, 3, result="sterility_final", value="No growth")]
    ledger.append(entered(after_release_state(COMPILED, ledger, []), 4, result="vcn", value="2"))
    state = after_release_state(COMPILED, ledger, [RELEASED])
    record = certification_record(state, "id", "B-1")
    assert record["certification"] == "final"
    certified = body("batch_certified_final", {}, 2)
    state = after_release_state(COMPILED, ledger, [RELEASED, certified])
    assert state.certification is Certification.FINAL
    with pytest.raises(AlreadyCertifiedFinal):
        certification_record(state, "id", "B-1")


PENDING_YAML = """
pending_results:
  - {id: vcn, label: VCN, specification: "≤ 5", maximum: 5, minimum: 6}
  - {id: vcn, label: VCN again, specification: x, accepted: [x], maximum: 3}
"""


def test_the_recipe_checker_refuses_a_result_listed_twice_and_limits_out_of_order() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "recipes" / "car-t-fresh.yaml").read_text()
    start = text.index("pending_results:")
    end = text.index("change_reason:")
    bad = text[:start] + PENDING_YAML.lstrip() + text[end:]
    data, problems = check_recipe(bad)
    assert data is None
    messages = " ".join(p.text("bad.yaml") for p in problems)
    assert "listed twice" in messages
    assert "above the maximum" in messages
    assert "not both" in messages


def test_a_complete_batch_records_a_result_raises_its_deviation_and_replays_the_same() -> None:
    from datetime import timedelta

    from batch_fixtures import COMPILED as BATCH_TEST
    from batch_fixtures import OLIVIA, SAM, T0, TERMINAL, person
    from test_batch_rules import eventful_batch

    from mes.core.batch import Action, Batch, Procedure
    from mes.core.keys import SiteKey

    key = SiteKey.generate()
    made = eventful_batch(key)
    procedure = Procedure({**BATCH_TEST, **COMPILED})
    batch = Batch.replay(procedure, made.new_entries, key=key)
    cora = person("u-cora", "cora", "qc")
    later = T0 + timedelta(days=14)
    with pytest.raises(MesError, match="you need the qc role"):
        batch.record_result({**GROWTH}, OLIVIA, later, TERMINAL)
    outcome = batch.record_result({**GROWTH}, cora, later, TERMINAL)
    assert [e.body["kind"] for e in outcome.entries] == ["result_recorded", "deviation_raised"]
    assert outcome.entries[1].body["payload"]["category"] == "result_after_release"
    assert batch.after_release().notification_pending
    # the gate: a signature other than the notification is refused (asked of the table)
    refusal = batch.refusal(Action.ACKNOWLEDGE, SAM, later, deviation_id=f"{made.state.number}-D1")
    assert isinstance(refusal, PhysicianNotificationPending)
    assert batch.refusal(Action.NOTIFY_PHYSICIAN, SAM, later) is None
    replayed = Batch.replay(procedure, [*made.new_entries, *batch.new_entries], key=key)
    assert replayed.projection() == batch.projection()
    assert replayed.after_release() == batch.after_release()


GROWTH = {"result": "sterility_final", "value": "Growth", "reference": "MB-1"}


def test_a_product_may_be_infused_under_a_provisional_or_final_release_only() -> None:
    check_may_be_infused(after_release_state(COMPILED, [], [RELEASED]), "B-1")  # provisional
    check_may_be_infused(after_release_state({}, [], [RELEASED]), "B-1")  # final at once
    with pytest.raises(NotReleasedForInfusion, match="not released by QA yet"):
        check_may_be_infused(after_release_state(COMPILED, [], []), "B-1")
    rejected = body("batch_rejected", {"decision": "rejected"}, 1)
    with pytest.raises(NotReleasedForInfusion, match="was rejected by QA"):
        check_may_be_infused(after_release_state(COMPILED, [], [rejected]), "B-1")


def test_the_words_say_why_a_released_batch_is_still_awaited() -> None:
    state = after_release_state(COMPILED, [], [RELEASED])
    assert awaiting_words(state) == [
        "Provisional: awaiting Sterility (14-day culture), Vector copy number"
    ]
    growth = entered(state, 2, result="sterility_final", value="Growth")
    state = after_release_state(COMPILED, [growth], [RELEASED])
    assert awaiting_words(state) == [
        "Result out of specification after release: Sterility (14-day culture) — notify the "
        "treating physician"
    ]
    assert awaiting_words(after_release_state(COMPILED, [], [])) == []


def test_only_what_continues_the_record_follows_a_release() -> None:
    """A deviation after release is one the after-release work raises: on no phase.

    An identity or timer deviation raised on a phase is manufacturing's: after QA's release
    the hub's ingest (and the final label) refuse it like any other manufacturing entry.
    """
    late = {"deviation": "B-1-D2", "number": 2, "phase": None, "value": None}
    assert follows_release(body("bedside_mismatch", {"scans": []}, 9))
    assert follows_release(body("deviation_raised", {**late, "category": "identity"}, 10))
    assert follows_release(body("deviation_raised", {**late, "category": "timer"}, 10))
    on_a_phase = {**late, "phase": "check_bag", "category": "identity"}
    assert not follows_release(body("deviation_raised", on_a_phase, 10))
    valued = {**late, "value": "v1", "category": "result_after_release"}
    assert not follows_release(body("deviation_raised", valued, 10))
    assert not follows_release(body("deviation_raised", {**late, "category": "equipment"}, 10))
    assert not follows_release(body("value_recorded", {"phase": "check_bag"}, 10))


def test_a_result_out_of_specification_is_not_hidden_by_the_same_result_entered_at_the_other_site():
    """Spoke and hub each enter the result before the other's entry arrives (the chains sync
    later): only a correction naming the entry replaces an out-of-specification result."""
    state = after_release_state(COMPILED, [], [RELEASED])
    growth = entered(state, 7, result="sterility_final", value="Growth: S. epidermidis")
    no_growth = entered(state, 2, result="sterility_final", value="No growth")
    vcn = entered(state, 3, result="vcn", value="2")
    state = after_release_state(COMPILED, [growth], [RELEASED, no_growth, vcn])
    assert [e.result.key for e in state.notification_pending] == ["spoke:7"]
    with pytest.raises(PhysicianNotificationPending):
        check_may_sign(state, "B-1")
    told = notification_payload(
        state, "B-1", result="sterility_final", physician="Dr Ada Haem", how="phone",
        told_at="2026-01-21T09:00:00Z",
    )  # fmt: skip
    state = after_release_state(
        COMPILED, [growth, body("physician_notified", told, 8)], [RELEASED, no_growth, vcn]
    )
    with pytest.raises(CertificationRefused, match="out of specification"):
        certification_record(state, "b1", "B-1")


def test_correcting_a_result_out_of_specification_does_not_lift_the_gate_before_the_physician_is_told():
    state = after_release_state(COMPILED, [], [RELEASED])
    growth = entered(state, 7, result="sterility_final", value="Growth: S. epidermidis")
    vcn = entered(state, 3, result="vcn", value="2")
    state = after_release_state(COMPILED, [vcn, growth], [RELEASED])
    corrected = body(
        "result_recorded",
        result_payload(
            state, "B-1", result="sterility_final", value="No growth", reference="MB-2",
            corrects="spoke:7", reason="plate of another batch read",
        ),
        8,
    )  # fmt: skip
    state = after_release_state(COMPILED, [vcn, growth, corrected], [RELEASED])
    assert state.result("sterility_final").value == "No growth"  # type: ignore[union-attr]
    with pytest.raises(PhysicianNotificationPending):
        check_may_sign(state, "B-1")
    told = notification_payload(
        state, "B-1", result="sterility_final", physician="Dr Ada Haem", how="phone",
        told_at="2026-01-21T09:00:00Z",
    )  # fmt: skip
    state = after_release_state(
        COMPILED, [vcn, growth, corrected, body("physician_notified", told, 9)], [RELEASED]
    )
    check_may_sign(state, "B-1")
    assert certification_record(state, "b1", "B-1")["certification"] == "final"
