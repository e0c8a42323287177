"""The temperature logger of a shipment, imported in a phase: the file is the evidence.

A phase declares ``temperature_log`` items (see docs/recipe-format.md): the logger file the
operator uploads, the validated window (``{low, high, unit: "°C", max_minutes_outside}``), the
sampling allowance (``sampling_minutes``: the longest gap between two readings) and, optionally,
the phase's number inputs the logger's lowest and highest readings fill (``lowest``,
``highest``): they are recorded as the phase's values, so their limits, deviations and CPV work
as for a typed value, and nobody types them.

An import (:meth:`TemperatureLogs.import_file`) reads the file (:func:`mes.core.logger.parse_logger_csv`),
compares it with the window (:func:`mes.core.logger.check_window`) and appends one
``logger_imported`` entry (SHA-256 and name of the file as received, readings, first and last
time, lowest, highest, minutes outside, each excursion, the window), then the values, then — when
the time outside is beyond the window's allowance — a deviation (``temperature_excursion``).
A refused file writes nothing. One import per item: a wrong file is a deviation to report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

from mes.core.audit import Actor
from mes.core.batch.machines import DeviationCategory, EntryKind
from mes.core.batch.state import Outcome
from mes.core.errors import InvalidInput, LoggerFileRefused, NotFound
from mes.core.logger import Window, check_window, compact_curve, parse_logger_csv
from mes.core.phases.base import Items, Lines, Missing, PageForm, PhaseKind, Spec, whole_item
from mes.core.phases.value_words import local_at, who_text
from mes.core.phases.words import quoted
from mes.core.recipe.items import items_of
from mes.core.recipe.parts import listed, repeated
from mes.core.recipe.problems import Path
from mes.core.text import one_line

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

    from mes.core.batch import Batch, Operator, PhasePlan, PhaseState
    from mes.core.ledger import SealedEntry
    from mes.core.recipe.checker import PhaseInfo, RecipeChecker

__all__ = [
    "LOGGER_IMPORTED",
    "TemperatureLogs",
    "curve_caption",
    "excursion_import",
    "imported_text",
]

LOGGER_IMPORTED = EntryKind.LOGGER_IMPORTED.value
MAX_FILE_NAME = 200


@dataclass(frozen=True)
class LoggerLine:
    """A logger import as the printed record shows it."""

    text: str
    css: str = ""
    changes: tuple[Any, ...] = ()


def imported_text(payload: Mapping[str, Any]) -> str:
    """A logger import in words: file, readings, lowest/highest, time outside the window."""
    window = payload["window"]
    excursions = payload.get("excursions") or []
    shown = "; ".join(
        f"{e['side']} from {e['start']} to {e['end']} ({e['minutes']} min, extreme {e['extreme']} °C)"
        for e in excursions[:5]
    )
    more = f" and {len(excursions) - 5} more" if len(excursions) > 5 else ""
    return (
        f"logger file {quoted(payload['file_name'])} (SHA-256 {payload['sha256']}): "
        f"{payload['rows']} readings from {payload['first']} to {payload['last']}, lowest "
        f"{payload['min']} °C, highest {payload['max']} °C, {payload['minutes_outside']} min "
        f"outside {window['low']}–{window['high']} °C (at most {window['max_minutes_outside']} "
        f"min allowed)" + (f"; excursions: {shown}{more}" if excursions else "")
    )


def curve_caption(payload: Mapping[str, Any]) -> str:
    """The words under a drawn logger curve: the file, its window, how the curve was reduced."""
    curve = payload.get("curve") or {}
    window = payload["window"]
    return (
        f"Logger curve of {quoted(payload['file_name'])} (SHA-256 {payload['sha256'][:16]}…), "
        f"window {window['low']}–{window['high']} °C: {len(curve.get('points') or [])} of "
        f"{payload['rows']} readings drawn ({curve.get('rule', '')}); the full file is kept at "
        "the spoke."
    )


def excursion_import(batch: Batch, deviation_id: str) -> Mapping[str, Any] | None:
    """The logger import a TEMPERATURE_EXCURSION deviation was raised for (None otherwise).

    Its ``logger_imported`` payload as the phase holds it, with ``log`` and ``phase``; an entry
    recorded before the compact curve existed has no ``curve`` (the spoke draws it from the file).
    For a custody transfer's file (no phase): its findings with ``file_name`` and ``sha256``.
    """
    d = batch.state.deviations[deviation_id]
    if d.category != DeviationCategory.TEMPERATURE_EXCURSION:
        return None
    if d.phase is None:  # a custody transfer's logger file: the entry just before it
        for transfer in batch.state.custody:
            logger = transfer.get("logger") or {}
            if transfer["seq"] == d.seq - 1 and logger.get("findings"):
                return {
                    **logger["findings"],
                    "file_name": logger["file_name"],
                    "sha256": logger["sha256"],
                }
        return None
    plan = batch.procedure.phases[d.phase]
    done_here = batch.state.phases[d.phase].kinds.get("temperature_log") or {}
    for item in plan.spec.get("temperature_log") or []:
        done = done_here.get(item["id"])
        if done and not done["within_window"] and d.description.startswith(item["label"]):
            return done
    return None


def _rounded(value: Decimal, decimals: int | None, rounding: str) -> str:
    """A reading as a value of ``decimals`` places, rounded away from the window's inside."""
    if decimals is None:
        return str(value)
    return str(value.quantize(Decimal(1).scaleb(-decimals), rounding=rounding))


class TemperatureLogs(PhaseKind):
    """Logger files imported in a phase, each checked against its validated window."""

    key = "temperature_log"
    title = "Temperature logger"
    entry_kinds = frozenset({LOGGER_IMPORTED})
    on_screen = 5  # before the values it fills
    signed_as = "temperature_log"
    # its part of the recipe format is in the published schema (recipe.schema.json)

    # -- the recipe ------------------------------------------------------------------------

    def check(self, checker: RecipeChecker, phase_path: Path, phase: Spec, info: PhaseInfo) -> None:
        """Ids unique; low below high; ``lowest``/``highest`` name this phase's °C number inputs."""
        inputs = {i.id: i.spec for i in items_of(phase.get("inputs"))}
        seen: set[str] = set()
        filled: set[str] = set()
        for path, item in listed(phase_path, phase, self.key):
            if repeated(seen, item["id"]):
                checker.problem(path, f"temperature log '{item['id']}' is listed twice")
            window = item["window"]
            if window["low"] >= window["high"]:
                checker.problem(
                    (*path, "window", "low"),
                    f"the window's low ({window['low']} °C) must be below its high "
                    f"({window['high']} °C)",
                )
            for end in ("lowest", "highest"):
                target = item.get(end)
                if target is None:
                    continue
                spec = inputs.get(target)
                if spec is None or spec.get("type") != "number" or spec.get("unit") != "°C":
                    checker.problem(
                        (*path, end),
                        f"'{end}: {target}' must name a number input of this phase in °C",
                    )
                elif repeated(filled, target):
                    checker.problem((*path, end), f"input '{target}' is filled twice by the logger")

    def compile(self, phase: Spec) -> list[dict[str, Any]]:
        """Each item with its optional ``lowest``/``highest`` filled in (None)."""
        return [
            {"lowest": None, "highest": None, **item, "window": dict(item["window"])}
            for item in phase.get(self.key) or []
        ]

    def imported(self, phase: PhaseState) -> Mapping[str, Any]:
        """The imports recorded in a phase, by logger id (read only: nothing is added)."""
        return phase.kinds.get(self.key) or {}

    @staticmethod
    def filled_inputs(phase_spec: Spec) -> dict[str, str]:
        """The phase's inputs a logger fills: input id → the logger item's label."""
        return {
            item[end]: item["label"]
            for item in phase_spec.get("temperature_log") or []
            for end in ("lowest", "highest")
            if item.get(end)
        }

    # -- recording ---------------------------------------------------------------------------

    def import_file(
        self,
        batch: Batch,
        phase_id: str,
        log_id: str,
        file_name: str,
        data: bytes,
        who: Operator,
        at: datetime,
        terminal: str | None,
    ) -> Outcome:
        """Import a logger file into a phase: its entry, its values, its deviation (see module).

        Refused, with nothing written: a file that is not in the accepted form
        (:class:`LoggerFileRefused`, naming the line), a phase that declares no such logger, a
        second import for the same logger, and every rule of recording in the phase.
        """
        plan = batch.procedure.phase(phase_id)
        item = next((i for i in self.items(plan.spec) if i["id"] == log_id), None)
        if item is None:
            raise NotFound(
                f"Phase '{plan.name}' declares no temperature logger '{log_id}'.",
                what_to_do="Upload the file on the phase that asks for it.",
            )
        name = one_line(file_name, "The file name", max_length=MAX_FILE_NAME) or "logger.csv"
        window = Window.from_recipe(item["window"])
        series = parse_logger_csv(data, max_gap_minutes=item["sampling_minutes"])
        check = check_window(series, window)
        already = self.imported(batch.state.phases[phase_id]).get(log_id)
        if already is not None:
            raise LoggerFileRefused(
                f"The logger file for {item['label']} is already imported "
                f"({quoted(already['file_name'])}, SHA-256 {already['sha256'][:12]}…).",
                what_to_do="If it was the wrong file, report a deviation saying so; nothing "
                "was recorded.",
            )
        mark = len(batch.new_entries)
        batch.start_with_entry(phase_id, who, at, terminal)  # type: ignore[attr-defined]
        plan, _phase = batch._in_progress(phase_id)  # type: ignore[attr-defined]
        batch._performer_checks(plan, who, f"import the logger file in '{plan.name}'")  # type: ignore[attr-defined]
        payload = {
            "phase": phase_id,
            "log": log_id,
            "file_name": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "header": check_header(data),
            **check.as_payload(),
            "curve": compact_curve(series, check),  # so the hub draws it without the file
        }
        batch._append(LOGGER_IMPORTED, payload, who.actor, at, terminal)  # type: ignore[attr-defined]
        values = {}
        for end, value, rounding in (
            ("lowest", check.lowest, ROUND_FLOOR),
            ("highest", check.highest, ROUND_CEILING),
        ):
            if item.get(end):
                spec = plan.value_spec(item[end])
                values[item[end]] = _rounded(value, (spec or {}).get("decimals"), rounding)
        if values:
            batch.record_values(phase_id, values, who, at, terminal, from_logger=True)  # type: ignore[attr-defined]
        if not check.within:
            batch._raise_deviation(  # type: ignore[attr-defined]
                DeviationCategory.TEMPERATURE_EXCURSION,
                f"{item['label']}: {check.minutes_outside} min outside "
                f"{window.low}–{window.high} °C (at most {window.max_minutes_outside} min "
                f"allowed); lowest {check.lowest} °C, highest {check.highest} °C, "
                f"{len(check.excursions)} excursion(s). The logger curve is attached.",
                who.actor,
                at,
                terminal,
                phase_id,
            )
        return Outcome(tuple(batch.new_entries[mark:]))

    def apply(
        self, batch: Batch, phase: PhaseState, payload: Mapping[str, Any], entry: SealedEntry
    ) -> str:
        self.recorded(phase)[payload["log"]] = {
            **payload,
            "seq": entry.seq,
            "at": entry.body["at"],
            "by": Actor.from_dict(entry.body["actor"]),
        }
        return f"imported the logger file {quoted(payload['file_name'])}"

    def missing(self, batch: Batch, plan: PhasePlan, phase: PhaseState) -> list[str]:
        imported = self.imported(phase)
        return [
            Missing(f"{item['label']} is not imported", f"logger:{item['id']}")
            for item in self.items(plan.spec)
            if item["id"] not in imported
        ]

    def signed(self, plan: PhasePlan, phase: PhaseState) -> Any:
        """The file's hash and findings per logger (None for a phase without a logger)."""
        if not self.items(plan.spec):
            return None
        return {
            log: {k: v for k, v in imported.items() if k not in ("seq", "at", "by", "curve")}
            for log, imported in sorted(self.imported(phase).items())
        }

    # -- words -----------------------------------------------------------------------------

    def entry_text(self, batch: Batch, kind: str, payload: Mapping[str, Any]) -> str:
        return f"imported {imported_text(payload)} in {payload['phase']}"

    def page(self, batch: Batch, plan: PhasePlan, phase: PhaseState, form: PageForm) -> Items:
        imported = self.imported(phase)
        items = []
        for item in self.items(plan.spec):
            done = imported.get(item["id"])
            items.append(
                {
                    **item,
                    "key": f"logger:{item['id']}",
                    "upload": True,
                    "window_text": Window.from_recipe(item["window"]).in_words(),
                    "error": form.field_errors.get(f"logger:{item['id']}"),
                    "imported": None
                    if done is None
                    else {
                        **{k: v for k, v in done.items() if k != "by"},
                        "text": imported_text(done),
                        "by": who_text(done["by"]),
                        "at_text": local_at(done["at"], form.time_zone),
                    },
                }
            )
        return items

    def printed(self, batch: Batch, plan: PhasePlan, phase: PhaseState, how: Any) -> Lines:
        return tuple(
            LoggerLine(
                f"Temperature logger {imported_text(done)} — {who_text(done['by'])}, "
                f"{local_at(done['at'], how.time_zone)}",
                css="" if done.get("within_window") else " st-action",
            )
            for _log, done in sorted(self.imported(phase).items())
        )

    def batchml_information(self, element: ET.Element, phase: Spec) -> None:
        from mes.core import batchml as bml

        for item in self.items(phase):
            window = Window.from_recipe(item["window"])
            bml._information(
                element,
                f"temperature_log.{item['id']}",
                [window.in_words(), f"sampling at most every {item['sampling_minutes']} min"],
                description=item["label"],
            )

    def diff(self, differ: Any, place: Any, before: list[Spec], after: list[Spec]) -> None:
        for old, new in differ.paired(before, after, lambda i: i["id"]):
            item = new or old
            name = f"temperature logger {quoted(item['label'])}"
            shown = Window.from_recipe(item["window"]).in_words()
            if whole_item(
                differ, place, name, old, new, shown, f"{place.subject}: {name} {{kind}}."
            ):
                continue
            for key, label in (
                ("window", "window"),
                ("sampling_minutes", "sampling allowance (min)"),
                ("lowest", "input filled with the lowest reading"),
                ("highest", "input filled with the highest reading"),
            ):
                a, b = old.get(key), new.get(key)  # type: ignore[union-attr]
                if key == "window":
                    a = Window.from_recipe(a).in_words()
                    b = Window.from_recipe(b).in_words()
                differ.value(place, f"{self.key}.{item['id']}.{key}", f"{name} {label}", a, b,
                             None if a is None else str(a), None if b is None else str(b))  # fmt: skip


def check_header(data: bytes) -> str:
    """The header of an accepted file as written (the file was parsed already)."""
    try:
        first = data.decode("utf-8-sig").split("\n", 1)[0].strip("\r")
    except UnicodeDecodeError:  # pragma: no cover - parse_logger_csv refused it first
        raise InvalidInput("The logger file is not UTF-8 text.") from None
    return first[:80]
