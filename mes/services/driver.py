"""A simulated crew: runs a whole batch of an installed master recipe through the services.

Used where a real batch record is needed without people at a screen: the template of the demo's
historical batches (:mod:`mes.services.history`), the benchmarks, and the test suite's recipe
driver (``tests/recipe_driver.py``, which adds installing the recipe and stocking the site).

At a site that has the recipe installed, its people trained, and its materials (a released lot)
and equipment classes (a clean, calibrated instrument) registered, :class:`BatchRun`

* starts a batch with a valid chain of identity (a DIN with its Mod 37-2 check character,
  identifiers that match the recipe's pattern, dates), or the identifiers given;
* executes every phase as it becomes ready: the clock moves on to each timer's minimum (the
  phase starts inside its window), each input gets a value inside its alert limits (the
  target, or the middle of the limits; the first option of a choice unless a condition of the
  recipe wants another or the caller chose; yes/no is yes; times in the past), every lot,
  instrument and label is scanned correctly, the performer signs and a different person of
  the verify role verifies;
* searches the phase's numbers so that its calculations fall inside their limits; where no
  values can, the deviation is accepted, commented and acknowledged so the batch completes;
* and has the supervisor sign the batch complete.

Every action goes through the same service functions the web's views call, with each person's
own credentials: the record is a real one, e-signatures included. It is a tool for demos and
tests, never for manufacturing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any, Protocol

from sqlalchemy import func, select

from mes.core.batch import Action, Batch, DeviationStatus, PhasePlan, PhaseStatus
from mes.core.errors import NotFound
from mes.core.expressions import parse
from mes.core.identity import mod37_2
from mes.core.limits import InvalidValue, LimitStatus, calculate, limit_status, numeric
from mes.core.phases.temperature_log import TemperatureLogs
from mes.services import batches, logger_files
from mes.services.context import Context
from mes.services.esign import Credentials
from mes.store import equipment as equipment_store
from mes.store import materials as materials_store
from mes.store.models import Batch as BatchRow
from mes.store.uow import UnitOfWork

PERFORMERS = {"operator": "olivia", "supervisor": "sam", "qa": "quinn"}
VERIFIERS = {"operator": ("oscar", "olivia"), "supervisor": ("sam",), "qa": ("quinn",)}
# milestones a phase records as they happen (after manufacturing started), unlike collection end
# and receipt, which come before the batch and are typed after the fact
_AS_IT_HAPPENS = frozenset(
    {"provisional_certification", "dispatch", "bedside_receipt", "infusion_start"}
)
STEP = timedelta(seconds=30)  # the time one action takes on the driver's clock


class Site(Protocol):
    """Where the batch runs: a unit of work, and a person's context at a time."""

    def uow(self) -> UnitOfWork:
        """A new unit of work of the site's database."""
        ...

    def ctx(self, username: str, at: datetime) -> Context:
        """``username`` acting at the site's terminal at ``at``."""
        ...


# --- chain of identity -----------------------------------------------------------------------


def din_for(serial: int, year: int) -> str:
    """A DIN (fake facility A9999) as typed from the label: 13 characters, flags, check."""
    din = f"A9999{year % 100:02d}{serial:06d}"
    return f"{din} 00 {mod37_2(din)}"


def din_barcode(typed: str) -> str:
    """The bar-code form of a typed DIN: '=' + the 13 characters + the flags."""
    return "=" + typed.replace(" ", "")[:15]


def example_of(pattern: str, serial: int = 1) -> str:
    """A string matching the regular expression ``pattern``; digits vary with ``serial``.

    Walks the parsed pattern (literals, classes, repeats, groups, alternation, anchors).
    """
    digits = iter(str(serial).zfill(40)[::-1] + "0" * 1000)

    def one_of(items: list[tuple[Any, Any]]) -> str:
        allowed: list[str] = []
        negate = False
        for op, av in items:
            if op is sre.NEGATE:
                negate = True
            elif op is sre.LITERAL:
                allowed.append(chr(av))
            elif op is sre.RANGE:
                low, high = av
                chars = [chr(c) for c in range(low, high + 1)]
                allowed += chars
            elif op is sre.CATEGORY:
                allowed += {
                    sre.CATEGORY_DIGIT: list("0123456789"),
                    sre.CATEGORY_WORD: list("ABC"),
                    sre.CATEGORY_SPACE: [" "],
                }.get(av, ["A"])
        if negate:
            return next(c for c in "A0B1-_" if c not in allowed)
        numbers = [c for c in allowed if c.isdigit()]
        if len(numbers) >= 9:  # a digit position: vary it with the serial
            digit = next(digits)
            return digit if digit in numbers else numbers[int(digit) % len(numbers)]
        return allowed[0]

    def walk(items: Any) -> str:
        out = []
        for op, av in items:
            if op is sre.LITERAL:
                out.append(chr(av))
            elif op is sre.NOT_LITERAL:
                out.append("A" if chr(av) != "A" else "B")
            elif op is sre.ANY:
                out.append("A")
            elif op is sre.IN:
                out.append(one_of(av))
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
                low, high, sub = av
                count = low if low > 0 else min(1, high)
                out.append("".join(walk(sub) for _ in range(count)))
            elif op is sre.SUBPATTERN:
                out.append(walk(av[-1]))
            elif op is sre.BRANCH:
                out.append(walk(av[1][0]))
            elif op is sre.AT:
                continue
            else:  # pragma: no cover - a construct the example recipes do not use
                raise ValueError(f"example_of cannot generate {op} in {pattern!r}")
        return "".join(out)

    text = walk(sre_parse.parse(pattern))
    assert re.search(pattern, text), (pattern, text)
    return text


def identifiers_for(
    coi_specs: list[Mapping[str, Any]], serial: int, at: datetime
) -> dict[str, str]:
    """A valid chain of identity for the recipe's identifiers (values vary with ``serial``)."""
    values = {}
    for spec in coi_specs:
        kind, key = spec["kind"], spec["id"]
        if kind == "isbt128_din":
            values[key] = din_for(serial, at.year)
        elif kind == "date":
            values[key] = f"{1950 + serial % 50}-0{1 + serial % 9}-1{serial % 10}"
        elif spec.get("pattern"):
            values[key] = example_of(spec["pattern"], serial)
        else:
            values[key] = f"{key.upper().replace('_', '-')}-{serial:05d}"
    return values


def label_for(kind: str, entered: str) -> str:
    """What the label of a chain-of-identity value scans as."""
    return din_barcode(entered) if kind == "isbt128_din" else entered


# --- values --------------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def allowed_range(spec: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """The range a driver keeps an input in: its alert limits, else its action limits."""
    low = _dec(spec.get("alert_low")) if spec.get("alert_low") is not None else None
    high = _dec(spec.get("alert_high")) if spec.get("alert_high") is not None else None
    if low is None:
        low = _dec(spec.get("action_low"))
    if high is None:
        high = _dec(spec.get("action_high"))
    return low, high


def _quantum(spec: Mapping[str, Any]) -> Decimal:
    if spec["type"] == "integer":
        return Decimal(1)
    decimals = spec.get("decimals")
    return Decimal(1).scaleb(-decimals) if decimals is not None else Decimal("0.001")


def quantise(spec: Mapping[str, Any], value: Decimal) -> Decimal | None:
    """``value`` to the input's decimals, nudged inside its allowed range (None if none fits)."""
    step = _quantum(spec)
    low, high = allowed_range(spec)
    number = value.quantize(step, rounding=ROUND_HALF_UP)
    if low is not None and number < low:
        number = (low / step).to_integral_value(rounding="ROUND_CEILING") * step
    if high is not None and number > high:
        number = (high / step).to_integral_value(rounding="ROUND_FLOOR") * step
    if (low is not None and number < low) or (high is not None and number > high):
        return None
    return number.quantize(step)


def default_number(spec: Mapping[str, Any]) -> Decimal:
    """The target when it is inside the limits, else the middle of the limits, else a plain 10."""
    low, high = allowed_range(spec)
    target = _dec(spec.get("target"))
    if target is not None and (low is None or target >= low) and (high is None or target <= high):
        value = target
    elif low is not None and high is not None:
        value = (low + high) / 2
    elif low is not None:
        value = low * 2 if low > 0 else low + 1
    elif high is not None:
        value = high / 2 if high > 0 else high - 1
    else:
        value = Decimal(10)
    fitted = quantise(spec, value)
    assert fitted is not None, f"{spec['label']}: no value fits its limits"
    return fitted


def candidates(spec: Mapping[str, Any], default: Decimal) -> list[Decimal]:
    """Values a search tries for a number: the default, the limits and a wide log grid."""
    low, high = allowed_range(spec)
    grid = [Decimal(0)]
    for exponent in range(-3, 8):
        for mantissa in ("1", "1.2", "1.5", "2", "2.5", "3", "4", "5", "6", "7", "8", "9"):
            grid += [Decimal(mantissa).scaleb(exponent), -Decimal(mantissa).scaleb(exponent)]
    raw = [default, *(x for x in (low, high) if x is not None), *grid]
    seen: dict[Decimal, None] = {}
    for value in raw:
        if (low is not None and value < low) or (high is not None and value > high):
            continue
        fitted = quantise(spec, value)
        if fitted is not None:
            seen.setdefault(fitted, None)
    return list(seen)


@cache
def _names(expression: str) -> tuple[str, ...]:
    return parse(expression).names


def simulate(
    batch: Batch, plan: PhasePlan, numbers: Mapping[str, Decimal]
) -> list[tuple[Mapping[str, Any], str | None]]:
    """What each calculation of the phase would come out as with these input numbers."""
    local: dict[str, float | None] = {k: float(v) for k, v in numbers.items()}
    results = []
    for spec in plan.spec["calculations"]:
        values: dict[str, float] = {}
        for name in _names(spec["expression"]):
            phase_id, _, value_id = name.rpartition(".")
            if phase_id:
                recorded = batch.state.phases[phase_id].values.get(value_id)
                number = numeric(recorded.value) if recorded is not None else None
            else:
                number = local.get(value_id)
            if number is None:
                break
            values[name] = number
        else:
            try:
                value = calculate(spec, values)
            except InvalidValue:
                value = None
            local[spec["id"]] = numeric(value) if value is not None else None
            results.append((spec, value))
            continue
        local[spec["id"]] = None
        results.append((spec, None))
    return results


def score(
    results: list[tuple[Mapping[str, Any], str | None]],
    numbers: Mapping[str, Decimal],
    defaults: Mapping[str, Decimal],
) -> tuple[int, int, int, float, float]:
    """Worse is bigger: calculations not possible, outside action, outside alert, off target."""
    missing = action = alert = 0
    off_target = 0.0
    for spec, value in results:
        if value is None:
            missing += 1
            continue
        status = limit_status(value, spec)
        action += status is LimitStatus.ACTION
        alert += status is LimitStatus.ALERT
        if spec.get("target") is not None:
            target = float(spec["target"])
            off_target += abs(float(value) - target) / (abs(target) or 1.0)
    moved = sum(
        abs(float(numbers[k] - defaults[k])) / (abs(float(defaults[k])) or 1.0) for k in numbers
    )
    return missing, action, alert, off_target, moved


def choose_numbers(batch: Batch, plan: PhasePlan) -> dict[str, Decimal]:
    """Numbers for the phase's inputs: defaults, searched where a calculation needs it."""
    specs = [s for s in plan.spec["inputs"] if s["type"] in ("number", "integer")]
    defaults = {s["id"]: default_number(s) for s in specs}
    numbers = dict(defaults)
    best = score(simulate(batch, plan, numbers), numbers, defaults)
    if not plan.spec["calculations"] or best[:3] == (0, 0, 0):
        return numbers
    grids = {s["id"]: candidates(s, defaults[s["id"]]) for s in specs}
    for _ in range(4):  # coordinate descent: one input at a time, over its grid
        improved = False
        for spec in specs:
            for value in grids[spec["id"]]:
                trial = {**numbers, spec["id"]: value}
                result = score(simulate(batch, plan, trial), trial, defaults)
                if result < best:
                    best, numbers, improved = result, trial, True
        if not improved or best[:3] == (0, 0, 0):
            break
    return numbers


def wanted_options(procedure_phases: Mapping[str, PhasePlan]) -> dict[str, list[Any]]:
    """For each input a condition (``when``) tests, the values that make its phase apply."""
    wanted: dict[str, list[Any]] = {}
    for plan in procedure_phases.values():
        when = plan.spec.get("when")
        if when:
            wanted.setdefault(when["input"], []).extend(when["in"])
    return wanted


# --- running a batch ---------------------------------------------------------------------------


@dataclass
class BatchRun:
    """One batch driven through its recipe; ``now`` is the driver's clock."""

    site: Site
    compiled: Mapping[str, Any]
    now: datetime
    choices: Mapping[str, Any] = field(default_factory=dict)  # 'phase.input' → value
    lots: dict[str, str] = field(default_factory=dict)
    instruments: dict[str, str] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)
    batch: Batch | None = None
    accepted_deviations: list[str] = field(default_factory=list)
    passwords: Mapping[str, str] = field(default_factory=dict)  # user ID → password

    @property
    def batch_id(self) -> str:
        """The batch's ID."""
        assert self.batch is not None
        return self.batch.state.id

    def tick(self) -> datetime:
        """The time of the next action (the clock moves on a little each time)."""
        self.now += STEP
        return self.now

    def credentials(self, username: str) -> Credentials:
        """The signer's credentials (each person signs with their own)."""
        return Credentials(self.passwords[username], username)

    # -- starting ----------------------------------------------------------------------

    def start(self, who: str = "olivia", **identifiers: str) -> Batch:
        """Start the batch with a fresh valid chain of identity (or the identifiers given)."""
        with self.site.uow() as uow:  # the site's n-th batch gets identifiers numbered n
            serial = (
                uow.session.execute(select(func.count()).select_from(BatchRow)).scalar_one() + 1
            )
        self.identifiers = {
            **identifiers_for(self.compiled["chain_of_identity"], serial, self.now),
            **identifiers,
        }
        with self.site.uow() as uow:
            self.batch = batches.start_batch(
                uow, self.site.ctx(who, self.tick()), self.compiled["recipe_code"],
                self.identifiers, self.credentials(who), first_signing_in_session=True,
            )  # fmt: skip
        return self.batch

    # -- the loop ----------------------------------------------------------------------

    def next_phase(self) -> str | None:
        """The ready phase that can start soonest (recipe order breaks ties), if any."""
        assert self.batch is not None
        ready = self.batch.phases_in(PhaseStatus.READY)
        if not ready:
            return None

        def key(phase_id: str) -> tuple[datetime, int]:
            return self.window(phase_id)[0], self.batch.procedure.phases[phase_id].position  # type: ignore[union-attr]

        return min(ready, key=key)

    def window(self, phase_id: str) -> tuple[datetime, datetime | None]:
        """When the phase may start: not before its timers' minimum, not after their maximum."""
        assert self.batch is not None
        windows = self.batch.timer_windows(phase_id)
        earliest = max([self.now, *(w["earliest"] for w in windows if w["earliest"])])
        latests = [w["latest"] for w in windows if w["latest"]]
        return earliest, (min(latests) if latests else None)

    def run_until(self, stop: Callable[[str], bool] | str | None = None) -> str | None:
        """Execute ready phases until ``stop(phase_id)`` says so (or a phase ID is next).

        Returns the phase it stopped before, or None when no phase is left.
        """
        if isinstance(stop, str):
            wanted = stop

            def stop(phase_id: str) -> bool:
                return phase_id == wanted

        while (phase_id := self.next_phase()) is not None:
            if stop is not None and stop(phase_id):
                return phase_id
            self.execute(phase_id)
        assert self.batch is not None
        stuck = [
            f"{pid}: {p.status.value} ({self.batch.blocking_reason(pid)})"
            for pid, p in self.batch.state.phases.items()
            if not self.batch.is_done(pid)
        ]
        assert not stuck, "no phase is ready but some are not done: " + "; ".join(stuck)
        return None

    def finish(self) -> Batch:
        """Acknowledge what is left open, then the supervisor signs the batch complete."""
        self.acknowledge_open()
        with self.site.uow() as uow:
            self.batch = batches.complete_batch(
                uow, self.site.ctx("sam", self.tick()), self.batch_id,
                self.credentials("sam"), first_signing_in_session=True,
            )  # fmt: skip
        return self.batch

    # -- one phase ---------------------------------------------------------------------

    def people(self, phase_id: str) -> tuple[str, str | None]:
        """Who performs the phase and who verifies it (None if nobody does)."""
        assert self.batch is not None
        spec = self.batch.procedure.phases[phase_id].spec
        performer = PERFORMERS[spec["perform"]]
        if spec.get("verify") is None:
            return performer, None
        verifier = next(p for p in VERIFIERS[spec["verify"]] if p != performer)
        return performer, verifier

    def execute(self, phase_id: str) -> None:
        """Start, record, scan, sign performed and (where asked) verified; deviations handled."""
        performer, verifier = self.people(phase_id)
        earliest, latest = self.window(phase_id)
        if earliest > self.now:  # wait: the start (one step on) falls inside the window
            self.now = earliest if latest is None else max(min(earliest, latest - STEP), self.now)
        self.start_phase(phase_id, performer)
        self.record(phase_id, performer)
        self.sign(phase_id, Action.PERFORM, performer)
        if verifier is not None:
            self.sign(phase_id, Action.VERIFY, verifier)
        self.acknowledge_open()

    def start_phase(self, phase_id: str, who: str) -> None:
        """``who`` starts the phase (and comments what it raised)."""
        with self.site.uow() as uow:
            self.batch = batches.start_phase(
                uow, self.site.ctx(who, self.tick()), self.batch_id, phase_id
            )
        self.comment_open(phase_id, who)

    def entries_for(self, phase_id: str) -> dict[str, Any]:
        """Everything the phase asks for: values, lots, instruments and labels."""
        assert self.batch is not None
        plan = self.batch.procedure.phases[phase_id]
        numbers = choose_numbers(self.batch, plan)
        wanted = wanted_options(self.batch.procedure.phases)
        values: dict[str, Any] = {}
        from_logger = TemperatureLogs.filled_inputs(plan.spec)
        for spec in plan.spec["inputs"]:
            key = f"{phase_id}.{spec['id']}"
            kind = spec["type"]
            if spec["id"] in from_logger:
                continue  # read from the logger file (:meth:`import_loggers`)
            if key in self.choices:
                values[spec["id"]] = self.choices[key]
            elif kind in ("number", "integer"):
                values[spec["id"]] = str(numbers[spec["id"]])
            elif kind == "yes_no":
                values[spec["id"]] = "yes"
            elif kind == "choice":
                preferred = [o for o in spec["options"] if o in wanted.get(key, [])]
                values[spec["id"]] = (preferred or spec["options"])[0]
            elif kind == "datetime" and spec.get("milestone") in _AS_IT_HAPPENS:
                # dispatch, bedside receipt …: recorded as they happen, after what came before
                values[spec["id"]] = self.now.isoformat(timespec="minutes")
            elif kind == "datetime":
                values[spec["id"]] = (self.now - timedelta(hours=2)).isoformat(timespec="minutes")
            elif spec.get("pattern"):
                values[spec["id"]] = example_of(spec["pattern"])
            else:
                values[spec["id"]] = f"{spec['label'][:40]}: as observed"
        comments = {
            s["id"]: "Outside its limits with the values of this batch; accepted by the driver."
            for s in [*plan.spec["inputs"], *plan.spec["calculations"]]
        }
        coi = {c["id"]: c["kind"] for c in self.batch.procedure.chain_of_identity}
        return {
            "values": values,
            "comments": comments,
            "lots": {m["code"]: self.lots[m["code"]] for m in plan.spec["materials"]},
            "equipment": {
                slot: self.instruments[spec["class"]]
                for slot, spec in enumerate(plan.spec["equipment"])
            },
            "identity": {
                check["id"]: label_for(coi[check["matches"]], self.identifiers[check["matches"]])
                for check in plan.spec["identity_checks"]
            },
        }

    def logger_file(self, phase_id: str, item: Mapping[str, Any]) -> bytes:
        """A logger file for ``item`` whose lowest and highest readings are the phase's values.

        The values are the caller's choices (``phase.input``) or the driver's numbers; the
        other readings are the middle of the window (kept between the two), one every
        ``sampling_minutes``, ending now.
        """
        assert self.batch is not None
        plan = self.batch.procedure.phases[phase_id]
        numbers = choose_numbers(self.batch, plan)
        window = item["window"]
        middle = (Decimal(str(window["low"])) + Decimal(str(window["high"]))) / 2

        def chosen(end: str) -> Decimal:
            target = item.get(end)
            if not target:
                return middle
            return Decimal(str(self.choices.get(f"{phase_id}.{target}", numbers[target])))

        low, high = sorted((chosen("lowest"), chosen("highest")))
        inside = min(max(middle, low), high)
        readings = [inside, inside, low, inside, inside, high, inside, inside]
        step = timedelta(minutes=float(item["sampling_minutes"]))
        start = self.now - step * len(readings)
        lines = ["time,temperature_c"] + [
            f"{(start + step * i).isoformat()},{value}" for i, value in enumerate(readings)
        ]
        return ("\n".join(lines) + "\n").encode()

    def import_loggers(self, phase_id: str, who: str) -> None:
        """``who`` imports a logger file for each logger the phase declares."""
        assert self.batch is not None
        for item in self.batch.procedure.phases[phase_id].spec.get("temperature_log") or []:
            content = self.logger_file(phase_id, item)
            with self.site.uow() as uow:
                self.batch = logger_files.import_logger_file(
                    uow, self.site.ctx(who, self.tick()), self.batch_id, phase_id, item["id"],
                    f"{item['id']}.csv", content,
                )  # fmt: skip
            self.comment_open(phase_id, who)

    def record(self, phase_id: str, who: str) -> batches.PhaseResult:
        """``who`` records everything the phase asks for (logger files first)."""
        self.import_loggers(phase_id, who)
        with self.site.uow() as uow:
            result = batches.record_phase(
                uow, self.site.ctx(who, self.tick()), self.batch_id, phase_id,
                **self.entries_for(phase_id),
            )  # fmt: skip
        assert not result.field_errors, result.field_errors
        self.batch = result.batch
        self.comment_open(phase_id, who)
        return result

    def sign(self, phase_id: str, action: Action, who: str) -> None:
        """``who`` signs the phase (performed or verified)."""
        with self.site.uow() as uow:
            self.batch = batches.sign_phase(
                uow, self.site.ctx(who, self.tick()), self.batch_id, phase_id, action,
                self.credentials(who), first_signing_in_session=True,
            )  # fmt: skip

    # -- deviations --------------------------------------------------------------------

    def comment_open(self, phase_id: str, who: str) -> None:
        """Comment every deviation of the phase that has no comment yet."""
        assert self.batch is not None
        for deviation in list(self.batch.state.deviations.values()):
            if deviation.phase == phase_id and deviation.comment is None:
                with self.site.uow() as uow:
                    self.batch = batches.comment_deviation(
                        uow, self.site.ctx(who, self.tick()), self.batch_id, deviation.id,
                        "Seen by the operator; accepted by the driver for review.",
                    )  # fmt: skip

    def acknowledge_open(self) -> None:
        """A supervisor (QA if the supervisor raised it) acknowledges each open deviation."""
        assert self.batch is not None
        for deviation in list(self.batch.state.deviations.values()):
            if deviation.status is not DeviationStatus.OPEN:
                continue
            who = "quinn" if deviation.raised_by.username == "sam" else "sam"
            with self.site.uow() as uow:
                self.batch = batches.acknowledge_deviation(
                    uow, self.site.ctx(who, self.tick()), self.batch_id, deviation.id,
                    self.credentials(who), first_signing_in_session=True,
                )  # fmt: skip
            self.accepted_deviations.append(deviation.id)


def site_stock(uow: UnitOfWork, compiled: Mapping[str, Any], on: date) -> tuple[dict, dict]:
    """What the site holds for the recipe, to scan: its lots and instruments.

    ({material code: a released lot}, {equipment class: an instrument in service, clean and
    calibrated}); refused with the first thing missing.
    """
    phases = [
        phase
        for unit in compiled["unit_procedures"]
        for operation in unit["operations"]
        for phase in operation["phases"]
    ]
    lots: dict[str, str] = {}
    for code in dict.fromkeys(m["code"] for p in phases for m in p["materials"]):
        lot = materials_store.released_lot(uow.session, code, on)
        if lot is None:
            raise NotFound(f"The site has no released lot of {code}.")
        lots[code] = lot
    instruments: dict[str, str] = {}
    for kind in dict.fromkeys(slot["class"] for p in phases for slot in p["equipment"]):
        found = equipment_store.usable_instrument(uow.session, kind, on)
        if found is None:
            raise NotFound(f"The site has no {kind} in service, clean and calibrated.")
        instruments[kind] = found
    return lots, instruments
