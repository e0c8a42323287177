"""The statistics of continued process verification against reference values and independent code.

Control limits against a hand computation, each run rule on series built to fire it (and on one
just short of it), the vectorised rules against plain loops, Ppk against NETWORK.md's figures and
a computation with the standard library, the TOST against statsmodels, and the words QA reads.
"""

from __future__ import annotations

import math
import statistics
from statistics import NormalDist

import numpy as np
import pytest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttost_ind

from mes.core.cpv import (
    ALL_RULES,
    DEFAULT_RULES,
    ControlLimits,
    Direction,
    Equivalence,
    Rule,
    Signal,
    capability,
    equivalence,
    equivalence_words,
    imr_limits,
    moving_ranges,
    ppk_interval,
    signal_words,
    signals,
)

SEED = 20261605


def unit_limits(centre: float = 0.0, sigma: float = 1.0) -> ControlLimits:
    """Limits of a process in control at centre ± sigma (as a frozen baseline gives them)."""
    return ControlLimits(
        centre=centre,
        sigma=sigma,
        lcl=centre - 3 * sigma,
        ucl=centre + 3 * sigma,
        mr_centre=1.128 * sigma,
        mr_ucl=3.267 * 1.128 * sigma,
        n=30,
        provisional=False,
    )


def found(values, rule, limits=None) -> list[tuple[int, int, str]]:
    return [
        (s.first, s.last, str(s.direction))
        for s in signals(values, limits or unit_limits(), rules=[rule])
    ]


# --- control limits -------------------------------------------------------------------------


def test_control_limits_of_a_small_series_are_those_computed_by_hand():
    # mean 93/8 = 11.625; moving ranges 2,1,2,1,2,3,1 → mean 12/7 = 1.714285714;
    # sigma = 1.714285714 / 1.128 = 1.519756839; limits 11.625 ∓ 4.559270517; MR UCL 3.267 × 12/7
    limits = imr_limits([10, 12, 11, 13, 12, 14, 11, 10])
    assert limits.n == 8 and limits.provisional is False
    assert limits.centre == pytest.approx(11.625, abs=1e-12)
    assert limits.mr_centre == pytest.approx(1.714285714, abs=1e-9)
    assert limits.sigma == pytest.approx(1.519756839, abs=1e-9)
    assert limits.lcl == pytest.approx(7.065729483, abs=1e-9)
    assert limits.ucl == pytest.approx(16.184270517, abs=1e-9)
    assert limits.mr_ucl == pytest.approx(5.600571429, abs=1e-9)
    assert limits.zone(2) == pytest.approx((8.585486322, 14.664513678), abs=1e-9)
    assert moving_ranges([10, 12, 11]).tolist() == [2.0, 1.0]


def test_limits_computed_before_the_baseline_is_frozen_are_marked_provisional():
    assert imr_limits([1.0, 2.0, 3.0], provisional=True).provisional is True


def test_a_series_of_equal_values_has_its_limits_on_the_centre_line_and_no_signal():
    limits = imr_limits([5.0] * 20)
    assert (limits.lcl, limits.centre, limits.ucl, limits.sigma) == (5.0, 5.0, 5.0, 0.0)
    assert signals([5.0] * 20, limits, rules=ALL_RULES) == []


def test_control_limits_need_two_values():
    with pytest.raises(ValueError, match="at least 2 values"):
        imr_limits([1.0])


@pytest.mark.parametrize(
    "call",
    [
        lambda bad: imr_limits(bad),
        lambda bad: signals(bad, unit_limits()),
        lambda bad: capability(bad, 0.0, 1.0),
        lambda bad: equivalence(bad, [1.0, 2.0, 3.0], 1.0),
        lambda bad: equivalence([1.0, 2.0, 3.0], bad, 1.0),
    ],
)
@pytest.mark.parametrize("missing", [math.nan, math.inf])
def test_a_missing_value_is_refused_rather_than_counted(call, missing):
    with pytest.raises(ValueError, match="position 3"):
        call([1.0, 2.0, missing, 4.0])


def test_limits_that_are_not_numbers_are_refused_rather_than_finding_nothing():
    with pytest.raises(ValueError, match="control limits"):
        signals([1.0, 2.0], unit_limits(sigma=math.nan))
    with pytest.raises(ValueError, match="control limits"):
        signals([1.0, 2.0], unit_limits(sigma=-1.0))
    with pytest.raises(ValueError, match="N9"):
        signals([1.0, 2.0], unit_limits(), rules=["N9"])


def test_values_that_are_not_one_series_of_numbers_are_refused():
    with pytest.raises(ValueError, match="one series"):
        imr_limits([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="must be numbers"):
        imr_limits(["ten", "eleven"])


# --- each rule on constructed series ---------------------------------------------------------


def test_the_rules_are_numbered_as_nelson_numbers_them():
    assert [r.value for r in Rule] == [f"N{i}" for i in range(1, 9)]
    assert all(r.words for r in Rule)
    assert [r.value for r in DEFAULT_RULES] == ["N1", "N2", "N3", "N5"]
    assert Direction.ABOVE == "above"
    assert max(len(d.value) for d in Direction) <= 10  # the hub's cpv_trends.direction column


def test_one_point_beyond_3_sigma_signals_on_each_side():
    series = [0.0] * 10
    series[4], series[7] = 3.2, -3.01
    assert found(series, Rule.BEYOND_3_SIGMA) == [(4, 4, "above"), (7, 7, "below")]


def test_a_point_just_inside_3_sigma_does_not_signal():
    assert found([0.0, 2.99, -2.99, 3.0, 0.0], Rule.BEYOND_3_SIGMA) == []


def test_consecutive_points_beyond_3_sigma_on_one_side_are_one_signal():
    assert found([0.0, 3.5, 4.0, 3.1, 0.0, 3.5], Rule.BEYOND_3_SIGMA) == [
        (1, 3, "above"),
        (5, 5, "above"),
    ]


def test_nine_in_a_row_on_one_side_signals_from_the_first_to_the_ninth():
    series = [-0.5] * 2 + [0.1] * 9 + [-0.2] * 2
    assert found(series, Rule.NINE_ONE_SIDE) == [(2, 10, "above")]


def test_eight_in_a_row_on_one_side_do_not_signal():
    series = [-0.5] * 2 + [0.1] * 8 + [-0.2] * 2
    assert found(series, Rule.NINE_ONE_SIDE) == []


def test_fifteen_in_a_row_below_the_centre_are_one_signal_not_seven():
    series = [0.4] * 3 + [-0.3] * 15 + [0.4] * 3
    assert found(series, Rule.NINE_ONE_SIDE) == [(3, 17, "below")]
    (signal,) = signals(series, unit_limits(), rules=[Rule.NINE_ONE_SIDE])
    assert (signal.points, signal.span) == (15, 15)


def test_a_point_on_the_centre_line_ends_a_run_on_one_side():
    series = [0.1] * 5 + [0.0] + [0.1] * 5
    assert found(series, Rule.NINE_ONE_SIDE) == []


def test_six_rising_signal_and_five_do_not():
    rising = [0.0, -0.5, -0.4, -0.3, 0.0, 0.2, 0.5, 0.1]  # points 1..6 rise
    assert found(rising, Rule.SIX_TRENDING) == [(1, 6, "rising")]
    five = [0.0, -0.5, -0.4, -0.3, 0.0, 0.2, 0.1]
    assert found(five, Rule.SIX_TRENDING) == []
    falling = [-x for x in rising]
    assert found(falling, Rule.SIX_TRENDING) == [(1, 6, "falling")]


def test_an_equal_value_ends_a_trend():
    assert found([0.0, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5], Rule.SIX_TRENDING) == []


def test_fourteen_alternating_signal_and_thirteen_do_not():
    zigzag = [0.0] + [0.5 if i % 2 else -0.5 for i in range(14)] + [1.0]  # 0.5 → 1.0 rises again
    assert found(zigzag, Rule.FOURTEEN_ALTERNATING) == [(0, 14, "alternate")]
    thirteen = [0.5 if i % 2 else -0.5 for i in range(13)]
    assert found(thirteen, Rule.FOURTEEN_ALTERNATING) == []
    fourteen = [0.5 if i % 2 else -0.5 for i in range(14)]
    assert found(fourteen, Rule.FOURTEEN_ALTERNATING) == [(0, 13, "alternate")]


def test_two_of_three_beyond_2_sigma_on_one_side_signal():
    assert found([0.0, 2.5, 0.0, 2.1, 0.0, 0.0], Rule.TWO_OF_THREE_BEYOND_2) == [(1, 3, "above")]
    assert found([0.0, -2.5, -3.5, 0.0], Rule.TWO_OF_THREE_BEYOND_2) == [(1, 2, "below")]


def test_two_beyond_2_sigma_three_apart_or_on_opposite_sides_do_not_signal():
    assert found([2.5, 0.0, 0.0, 2.5], Rule.TWO_OF_THREE_BEYOND_2) == []
    assert found([2.5, -2.5, 0.0, 1.9], Rule.TWO_OF_THREE_BEYOND_2) == []


def test_overlapping_two_of_three_windows_are_one_signal_and_separate_ones_two():
    limits = unit_limits()
    (joined,) = signals([2.5, 0.0, 2.5, 0.0, 2.5], limits, rules=[Rule.TWO_OF_THREE_BEYOND_2])
    assert (joined.first, joined.last, joined.points) == (0, 4, 3)
    apart = [2.5, 2.5, 0.0, 0.0, 2.5, 2.5]
    assert found(apart, Rule.TWO_OF_THREE_BEYOND_2) == [(0, 1, "above"), (4, 5, "above")]


def test_four_of_five_beyond_1_sigma_signal_and_three_of_five_do_not():
    assert found([0.0, 1.5, 1.2, 0.0, 1.1, 1.9, 0.0], Rule.FOUR_OF_FIVE_BEYOND_1) == [
        (1, 5, "above")
    ]
    assert found([1.5, 1.5, 0.0, 0.0, 1.5, 1.5], Rule.FOUR_OF_FIVE_BEYOND_1) == []


def test_fifteen_within_1_sigma_signal_and_fourteen_do_not():
    hugging = [2.0] + [0.5, -0.5] * 7 + [0.1] + [2.0]
    assert found(hugging, Rule.FIFTEEN_WITHIN_1) == [(1, 15, "within")]
    assert found([2.0] + [0.5, -0.5] * 7 + [2.0], Rule.FIFTEEN_WITHIN_1) == []


def test_eight_beyond_1_sigma_on_both_sides_signal_but_not_on_one_side_or_seven():
    mixture = [0.0] + [1.5, -1.5] * 4 + [0.0]
    assert found(mixture, Rule.EIGHT_BEYOND_1) == [(1, 8, "outside")]
    assert found([0.0] + [1.5, -1.5] * 3 + [1.5, 0.0], Rule.EIGHT_BEYOND_1) == []
    assert found([0.0] + [1.5] * 8 + [0.0], Rule.EIGHT_BEYOND_1) == []


def test_signals_of_several_rules_come_in_order_of_their_first_point():
    series = [0.1] * 9 + [3.5] + [0.0] * 3
    result = signals(series, unit_limits())
    assert [(s.rule, s.first, s.last) for s in result] == [
        (Rule.NINE_ONE_SIDE, 0, 9),
        (Rule.BEYOND_3_SIGMA, 9, 9),
    ]
    assert signals(series, unit_limits(), rules=["N1"]) == [
        Signal(Rule.BEYOND_3_SIGMA, 9, 9, Direction.ABOVE, 1)
    ]


def test_a_series_shorter_than_a_window_is_judged_as_one_window():
    assert found([2.5, 2.6], Rule.TWO_OF_THREE_BEYOND_2) == [(0, 1, "above")]
    assert found([2.5], Rule.TWO_OF_THREE_BEYOND_2) == []
    assert signals([], unit_limits(), rules=ALL_RULES) == []


# --- the vectorised rules against plain loops ------------------------------------------------


def _loop_runs(flags, length):
    out, i = [], 0
    while i < len(flags):
        if flags[i]:
            j = i
            while j + 1 < len(flags) and flags[j + 1]:
                j += 1
            if j - i + 1 >= length:
                out.append((i, j))
            i = j + 1
        else:
            i += 1
    return out


def _loop_windows(flags, m, w):
    w = min(w, len(flags))
    hits = [s for s in range(len(flags) - w + 1) if w >= m and sum(flags[s : s + w]) >= m]
    groups: list[list[int]] = []
    for s in hits:
        if groups and s < groups[-1][-1] + w:
            groups[-1].append(s)
        else:
            groups.append([s])
    out = []
    for g in groups:
        inside = [i for i in range(g[0], g[-1] + w) if flags[i]]
        out.append((inside[0], inside[-1]))
    return out


def loop_rule(rule, x, c, s):
    n = len(x)
    above, below = [v > c for v in x], [v < c for v in x]
    if rule is Rule.BEYOND_3_SIGMA:
        return [(a, b, "above") for a, b in _loop_runs([v > c + 3 * s for v in x], 1)] + [
            (a, b, "below") for a, b in _loop_runs([v < c - 3 * s for v in x], 1)
        ]
    if rule is Rule.NINE_ONE_SIDE:
        return [(a, b, "above") for a, b in _loop_runs(above, 9)] + [
            (a, b, "below") for a, b in _loop_runs(below, 9)
        ]
    if rule is Rule.SIX_TRENDING:
        up = [x[i + 1] > x[i] for i in range(n - 1)]
        down = [x[i + 1] < x[i] for i in range(n - 1)]
        return [(a, b + 1, "rising") for a, b in _loop_runs(up, 5)] + [
            (a, b + 1, "falling") for a, b in _loop_runs(down, 5)
        ]
    if rule is Rule.FOURTEEN_ALTERNATING:
        turns = [(x[i + 1] - x[i]) * (x[i + 2] - x[i + 1]) < 0 for i in range(n - 2)]
        return [(a, b + 2, "alternate") for a, b in _loop_runs(turns, 12)]
    if rule in (Rule.TWO_OF_THREE_BEYOND_2, Rule.FOUR_OF_FIVE_BEYOND_1):
        m, w, k = (2, 3, 2) if rule is Rule.TWO_OF_THREE_BEYOND_2 else (4, 5, 1)
        return [(a, b, "above") for a, b in _loop_windows([v > c + k * s for v in x], m, w)] + [
            (a, b, "below") for a, b in _loop_windows([v < c - k * s for v in x], m, w)
        ]
    if rule is Rule.FIFTEEN_WITHIN_1:
        return [(a, b, "within") for a, b in _loop_runs([abs(v - c) < s for v in x], 15)]
    runs = _loop_runs([abs(v - c) > s for v in x], 8)
    return [
        (a, b, "outside")
        for a, b in runs
        if any(v > c for v in x[a : b + 1]) and any(v < c for v in x[a : b + 1])
    ]


@pytest.mark.parametrize("rule", list(Rule))
def test_each_rule_finds_what_a_plain_loop_finds_on_random_series_with_ties(rule):
    rng = np.random.default_rng(SEED)
    limits = unit_limits(centre=0.0, sigma=1.0)
    for trial in range(150):
        # small integers around the centre: ties, points on the centre line and on the limits
        scale = 1.0 if trial % 2 else 0.5
        x = (rng.integers(-4, 5, size=int(rng.integers(0, 120))) * scale).tolist()
        expected = sorted(loop_rule(rule, x, 0.0, 1.0))
        assert sorted(found(x, rule, limits)) == expected, (trial, x)


# --- the false-alarm rate on a process in control ---------------------------------------------


def test_on_normal_data_the_rules_raise_false_alarms_at_their_known_rates():
    x = np.random.default_rng(SEED).normal(0.0, 1.0, size=100_000)
    estimated = imr_limits(x)
    assert estimated.centre == pytest.approx(0.0, abs=0.02)
    assert estimated.sigma == pytest.approx(1.0, rel=0.02)
    found_ = signals(x, unit_limits(), rules=ALL_RULES)

    def count(rule):
        return [s for s in found_ if s.rule is rule]

    # a point beyond 3 sigma: 2·(1 − Φ(3)) = 0.0027 of the points, 1 in 370
    beyond = sum(s.span for s in count(Rule.BEYOND_3_SIGMA))
    assert 0.8 * 270 < beyond < 1.2 * 270
    # a maximal run of ≥ 9 on one side starts at a point with probability 2 · 0.5^10 (1 in 512)
    assert 0.75 * 195 < len(count(Rule.NINE_ONE_SIDE)) < 1.25 * 195
    # a maximal rising run of ≥ 6 points starts at a point with probability 1/6! − 1/7! = 1/840
    assert 0.75 * 238 < len(count(Rule.SIX_TRENDING)) < 1.25 * 238


# --- capability --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "low", "high"), [(15, 0.81, 1.85), (30, 0.97, 1.69), (60, 1.08, 1.58)]
)
def test_the_ppk_interval_matches_network_md_figures(n, low, high):
    ci_low, ci_high = ppk_interval(1.33, n)
    assert (round(ci_low, 2), round(ci_high, 2)) == (low, high)


def _standardised(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=n)
    return (x - x.mean()) / x.std(ddof=1)


@pytest.mark.parametrize(("n", "low", "high"), [(15, 0.81, 1.85), (30, 0.97, 1.69)])
def test_ppk_of_values_3_99_sd_from_the_nearer_limit_is_1_33_with_network_md_interval(n, low, high):
    values = 80.0 + 2.0 * _standardised(n, SEED)  # mean 80, sd 2
    result = capability(values, low=80.0 - 3.99 * 2.0, high=95.0)
    assert result is not None and result.n == n
    assert result.ppk == pytest.approx(1.33, abs=1e-12)
    assert (round(result.ci_low, 2), round(result.ci_high, 2)) == (low, high)
    assert (result.low, result.high, result.confidence) == (80.0 - 7.98, 95.0, 0.95)


def test_ppk_agrees_with_an_independent_computation():
    values = [71.2, 74.9, 69.8, 73.3, 75.1, 72.0, 70.4, 76.2, 73.8, 71.9, 74.4, 72.7]
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    ppk = min(80.0 - mean, mean - 65.0) / (3 * sd)
    z = NormalDist().inv_cdf(0.975)
    half = z * ppk * math.sqrt(1 / (9 * len(values) * ppk**2) + 1 / (2 * (len(values) - 1)))
    result = capability(values, 65.0, 80.0)
    assert result is not None
    assert (result.mean, result.sd) == pytest.approx((mean, sd), rel=1e-12)
    assert result.ppk == pytest.approx(ppk, rel=1e-12)
    assert (result.ci_low, result.ci_high) == pytest.approx((ppk - half, ppk + half), rel=1e-12)
    wider = capability(values, 65.0, 80.0, confidence=0.99)
    assert wider is not None and wider.ci_low < result.ci_low and wider.ci_high > result.ci_high


def test_ppk_with_one_specification_limit_is_one_sided():
    values = [70.0, 72.0, 74.0, 76.0, 78.0]
    mean, sd = 74.0, statistics.stdev(values)
    lower_only = capability(values, 60.0, None)
    upper_only = capability(values, None, 80.0)
    assert lower_only is not None and upper_only is not None
    assert lower_only.ppk == pytest.approx((mean - 60.0) / (3 * sd))
    assert upper_only.ppk == pytest.approx((80.0 - mean) / (3 * sd))


def test_a_mean_outside_the_specification_gives_a_negative_ppk_with_an_interval():
    result = capability([101.0, 102.0, 103.0, 104.0], 90.0, 100.0)
    assert result is not None and result.ppk < 0 and result.ci_low < result.ppk < result.ci_high


def test_ppk_cannot_be_estimated_from_one_value_without_a_specification_or_without_spread():
    assert capability([70.0], 60.0, 80.0) is None
    assert capability([], 60.0, 80.0) is None
    assert capability([70.0, 71.0, 72.0], None, None) is None
    assert capability([70.0, 70.0, 70.0], 60.0, 80.0) is None


def test_ppk_refuses_a_specification_upside_down_or_a_confidence_out_of_range():
    with pytest.raises(ValueError, match="below the upper"):
        capability([1.0, 2.0], 5.0, 3.0)
    with pytest.raises(ValueError, match="confidence"):
        capability([1.0, 2.0], 0.0, 3.0, confidence=1.5)
    with pytest.raises(ValueError, match="specification"):
        capability([1.0, 2.0], math.nan, 3.0)


# --- equivalence (TOST) --------------------------------------------------------------------


def _sites(shift: float, n_site: int, n_rest: int, sd_site: float = 1.5, sd_rest: float = 1.0):
    rng = np.random.default_rng(SEED)
    return rng.normal(80.0 + shift, sd_site, n_site), rng.normal(80.0, sd_rest, n_rest)


@pytest.mark.parametrize(
    ("shift", "n_site", "n_rest", "margin", "equivalent"),
    [(0.2, 40, 400, 2.0, True), (-3.1, 30, 500, 2.0, False), (1.5, 8, 60, 2.0, False)],
)
def test_tost_agrees_with_statsmodels_welch(shift, n_site, n_rest, margin, equivalent):
    site, rest = _sites(shift, n_site, n_rest)
    result = equivalence(site, rest, margin, site="SPK2")
    assert result is not None and result.site == "SPK2"
    p_value, lower, _upper = ttost_ind(site, rest, -margin, margin, usevar="unequal")
    assert result.p_value == pytest.approx(float(p_value), rel=1e-9)
    assert result.df == pytest.approx(float(lower[2]), rel=1e-9)
    assert result.equivalent is equivalent is (float(p_value) < 0.05)
    ci = CompareMeans(DescrStatsW(site), DescrStatsW(rest)).tconfint_diff(
        alpha=0.10, usevar="unequal"
    )
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(map(float, ci)), rel=1e-9)
    assert result.difference == pytest.approx(site.mean() - rest.mean(), rel=1e-12)
    assert (result.n, result.network_n) == (n_site, n_rest)
    assert result.sd == pytest.approx(statistics.stdev(site.tolist()), rel=1e-12)
    assert result.confidence == pytest.approx(0.90)


def test_tost_at_a_smaller_alpha_gives_a_wider_interval():
    site, rest = _sites(0.5, 20, 100)
    at_5, at_2_5 = equivalence(site, rest, 2.0), equivalence(site, rest, 2.0, alpha=0.025)
    assert at_5 is not None and at_2_5 is not None
    assert at_2_5.ci_low < at_5.ci_low and at_2_5.ci_high > at_5.ci_high
    assert at_2_5.confidence == pytest.approx(0.95)


def test_tost_is_not_computable_with_fewer_than_two_values_or_no_spread():
    assert equivalence([80.0], [79.0, 81.0, 80.0], 2.0) is None
    assert equivalence([80.0, 81.0], [79.0], 2.0) is None
    assert equivalence([80.0, 80.0], [79.0, 79.0, 79.0], 2.0) is None


def test_tost_refuses_a_margin_that_is_not_positive_and_an_alpha_out_of_range():
    with pytest.raises(ValueError, match="margin"):
        equivalence([1.0, 2.0], [1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="alpha"):
        equivalence([1.0, 2.0], [1.0, 2.0], 1.0, alpha=0.5)


# --- words -----------------------------------------------------------------------------------

NUMBERS = [f"SPK2-2026-{i:04d}" for i in range(1, 61)]


def _words(rule: Rule, first: int, last: int, direction: str, points: int | None = None) -> str:
    signal = Signal(rule, first, last, direction, points)
    return signal_words(signal, scope="SPK2", parameter="Viability at harvest", numbers=NUMBERS)


def test_a_signal_is_said_in_words_naming_its_first_and_last_batch():
    assert _words(Rule.NINE_ONE_SIDE, 30, 38, "below", 9) == (
        "SPK2: 9 batches in a row below the centre line of Viability at harvest "
        "(SPK2-2026-0031 to SPK2-2026-0039)"
    )
    assert _words(Rule.BEYOND_3_SIGMA, 4, 4, "above", 1) == (
        "SPK2: a batch above the upper control limit of Viability at harvest (SPK2-2026-0005)"
    )
    assert _words(Rule.BEYOND_3_SIGMA, 4, 5, "below", 2) == (
        "SPK2: 2 batches in a row below the lower control limit of Viability at harvest "
        "(SPK2-2026-0005 to SPK2-2026-0006)"
    )
    assert _words(Rule.SIX_TRENDING, 10, 16, "falling", 7) == (
        "SPK2: Viability at harvest falling for 7 batches in a row "
        "(SPK2-2026-0011 to SPK2-2026-0017)"
    )
    assert _words(Rule.TWO_OF_THREE_BEYOND_2, 0, 2, "above", 2) == (
        "SPK2: 2 of 3 batches more than 2σ above the centre line of Viability at harvest "
        "(SPK2-2026-0001 to SPK2-2026-0003)"
    )
    assert _words(Rule.FOUR_OF_FIVE_BEYOND_1, 0, 5, "below") == (
        "SPK2: 4 of 5 batches more than 1σ below the centre line of Viability at harvest "
        "(SPK2-2026-0001 to SPK2-2026-0006)"
    )


@pytest.mark.parametrize("rule", list(Rule))
def test_every_rule_has_words_with_the_scope_parameter_and_batches(rule):
    text = _words(rule, 0, 14, Direction.ABOVE, 15)
    assert text.startswith("SPK2: ") and "Viability at harvest" in text
    assert text.endswith("(SPK2-2026-0001 to SPK2-2026-0015)")


def test_signal_words_need_the_numbers_of_the_whole_series():
    with pytest.raises(ValueError, match="batch numbers"):
        signal_words(
            Signal(Rule.NINE_ONE_SIDE, 0, 8, "above", 9), scope="SPK2", parameter="x", numbers=["A"]
        )


def _eq(difference: float, ci_low: float, ci_high: float, equivalent: bool) -> Equivalence:
    return Equivalence(
        site="SPK2",
        n=30,
        mean=80.0 + difference,
        sd=1.5,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        margin=2.0,
        equivalent=equivalent,
        p_value=0.5,
    )


def test_equivalence_is_said_in_words_with_its_interval_and_margin():
    words = equivalence_words
    assert words(_eq(-3.1, -4.0, -2.2, False), parameter="Viability at harvest", unit="%") == (
        "SPK2 Viability at harvest is 3.1 % lower than the rest of the network (90 % CI −4.0 to −2.2), "
        "outside the ±2 % margin: not equivalent"
    )
    assert words(_eq(0.42, -0.31, 1.15, True), parameter="Viability at harvest", unit="%") == (
        "SPK2 Viability at harvest is 0.4 % higher than the rest of the network (90 % CI −0.3 to 1.1), "
        "within the ±2 % margin: equivalent"
    )
    assert words(_eq(1.2, 0.1, 2.3, False), parameter="CD3+ purity", unit=None) == (
        "SPK2 CD3+ purity is 1.2 higher than the rest of the network (90 % CI 0.1 to 2.3), "
        "reaching beyond the ±2 margin: equivalence not shown"
    )
    assert words(_eq(-0.01, -0.6, 0.6, True), parameter="Viability", unit="%") == (
        "SPK2 Viability is level with the rest of the network (90 % CI −0.6 to 0.6), "
        "within the ±2 % margin: equivalent"
    )


def test_an_interval_bound_beyond_the_margin_never_prints_as_the_margin():
    # 2.04 at one decimal is "2.0", which would read as on the ±2 margin, not beyond it
    text = equivalence_words(_eq(1.2, 0.46, 2.04, False), parameter="Viability", unit="%")
    assert "(90 % CI 0.46 to 2.04), reaching beyond the ±2 % margin" in text
    text = equivalence_words(_eq(-1.2, -2.004, -0.4, False), parameter="Viability", unit="%")
    assert "(90 % CI −2.004 to −0.400), reaching beyond" in text
    # a bound exactly on the margin keeps the plain decimals
    text = equivalence_words(_eq(0.5, -1.0, 2.0, False), parameter="Viability", unit="%")
    assert "(90 % CI −1.0 to 2.0)" in text


def test_window_rules_say_their_window():
    numbers = [f"B{i}" for i in range(10)]
    two = Signal(Rule.TWO_OF_THREE_BEYOND_2, first=3, last=4, direction="above", points=2)
    assert "2 of 3 batches more than 2σ above" in signal_words(
        two, scope="SPK1", parameter="Viability", numbers=numbers
    )
    four = Signal(Rule.FOUR_OF_FIVE_BEYOND_1, first=2, last=5, direction="below", points=4)
    assert "4 of 5 batches more than 1σ below" in signal_words(
        four, scope="SPK1", parameter="Viability", numbers=numbers
    )
    spread = Signal(Rule.FOUR_OF_FIVE_BEYOND_1, first=2, last=6, direction="below", points=4)
    assert "4 of 5 batches" in signal_words(
        spread, scope="SPK1", parameter="Viability", numbers=numbers
    )


def test_equivalence_words_of_a_computed_test_agree_with_its_verdict():
    site, rest = _sites(-3.1, 30, 500)
    result = equivalence(site, rest, 2.0, site="SPK2")
    assert result is not None
    text = equivalence_words(result, parameter="Viability at harvest", unit="%")
    assert (
        text.startswith("SPK2 Viability at harvest is ")
        and "lower than the rest of the network" in text
    )
    assert text.endswith("outside the ±2 % margin: not equivalent")


def test_one_number_format_for_the_page_and_the_report():
    from mes.core.cpv.words import figure, ppk_figure, specification_words

    assert figure(94.0833) == "94.08" and figure(1.2) == "1.2" and figure(-0.004123) == "−0.004123"
    assert figure(None) == "—" and figure(0.0) == "0" and figure(12345.6) == "12346"
    assert ppk_figure(1.3) == "1.30" and ppk_figure(-0.25) == "−0.25"
    assert specification_words(2, None, "°C") == "at least 2 °C"
    assert specification_words(2, 8, "°C") == "2 to 8 °C"
    assert specification_words(None, 8.0, None) == "at most 8"
    assert specification_words(None, None, "%") is None
