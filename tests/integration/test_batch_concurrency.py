"""Two terminals acting on one batch at the same moment, with real concurrent transactions.

Each side runs in its own thread with its own unit of work (its own connection). On PostgreSQL
both transactions are open before either acts (a barrier inside them), so the batch row's
``FOR UPDATE`` lock is what serialises them; on SQLite ``BEGIN IMMEDIATE`` takes the write lock
at the first statement, so the barrier stands just before it and the second writer waits
(busy timeout 30 s). Either way exactly one succeeds, and the other is refused with who did it
and when — never a duplicate entry, a lost update or a database error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from batch_checks import assert_sound, entries
from batch_helpers import COUNTER, DIN_BARCODE, IDENTIFIERS, LOT, PATIENT, SCANNER, spoke
from sqlalchemy import text
from support import NOW, PASSWORD

from mes.core.batch import Action, Batch, PhaseStatus
from mes.core.errors import BatchRefused, PhaseNotInProgress
from mes.core.identity import mod37_2
from mes.services import batches
from mes.services.esign import Credentials
from mes.store.uow import UnitOfWork

Act = Callable[[UnitOfWork], Any]


def at_once(site, actions: dict[str, Act]) -> dict[str, Any]:
    """Run each action in its own thread and transaction, all at the same moment.

    Returns each action's result, or the exception it raised (refusals and anything else).
    """
    barrier = threading.Barrier(len(actions), timeout=60)
    results: dict[str, Any] = {}

    def run(name: str, act: Act) -> None:
        try:
            with site.uow() as uow:
                if uow.session.get_bind().dialect.name == "postgresql":
                    uow.session.execute(text("SELECT 1"))  # the transaction is open …
                    barrier.wait()  # … on both sides before either acts
                else:
                    barrier.wait()  # SQLite: BEGIN IMMEDIATE would take the write lock here
                results[name] = act(uow)
        except BaseException as error:
            results[name] = error

    threads = [threading.Thread(target=run, args=item) for item in actions.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a concurrent action never finished"
    return results


def winner_and_loser(results: dict[str, Any]) -> tuple[str, Any, str, Any]:
    """Exactly one action succeeded and one was refused: (winner, its result, loser, refusal)."""
    won = [name for name, r in results.items() if isinstance(r, Batch)]
    lost = [name for name, r in results.items() if not isinstance(r, Batch)]
    assert len(won) == 1 and len(lost) == 1, results
    return won[0], results[won[0]], lost[0], results[lost[0]]


def two_operators(make_uow):
    """A spoke with a second operator (Otto), a second supervisor (Sue), a second terminal."""
    site = spoke(make_uow)
    site.add_person("otto", ["operator"], train_on=("BATCH-TEST", 1))
    site.add_person("sue", ["supervisor"], train_on=("BATCH-TEST", 1))
    terminals = {"olivia": site.terminal_id, "sam": site.terminal_id}
    terminals["otto"] = terminals["sue"] = site.add_terminal("Suite A 2")
    return site, terminals


def ctx(site, terminals, who, at=NOW):
    name = "Suite A 1" if terminals[who] == site.terminal_id else "Suite A 2"
    return site.ctx(who, at, terminal_id=terminals[who], terminal=name)


def test_two_terminals_starting_the_same_phase_at_once_one_starts_it_the_other_is_told_by_whom(
    make_uow,
):
    site, terminals = two_operators(make_uow)
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    results = at_once(
        site,
        {
            who: lambda uow, who=who: batches.start_phase(
                uow, ctx(site, terminals, who), batch_id, "count_cells"
            )
            for who in ("olivia", "otto")
        },
    )
    winner, batch, _loser, refusal = winner_and_loser(results)
    phase = batch.state.phases["count_cells"]
    assert isinstance(refusal, PhaseNotInProgress), refusal
    assert str(refusal) == (
        f"'Count cells' is already in progress by {winner.title()} Tester (at "
        f"{phase.started_at}). Continue it, or go to the phase that is ready."
    )
    starts = [e for e in entries(site, batch_id) if e.kind == "phase_started"]
    assert [e.payload["phase"] for e in starts] == ["check_bag", "count_cells"]
    assert_sound(site, batch_id)


def test_two_terminals_signing_the_same_phase_at_once_one_signs_the_other_is_told_who_and_when(
    make_uow,
):
    site, terminals = two_operators(make_uow)
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    site.start_phase(batch_id, "count_cells")
    site.record(
        batch_id, "count_cells", values={"volume": "200", "viability": "92.0", "viable_conc": "5.00"},
        equipment={0: COUNTER}, lots={"MAT-SYRINGE": LOT},
    )  # fmt: skip

    def perform(who: str) -> Act:
        return lambda uow: batches.sign_phase(
            uow, ctx(site, terminals, who, NOW + timedelta(minutes=1)), batch_id, "count_cells",
            Action.PERFORM, Credentials(PASSWORD, who), first_signing_in_session=True,
        )  # fmt: skip

    winner, batch, _loser, refusal = winner_and_loser(
        at_once(site, {"olivia": perform("olivia"), "otto": perform("otto")})
    )
    phase = batch.state.phases["count_cells"]
    assert phase.status is PhaseStatus.PERFORMED
    assert phase.performed_by.username == winner
    assert isinstance(refusal, PhaseNotInProgress), refusal
    assert str(refusal).startswith(
        f"'Count cells' was already performed by {winner.title()} Tester ({winner}) at "
        f"{phase.performed_at}."
    )
    signatures = [e for e in entries(site, batch_id) if e.kind == "signature"]
    assert [e.payload["record"]["action"] for e in signatures] == [
        "start",
        "perform",
        "verify",
        "perform",
    ]
    assert_sound(site, batch_id)


def test_two_supervisors_verifying_the_same_phase_at_once_one_verifies_the_other_is_told_who(
    make_uow,
):
    site, terminals = two_operators(make_uow)
    batch_id = site.start().state.id
    site.start_phase(batch_id, "check_bag")
    site.record(
        batch_id, "check_bag", values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": DIN_BARCODE, "bag_patient": PATIENT},
    )  # fmt: skip
    site.sign(batch_id, "check_bag")

    def verify(who: str) -> Act:
        return lambda uow: batches.sign_phase(
            uow, ctx(site, terminals, who), batch_id, "check_bag", Action.VERIFY,
            Credentials(PASSWORD, who), first_signing_in_session=True,
        )  # fmt: skip

    winner, batch, _loser, refusal = winner_and_loser(
        at_once(site, {"sam": verify("sam"), "sue": verify("sue")})
    )
    phase = batch.state.phases["check_bag"]
    assert phase.verified_by.username == winner
    assert isinstance(refusal, PhaseNotInProgress), refusal
    assert str(refusal) == (
        f"'Check the bag' was already verified by {winner.title()} Tester ({winner}) at "
        f"{phase.verified_at}."
    )
    verifications = [
        e
        for e in entries(site, batch_id)
        if e.kind == "signature" and e.payload["record"]["action"] == "verify"
    ]
    assert len(verifications) == 1
    assert_sound(site, batch_id)


def other_identifiers(serial: int) -> dict[str, str]:
    din = f"A99992600{serial:04d}"
    return {"din": f"{din} 00 {mod37_2(din)}", "patient_id": f"PAT-{serial:04d}"}


def start(site, terminals, who: str, identifiers: dict[str, str]) -> Act:
    return lambda uow: batches.start_batch(
        uow, ctx(site, terminals, who), "BATCH-TEST", identifiers, Credentials(PASSWORD, who),
        first_signing_in_session=True,
    )  # fmt: skip


def test_two_batches_started_at_once_never_get_the_same_number(make_uow):
    site, terminals = two_operators(make_uow)
    for first in (True, False):  # the year's first batch (no counter yet), then later ones
        results = at_once(
            site,
            {
                "olivia": start(site, terminals, "olivia", other_identifiers(2 * first + 1)),
                "otto": start(site, terminals, "otto", other_identifiers(2 * first + 2)),
            },
        )
        assert all(isinstance(r, Batch) for r in results.values()), results
    with site.uow() as uow:
        numbers = sorted(b.number for b in batches.board(uow, site.ctx("sam"), include_closed=True))
    assert numbers == [f"SPK1-2026-000{n}" for n in (1, 2, 3, 4)]


def test_the_same_donation_started_twice_at_once_starts_only_one_batch(make_uow):
    site, terminals = two_operators(make_uow)
    results = at_once(
        site,
        {
            "olivia": start(site, terminals, "olivia", IDENTIFIERS),
            "otto": start(site, terminals, "otto", {**IDENTIFIERS, "patient_id": "PAT-0002"}),
        },
    )
    _winner, batch, _loser, refusal = winner_and_loser(results)
    assert isinstance(refusal, BatchRefused), refusal
    assert str(refusal).startswith(
        f"The donation A999926123456 is already the starting material of batch "
        f"{batch.state.number}."
    )
    with site.uow() as uow:
        board = batches.board(uow, site.ctx("sam"), include_closed=True)
    assert [row.number for row in board] == ["SPK1-2026-0001"]
