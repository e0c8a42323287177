"""The demo's history log appears whole (issue 16 review, 16): written beside and renamed into
place, so a reader waiting for it (the network board's browser test) never reads half of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mes.cli import demo


@pytest.mark.parametrize("fails", [False, True])
def test_the_history_log_is_renamed_into_place_whole(tmp_path, monkeypatch, fails):
    def seeded(*_args, **_kwargs) -> int:
        if fails:
            raise RuntimeError("hub database locked")
        return 1234

    seen: list[tuple[bool, str]] = []
    rename = os.replace

    def replace(source, target) -> None:
        # At the rename: the log is not there yet, its whole text is in the file renamed.
        seen.append((Path(target).exists(), Path(source).read_text(encoding="utf-8")))
        rename(source, target)

    monkeypatch.setattr(demo, "seed_history", seeded)
    monkeypatch.setattr(demo.os, "replace", replace)
    demo._seed_in_background(str(tmp_path), "hub", "spoke", {}, 3, "2026-12-05T12:00:00+00:00")
    log = tmp_path / "history.log"
    text = log.read_text(encoding="utf-8")
    assert seen == [(False, text)]
    assert text == (
        "History not stored: RuntimeError('hub database locked')\n"
        if fails
        else "History stored at the hub: 1234 entries.\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["history.log"]  # no part left behind
