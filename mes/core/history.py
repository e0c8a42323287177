"""Historical batches made from one template batch's ledger: demo data and benchmarks.

A network's oversight pages (the board, turnaround, comparability) need months of batches from
several sites. They are made here from ONE batch really run through the services (the
template): each copy is the template's ledger with

* a new batch ID, batch number (SITE-YYYY-NNNN) and site, and its own chain of identity
  (a DIN with its Mod 37-2 check character, the CoI ID and patient ID varied by a serial);
* every time moved by the same amount, so the copy starts when the plan says;
* new values for the recipe's critical inputs (:func:`mes.core.critical.critical_inputs`),
  drawn per site from realistic distributions (:func:`typical_spread`, inside the action
  limits), with two knobs: a site SHIFTED by a known amount on one parameter and a site
  DRIFTING (a linear trend) on another;
* the milestone times the recipe declares (collection end, receipt …) set from the copy's own
  times;
* everything that depends on a changed value worked out as the core does: the limit status of
  each value (:func:`mes.core.limits.limit_status`), every calculation that uses it
  (:func:`mes.core.limits.calculate`), and each e-signature's record (the values and the hashes
  of the entries it signs) and the record's hash it is bound to;
* re-chained and sealed with the key of the spoke it belongs to (:func:`mes.core.ledger.seal`).

A value is never drawn outside its action limits (which would need a deviation the template
does not have): a copy whose calculations would fall outside theirs is refused
(:class:`OutsideActionLimits`) and the caller draws again. Plain Python: the services store the
copies through the hub's ingest path.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from mes.core.canonical import content_hash
from mes.core.clock import parse_utc_text, utc_text
from mes.core.critical import CriticalInput, critical_inputs, milestone_inputs
from mes.core.expressions import parse
from mes.core.identity import mod37_2
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, SealedEntry, seal
from mes.core.limits import LimitStatus, calculate, limit_status, numeric

_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")  # as utc_text writes


class OutsideActionLimits(ValueError):
    """A drawn copy would put a calculation outside its action limits: draw again."""


# --- distributions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """A parameter's distribution at a site in control: normal, mean and standard deviation."""

    mean: float
    sd: float


# (a word of the value's ID or label, its unit, mean, sd): published CAR-T figures
# (NETWORK.md §B: T purity > 98.5 %, viability 90-97 %, CD3+ 95-99 %, CAR+ 26-42 %, VCN
# 1.5-2.5, endotoxin ≤ 0.5 EU/mL), a 2-8 °C shipper, a buffered formulation (pH, osmolality).
# The batch-to-batch SDs are placeholders (not published).
TYPICAL: tuple[tuple[str, str | None, float, float], ...] = (
    ("purity", "%", 98.5, 0.5),
    ("viab", "%", 94.0, 1.5),
    ("cd3", "%", 97.0, 0.8),
    ("car", "%", 34.0, 4.5),
    ("vcn", None, 2.0, 0.3),
    ("copies", None, 2.0, 0.3),
    ("endotoxin", None, 0.15, 0.05),
    ("fold", None, 40.0, 8.0),
    ("temp_min", "°C", 4.5, 0.6),  # a 2-8 °C shipper's log
    ("temp_max", "°C", 6.0, 0.6),
    ("ph", "pH", 7.4, 0.1),
    ("osmolal", None, 300.0, 10.0),
)


def _inside(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value > low) and (high is None or value < high)


def typical_spread(critical: CriticalInput, spec: Mapping[str, Any]) -> Spread:
    """How the parameter varies between batches at a site in control.

    A published figure where the parameter is one (viability, CD3+, CAR+, VCN, endotoxin, fold
    expansion) and it sits inside the action limits; otherwise around the target (or the middle
    of the alert, else the action limits) with 3 SD to the nearest alert limit.
    """
    low, high = critical.action_low, critical.action_high
    for words in (critical.value_id.lower(), critical.label.lower()):  # the ID says it first
        for word, unit, mean, sd in TYPICAL:
            if (
                word in words
                and (unit is None or critical.unit == unit)
                and _inside(mean, low, high)
            ):
                return Spread(mean, sd)
    alert_low, alert_high = critical.alert_low, critical.alert_high
    target = spec.get("target")
    if target is not None and _inside(float(target), low, high):
        mean = float(target)
    elif alert_low is not None and alert_high is not None:
        mean = (alert_low + alert_high) / 2
    elif low is not None and high is not None:
        mean = (low + high) / 2
    elif alert_low is not None:
        mean = alert_low * 1.1 if alert_low > 0 else alert_low + 1
    elif low is not None:
        mean = low * 1.3 if low > 0 else low + 1
    elif high is not None:
        mean = high * 0.7 if high > 0 else high - 1
    else:
        mean = 10.0
    room = [abs(mean - x) for x in (alert_low, alert_high) if x is not None and x != mean]
    room = room or [abs(mean - x) / 2 for x in (low, high) if x is not None and x != mean]
    sd = min(room) / 3 if room else abs(mean) * 0.05 or 1.0
    return Spread(mean, sd)


SHIFT = "shift"
DRIFT = "drift"


@dataclass(frozen=True)
class Knob:
    """A planted effect: at ``site``, ``parameter`` moves by ``sigmas`` standard deviations.

    A SHIFT moves every batch of the site; a DRIFT moves its batches along a line, from none
    at the site's first batch to ``sigmas`` at its last.
    """

    kind: str  # SHIFT or DRIFT
    site: str
    parameter: str
    sigmas: float

    def offset(self, sd: float, index: int, count: int) -> float:
        """How far the site's ``index``-th of ``count`` batches is moved."""
        if self.kind == SHIFT:
            return self.sigmas * sd
        return self.sigmas * sd * index / max(1, count - 1)


def _quantum(spec: Mapping[str, Any]) -> float:
    if spec["type"] == "integer":
        return 1.0
    decimals = spec.get("decimals")
    return 10.0 ** -(decimals if decimals is not None else 3)


def _text(spec: Mapping[str, Any], value: float) -> str:
    """A number as the recording of a typed value keeps it (to the input's decimals)."""
    if spec["type"] == "integer":
        return str(round(value))
    decimals = spec.get("decimals")
    if decimals is None:
        return repr(round(value, 3))
    return f"{value:.{decimals}f}"


def draw_value(
    spread: Spread,
    spec: Mapping[str, Any],
    critical: CriticalInput,
    rng: random.Random,
    offset: float = 0.0,
) -> str:
    """One batch's value, as the recording keeps it (to the input's decimals).

    Normal around the (moved) mean, kept strictly inside the action limits: drawn again if
    outside, up to 50 times, then the nearest value inside.
    """
    low, high = critical.action_low, critical.action_high
    step = _quantum(spec)
    value = spread.mean + offset
    for _ in range(50):
        value = rng.gauss(spread.mean + offset, spread.sd)
        if _inside(value, low, high):
            break
    else:
        if low is not None and value <= low:
            value = low + step
        if high is not None and value >= high:
            value = high - step
    text = _text(spec, value)
    if not _inside(float(text), low, high):  # rounded onto a limit: one step inside
        text = _text(
            spec, float(text) + (step if low is not None and float(text) <= low else -step)
        )
    return text


# --- the template --------------------------------------------------------------------------


def _walk(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk(value, (*path, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from _walk(value, (*path, index))
    else:
        yield path, obj


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


@cache
def _names(expression: str) -> tuple[str, ...]:
    return tuple(parse(expression).names)


@dataclass(frozen=True)
class _Step:
    """What a template entry needs at each copy (found once)."""

    at: timedelta  # the entry's time, from the start
    times: tuple[tuple[tuple[Any, ...], timedelta], ...]  # path → offset from the start
    hashes: tuple[tuple[tuple[Any, ...], int], ...]  # path → index of the entry it names


class Template:
    """A completed batch's ledger, ready to be copied (:meth:`copy`)."""

    def __init__(self, entries: Sequence[SealedEntry], compiled: Mapping[str, Any]) -> None:
        if not entries or entries[0].body["kind"] != "batch_created":
            raise ValueError("a template is a whole batch ledger, from its creation")
        self.compiled = compiled
        first = entries[0].body
        self.batch_id: str = first["batch"]
        self.site: str = first["site"]
        self.number: str = first["payload"]["number"]
        self.identity: dict[str, Any] = dict(first["payload"]["chain_of_identity"])
        self.start = parse_utc_text(first["at"])
        self.end = parse_utc_text(entries[-1].body["at"])
        self.entries = len(entries)
        self.specs: dict[tuple[str, str], Mapping[str, Any]] = {}
        for unit in compiled["unit_procedures"]:
            for operation in unit["operations"]:
                for phase in operation["phases"]:
                    for spec in (*phase["inputs"], *phase["calculations"]):
                        self.specs[(phase["id"], spec["id"])] = spec
        self.critical = [
            c
            for c in critical_inputs(compiled)
            if self.specs[(c.phase_id, c.value_id)]["type"] in ("number", "integer")
        ]
        self.milestones = milestone_inputs(compiled)
        # hours since a milestone, typed in the milestone's phase ("hours since collection"):
        # worked out from the copy's times, never drawn
        self.elapsed: dict[tuple[str, str], str] = {}
        for name, (phase_id, _value_id) in self.milestones.items():
            for (phase, value_id), spec in self.specs.items():
                if phase == phase_id and spec.get("unit") == "h" and "since" in value_id:
                    self.elapsed[(phase, value_id)] = name
        self.critical = [c for c in self.critical if (c.phase_id, c.value_id) not in self.elapsed]
        index = {e.hash: n for n, e in enumerate(entries)}
        bodies = [dict(e.body) for e in entries]
        self._text = json.dumps(bodies)
        steps = []
        for body in bodies:
            times, hashes = [], []
            for path, value in _walk(body):
                if not isinstance(value, str) or path == ("prev",):
                    continue
                if _TIME.match(value):
                    times.append((path, parse_utc_text(value) - self.start))
                elif value in index:
                    hashes.append((path, index[value]))
            steps.append(
                _Step(parse_utc_text(body["at"]) - self.start, tuple(times), tuple(hashes))
            )
        self._steps = steps

    def identity_for(self, serial: int, patient_id: str, year: int) -> dict[str, Any]:
        """The template's chain of identity with a new DIN, CoI ID and patient ID."""
        identity: dict[str, Any] = {}
        for key, value in self.identity.items():
            if isinstance(value, dict) and "din" in value:
                din = f"{value['din'][:5]}{year % 100:02d}{serial % 10**6:06d}"
                identity[key] = {**value, "din": din, "check": mod37_2(din)}
            elif key == "patient_id":
                identity[key] = patient_id
            elif isinstance(value, str) and re.search(r"\d{2,}$", value):
                # the last digits (at most 8) carry the serial: what comes before them keeps the
                # form the recipe's pattern asks for
                width = min(8, len(re.search(r"\d+$", value).group()))  # type: ignore[union-attr]
                identity[key] = value[:-width] + str(serial % 10**width).zfill(width)
            else:
                identity[key] = value
        return identity

    def copy(
        self,
        *,
        batch_id: str,
        number: str,
        site: str,
        start: datetime,
        identity: Mapping[str, Any],
        values: Mapping[str, str],
        milestones: Mapping[str, datetime],
        key: SiteKey,
        until: datetime | None = None,
    ) -> list[SealedEntry]:
        """The template as another batch: see the module's description.

        ``values``: parameter ("phase.value") → the recorded text; ``milestones``: milestone
        name → its time (the others stay where the template had them, moved with the rest);
        ``until``: a batch still in progress, its record up to that time (the entries after it
        are not written yet).
        Raises :class:`OutsideActionLimits` if a calculation falls outside its action limits.
        """
        text = self._text.replace(self.batch_id, batch_id).replace(self.number, number)
        for key_name, old in self.identity.items():
            new = identity[key_name]
            if isinstance(old, dict):
                text = text.replace(old["din"], new["din"])
            elif isinstance(old, str) and old != new:
                text = text.replace(f'"{old}"', json.dumps(new))
        if site != self.site:
            text = text.replace(f'"{self.site}"', f'"{site}"')
        bodies = json.loads(text)
        wanted = {tuple(p.split(".", 1)): v for p, v in values.items()}
        for name, (phase_id, value_id) in self.milestones.items():
            if name in milestones:
                wanted[(phase_id, value_id)] = utc_text(milestones[name])
        current: dict[tuple[str, str], Any] = {}
        changed: set[str] = set()
        hashes: list[str] = []
        entries: list[SealedEntry] = []
        prev = GENESIS
        times = {name: parse_utc_text(text) for (p, v), text in wanted.items() for name, w in
                 self.milestones.items() if w == (p, v)}  # fmt: skip
        for body, step in zip(bodies, self._steps, strict=True):
            if until is not None and start + step.at > until and len(entries) > 2:
                break
            for (phase_id, value_id), name in self.elapsed.items():
                if name in times:
                    hours = (start + step.at - times[name]).total_seconds() / 3600
                    spec = self.specs[(phase_id, value_id)]
                    wanted[(phase_id, value_id)] = _text(spec, hours)
            for path, offset in step.times:
                _set(body, path, utc_text(start + offset))
            for path, index in step.hashes:
                _set(body, path, hashes[index])
            payload = body["payload"]
            kind = body["kind"]
            if kind == "batch_created":
                payload["chain_of_identity"] = dict(identity)
            elif kind in ("value_recorded", "value_corrected"):
                self._value(payload, wanted, current, changed)
            elif kind == "calculated":
                self._calculation(payload, current, changed)
            elif kind == "signature":
                self._signature(payload, identity, current)
            body["prev"] = prev
            entry = seal(body, key)
            entries.append(entry)
            hashes.append(entry.hash)
            prev = entry.hash
        return entries

    def _value(
        self,
        payload: dict[str, Any],
        wanted: Mapping[tuple[str, str], str],
        current: dict[tuple[str, str], Any],
        changed: set[str],
    ) -> None:
        where = (payload["phase"], payload["value"])
        if where in wanted and payload["recorded"] != wanted[where]:
            payload["recorded"] = wanted[where]
            spec = self.specs[where]
            if payload.get("status") is not None:
                payload["status"] = limit_status(payload["recorded"], spec).value
            changed.add(f"{where[0]}.{where[1]}")
        current[where] = payload["recorded"]

    def _calculation(
        self, payload: dict[str, Any], current: dict[tuple[str, str], Any], changed: set[str]
    ) -> None:
        phase_id = payload["phase"]
        where = (phase_id, payload["value"])
        spec = self.specs[where]
        names = _names(spec["expression"])
        full = [n if "." in n else f"{phase_id}.{n}" for n in names]
        if any(f in changed for f in full):
            numbers: dict[str, float] = {}
            for name, qualified in zip(names, full, strict=True):
                number = numeric(current.get(tuple(qualified.split(".", 1))))  # type: ignore[arg-type]
                if number is None or math.isnan(number):
                    raise OutsideActionLimits(f"{qualified} is not a number")
                numbers[name] = number
            value = calculate(spec, numbers)
            status = limit_status(value, spec)
            if status is LimitStatus.ACTION:
                raise OutsideActionLimits(f"{spec['label']} {value} is outside its action limits")
            if value != payload["recorded"]:
                changed.add(f"{where[0]}.{where[1]}")
            payload["recorded"] = value
            payload["status"] = status.value
            payload["from"] = dict(sorted(numbers.items()))
        current[where] = payload["recorded"]

    def _signature(
        self,
        payload: dict[str, Any],
        identity: Mapping[str, Any],
        current: Mapping[tuple[str, str], Any],
    ) -> None:
        record = payload["record"]
        if "chain_of_identity" in record:
            record["chain_of_identity"] = dict(identity)
        if record.get("type") == "batch-phase" and isinstance(record.get("values"), dict):
            phase_id = record["phase"]
            for value_id in record["values"]:
                if (phase_id, value_id) in current:
                    record["values"][value_id] = current[(phase_id, value_id)]
        payload["manifestation"]["record_hash"] = content_hash(dict(record))


# --- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One historical batch: where, its number, when it starts and its values."""

    site: str
    index: int  # its place among the site's batches, from 0
    number: str
    start: datetime
    values: dict[str, str]
    milestones: dict[str, datetime]
    until: datetime | None = None  # still in progress: its record up to this time


def spreads(template: Template) -> dict[str, Spread]:
    """Each critical input's distribution at a site in control."""
    return {
        c.parameter: typical_spread(c, template.specs[(c.phase_id, c.value_id)])
        for c in template.critical
    }


def default_knobs(
    critical: Sequence[CriticalInput], shifted: str, drifting: str
) -> tuple[Knob, ...]:
    """The planted effects: one site shifted, one drifting (none without critical inputs).

    ``shifted`` 3 SD low on the first critical quality attribute (else the first critical
    input), ``drifting`` 3 SD up over its batches on the next (else another critical input).
    """
    if not critical:
        return ()
    cqas = [c for c in critical if c.criticality.value == "cqa"] or list(critical)
    first = cqas[0]
    others = [c for c in (*cqas, *critical) if c.parameter != first.parameter] or [first]
    return (
        Knob(SHIFT, shifted, first.parameter, -3.0),
        Knob(DRIFT, drifting, others[0].parameter, 3.0),
    )


def draw_batch(
    template: Template,
    site: str,
    index: int,
    count: int,
    rng: random.Random,
    knobs: Sequence[Knob] = (),
) -> dict[str, str]:
    """The critical input values of a site's ``index``-th of ``count`` batches."""
    spread_of = spreads(template)
    values = {}
    for critical in template.critical:
        spread = spread_of[critical.parameter]
        offset = sum(
            knob.offset(spread.sd, index, count)
            for knob in knobs
            if knob.site == site and knob.parameter == critical.parameter
        )
        spec = template.specs[(critical.phase_id, critical.value_id)]
        values[critical.parameter] = draw_value(spread, spec, critical, rng, offset)
    return values


def draw_milestones(template: Template, start: datetime, rng: random.Random) -> dict[str, datetime]:
    """The milestone times a batch starting at ``start`` records.

    Collection end 4 to 30 hours before the batch starts (fresh apheresis at 2-8 °C,
    NETWORK.md §C), receipt up to 2 hours before; the others move with the batch.
    """
    hours = {"collection_end": rng.triangular(4, 30, 12), "receipt": rng.triangular(0.2, 2, 0.5)}
    return {
        name: start - timedelta(hours=hours[name]) for name in template.milestones if name in hours
    }
