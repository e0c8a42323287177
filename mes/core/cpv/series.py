"""A series of recorded values as the statistics read it: finite floats, in batch order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def series_of(
    values: Sequence[float] | NDArray[np.floating], *, what: str = "values"
) -> NDArray[np.float64]:
    """The values as a one-dimensional float array; a missing (NaN) or infinite value is refused.

    A value that was not recorded is left out of the series by the caller, never passed as NaN:
    a gap silently turned into a number would move the centre line and hide or invent a signal.
    """
    try:
        series = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"The {what} must be numbers: {err}") from None
    if series.ndim != 1:
        raise ValueError(
            f"The {what} must be one series of numbers, not a table of {series.ndim} dimensions."
        )
    if not np.isfinite(series).all():
        where = int(np.flatnonzero(~np.isfinite(series))[0])
        raise ValueError(
            f"The {what} hold a missing or infinite value at position {where + 1}: "
            "leave unrecorded values out of the series."
        )
    return series
