"""Reading a server's cProfile: inclusive time of named parts and the top functions, per request."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def print_parts(
    stats: dict[Any, Any],
    count: int,
    parts: Iterable[tuple[str, str, str]],
    figures: dict[str, Any],
    *,
    width: int = 44,
    top: int = 15,
) -> None:
    """Print (label, file, function) parts in ms per request, then the top functions by own time.

    ``stats`` is ``pstats.Stats(...).stats`` of ``count`` requests; the parts go into
    ``figures["profile_ms_per_request"]``.
    """
    found_parts = {}
    for label, file_name, function in parts:
        found = [
            (ct, nc)
            for (file, _line, name), (_cc, nc, _tt, ct, _callers) in stats.items()
            if Path(file).name == file_name and name == function
        ]
        ms = sum(ct for ct, _ in found) / count * 1000
        calls = sum(nc for _, nc in found) / count
        found_parts[label.strip()] = round(ms, 2)
        print(f"{label:<{width}}{ms:>9.1f} ms{calls:>9.1f} calls")
    figures["profile_requests"] = count
    figures["profile_ms_per_request"] = found_parts
    print("top functions by own time:")
    own = sorted(
        (
            (tt, nc, f"{Path(f).name}:{line}({name})")
            for (f, line, name), (_c, nc, tt, _ct, _) in stats.items()
        ),
        reverse=True,
    )
    for tt, nc, where in own[:top]:
        print(f"{tt / count * 1000:9.2f} ms {nc / count:9.1f} calls  {where}")
