"""The look-back's rules (mes.core.lookback): what a subject is, what a disposition needs."""

from __future__ import annotations

import pytest

from mes.core.errors import InvalidInput
from mes.core.lookback import (
    Disposition,
    DispositionAlreadySigned,
    LookBackDisposition,
    NoActionWithoutReason,
    UsageKind,
    check_not_disposed,
    disposition_reason,
    disposition_text,
    recipe_version_name,
    subject_of,
)


def test_a_subject_is_a_known_kind_and_one_line_identifier():
    assert subject_of("lot", "  LOT-1 ") == (UsageKind.LOT, "LOT-1")
    assert recipe_version_name("CART-CD19", 2) == "CART-CD19 v2"
    with pytest.raises(InvalidInput, match="not something a look-back starts from"):
        subject_of("room", "R-1")
    with pytest.raises(InvalidInput, match="identifier is missing"):
        subject_of("instrument", " ")
    with pytest.raises(InvalidInput):
        subject_of("operator", "ol\nivia")
    with pytest.raises(InvalidInput, match="at most 64"):
        subject_of("lot", "L" * 65)


def test_no_action_needs_a_reason_and_notify_does_not():
    assert disposition_reason("notify", None) == (Disposition.NOTIFY, None)
    assert disposition_reason("no_action", " Infused before the lot ") == (
        Disposition.NO_ACTION,
        "Infused before the lot",
    )
    with pytest.raises(NoActionWithoutReason, match="'No action' needs a reason"):
        disposition_reason("no_action", "  ")
    with pytest.raises(InvalidInput, match="not a look-back disposition"):
        disposition_reason("ignore", "x")


def test_a_second_disposition_in_the_same_look_back_is_refused_naming_the_first():
    first = LookBackDisposition(
        "lb-1", "lot", "L-1", "recall", Disposition.NOTIFY, None, "Quinn Hub",
        "2026-11-23T09:00:00.000000Z", {},
    )  # fmt: skip
    check_not_disposed("SPK1-P-00001", "lb-2", {"lb-1": first})  # another look-back: allowed
    with pytest.raises(
        DispositionAlreadySigned, match="Notify the treating clinic, signed by Quinn"
    ):
        check_not_disposed("SPK1-P-00001", "lb-1", {"lb-1": first})


def test_a_disposition_reads_in_words():
    said = disposition_text(
        {"lookback": "0123456789", "subject_kind": "instrument", "subject": "CC-01",
         "disposition": "no_action", "reason": "Calibrated after the batch"}
    )  # fmt: skip
    assert said == (
        "look-back 01234567 on instrument CC-01: no action; reason: Calibrated after the batch"
    )
