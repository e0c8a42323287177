"""The rules of CPV governance: dispositions, margins and baselines are refused in words."""

from __future__ import annotations

import math
from datetime import date

import pytest

from mes.core.errors import InvalidInput
from mes.core.trends import (
    Disposition,
    check_baseline_request,
    check_disposition,
    check_margin,
    check_reason,
    check_spread,
    parse_disposition,
)


def test_a_deviation_or_a_capa_needs_its_reference_and_every_disposition_a_comment():
    assert check_disposition(Disposition.NO_ACTION, "ignored", " seen ") == (None, "seen")
    assert check_disposition(Disposition.CAPA, " CAPA-7 ", "c") == ("CAPA-7", "c")
    with pytest.raises(InvalidInput, match="needs the CAPA reference"):
        check_disposition(Disposition.CAPA, "  ", "c")
    with pytest.raises(InvalidInput, match="needs the number of the deviation the site opened"):
        check_disposition(Disposition.DEVIATION, None, "c")
    with pytest.raises(InvalidInput, match="comment"):
        check_disposition(Disposition.NO_ACTION, None, "   ")


def test_only_the_listed_dispositions_are_accepted():
    assert parse_disposition(" capa ") is Disposition.CAPA
    with pytest.raises(InvalidInput, match="no_action"):
        parse_disposition("close it")


@pytest.mark.parametrize("margin", [0, -2.0, math.nan, math.inf, None])
def test_a_margin_is_a_finite_number_above_zero(margin):
    with pytest.raises(InvalidInput, match="above zero"):
        check_margin(margin)


def test_a_baseline_needs_a_period_in_order_and_enough_batches():
    assert check_baseline_request(date(2026, 1, 1), date(2026, 6, 30), 20).batches == 20
    with pytest.raises(InvalidInput, match="ends before it starts"):
        check_baseline_request(date(2026, 6, 30), date(2026, 1, 1), 20)
    for batches in (None, 7, 501):
        with pytest.raises(InvalidInput, match="from 8 to 500"):
            check_baseline_request(date(2026, 1, 1), date(2026, 6, 30), batches)


def test_texts_are_kept_as_typed_or_refused_never_cut_short():
    with pytest.raises(InvalidInput, match="4,000"):
        check_disposition(Disposition.NO_ACTION, None, "x" * 4001)
    with pytest.raises(InvalidInput, match="reference"):
        check_disposition(Disposition.CAPA, "CAPA\n7", "c")
    assert check_reason("  PPQ\r\nbatches ", required=False) == "PPQ\nbatches"
    assert check_reason(" ", required=False) is None
    with pytest.raises(InvalidInput, match="2,000"):
        check_reason("x" * 2001, required=False)
    with pytest.raises(InvalidInput, match="why this margin"):
        check_reason("", required=True)


def test_a_baseline_with_no_spread_is_refused_in_words():
    """Review blocker: nine equal values gave σ 0, froze, and silenced the parameter."""
    with pytest.raises(InvalidInput, match=r"the baseline all read 5 ng for IL-6: .*need spread"):
        check_spread([5.0] * 9, "IL-6", "ng")
    check_spread([5.0] * 8 + [5.1], "IL-6", "ng")


def test_replacing_a_baseline_needs_a_reason():
    assert check_reason("", required=False, of="baseline") is None
    with pytest.raises(InvalidInput, match="say why this one replaces it"):
        check_reason("  ", required=True, of="baseline")


def test_a_deviation_s_reference_is_one_short_line():
    """Review: the reference is the number of the deviation the site opened, not free text."""
    assert Disposition.DEVIATION.words == "Deviation at the site — its number"
    ok = check_disposition(Disposition.DEVIATION, " DEV-SPK2-2026-014 ", "c")
    assert ok == ("DEV-SPK2-2026-014", "c")
    for bad, words in (("DEV-1\nDEV-2", "one line|line break"), ("D" * 61, "at most 60")):
        with pytest.raises(InvalidInput, match=words):
            check_disposition(Disposition.DEVIATION, bad, "c")


def test_numbers_sharing_a_label_are_named_with_their_phase():
    """Review: CART-CD19-FRESH has five 'Viability (%)': words, titles and the report clashed."""
    from mes.services.cpv import distinct_label

    found = {
        ("harvest.viability", "%"): ("Viability",),
        ("release.viability", "%"): ("Viability",),
        ("release.cd3", "%"): ("CD3+",),
    }
    phases = {
        ("harvest.viability", "%"): "Harvest",
        ("release.viability", "%"): "Release testing",
        ("release.cd3", "%"): "Release testing",
    }
    named = {series: distinct_label(series, found, phases) for series in found}
    assert named == {
        ("harvest.viability", "%"): "Viability at harvest",
        ("release.viability", "%"): "Viability at release testing",
        ("release.cd3", "%"): "CD3+",
    }
