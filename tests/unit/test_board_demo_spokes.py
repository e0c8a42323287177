"""The board says which flagged spokes are the demo's own (made up at the hub, never calling)."""

from __future__ import annotations

from types import SimpleNamespace

from mes.web.network.pages import demo_only_spokes


def spoke(code: str, *, overdue: bool = True, seen: str | None = None, running: int = 2) -> dict:
    return {"code": code, "overdue": overdue, "last_seen_at": seen, "in_progress": running}


def test_a_spoke_that_never_called_with_only_demo_batches_is_named_as_the_demos():
    view = SimpleNamespace(
        batches=[
            SimpleNamespace(site="SPK3", demo=True),
            SimpleNamespace(site="SPK3", demo=False),  # a real batch: a real spoke gone quiet
            SimpleNamespace(site="SPK4", demo=True),
        ]
    )
    spokes = [
        spoke("SPK1", overdue=False, seen="2026-12-05T10:00:00+00:00"),
        spoke("SPK2"),  # its batches filtered out of the board: still the demo's
        spoke("SPK3"),
        spoke("SPK4", seen="2026-12-01T10:00:00+00:00"),  # it did call once
        spoke("SPK5", running=0),  # no batch: a spoke enrolled that has not called yet
    ]
    assert demo_only_spokes(view, spokes) == ["SPK2"]  # type: ignore[arg-type]
