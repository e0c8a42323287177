"""STAND-IN (helper "record"): replace this whole file with the results helper's module on merge.

The contract (issue 17): ``Certification`` and ``after_release_state(procedure, ledger_bodies,
review_bodies) -> AfterRelease``. This stand-in holds only what the printed record reads
(``certification``, ``pending``, ``result_words``, ``notification_words``, named as in the
results helper's module) so the record can be built and tested before the real module exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.worded import Worded


class Certification(Worded):
    """How far a batch is certified (STAND-IN)."""

    NOT_RELEASED = "not_released", "Not released"
    PROVISIONAL = "provisional", "Provisional"
    FINAL = "final", "Final"
    REJECTED = "rejected", "Rejected"


@dataclass(frozen=True)
class AfterRelease:
    """What the record says after release (STAND-IN: the fields the printed record reads)."""

    pending: tuple[Mapping[str, Any], ...]  # declared results not entered yet
    certification: Certification


def after_release_state(
    procedure: Any,
    ledger_bodies: Iterable[Mapping[str, Any]],
    review_bodies: Iterable[Mapping[str, Any]],
) -> AfterRelease:
    """STAND-IN: declared pending results not yet recorded, and the certification level."""
    bodies = [*ledger_bodies, *review_bodies]
    kinds = [str(b["kind"]) for b in bodies]
    recorded = {b["payload"].get("result") for b in bodies if b["kind"] == "result_recorded"}
    declared = procedure.compiled.get("pending_results") or ()
    pending = tuple(r for r in declared if r["id"] not in recorded)
    if "batch_rejected" in kinds:
        level = Certification.REJECTED
    elif "batch_certified_final" in kinds:
        level = Certification.FINAL
    elif "batch_released" not in kinds:
        level = Certification.NOT_RELEASED
    else:
        level = Certification.PROVISIONAL if declared else Certification.FINAL
    return AfterRelease(pending, level)


def result_words(payload: Mapping[str, Any]) -> str:
    """STAND-IN: a ``result_recorded`` entry in words."""
    unit = f" {payload['unit']}" if payload.get("unit") else ""
    verdict = "within specification" if payload["within_specification"] else "OUT OF SPECIFICATION"
    return (
        f"result {payload['result']} = {payload['value']}{unit} ({verdict}; specification "
        f"{payload['specification']}; report {payload['reference']})"
    )


def notification_words(payload: Mapping[str, Any]) -> str:
    """STAND-IN: a ``physician_notified`` entry in words."""
    return (
        f"treating physician {payload['physician']} told {payload['how']} at "
        f"{payload['told_at']} of result {payload['result']}"
    )
