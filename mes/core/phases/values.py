"""Values and calculations: what the operator enters, typed and within limits, and what follows.

A value outside its action limits is recorded as entered and raises a deviation, which needs a
comment before the phase is signed; a calculation is worked out (in the recipe's order) as soon
as every value it names is recorded, and again after a correction. Both keep every earlier value
(ALCOA+: a correction names the entry it corrects, with its reason).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from mes.core.audit import Actor
from mes.core.batch.machines import DeviationCategory, DeviationStatus, EntryKind
from mes.core.batch.state import DeviationState, Outcome, Recorded
from mes.core.critical import Criticality, milestone
from mes.core.dates import date_time_pattern
from mes.core.errors import InvalidInput, MesError
from mes.core.limits import (
    InvalidValue,
    LimitStatus,
    has_limits,
    limit_status,
    limits_text,
    parse_value,
    status_words,
)
from mes.core.phases.base import (
    Acting,
    Data,
    Items,
    Lines,
    Missing,
    PageForm,
    PhaseKind,
    Printing,
    Spec,
    whole_item,
)
from mes.core.phases.value_words import (
    ChangeLine,
    ValueLine,
    batchml_parameter,
    local_at,
    local_input_value,
    phase_name,
    recorded_on_page,
    shown_value,
    value_fields,
    value_summary,
    who_text,
)
from mes.core.phases.words import (
    INPUT_TYPES,
    limit_texts,
    quoted,
)
from mes.core.recipe.items import items_of
from mes.core.recipe.numbers import LIMIT_FIELDS, NUMERIC_INPUTS
from mes.core.recipe.parts import text_or_none
from mes.core.recipe.problems import Path
from mes.core.recipe.schema import known_type
from mes.core.text import free_text

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

    from mes.core.batch import Batch, Operator, PhasePlan, PhaseState
    from mes.core.ledger import SealedEntry
    from mes.core.recipe.checker import PhaseInfo, RecipeChecker


# --- recording ---------------------------------------------------------------------------------


def record_values(
    batch: Batch,
    phase_id: str,
    raw: Mapping[str, Any],
    who: Operator,
    at: datetime,
    terminal: str | None,
    comments: Mapping[str, str] | None = None,
    *,
    from_logger: bool = False,
) -> Outcome:
    """Record the values entered for a phase in progress (unchanged ones are not re-recorded).

    A value a temperature logger fills (``temperature_log``'s ``lowest``/``highest``) is
    refused unless ``from_logger`` (the logger import records it).

    Every value is checked for its type first; if any is malformed nothing is recorded and
    :class:`InvalidValue` lists them all. A value outside its action limits is recorded as
    entered and raises a deviation; a comment given with it is attached at once. A comment
    given for a value already recorded is its open deviation's comment (one box per deviation:
    what was typed under the value is never ignored). The phase's calculations are worked out
    when the values they need are there.
    """
    plan, phase = batch._in_progress(phase_id)
    batch._performer_checks(plan, who, f"record values in '{plan.name}'")
    parsed: dict[str, Any] = {}
    problems: dict[str, str] = {}
    kept = _comments(plan, comments or {}, problems)
    for spec in plan.spec["inputs"]:
        if spec["id"] not in raw:
            continue
        entered = raw[spec["id"]]
        if (entered is None or entered == "") and spec["id"] not in phase.values:
            continue  # left empty and never recorded: nothing to record yet
        try:
            parsed[spec["id"]] = parse_value(
                {**spec, "required": True}, entered, at=at, time_zone=batch.time_zone
            )
        except InvalidInput as err:
            problems[spec["id"]] = str(err)
    for unknown in sorted(set(raw) - {s["id"] for s in plan.spec["inputs"]}):
        problems[unknown] = f"'{plan.name}' has no input '{unknown}'."
    if not from_logger:  # the evidence's values are read from the file, never typed
        from mes.core.phases.temperature_log import TemperatureLogs

        for value_id, logger in TemperatureLogs.filled_inputs(plan.spec).items():
            if str(raw.get(value_id) or "").strip():
                problems[value_id] = f"'{value_id}' is read from the {logger}: import the file."
    if problems:
        raise InvalidValue(
            " ".join(problems.values()),
            what_to_do="Nothing was recorded: correct the values shown and save again.",
            fields=problems,
        )
    mark = len(batch.new_entries)
    for value_id, value in parsed.items():
        current = phase.values.get(value_id)
        if current is not None and current.value == value:
            continue
        record_one(batch, plan, value_id, value, who.actor, at, terminal, kept)
    batch._calculate(plan, who.actor, at, terminal, kept)
    for value_id, comment in kept.items():
        deviation = value_deviation(batch, plan.id, value_id)
        if (
            deviation is not None
            and deviation.status is DeviationStatus.OPEN
            and deviation.comment != comment  # attached above, or the same text again
        ):
            batch._append(
                EntryKind.DEVIATION_COMMENTED,
                {"deviation": deviation.id, "comment": comment},
                who.actor,
                at,
                terminal,
            )
    return Outcome(tuple(batch.new_entries[mark:]))


def value_deviation(batch: Batch, phase_id: str, value_id: str) -> DeviationState | None:
    """The newest deviation a value of the phase raised (outside its action limits), if any."""
    raised = [
        d for d in batch.state.deviations.values() if d.phase == phase_id and d.value_id == value_id
    ]
    return raised[-1] if raised else None


def record_one(
    batch: Batch,
    plan: PhasePlan,
    value_id: str,
    value: Any,
    actor: Actor,
    at: datetime,
    terminal: str | None,
    comments: Mapping[str, str],
    *,
    kind: EntryKind = EntryKind.VALUE_RECORDED,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Append one value's entry; outside its action limits, its deviation (and comment) too."""
    spec = plan.value_spec(value_id)
    assert spec is not None
    status = None
    if spec["type"] in ("number", "integer", "calculation") and value is not None:
        status = limit_status(value, spec).value
    payload = {
        "phase": plan.id,
        "value": value_id,
        "recorded": value,
        "unit": spec.get("unit"),
        "status": status,
        **(extra or {}),
    }
    batch._append(kind, payload, actor, at, terminal)
    if status == LimitStatus.ACTION.value:
        unit = f" {spec['unit']}" if spec.get("unit") else ""
        deviation = batch._raise_deviation(
            DeviationCategory.ACTION_LIMIT,
            f"{spec['label']} {value}{unit} is outside the action limits ({limits_text(spec)}).",
            actor,
            at,
            terminal,
            plan.id,
            value_id,
        )
        comment = comments.get(value_id)
        if comment:
            batch._append(
                EntryKind.DEVIATION_COMMENTED,
                {"deviation": deviation, "comment": comment},
                actor,
                at,
                terminal,
            )


def _comments(
    plan: PhasePlan, comments: Mapping[str, str], problems: dict[str, str]
) -> dict[str, str]:
    """The comments given with values, as kept; one too long is a problem, never cut."""
    labels = {spec["id"]: spec["label"] for spec in plan.spec["inputs"]}
    kept = {}
    for value_id, comment in comments.items():
        try:
            kept[value_id] = free_text(comment, f"{labels.get(value_id, value_id)}: the comment")
        except InvalidInput as err:
            problems[value_id] = str(err)
    return kept


def _history_item(rec: Recorded) -> dict[str, Any]:
    return {"value": rec.value, "status": rec.status, "seq": rec.seq, "at": rec.at, "by": rec.by}


# --- the two kinds -------------------------------------------------------------------------------


class _Values(PhaseKind):
    """What inputs and calculations share: a phase's recorded values, shown and printed alike."""

    what = "input"  # how the recipe comparison names one
    calculated = False

    def recorded(self, phase: PhaseState) -> dict[Any, Any]:
        return phase.values

    def apply(
        self, batch: Batch, phase: PhaseState, payload: Mapping[str, Any], entry: SealedEntry
    ) -> str:
        actor = Actor.from_dict(entry.body["actor"])
        earlier = phase.values.get(payload["value"])
        history, corrections = [], 0
        if earlier is not None:
            history = [*earlier.history, _history_item(earlier)]
            # a correction counts, and so does a calculation worked out again by a correction
            corrections = earlier.corrections + (
                1
                if payload.get("corrects") or entry.body["kind"] == EntryKind.VALUE_CORRECTED
                else 0
            )
        phase.values[payload["value"]] = Recorded(
            payload["recorded"],
            payload.get("status"),
            entry.seq,
            entry.body["at"],
            actor,
            history,
            corrections,
        )
        verb = "corrected" if entry.body["kind"] == EntryKind.VALUE_CORRECTED else "recorded"
        return f"{verb} {payload['value']}"

    def signed(self, plan: PhasePlan, phase: PhaseState) -> Any:
        return None  # both are in the values part, which the inputs kind signs

    def printed(self, batch: Batch, plan: PhasePlan, phase: PhaseState, how: Printing) -> Lines:
        lines = []
        for spec in self.items(plan.spec):
            recorded = phase.values.get(spec["id"])
            if recorded is None:
                continue
            versions = [*recorded.history, {"value": recorded.value, "seq": recorded.seq,
                                            "at": recorded.at, "by": recorded.by}]  # fmt: skip
            changes = []
            for before, after in pairwise(versions):
                reason, corrects = how.reasons.get(after["seq"], (None, None))
                changes.append(
                    ChangeLine(
                        original=shown_value(before["value"], spec, how.time_zone),
                        new=shown_value(after["value"], spec, how.time_zone),
                        by=who_text(after["by"]),
                        at_text=local_at(after["at"], how.time_zone),
                        reason=reason,
                        corrects=corrects,
                    )
                )
            status = recorded.status
            limits = limits_text(spec)
            lines.append(
                ValueLine(
                    label=spec["label"],
                    value_text=shown_value(recorded.value, spec, how.time_zone),
                    limits=limits,
                    status=status,
                    status_title=status_words(status, spec),
                    calculated=self.calculated,
                    by=who_text(recorded.by),
                    at_text=local_at(recorded.at, how.time_zone),
                    changes=tuple(changes),
                )
            )
        return tuple(lines)

    def lines(self, batch: Batch, plan: PhasePlan, phase: PhaseState, zone: str) -> list[str]:
        lines = []
        for spec in self.items(plan.spec):
            recorded = phase.values.get(spec["id"])
            if recorded is None:
                continue
            text = f"      {spec['label']}: {shown_value(recorded.value, spec, zone)}"
            if recorded.status:
                text += f" — {status_words(recorded.status, spec)}"
                if has_limits(spec):
                    text += f" ({limits_text(spec)})"
            if recorded.history:
                earlier = ", ".join(shown_value(i["value"], spec, zone) for i in recorded.history)
                text += f" (corrected; earlier: {earlier})"
            lines.append(text)
        return lines

    def entry_text(self, batch: Batch, kind: str, payload: Mapping[str, Any]) -> str:
        plan = batch.procedure.phases.get(payload["phase"])
        spec = plan.value_spec(payload["value"]) if plan else None
        label = (spec or {}).get("label", payload["value"])
        status = payload.get("status")
        status_text = f" ({status_words(status, spec or {}).lower()})" if status else ""
        shown = shown_value(payload["recorded"], spec, batch.time_zone)
        where = phase_name(batch, payload["phase"])
        if kind == EntryKind.VALUE_CORRECTED:
            return (
                f"corrected {label} to {shown}{status_text} in {where} — corrects entry "
                f"{payload['corrects']}; reason: {payload['reason']}"
            )
        verb = "calculated" if kind == EntryKind.CALCULATED else "recorded"
        how = f" from {payload['expression']}" if kind == EntryKind.CALCULATED else ""
        return f"{verb} {label} = {shown}{status_text}{how} in {where}"

    def in_words(self, phase: dict[str, Any], names: Any) -> None:
        for spec in phase[self.key]:
            if not self.calculated:
                spec["type_text"] = INPUT_TYPES.get(spec["type"], spec["type"])
            spec["limits"] = limit_texts(spec)
            criticality = spec.get("criticality")
            spec["criticality_text"] = Criticality(criticality).words if criticality else None
            known = milestone(spec["milestone"]) if spec.get("milestone") else None
            spec["milestone_text"] = known.title if known else spec.get("milestone")

    def diff(self, differ: Any, place: Any, before: list[Spec], after: list[Spec]) -> None:
        """Matched by ID: every property, limits with their units."""
        for old, new in differ.paired(before, after, lambda v: v["id"]):
            spec = new or old
            name = f"{self.what} '{spec['label']}'"
            shown = value_summary(spec)
            if whole_item(
                differ, place, name, old, new, shown, f"{place.subject}: {name} {{kind}} ({shown})."
            ):
                continue
            value_fields(differ, place, name, old, new)
        differ.order(
            place,
            f"{self.key} order",
            self.key,
            before,
            after,
            lambda v: v["id"],
            lambda v: quoted(v["label"]) or "",
        )


def _value_spec(value_id: str, spec: Mapping[str, Any], kind: str) -> dict[str, Any]:
    compiled = {
        "id": value_id,
        "label": spec["label"],
        "type": kind,
        "unit": spec.get("unit"),
        "decimals": spec.get("decimals"),
    }
    compiled.update({name: spec.get(name) for name in LIMIT_FIELDS})
    # only when declared: a recipe without them keeps its content identity
    compiled.update({name: spec[name] for name in ("criticality", "milestone") if name in spec})
    return compiled


class Inputs(_Values):
    """Values the operator enters: typed, with units, alert and action limits."""

    key = "inputs"
    title = "Values"
    field = "value"
    argument = "values"
    entry_kinds = frozenset({EntryKind.VALUE_RECORDED, EntryKind.VALUE_CORRECTED})
    on_screen = 40
    compiled_always = True
    signed_as = "values"

    def check(self, checker: RecipeChecker, phase_path: Path, phase: Spec, info: PhaseInfo) -> None:
        """Each input's fields fit its type; units known; limits in order and no finer than recorded."""
        for item in checker.ordered_items((*phase_path, "inputs"), phase.get("inputs")):
            path, spec = item.path, item.spec
            kind = spec["type"]
            if not known_type(kind):
                continue  # the schema names the unknown type; rules by type would only echo it
            if kind == "number" and "unit" not in spec:
                checker.problem(path, "a number input needs a unit", at=(*path, "type"))
            if "unit" in spec:
                checker.unit(path, spec["unit"], (*path, "unit"))
            if kind not in NUMERIC_INPUTS:
                for name in (*LIMIT_FIELDS, "decimals", "unit", "criticality"):
                    if name in spec:
                        checker.problem(
                            path,
                            f"{name} applies only to number and integer inputs, not {kind}",
                            at=(*path, name),
                        )
            elif kind == "integer" and "decimals" in spec:
                checker.problem(path, "an integer input has no decimals", at=(*path, "decimals"))
            checker.limits(path, spec)
            if kind in NUMERIC_INPUTS:
                checker.precision(path, spec, kind)
            if "milestone" in spec:
                checker.milestone(path, spec, kind)
            if kind == "choice":
                options = spec.get("options")
                if not options:
                    checker.problem(path, "a choice input needs options", at=(*path, "type"))
                elif len(set(options)) != len(options):
                    checker.problem(path, "options are repeated", at=(*path, "options"))
            elif "options" in spec:
                checker.problem(
                    path, f"options apply only to choice inputs, not {kind}", at=(*path, "options")
                )
            if "pattern" in spec:
                if kind not in ("text", "barcode"):
                    checker.problem(
                        path,
                        f"a pattern applies only to text and barcode inputs, not {kind}",
                        at=(*path, "pattern"),
                    )
                else:
                    checker.regex(path, spec["pattern"], (*path, "pattern"))

    def compile(self, phase: Spec) -> list[dict[str, Any]]:
        """The phase's inputs, in the order written."""
        inputs = []
        for item in items_of(phase.get("inputs")):
            spec = item.spec
            compiled = _value_spec(item.id, spec, spec["type"])
            compiled.update(
                required=spec.get("required", True),
                options=list(spec["options"]) if "options" in spec else None,
                pattern=spec.get("pattern"),
                help=text_or_none(spec.get("help")),
            )
            inputs.append(compiled)
        return inputs

    def parse(self, fields: Mapping[str, str]) -> dict[str, dict[Hashable, str]]:
        """``value:ID`` fields, and the deviation comments typed with them (``comment:ID``)."""
        values: dict[Hashable, str] = {}
        comments: dict[Hashable, str] = {}
        for key, value in fields.items():
            prefix, _, name = key.partition(":")
            if prefix == "value":
                values[name] = value
            elif prefix == "comment" and value.strip():
                comments[name] = value
        return {"values": values, "comments": comments}

    def record(
        self, batch: Batch, phase_id: str, data: Data, acting: Acting
    ) -> dict[str, MesError]:
        values = data.get("values")
        if not values:
            return {}
        comments = {str(k): str(v) for k, v in (data.get("comments") or {}).items()}
        who, at, terminal = acting.who, acting.at, acting.terminal
        try:
            record_values(batch, phase_id, values, who, at, terminal, comments)  # type: ignore[arg-type]
        except InvalidValue as err:
            raise InvalidValue(
                err.message,
                what_to_do=err.what_to_do,
                fields={self.field_key(k): v for k, v in err.fields.items()},
            ) from None
        return {}

    def missing(self, batch: Batch, plan: PhasePlan, phase: PhaseState) -> list[str]:
        return [
            Missing(f"{spec['label']} is not recorded", self.field_key(spec["id"]))
            for spec in self.items(plan.spec)
            if spec["required"] and spec["id"] not in phase.values
        ]

    def signed(self, plan: PhasePlan, phase: PhaseState) -> Any:
        return {vid: rec.value for vid, rec in sorted(phase.values.items())}

    def page(self, batch: Batch, plan: PhasePlan, phase: PhaseState, form: PageForm) -> Items:
        from mes.core.phases.temperature_log import TemperatureLogs

        from_logger = TemperatureLogs.filled_inputs(plan.spec)  # shown, not typed
        items = []
        for item in self.items(plan.spec):
            recorded = phase.values.get(item["id"])
            deviation = value_deviation(batch, plan.id, item["id"])
            key = self.field_key(item["id"])
            if key in form.entered:
                prefill = form.entered[key]
            elif recorded is not None and item["type"] == "datetime":
                prefill = local_input_value(recorded.value, form.time_zone)
            elif recorded is not None and isinstance(recorded.value, bool):
                prefill = "yes" if recorded.value else "no"
            else:
                prefill = "" if recorded is None or recorded.value is None else str(recorded.value)
            items.append(
                {
                    **item,
                    "key": key,
                    "limits": limits_text(item),
                    "prefill": prefill,
                    "recorded": None
                    if recorded is None
                    else recorded_on_page(recorded, item, form.time_zone),
                    "error": form.field_errors.get(key),
                    "from_logger": from_logger.get(item["id"]),
                    "comment_key": f"comment:{item['id']}",
                    # One box per deviation: what was typed, else the deviation's comment.
                    "comment": form.entered.get(
                        f"comment:{item['id']}", deviation.comment or "" if deviation else ""
                    ),
                    "deviation": None if deviation is None else deviation.id,
                    "comment_error": form.field_errors.get(f"comment:{item['id']}"),
                    # what a date and time field asks for, in the site's order
                    "date_format": date_time_pattern(form.time_zone)
                    if item["type"] == "datetime"
                    else None,
                }
            )
        return items

    def batchml_parameters(self, element: ET.Element, phase: Spec) -> None:
        from mes.core import batchml as bml

        for spec in self.items(phase):
            parameter = batchml_parameter(element, spec, spec["type"])
            bml._text(parameter, "ParameterSubType", "required" if spec["required"] else "optional")
            bml._value(parameter, [""], "External", bml.DATA_TYPES[spec["type"]], spec["unit"])
            bml._specification(parameter, spec)
            if spec["options"] is not None:
                bml._item(parameter, spec, "options", spec["options"], "string")
            if spec["pattern"] is not None:
                bml._item(parameter, spec, "pattern", [spec["pattern"]], "string")
            if spec["help"] is not None:
                bml._item(parameter, spec, "help", [spec["help"]], "string")
            bml._critical(parameter, spec)
