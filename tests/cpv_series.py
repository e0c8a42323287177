"""Series of critical values at the hub for the CPV tests, written as ingest leaves them.

Statistics need dozens of batches; running each through a spoke and the sync would take minutes,
so these tests write what the hub holds once a batch is received — its ``batches`` row and its
``parameter_results`` read-model rows (the columns :func:`mes.store.read_models.refresh_batch`
writes) — straight into the real database. The tests on received batches
(``tests/web/test_comparability_pages.py``) cover the way there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from mes.core.clock import utc_text
from mes.services.cpv import keep_new_trends
from mes.store.models import Batch, BatchEntry
from mes.store.models.read_models import ParameterResult
from mes.store.uow import UnitOfWork

CODE = "CART-CD19"
PARAMETER, UNIT, LABEL = "harvest.viability", "%", "Viability at harvest"
KEY = f"{PARAMETER}|{UNIT}"
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
NOW_OF_INGEST = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)

# Three sites in control around 91 % (a fixed, plausible scatter), one batch a day in turn.
STEADY = [91.2, 90.4, 91.8, 90.9, 91.5, 90.2, 91.1, 92.0, 90.7, 91.3, 90.5, 91.6]


def value_entry(
    batch_id: str, site: str, parameter: str, value: float, at: str, entry_hash: str
) -> BatchEntry:
    """The ledger entry (seq 1) a batch's value stands on: what the report and baseline check."""
    phase_id, value_id = parameter.split(".")
    return BatchEntry(
        batch_id=batch_id, seq=1, prev="0" * 64, kind="value_recorded",
        payload={"phase": phase_id, "value": value_id, "recorded": value, "unit": UNIT},
        at=at, site=site, terminal=None, actor_id=None, actor_username="sam",
        actor_name="Sam", hash=entry_hash, signature="s",
    )  # fmt: skip


def add_batches(
    make_uow: Callable[..., UnitOfWork],
    values: Sequence[tuple[str, float]],
    *,
    start: datetime = START,
    first: int = 1,
    code: str = CODE,
    parameter: str = PARAMETER,
    label: str = LABEL,
    detect: bool = True,
) -> list[str]:
    """One received batch per (site, value), a day apart from ``start``; their numbers.

    Each is judged as ingest judges it once stored (:func:`mes.services.cpv.keep_new_trends`,
    the trends on a frozen baseline kept); ``detect=False``: the rows alone (as a rebuild).
    """
    numbers = []
    with make_uow() as uow:
        for i, (site, value) in enumerate(values):
            n = first + i
            number = f"{site}-2026-{n:04d}"
            batch_id = f"00000000-0000-7000-8000-{n:012d}"
            at = utc_text(start + timedelta(days=i))
            uow.add(
                Batch(
                    id=batch_id,
                    number=number,
                    site=site,
                    recipe_code=code,
                    recipe_version=1,
                    content_hash="c" * 64,
                    chain_of_identity={"patient_id": f"P-{n}"},
                    status="complete",
                    created_at=at,
                    created_by="sam",
                    started_at=at,
                    completed_at=at,
                    last_seq=1,
                    last_hash="h" * 64,
                )
            )
            uow.flush()
            entry_hash = f"{n:064x}"
            uow.add(value_entry(batch_id, site, parameter, value, at, entry_hash))
            uow.flush()
            row = {
                "batch_id": batch_id,
                "phase_id": parameter.split(".")[0],
                "value_id": parameter.split(".")[1],
                "site": site,
                "recipe_code": code,
                "recipe_version": 1,
                "number": number,
                "parameter": parameter,
                "label": label,
                "unit": UNIT,
                "criticality": "cqa",
                "value": value,
                "recorded_at": at,
                "corrected_at": None,
                "entry_seq": 1,
                "entry_hash": entry_hash,
                "demo": False,
            }
            uow.add(ParameterResult(**row))
            uow.flush()
            if detect:
                keep_new_trends(uow, NOW_OF_INGEST, [row])
            numbers.append(number)
        uow.commit()
    return numbers


def steady(
    sites: Sequence[str] = ("SPK1", "SPK2", "SPK3"), rounds: int = 4
) -> list[tuple[str, float]]:
    """``rounds`` batches of each site in turn, in control."""
    out = []
    for r in range(rounds):
        for s, site in enumerate(sites):
            out.append((site, STEADY[(r * len(sites) + s) % len(STEADY)]))
    return out
