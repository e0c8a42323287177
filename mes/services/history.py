"""Historical batches at the hub, made from one template batch (demo data and benchmarks).

The template is a batch really run through the services at a spoke (:func:`drive_template`:
the simulated crew of :mod:`mes.services.driver`, each person signing with their own
credentials). :func:`plan_history` spreads N copies per spoke over the past months, in order,
with their batch numbers and drawn values; :func:`store_history` makes each copy
(:meth:`mes.core.history.Template.copy`: re-chained and sealed with its own spoke's key) and
stores it through the hub's ingest (``_store_chunk``: the same continuity, number and deployment
checks, replay, projection and read-model rows as a chunk received from the spoke, logged in
the sync log "via history"), many batches per transaction.

Demo data is marked: the chain of identity's patient ID starts with
:data:`mes.core.history.DEMO_PATIENT_PREFIX`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select

from mes.core.clock import parse_utc_text, utc_text
from mes.core.history import (
    Knob,
    OutsideActionLimits,
    Planned,
    Template,
    draw_batch,
    draw_milestones,
)
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry
from mes.core.summary import DEMO_PATIENT_PREFIX
from mes.core.sync import Chunk
from mes.services import driver, review
from mes.services.context import Context
from mes.services.esign import Credentials
from mes.services.ids import new_id
from mes.services.ingest import _store_chunk
from mes.store import batches as store
from mes.store import recipes as recipe_store
from mes.store.models import Batch as BatchRow
from mes.store.models import InstalledRecipe, Terminal, User
from mes.store.uow import UnitOfWork

PER_TRANSACTION = 25  # copies stored per transaction
DRAWS = 20  # a copy whose calculations fall outside their action limits is drawn again


# --- the template ----------------------------------------------------------------------------


@dataclass
class _Crew:
    """The driver's site: a runtime's units of work, people by user ID at one terminal."""

    make_uow: Callable[[], UnitOfWork]
    ids: Mapping[str, str]
    terminal_id: str | None
    terminal: str

    def uow(self) -> UnitOfWork:
        return self.make_uow()

    def ctx(self, username: str, at: datetime) -> Context:
        return Context(
            at=at, user_id=self.ids[username], terminal=self.terminal, terminal_id=self.terminal_id
        )


def drive_template(
    make_uow: Callable[[], UnitOfWork],
    recipe_code: str,
    *,
    at: datetime,
    passwords: Mapping[str, str],
    identifiers: Mapping[str, str] | None = None,
    terminal: str = "Suite A 1",
) -> str:
    """Run one whole batch of the installed recipe at this spoke, as its people would; its ID.

    Everyone named by the driver (operators olivia and oscar, supervisor sam, QA quinn) signs
    with their own password from ``passwords``; the site's lots and instruments are scanned.
    """
    with make_uow() as uow:
        ids = {u.username: u.id for u in uow.session.execute(select(User)).scalars()}
        terminal_id = uow.session.execute(select(Terminal.id).order_by(Terminal.id)).scalar()
        installed = uow.session.execute(
            select(InstalledRecipe)
            .where(InstalledRecipe.recipe_code == recipe_code)
            .order_by(InstalledRecipe.version.desc())
        ).scalar()
        if installed is None:
            raise ValueError(f"{recipe_code} is not installed at this site")
        compiled = json.loads(installed.compiled)
        lots, instruments = driver.site_stock(uow, compiled, at.date() + timedelta(days=30))
    run = driver.BatchRun(
        _Crew(make_uow, ids, terminal_id, terminal),
        compiled,
        at,
        lots=lots,
        instruments=instruments,
        passwords=passwords,
    )
    run.start(**(identifiers or {}))
    run.run_until()
    run.finish()
    return run.batch_id


def load_template(uow: UnitOfWork, batch_id: str) -> Template:
    """A completed batch's ledger and compiled recipe, as this site holds them."""
    row = uow.session.get(BatchRow, batch_id)
    if row is None:
        raise ValueError(f"there is no batch {batch_id}")
    version = recipe_store.version_with_content(uow.session, row.content_hash)
    if version is not None:
        compiled = json.loads(version.compiled)
    else:
        installed = uow.session.get(InstalledRecipe, row.installed_recipe_id)
        compiled = json.loads(installed.compiled)
    return Template(store.ledger(uow.session, batch_id), compiled)


# --- the plan --------------------------------------------------------------------------------


def plan_history(
    template: Template,
    sites: Sequence[str],
    per_site: int,
    *,
    end: datetime,
    days: float,
    seed: int = 16,
    knobs: Sequence[Knob] = (),
    first_numbers: Mapping[tuple[str, int], int] | None = None,
    in_progress: Mapping[str, int] | None = None,
) -> list[Planned]:
    """``per_site`` batches for each site over the ``days`` before ``end``.

    Spread evenly (with jitter) and in order, each finished before ``end``; numbered per site
    and year from ``first_numbers[(site, year)]`` (default 1); values drawn per site
    (:func:`mes.core.history.draw_batch`). ``in_progress``: how many of a site's batches are
    still running at ``end`` (its last ones, started within the template's duration before
    ``end``, their records up to ``end``).
    """
    rng = random.Random(seed)  # noqa: S311 - demo data, repeatable
    duration = template.end - template.start
    latest = end - duration
    span = timedelta(days=days)
    planned = []
    for site in sites:
        counters = dict(first_numbers or {})
        running = min(per_site, (in_progress or {}).get(site, 0))
        done = per_site - running
        slot = span / max(1, done)
        for index in range(per_site):
            until = None
            if index < done:
                start = latest - span + slot * (index + rng.uniform(0.05, 0.95))
            else:  # still running: started within the process's duration, in order
                part = (index - done + rng.uniform(0.1, 0.9)) / running
                start = end - duration * (1 - part)
                until = end
            year = start.year
            number = counters.get((site, year), 1)
            counters[(site, year)] = number + 1
            planned.append(
                Planned(
                    site=site,
                    index=index,
                    number=f"{site}-{year}-{number:04d}",
                    start=start,
                    values=draw_batch(template, site, index, per_site, rng, knobs),
                    milestones=draw_milestones(template, start, rng),
                    until=until,
                )
            )
    return planned


def last_numbers(planned: Iterable[Planned]) -> dict[tuple[str, int], int]:
    """The highest batch number planned per (site, year)."""
    last: dict[tuple[str, int], int] = {}
    for p in planned:
        site, year, number = p.number.rsplit("-", 2)
        key = (site, int(year))
        last[key] = max(last.get(key, 0), int(number))
    return last


def hold_numbers(uow: UnitOfWork, site: str, last: Mapping[tuple[str, int], int]) -> None:
    """At the spoke: its batch numbers continue after those of its history at the hub."""
    for (code, year), number in last.items():
        if code == site:
            store.raise_counter(uow.session, f"batch:{site}:{year}", number)
    uow.commit()


# --- the copies ------------------------------------------------------------------------------


def make_copy(
    template: Template,
    planned: Planned,
    key: SiteKey,
    *,
    serial: int,
    demo: bool,
    rng: random.Random,
    knobs: Sequence[Knob] = (),
    count: int = 1,
) -> list[SealedEntry]:
    """The sealed ledger of one planned batch.

    Drawn again if a calculation would fall outside its action limits; the template's own
    values as a last resort.
    """
    prefix = DEMO_PATIENT_PREFIX if demo else "P-"
    identity = template.identity_for(
        serial, f"{prefix}{planned.site}-{serial:06d}", planned.start.year
    )
    values = planned.values
    for attempt in range(DRAWS + 1):
        try:
            return template.copy(
                batch_id=new_id(),
                number=planned.number,
                site=planned.site,
                start=planned.start,
                identity=identity,
                values=values,
                milestones=planned.milestones,
                key=key,
                until=planned.until,
            )
        except OutsideActionLimits:
            if attempt == DRAWS - 1:
                values = {}
            else:
                values = draw_batch(template, planned.site, planned.index, count, rng, knobs)
    raise AssertionError("unreachable")  # pragma: no cover


def store_history(
    make_uow: Callable[[], UnitOfWork],
    template: Template,
    planned: Sequence[Planned],
    keys: Mapping[str, SiteKey],
    *,
    at: datetime,
    demo: bool,
    serial_from: int = 1,
    knobs: Sequence[Knob] = (),
    per_site: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Stored]:
    """Make and store each planned batch at the hub (``PER_TRANSACTION`` a transaction).

    Each is received as its spoke would have pushed it: a few seconds to minutes after its last
    entry (never after ``at``, now), so the hub's lag and receipt times read true. ``keys``:
    each site's signing key (the spoke's own). Returns what was stored, batch by batch.
    """
    rng = random.Random(serial_from)  # noqa: S311 - demo data, repeatable
    stored: list[Stored] = []
    for first in range(0, len(planned), PER_TRANSACTION):
        with make_uow() as uow:
            for offset, item in enumerate(planned[first : first + PER_TRANSACTION]):
                entries = make_copy(
                    template, item, keys[item.site], serial=serial_from + first + offset,
                    demo=demo, rng=rng, knobs=knobs, count=per_site,
                )  # fmt: skip
                last = parse_utc_text(entries[-1].body["at"])
                received = min(at, last + timedelta(seconds=rng.uniform(5, 600)))
                chunk = Chunk(
                    site=item.site,
                    batch=entries[0].body["batch"],
                    entries=tuple(entries),
                    issued_at=utc_text(received),
                    token="",
                )
                ack = _store_chunk(uow, received, chunk, "history")
                stored.append(Stored(chunk.batch, item.until is None, received, ack.stored))
            uow.commit()
        if progress is not None:
            progress(min(first + PER_TRANSACTION, len(planned)))
    return stored


@dataclass(frozen=True)
class Stored:
    """A historical batch as the hub received it."""

    batch_id: str
    complete: bool
    received: datetime
    entries: int


def release_history(
    make_uow: Callable[[], UnitOfWork],
    stored: Iterable[Stored],
    *,
    user_id: str,
    username: str,
    password: str,
    now: datetime,
    seed: int = 16,
    results_by: str | None = None,
) -> int:
    """QA releases the completed historical batches through the review service; how many.

    Each a few hours to two days after the hub received it (never after ``now``): its
    exceptions reviewed with one signature, then released with another, as QA at the hub
    would (every signature checks the password). A batch with an open deviation is left for QA.
    """
    rng = random.Random(seed)  # noqa: S311 - demo data, repeatable
    credentials = Credentials(password, username)
    released = 0
    newest: list[tuple[datetime, str]] = []  # (released at, batch) for the results after it
    for item in stored:
        if not item.complete:
            continue
        at = min(now, item.received + timedelta(hours=rng.triangular(2, 48, 12)))
        ctx = Context(at=at, user_id=user_id, terminal="QA workstation (demo history)")
        with make_uow() as uow:
            view = review.review_batch(uow, ctx, item.batch_id)
            if view.open_deviations or any(f.blocking for f in view.findings):
                continue  # left for QA: a deviation to close, or a finding no review settles
            seen = {f.key: f.digest for f in view.unreviewed if not f.by_closure}
        if seen:
            with make_uow() as uow:
                review.mark_reviewed_together(
                    uow, ctx, item.batch_id, seen, credentials, first_signing_in_session=True,
                    note="Reviewed with the batch's record (demo history).",
                )  # fmt: skip
        later = replace(ctx, at=at + timedelta(minutes=rng.uniform(2, 20)))
        with make_uow() as uow:
            review.decide_batch(
                uow, later, item.batch_id, "released", credentials, first_signing_in_session=True
            )
        released += 1
        if results_by is not None:
            newest.append((later.at, item.batch_id))
    if results_by is not None and newest:
        _results_after_release(make_uow, sorted(newest), results_by, user_id, credentials, now)
    return released


# The results a CART-CD19-FRESH release is provisional on, as the hub's QC lab enters them.
_DEMO_RESULTS = {
    "sterility_final": {"value": "No growth", "method": "14-day culture (Ph. Eur. 2.6.27)"},
    "vcn": {"value": "2.1", "method": "ddPCR"},
}
_CULTURE = timedelta(days=14)  # the compendial sterility culture


def _results_after_release(
    make_uow: Callable[[], UnitOfWork],
    released: list[tuple[datetime, str]],
    qc_id: str,
    qa_id: str,
    credentials: Credentials,
    now: datetime,
) -> None:
    """Demo data: the hub's QC enters the results each release awaited, and QA certifies final.

    A batch released more than 14 days ago has every result in and is certified final; a more
    recent one (and always the newest) has its VCN in and stays provisional, awaiting its
    sterility culture.
    """
    for index, (released_at, batch_id) in enumerate(released):
        with make_uow() as uow:
            declared = (
                review.load_review(uow, batch_id, verify=False).review.after_release().pending
            )
        if not declared:
            continue
        # the newest release always awaits its culture: the demo shows a provisional release
        ready = released_at + _CULTURE <= now and index < len(released) - 1
        at = min(now, released_at + (_CULTURE if ready else timedelta(days=2)))
        for spec in declared:
            if spec.id not in _DEMO_RESULTS or (spec.id == "sterility_final" and not ready):
                continue
            fields = {
                **_DEMO_RESULTS[spec.id],
                "result": spec.id,
                "reference": f"QC-{batch_id[-6:]}",
            }
            with make_uow() as uow:
                review.record_result_at_hub(
                    uow, Context(at=at, user_id=qc_id, terminal="QC lab (demo history)"),
                    batch_id, fields,
                )  # fmt: skip
        if ready:
            with make_uow() as uow:
                review.certify_final(
                    uow, Context(at=at + timedelta(minutes=30), user_id=qa_id,
                                 terminal="QA workstation (demo history)"),
                    batch_id, credentials, first_signing_in_session=True,
                )  # fmt: skip
