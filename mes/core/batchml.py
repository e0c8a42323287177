"""A master recipe as B2MML/BatchML 7.0.1 XML (``BatchInformation/MasterRecipe``), for exchange.

ISA-88 / IEC 61512 in MESA's XML: the compiled recipe (:func:`mes.core.recipe.compile_recipe`)
becomes one ``MasterRecipe`` whose ``RecipeElement`` hierarchy is UnitProcedure → Operation →
Phase, with ``ProcedureLogic`` steps and links at each level. The mapping, element by element:

- recipe code, version, title and description → ``ID``, ``Version``, ``Description``; the change
  reason → ``Header/ModificationLog``; approvals → ``Header/ApprovalHistory``; the lifecycle
  state → ``Header/Status`` as ``<Status OtherValue="Approved">Other</Status>`` (BatchStatusType
  only knows batch states such as Running or Held).
- an input → a ``Parameter`` (ParameterType ProcessParameter, ParameterSubType its input type and
  required/optional) whose ``Value`` is External (the operator enters it during the batch), with
  one nested ``Parameter`` per specification item — ``target``, ``alert_low``, ``alert_high``,
  ``action_low``, ``action_high`` (Constant, in the input's unit), ``decimals``, ``options``
  (one ``ValueString`` per option), ``pattern`` and ``help``. Nested parameter IDs are
  ``<input>.<item>``, e.g. ``viability.action_low``.
- a calculation → a ``Parameter`` whose ``Value`` is an Equation holding the expression, with the
  same nested limit parameters.
- a material → a ``Parameter`` of ParameterType ProcessInput: ID the material code,
  Description its name, Value the quantity in its unit.
- equipment → ``EquipmentRequirement`` (ID the equipment class, Description its label).
- a value's criticality and a datetime input's milestone (when declared) → nested ``Parameter``
  items ``<value>.criticality`` (``cpp``/``cqa``/``ipc``, its words in ``Description``) and
  ``<input>.milestone`` (the milestone's name, its title in ``Description``).
- the turnaround target → ``OtherInformation`` ``turnaround.target_hours`` and one
  ``turnaround.leg.<from>.<to>`` per leg, in hours (Rec 20 HUR).
- what BatchML has no element for (performing and verifying roles, the condition, timers,
  identity checks, the chain of identity, modality, expected duration, content hash) →
  ``OtherInformation`` entries with explicit IDs.

Units are written as their UN/CEFACT Recommendation 20 code where one exists
(``<UnitOfMeasure listID="Rec20" listAgencyID="6" name="°C">CEL</UnitOfMeasure>``), otherwise as
written in the recipe. Element order follows the XSD sequences; the same input always gives the
same bytes. Annex 11 §4.8 / §17: an export keeps the recipe's values and meaning, and names its
content hash so the archive can be checked against the approved version.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

from mes.core import phases
from mes.core.canonical import content_hash
from mes.core.critical import Criticality, milestone, point_title
from mes.core.ordering import PhaseOrdering
from mes.core.units import UNITS

NAMESPACE = "http://www.mesa.org/xml/B2MML"

DATA_TYPES = {
    "number": "decimal",
    "integer": "integer",
    "text": "string",
    "choice": "string",
    "yes_no": "boolean",
    "datetime": "dateTime",
    "barcode": "string",
    "calculation": "decimal",
}
LIMITS = ("target", "alert_low", "alert_high", "action_low", "action_high")

# XML 1.0 cannot carry these characters at all, escaped or not.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

Element = Mapping[str, Any]


def master_recipe_batchml(
    compiled: Mapping[str, Any],
    *,
    status: str | None = None,
    effective_from: str | None = None,
    approvals: Sequence[tuple[str, str]] = (),
    version_date: str | None = None,
) -> bytes:
    """The compiled master recipe as a UTF-8 BatchML ``BatchInformation`` document.

    ``status`` is the recipe's lifecycle state (e.g. ``approved``), ``effective_from``,
    ``version_date`` and each approval's date are ISO 8601 date-times with a time zone;
    ``approvals`` are (person, date-time) pairs, the latest date becoming FinalApprovalDate.
    Valid against ``BatchML-BatchInformation.xsd`` (B2MML 7.0.1); deterministic bytes.
    Raises ValueError for a date-time without a time zone (21 CFR 11.10(e): times are
    unambiguous).
    """
    # Plain tag names under a default xmlns: ElementTree's default_namespace option refuses the
    # unqualified attributes (OtherValue, listID) that B2MML uses.
    root = ET.Element("BatchInformation", {"xmlns": NAMESPACE})
    recipe = _child(root, "MasterRecipe")
    version = str(compiled["version"])
    _text(recipe, "ID", compiled["recipe_code"])
    _text(recipe, "Version", version)
    if version_date is not None:
        _text(recipe, "VersionDate", _date_time(version_date, "version_date"))
    _text(recipe, "Description", compiled["title"])
    if compiled.get("description"):
        _text(recipe, "Description", compiled["description"])
    _header(recipe, compiled, version, status, effective_from, approvals, version_date)
    _steps(recipe, compiled["unit_procedures"], version)
    for unit in compiled["unit_procedures"]:
        _unit_procedure(recipe, unit, version)
    _recipe_information(recipe, compiled)
    ET.indent(root)
    xml = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    # A carriage return in element text would be read back as a line feed (XML end-of-line
    # handling); as a character reference it survives. ElementTree writes none of its own.
    return xml.replace(b"\r", b"&#13;")


# --- building blocks ------------------------------------------------------------------------


def _child(
    parent: ET.Element, name: str, attributes: Mapping[str, str] | None = None
) -> ET.Element:
    return ET.SubElement(parent, name, {k: _clean(v) for k, v in (attributes or {}).items()})


def _text(
    parent: ET.Element, name: str, text: str, attributes: Mapping[str, str] | None = None
) -> ET.Element:
    element = _child(parent, name, attributes)
    element.text = _clean(text)
    return element


def _clean(text: str) -> str:
    """Text XML 1.0 can carry: a character it cannot (a control character) becomes U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _other(parent: ET.Element, name: str, value: str) -> ET.Element:
    """A value outside the element's enumeration: ``<Name OtherValue="value">Other</Name>``."""
    return _text(parent, name, "Other", {"OtherValue": value})


def _number(value: float | int) -> str:
    """A limit or quantity as a decimal literal: 80, 0.5, 1000000000 (never 1e+09)."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _condition_value(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _date_time(text: str, what: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} {text!r} has no time zone; give one, e.g. 2025-01-31T09:00:00Z")
    return moment.isoformat()


def _unit(parent: ET.Element, unit: str | None) -> None:
    """UnitOfMeasure: the UN/CEFACT Rec 20 code when there is one (the unit as written in ``name``)."""
    if unit is None:
        _text(parent, "UnitOfMeasure", "")
        return
    code = UNITS.get(unit, unit)
    if code == unit:
        _text(parent, "UnitOfMeasure", unit)
    else:
        _text(parent, "UnitOfMeasure", code, {"listID": "Rec20", "listAgencyID": "6", "name": unit})


def _value(
    parent: ET.Element,
    strings: Sequence[str],
    interpretation: str,
    data_type: str,
    unit: str | None = None,
) -> ET.Element:
    """A BatchML Value: ValueString+, DataInterpretation, DataType, UnitOfMeasure (in that order)."""
    value = _child(parent, "Value")
    for string in strings:
        _text(value, "ValueString", string)
    _text(value, "DataInterpretation", interpretation)
    _text(value, "DataType", data_type)
    _unit(value, unit)
    return value


def _steps(
    parent: ET.Element,
    elements: Sequence[Element],
    version: str,
    ordering: str = PhaseOrdering.SEQUENCE,
) -> None:
    """ProcedureLogic: links first, then one step per element (xsd:sequence Link*, Step*).

    In sequence, a control link joins each step to the next; in parallel, one divergent link
    starts every step and one convergent link joins them; in any order, one link (type Other,
    AnyOrder) reaches every step.
    """
    logic = _child(parent, "ProcedureLogic")
    ids = [element["id"] for element in elements]
    if ordering == PhaseOrdering.SEQUENCE:
        for number, (first, following) in enumerate(pairwise(ids), start=1):
            _link(logic, f"L{number}", [first], [following], "ControlLink")
    elif ordering == PhaseOrdering.PARALLEL:
        _link(logic, "L1", [], ids, "ParallelDivergent")
        _link(logic, "L2", ids, [], "ParallelConvergent")
    else:
        _link(logic, "L1", [], ids, "AnyOrder")
    for element_id in ids:
        step = _child(logic, "Step")
        _text(step, "ID", element_id)
        _text(step, "RecipeElementID", element_id)
        _text(step, "RecipeElementVersion", version)


def _link(
    logic: ET.Element, link_id: str, sources: Sequence[str], targets: Sequence[str], link_type: str
) -> None:
    link = _child(logic, "Link")
    _text(link, "ID", link_id)
    for source in sources:
        from_id = _child(link, "FromID")
        _text(from_id, "FromIDValue", source)
        _text(from_id, "FromType", "Step")
        _text(from_id, "IDScope", "Internal")
    for target in targets:
        to_id = _child(link, "ToID")
        _text(to_id, "ToIDValue", target)
        _text(to_id, "ToType", "Step")
        _text(to_id, "IDScope", "Internal")
    if link_type == "AnyOrder":
        _other(link, "LinkType", link_type)
    else:
        _text(link, "LinkType", link_type)
    _text(link, "Depiction", "LineAndArrow")


def _information(
    parent: ET.Element,
    info_id: str,
    strings: Sequence[str],
    *,
    description: str | None = None,
    interpretation: str = "Constant",
    data_type: str = "string",
    unit: str | None = None,
) -> None:
    """OtherInformation: ID, Value, Description (xsd:sequence order)."""
    info = _child(parent, "OtherInformation")
    _text(info, "ID", info_id)
    _value(info, strings, interpretation, data_type, unit)
    if description is not None:
        _text(info, "Description", description)


# --- the master recipe ----------------------------------------------------------------------


def _header(
    recipe: ET.Element,
    compiled: Mapping[str, Any],
    version: str,
    status: str | None,
    effective_from: str | None,
    approvals: Sequence[tuple[str, str]],
    version_date: str | None,
) -> None:
    header = _child(recipe, "Header")
    log = _child(header, "ModificationLog")
    if version_date is not None:
        _text(log, "ModifiedDate", _date_time(version_date, "version_date"))
    _text(log, "Description", compiled["change_reason"])
    if approvals:
        dated = [(person, _date_time(when, "approval date")) for person, when in approvals]
        history = _child(header, "ApprovalHistory")
        final = max(dated, key=lambda approval: datetime.fromisoformat(approval[1]))[1]
        _text(history, "FinalApprovalDate", final)
        _text(history, "Version", version)
        for person, when in dated:
            approval = _child(history, "IndividualApproval")
            _text(approval, "ApprovedBy", person)
            _text(approval, "ApprovalDate", when)
    if effective_from is not None:
        _text(header, "EffectiveDate", _date_time(effective_from, "effective_from"))
    _text(header, "ProductID", compiled["product"]["code"])
    _text(header, "ProductName", compiled["product"]["name"])
    if status is not None:
        _other(header, "Status", status.replace("_", " ").capitalize())


def _unit_procedure(parent: ET.Element, unit: Element, version: str) -> None:
    element = _recipe_element(
        parent, unit["id"], version, [unit["name"], unit["description"]], "UnitProcedure"
    )
    _steps(element, unit["operations"], version)
    for operation in unit["operations"]:
        _operation(element, operation, version)


def _operation(parent: ET.Element, operation: Element, version: str) -> None:
    texts = [operation["name"], operation["description"]]
    element = _recipe_element(parent, operation["id"], version, texts, "Operation")
    _steps(element, operation["phases"], version, operation["ordering"])
    for phase in operation["phases"]:
        _phase(element, phase, version)
    _information(element, "ordering", [operation["ordering"]])


def _recipe_element(
    parent: ET.Element, element_id: str, version: str, texts: Sequence[str | None], kind: str
) -> ET.Element:
    element = _child(parent, "RecipeElement")
    _text(element, "ID", element_id)
    _text(element, "Version", version)
    for text in texts:
        if text:
            _text(element, "Description", text)
    _text(element, "RecipeElementType", kind)
    return element


def _phase(parent: ET.Element, phase: Element, version: str) -> None:
    """A phase: name and instructions, equipment, parameters, then what BatchML has no slot for.

    Each phase kind (:mod:`mes.core.phases`) writes its own elements, in the xsd:sequence order
    of a RecipeElement: every kind's requirements, then every kind's parameters.
    """
    texts = [phase["name"], phase["instructions"]]
    element = _recipe_element(parent, phase["id"], version, texts, "Phase")
    for kind in phases.KINDS.values():
        kind.batchml_requirements(element, phase)
    for kind in phases.KINDS.values():
        kind.batchml_parameters(element, phase)
    _phase_information(element, phase)


def _specification(parameter: ET.Element, spec: Element) -> None:
    """Target and limits in the value's unit, then the number of decimals."""
    data_type = "integer" if spec["type"] == "integer" else "decimal"
    for name in LIMITS:
        if spec.get(name) is not None:
            _item(parameter, spec, name, [_number(spec[name])], data_type, spec["unit"])
    if spec.get("decimals") is not None:
        _item(parameter, spec, "decimals", [str(spec["decimals"])], "integer")


def _item(
    parameter: ET.Element,
    spec: Element,
    name: str,
    strings: Sequence[str],
    data_type: str,
    unit: str | None = None,
    description: str | None = None,
) -> None:
    """A nested Parameter ``<value id>.<name>`` holding one item of a value's specification."""
    item = _child(parameter, "Parameter")
    _text(item, "ID", f"{spec['id']}.{name}")
    if description is not None:
        _text(item, "Description", description)
    _text(item, "ParameterType", "ProcessParameter")
    _text(item, "ParameterSubType", name)
    _value(item, strings, "Constant", data_type, unit)


def _critical(parameter: ET.Element, spec: Element) -> None:
    """The value's criticality (``<value id>.criticality``) and milestone, when declared."""
    if spec.get("criticality"):
        words = Criticality(spec["criticality"]).words
        _item(parameter, spec, "criticality", [spec["criticality"]], "string", None, words)
    if spec.get("milestone"):
        known = milestone(spec["milestone"])
        title = known.title if known else None
        _item(parameter, spec, "milestone", [spec["milestone"]], "string", None, title)


def _phase_information(element: ET.Element, phase: Element) -> None:
    _information(element, "perform", [phase["perform"]], description="Role that performs the phase")
    if phase["verify"] is not None:
        _information(
            element,
            "verify",
            [phase["verify"]],
            description="Role of the second person who verifies",
        )
    condition = phase["when"]
    if condition is not None:
        values = [_condition_value(v) for v in condition["in"]]
        data_type = "boolean" if all(isinstance(v, bool) for v in condition["in"]) else "string"
        _information(
            element,
            f"when.{condition['input']}",
            values,
            description=f"The phase runs only when {condition['input']} is one of these values",
            interpretation="Reference",
            data_type=data_type,
        )
    for kind in phases.KINDS.values():
        kind.batchml_information(element, phase)


def _recipe_information(recipe: ET.Element, compiled: Mapping[str, Any]) -> None:
    for field in compiled["chain_of_identity"]:
        _information(
            recipe, f"chain_of_identity.{field['id']}", [field["kind"]], description=field["label"]
        )
        if field["pattern"] is not None:
            _information(recipe, f"chain_of_identity.{field['id']}.pattern", [field["pattern"]])
    _information(recipe, "product.modality", [compiled["product"]["modality"]])
    _turnaround(recipe, compiled)
    if compiled["expected_duration_seconds"] is not None:
        _information(
            recipe,
            "expected_duration",
            [_number(compiled["expected_duration_seconds"])],
            data_type="decimal",
            unit="s",
        )
    _information(recipe, "recipe_format", [compiled["format"]])
    _information(
        recipe,
        "content_hash",
        [content_hash(dict(compiled))],
        description="SHA-256 of the RFC 8785 canonical JSON of the compiled recipe",
    )


def _turnaround(recipe: ET.Element, compiled: Mapping[str, Any]) -> None:
    """The turnaround target, whole and per leg, in hours (only when the recipe declares one)."""
    turnaround = compiled.get("turnaround")
    if not turnaround:
        return
    if turnaround["target_hours"] is not None:
        _information(
            recipe,
            "turnaround.target_hours",
            [_number(turnaround["target_hours"])],
            description="Turnaround target, vein to vein",
            data_type="decimal",
            unit="h",
        )
    units = {unit["id"]: unit["name"] for unit in compiled["unit_procedures"]}
    for leg in turnaround["legs"]:
        start, end = point_title(leg["from"], units), point_title(leg["to"], units)
        _information(
            recipe,
            f"turnaround.leg.{leg['from']}.{leg['to']}",
            [_number(leg["target_hours"])],
            description=f"Turnaround target from {start} to {end}",
            data_type="decimal",
            unit="h",
        )
