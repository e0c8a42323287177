"""Comparability of one site with the rest of the network: an equivalence test against a margin.

A site's product is shown comparable when the difference of means (site − rest of the network)
is shown to lie within ±margin, the margin QA fixed in advance per parameter (ICH Q5E; the FDA's
tier-1 biosimilar advice used two one-sided tests, TOST, the same way). Schuirmann's TOST at
level α rejects both "difference ≤ −margin" and "difference ≥ +margin"; it is the same as the
(1 − 2α) confidence interval lying within ±margin (90 % for α = 0.05). Sites are not assumed to
share a variance: Welch's standard error and Welch–Satterthwaite degrees of freedom, with the
t distribution from scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import t as student_t

from mes.core.cpv.series import series_of


@dataclass(frozen=True)
class Equivalence:
    """The TOST of one site against the rest of the network (site − rest)."""

    site: str
    n: int  # the site's values
    mean: float
    sd: float
    difference: float  # site mean − rest-of-network mean
    ci_low: float  # the (1 − 2α) interval of the difference: 90 % for α = 0.05
    ci_high: float
    margin: float
    equivalent: bool  # the interval lies strictly within ±margin
    p_value: float  # the larger of the two one-sided p values: equivalent when < α
    network_n: int = 0  # the rest of the network's values
    network_mean: float = 0.0
    network_sd: float = 0.0
    df: float = 0.0  # Welch–Satterthwaite degrees of freedom
    alpha: float = 0.05

    @property
    def confidence(self) -> float:
        """The confidence of the interval: 1 − 2α."""
        return 1 - 2 * self.alpha


def equivalence(
    site_values: Sequence[float] | NDArray[np.floating],
    network_values: Sequence[float] | NDArray[np.floating],
    margin: float,
    alpha: float = 0.05,
    *,
    site: str = "",
) -> Equivalence | None:
    """TOST of the site's values against ``network_values``, the REST of the network.

    The caller leaves the site's own batches out of ``network_values`` (a site compared with a
    network that contains it is partly compared with itself). Returns None when the test cannot
    be computed: fewer than 2 values on either side, or no spread on either side (all values of
    both groups equal). ``margin`` must be positive and ``alpha`` within (0, 0.5); NaN values
    raise ValueError.
    """
    x = series_of(site_values, what="site's values")
    y = series_of(network_values, what="network's values")
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"The equivalence margin must be a positive number; got {margin}.")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie between 0 and 0.5 (e.g. 0.05); got {alpha}.")
    if x.size < 2 or y.size < 2:
        return None
    n1, n2 = int(x.size), int(y.size)
    m1, m2 = float(x.mean()), float(y.mean())
    s1, s2 = float(x.std(ddof=1)), float(y.std(ddof=1))
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    se = math.sqrt(v1 + v2)
    if se == 0.0:
        return None
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    difference = m1 - m2
    p_lower = float(student_t.sf((difference + margin) / se, df))  # H0: difference ≤ −margin
    p_upper = float(student_t.cdf((difference - margin) / se, df))  # H0: difference ≥ +margin
    half = float(student_t.ppf(1 - alpha, df)) * se
    ci_low, ci_high = difference - half, difference + half
    return Equivalence(
        site=site,
        n=n1,
        mean=m1,
        sd=s1,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        margin=float(margin),
        equivalent=bool(-margin < ci_low and ci_high < margin),
        p_value=max(p_lower, p_upper),
        network_n=n2,
        network_mean=m2,
        network_sd=s2,
        df=float(df),
        alpha=float(alpha),
    )
