"""Control limits of an individuals / moving-range (I-MR) chart, the CPV chart of one batch per point.

Each batch gives one value of a critical parameter, so the within-subgroup spread is estimated
from the moving range of consecutive batches (Montgomery, *Introduction to Statistical Quality
Control*, §6.4; NIST/SEMATECH e-Handbook 6.3.2.2): σ̂ = mean moving range / d2 with d2 = 1.128
for a span of two, the individuals limits at centre ± 3σ̂, and the moving-range chart's upper limit
at D4 × mean moving range with D4 = 3.267 (its lower limit is 0). Limits computed before QA froze
a baseline are marked provisional (preliminary trend limits, BPOG).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mes.core.cpv.series import series_of

D2 = 1.128  # expected range of two standard normal values: σ̂ = mean moving range / d2
D4 = 3.267  # upper limit of the moving-range chart, as a multiple of the mean moving range


@dataclass(frozen=True)
class ControlLimits:
    """The centre line and 3-sigma limits of an individuals chart and its moving-range chart."""

    centre: float
    sigma: float
    lcl: float
    ucl: float
    mr_centre: float
    mr_ucl: float
    n: int  # values the limits were computed from
    provisional: bool  # True until QA has frozen the baseline the limits come from

    def zone(self, k: float) -> tuple[float, float]:
        """The band centre ± k sigma (k = 3 gives the control limits)."""
        return self.centre - k * self.sigma, self.centre + k * self.sigma


def moving_ranges(values: Sequence[float] | NDArray[np.floating]) -> NDArray[np.float64]:
    """|x[i] − x[i−1]| for each consecutive pair of the series (one fewer than the values)."""
    return np.abs(np.diff(series_of(values)))


def imr_limits(
    values: Sequence[float] | NDArray[np.floating], *, provisional: bool = False
) -> ControlLimits:
    """The I-MR limits of a series of batch values, in batch order.

    Centre = mean of the values; σ̂ = mean moving range / 1.128; LCL/UCL = centre ∓ 3σ̂; the
    moving-range chart's centre = mean moving range and its UCL = 3.267 × mean moving range.
    At least two values are needed (one moving range); fewer raise ValueError. A series whose
    values are all equal has σ̂ = 0 and limits on the centre line.
    """
    series = series_of(values)
    if series.size < 2:
        raise ValueError(
            f"Control limits need at least 2 values (one moving range); the series has {series.size}."
        )
    mr_centre = float(np.abs(np.diff(series)).mean())
    centre = float(series.mean())
    sigma = mr_centre / D2
    return ControlLimits(
        centre=centre,
        sigma=sigma,
        lcl=centre - 3 * sigma,
        ucl=centre + 3 * sigma,
        mr_centre=mr_centre,
        mr_ucl=D4 * mr_centre,
        n=int(series.size),
        provisional=provisional,
    )
