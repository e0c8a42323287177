"""Master recipe export as B2MML/BatchML 7.0.1 (Annex 11 §4.8: exported data keep their value
and meaning): every example recipe validates against MESA's XSDs with two independent engines
(xmlschema in Python, libxml2 through lxml), and names, limits, units and special characters
come through unchanged."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import yaml
from lxml import etree
from recipe_fixtures import FIXTURE_RECIPES, SMALL_RECIPE, SPECIAL_CHARACTERS_RECIPE

from mes.core.batchml import NAMESPACE, master_recipe_batchml
from mes.core.recipe import load_recipe
from mes.core.units import UNITS

REPO = Path(__file__).resolve().parents[2]
XSD_DIR = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "b2mml"
ENTRY_XSD = XSD_DIR / "BatchML-BatchInformation.xsd"
EXAMPLES = sorted((REPO / "recipes").glob("*.yaml"))
NS = {"b": NAMESPACE}
LIMITS = ("target", "alert_low", "alert_high", "action_low", "action_high")

RECIPES = [pytest.param(path, id=f"recipes/{path.name}") for path in EXAMPLES] + [
    pytest.param(name, id=name) for name in FIXTURE_RECIPES
]

APPROVED = {
    "status": "approved",
    "effective_from": "2025-02-01T00:00:00Z",
    "approvals": [
        ("Alice Author (QA)", "2025-01-30T10:00:00+01:00"),
        ("Bob Boss", "2025-01-31T09:00:00Z"),
    ],
    "version_date": "2025-01-29T08:00:00Z",
}


def compiled_recipe(source: Path | str) -> dict[str, Any]:
    if isinstance(source, Path):
        return load_recipe(source.read_bytes(), source.name).data
    return load_recipe(FIXTURE_RECIPES[source], f"{source}.yaml").data


def parsed(xml: bytes) -> ET.Element:
    return ET.fromstring(xml)  # our own output, parsed to check it


def find(element: ET.Element, path: str) -> ET.Element:
    found = element.find(path, NS)
    assert found is not None, f"no {path} in {element.tag}"
    return found


def texts(element: ET.Element, path: str) -> list[str]:
    return [child.text or "" for child in element.findall(path, NS)]


def recipe_elements(element: ET.Element) -> Iterator[ET.Element]:
    yield from element.iter(f"{{{NAMESPACE}}}RecipeElement")


def element_by_id(root: ET.Element, element_id: str) -> ET.Element:
    for element in recipe_elements(root):
        if find(element, "b:ID").text == element_id:
            return element
    raise AssertionError(f"no RecipeElement {element_id}")


def parameter(element: ET.Element, parameter_id: str) -> ET.Element:
    for candidate in element.iter(f"{{{NAMESPACE}}}Parameter"):
        if find(candidate, "b:ID").text == parameter_id:
            return candidate
    raise AssertionError(f"no Parameter {parameter_id}")


def unit_of_measure(unit: str | None) -> tuple[str, str | None]:
    """(text, name attribute) of the UnitOfMeasure written for ``unit``."""
    if unit is None:
        return "", None
    code = UNITS[unit]
    return (unit, None) if code == unit else (code, unit)


def same_number(text: str | None, value: float) -> bool:
    """The decimal literal in the XML is exactly the recipe's number (no exponent, no rounding)."""
    assert text is not None and "e" not in text.lower()
    return Decimal(text) == Decimal(repr(value))


# --- schema validation ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def xsd_path() -> Path:
    if not ENTRY_XSD.is_file():
        pytest.skip(
            f"B2MML XSDs not found at {XSD_DIR}: BatchML exports are validated only when "
            "../shared/schemas/b2mml/ is present next to the repository"
        )
    return ENTRY_XSD


@pytest.fixture(scope="module")
def xmlschema_validator(xsd_path: Path) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(xsd_path))


@pytest.fixture(scope="module")
def lxml_validator(xsd_path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(xsd_path)))


def test_example_recipes_are_found_or_the_fixtures_stand_in():
    assert len(RECIPES) == len(EXAMPLES) + len(FIXTURE_RECIPES) >= 2


@pytest.mark.parametrize("source", RECIPES)
@pytest.mark.parametrize("options", [{}, APPROVED], ids=["plain", "approved"])
def test_export_is_valid_batchml_for_both_validators(
    source: Path | str,
    options: Mapping[str, Any],
    xmlschema_validator: xmlschema.XMLSchema,
    lxml_validator: etree.XMLSchema,
):
    xml = master_recipe_batchml(compiled_recipe(source), **options)
    xmlschema_validator.validate(BytesIO(xml))
    lxml_validator.assertValid(etree.fromstring(xml))


def test_a_misordered_export_is_rejected_by_both_validators(
    xmlschema_validator: xmlschema.XMLSchema, lxml_validator: etree.XMLSchema
):
    """Negative control: the validators do check element order (Version before ID)."""
    xml = master_recipe_batchml(compiled_recipe("small_recipe"))
    swapped = xml.replace(
        b"<ID>TEST-CART</ID>\n    <Version>1</Version>",
        b"<Version>1</Version>\n    <ID>TEST-CART</ID>",
        1,
    )
    assert swapped != xml
    assert not xmlschema_validator.is_valid(BytesIO(swapped))
    assert not lxml_validator.validate(etree.fromstring(swapped))


# --- content --------------------------------------------------------------------------------


@pytest.mark.parametrize("source", RECIPES)
def test_every_phase_input_and_limit_appears_with_its_unit(source: Path | str):
    compiled = compiled_recipe(source)
    root = parsed(master_recipe_batchml(compiled))
    recipe = find(root, "b:MasterRecipe")
    assert find(recipe, "b:ID").text == compiled["recipe_code"]
    assert find(recipe, "b:Version").text == str(compiled["version"])
    for unit in compiled["unit_procedures"]:
        assert texts(element_by_id(root, unit["id"]), "b:Description")[0] == unit["name"]
        for operation in unit["operations"]:
            assert (
                texts(element_by_id(root, operation["id"]), "b:Description")[0] == operation["name"]
            )
            for phase in operation["phases"]:
                element = element_by_id(root, phase["id"])
                assert find(element, "b:RecipeElementType").text == "Phase"
                assert texts(element, "b:Description") == [phase["name"], phase["instructions"]]
                for spec in [*phase["inputs"], *phase["calculations"]]:
                    assert (
                        find(parameter(element, spec["id"]), "b:Description").text == spec["label"]
                    )
                    for limit in LIMITS:
                        if spec[limit] is None:
                            continue
                        value = find(parameter(element, f"{spec['id']}.{limit}"), "b:Value")
                        assert same_number(find(value, "b:ValueString").text, spec[limit])
                        assert find(value, "b:DataInterpretation").text == "Constant"
                        measure = find(value, "b:UnitOfMeasure")
                        assert ((measure.text or ""), measure.get("name")) == unit_of_measure(
                            spec["unit"]
                        )


def test_input_parameter_maps_type_limits_and_units():
    root = parsed(master_recipe_batchml(compiled_recipe("small_recipe")))
    count_cells = element_by_id(root, "count_cells")
    viability = parameter(count_cells, "viability")
    assert find(viability, "b:ParameterType").text == "ProcessParameter"
    assert texts(viability, "b:ParameterSubType") == ["number", "required"]
    entered = find(viability, "b:Value")
    assert find(entered, "b:DataInterpretation").text == "External"
    assert find(entered, "b:DataType").text == "decimal"
    assert find(entered, "b:UnitOfMeasure").text == "P1"
    assert find(entered, "b:UnitOfMeasure").get("name") == "%"
    nested = [find(p, "b:ID").text for p in viability.findall("b:Parameter", NS)]
    assert nested == [
        "viability.target",
        "viability.alert_low",
        "viability.action_low",
        "viability.decimals",
    ]
    action_low = find(parameter(viability, "viability.action_low"), "b:Value")
    assert texts(action_low, "b:ValueString") == ["80"]

    total = find(parameter(count_cells, "total_viable"), "b:Value")
    assert texts(total, "b:ValueString") == ["viable_conc * volume"]
    assert find(total, "b:DataInterpretation").text == "Equation"
    assert find(total, "b:UnitOfMeasure").text == "×10^6 cells"

    decision = parameter(element_by_id(root, "decide"), "decision.options")
    assert texts(find(decision, "b:Value"), "b:ValueString") == ["Proceed", "Hold"]


def test_materials_equipment_and_roles_have_their_place():
    root = parsed(master_recipe_batchml(compiled_recipe("small_recipe")))
    thaw = element_by_id(root, "thaw_vector")
    assert texts(find(thaw, "b:EquipmentRequirement"), "b:ID") == ["water_bath"]
    vector = parameter(thaw, "VEC-CD19")
    assert find(vector, "b:ParameterType").text == "ProcessInput"
    assert find(vector, "b:Description").text == "Anti-CD19 lentiviral vector"
    assert texts(find(vector, "b:Value"), "b:ValueString") == ["1"]
    assert find(find(vector, "b:Value"), "b:UnitOfMeasure").text == "vial"

    information = {
        find(info, "b:ID").text: texts(find(info, "b:Value"), "b:ValueString")
        for info in element_by_id(root, "add_vector").findall("b:OtherInformation", NS)
    }
    assert information == {
        "perform": ["operator"],
        "verify": ["supervisor"],
        "timer.thaw_vector.max": ["1800"],
    }
    condition = find(thaw, "b:OtherInformation[b:ID='when.decide.decision']")
    assert texts(find(condition, "b:Value"), "b:ValueString") == ["Proceed"]


def test_procedure_logic_follows_each_operations_ordering():
    root = parsed(master_recipe_batchml(compiled_recipe("small_recipe")))
    recipe = find(root, "b:MasterRecipe")
    top = find(recipe, "b:ProcedureLogic")
    assert texts(top, "b:Step/b:RecipeElementID") == ["receipt", "manufacture"]
    assert texts(top, "b:Link/b:FromID/b:FromIDValue") == ["receipt"]
    assert texts(top, "b:Link/b:ToID/b:ToIDValue") == ["manufacture"]
    assert texts(top, "b:Link/b:LinkType") == ["ControlLink"]

    harvest = find(element_by_id(root, "harvest"), "b:ProcedureLogic")
    assert texts(harvest, "b:Link/b:LinkType") == ["ParallelDivergent", "ParallelConvergent"]
    expand = find(element_by_id(root, "expand"), "b:ProcedureLogic")
    [any_order] = expand.findall("b:Link/b:LinkType", NS)
    assert (any_order.text, any_order.get("OtherValue")) == ("Other", "AnyOrder")
    assert texts(expand, "b:Link/b:ToID/b:ToIDValue") == ["feed", "sample"]


def test_header_carries_approvals_status_and_product():
    compiled = compiled_recipe("small_recipe")
    header = find(parsed(master_recipe_batchml(compiled, **APPROVED)), "b:MasterRecipe/b:Header")
    assert [child.tag.split("}")[1] for child in header] == [
        "ModificationLog",
        "ApprovalHistory",
        "EffectiveDate",
        "ProductID",
        "ProductName",
        "Status",
    ]
    history = find(header, "b:ApprovalHistory")
    assert find(history, "b:FinalApprovalDate").text == "2025-01-31T09:00:00+00:00"
    assert texts(history, "b:IndividualApproval/b:ApprovedBy") == ["Alice Author (QA)", "Bob Boss"]
    status = find(header, "b:Status")
    assert (status.text, status.get("OtherValue")) == ("Other", "Approved")
    assert find(header, "b:ModificationLog/b:Description").text == compiled["change_reason"]
    assert find(header, "b:ProductID").text == "TEST-CD19"


def test_dates_without_a_time_zone_are_refused():
    with pytest.raises(ValueError, match="no time zone"):
        master_recipe_batchml(compiled_recipe("small_recipe"), effective_from="2025-02-01T00:00:00")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        master_recipe_batchml(compiled_recipe("small_recipe"), approvals=[("Ann", "yesterday")])


def test_special_characters_survive_the_round_trip():
    compiled = load_recipe(SPECIAL_CHARACTERS_RECIPE, "special.yaml").data
    xml = master_recipe_batchml(compiled, **APPROVED)
    assert b"&amp;" in xml
    assert b"&lt;" in xml
    assert "µL".encode() in xml  # UTF-8, not character references
    phase = compiled["unit_procedures"][0]["operations"][0]["phases"][0]
    temperature = phase["inputs"][0]
    for root in (parsed(xml), etree.fromstring(xml)):
        recipe = root.find("b:MasterRecipe", NS)
        assert texts(recipe, "b:Description") == [compiled["title"], compiled["description"]]
        assert compiled["title"] == 'Cells & <media> "quoted" — 37 °C, 5 µL, 10 × 10^6 cells'
        assert recipe.find("b:Header/b:ProductName", NS).text == compiled["product"]["name"]
        warm = next(
            e
            for e in root.iter(f"{{{NAMESPACE}}}RecipeElement")
            if e.find("b:ID", NS).text == "warm"
        )
        assert [d.text for d in warm.findall("b:Description", NS)] == [
            phase["name"],
            phase["instructions"],
        ]
        assert "± 1 °C) & check the <seal>." in phase["instructions"]
        parameters = {p.find("b:ID", NS).text: p for p in warm.iter(f"{{{NAMESPACE}}}Parameter")}
        assert parameters["temperature"].find("b:Description", NS).text == temperature["label"]
        assert [
            s.text for s in parameters["grade.options"].findall("b:Value/b:ValueString", NS)
        ] == [
            "A & B",
            "<C>",
            '"D"',
        ]
        assert (
            parameters["temperature.help"].find("b:Value/b:ValueString", NS).text
            == temperature["help"]
        )
        unit = parameters["temperature.action_high"].find("b:Value/b:UnitOfMeasure", NS)
        assert (unit.text, unit.get("name")) == ("CEL", "°C")
        unit = parameters["reagent"].find("b:Value/b:UnitOfMeasure", NS)
        assert (unit.text, unit.get("name")) == ("4G", "µL")
        assert (
            parameters["cells.action_low"].find("b:Value/b:UnitOfMeasure", NS).text == "×10^6 cells"
        )
        material = parameters["BUF-37"]
        assert material.find("b:Description", NS).text == 'Buffer "37" & salts <sterile>'
        assert material.find("b:Value/b:ValueString", NS).text == "12.5"
        pattern = next(
            i
            for i in recipe.findall("b:OtherInformation", NS)
            if i.find("b:ID", NS).text == "chain_of_identity.batch_ref.pattern"
        )
        assert pattern.find("b:Value/b:ValueString", NS).text == "^[A-Z]{2}<[0-9]+>$"


def test_a_character_xml_cannot_carry_is_replaced_and_a_carriage_return_kept():
    compiled = load_recipe(SMALL_RECIPE, "small.yaml").data
    phase = compiled["unit_procedures"][0]["operations"][0]["phases"][0]
    phase["instructions"] = "Ring \x07 bell"
    phase["name"] = "Line one\r\nline two"
    xml = master_recipe_batchml(compiled)
    element = element_by_id(parsed(xml), "check_label")
    assert texts(element, "b:Description") == ["Line one\r\nline two", "Ring \ufffd bell"]


def test_same_recipe_gives_the_same_bytes():
    first = master_recipe_batchml(compiled_recipe("small_recipe"), **APPROVED)
    second = master_recipe_batchml(load_recipe(SMALL_RECIPE, "again.yaml").data, **APPROVED)
    assert first == second
    assert first.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<BatchInformation xmlns=")


def test_export_names_the_content_hash_of_the_compiled_recipe():
    recipe = load_recipe(SMALL_RECIPE, "small.yaml")
    root = parsed(master_recipe_batchml(recipe.data))
    information = find(root, "b:MasterRecipe/b:OtherInformation[b:ID='content_hash']")
    assert texts(find(information, "b:Value"), "b:ValueString") == [recipe.content_hash]


def _critical_small_recipe() -> dict[str, Any]:
    """SMALL_RECIPE with a CQA input, a CPP calculation, a milestone and a turnaround target."""
    data = yaml.safe_load(SMALL_RECIPE)
    for unit in data["unit_procedures"]:
        for operation in unit["operations"]:
            for phase in operation["phases"]:
                if phase["id"] == "count_cells":
                    phase["inputs"]["viability"]["criticality"] = "cqa"
                    phase["calculations"]["total_viable"]["criticality"] = "cpp"
                if phase["id"] == "sample":
                    phase["inputs"]["sampled_at"]["milestone"] = "collection_end"
    data["turnaround"] = {
        "target_hours": 240,
        "legs": [{"from": "collection_end", "to": "up:manufacture", "target_hours": 30.5}],
    }
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return load_recipe(text, "critical.yaml").data


def test_criticality_milestone_and_turnaround_are_exported_and_valid(
    xmlschema_validator: xmlschema.XMLSchema, lxml_validator: etree.XMLSchema
):
    xml = master_recipe_batchml(_critical_small_recipe(), **APPROVED)
    xmlschema_validator.validate(BytesIO(xml))
    lxml_validator.assertValid(etree.fromstring(xml))
    root = parsed(xml)
    count_cells = element_by_id(root, "count_cells")
    criticality = parameter(parameter(count_cells, "viability"), "viability.criticality")
    assert find(criticality, "b:Description").text == "Critical quality attribute"
    assert find(criticality, "b:ParameterSubType").text == "criticality"
    assert texts(find(criticality, "b:Value"), "b:ValueString") == ["cqa"]
    calculated = parameter(parameter(count_cells, "total_viable"), "total_viable.criticality")
    assert texts(find(calculated, "b:Value"), "b:ValueString") == ["cpp"]
    sampled = parameter(element_by_id(root, "sample"), "sampled_at.milestone")
    assert find(sampled, "b:Description").text == "Collection end"
    assert texts(find(sampled, "b:Value"), "b:ValueString") == ["collection_end"]
    recipe = find(root, "b:MasterRecipe")
    whole = find(recipe, "b:OtherInformation[b:ID='turnaround.target_hours']")
    assert texts(find(whole, "b:Value"), "b:ValueString") == ["240"]
    assert find(find(whole, "b:Value"), "b:UnitOfMeasure").text == "HUR"
    leg = find(recipe, "b:OtherInformation[b:ID='turnaround.leg.collection_end.up:manufacture']")
    assert texts(find(leg, "b:Value"), "b:ValueString") == ["30.5"]
    assert (
        find(leg, "b:Description").text
        == "Turnaround target from Collection end to End of Manufacture"
    )


def test_a_recipe_without_criticality_exports_no_such_items():
    xml = master_recipe_batchml(compiled_recipe("small_recipe"))
    assert b"criticality" not in xml and b"milestone" not in xml and b"turnaround" not in xml
