"""docs/batch-lifecycle.md shows the batch and phase machines as they are defined."""

from __future__ import annotations

from pathlib import Path

from mes.core.batch import mermaid

DOC = Path(__file__).resolve().parents[2] / "docs" / "batch-lifecycle.md"


def test_the_lifecycle_diagrams_in_the_docs_are_the_machines():
    text = DOC.read_text(encoding="utf-8")
    for lifecycle in ("batch", "phase"):
        assert f"```mermaid\n{mermaid(lifecycle)}\n```" in text
