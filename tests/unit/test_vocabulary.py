"""The typed vocabulary: one entry body, and the core's enums with their words."""

from __future__ import annotations

import copy
import json
from enum import StrEnum
from importlib import resources
from typing import Any

import pytest
from batch_fixtures import complete_run

from mes.core.batch import BATCH_STATUS_TITLES, BatchStatus
from mes.core.canonical import content_hash
from mes.core.critical import MILESTONES, RECIPE_MILESTONES, Criticality
from mes.core.entry import EntryBody, MalformedEntry, read_sealed_entry
from mes.core.equipment import EQUIPMENT_STATUS_WORDS, EquipmentStatus
from mes.core.materials import LOT_DECISION_TITLES, LOT_STATUS_WORDS, LotStatus
from mes.core.ordering import ORDERING_WORDS, PhaseOrdering
from mes.core.site import SPOKE_STATUS_WORDS, SpokeStatus
from mes.core.sync import SYNC_OUTCOME_WORDS, SyncOutcome

# --- the entry body -------------------------------------------------------------------------


def test_every_entry_of_a_batch_is_sealed_exactly_as_its_typed_body_writes_it():
    batch = complete_run()
    assert len(batch.new_entries) > 10
    for entry in batch.new_entries:
        typed = EntryBody.of(entry.body)
        assert typed.as_dict() == dict(entry.body)
        assert content_hash(typed.as_dict()) == entry.hash


def test_an_entry_kind_is_written_as_its_plain_value():
    batch = complete_run()
    body = EntryBody.of(batch.new_entries[0].body).as_dict()
    assert type(body["kind"]) is str and body["kind"] == "batch_created"


def _item() -> dict[str, Any]:
    return copy.deepcopy(complete_run().new_entries[1].as_dict())


def test_a_sealed_entry_in_its_json_form_reads_back_unchanged():
    item = _item()
    entry = read_sealed_entry(json.loads(json.dumps(item)))
    assert entry.as_dict() == item


@pytest.mark.parametrize(
    "change",
    [
        lambda i: i.update(note="a field more"),
        lambda i: i.update(hash=i["hash"][:63]),
        lambda i: i.pop("signature"),
        lambda i: i["body"].update(extra=1),
        lambda i: i["body"].pop("terminal"),
        lambda i: i["body"].update(seq=0),
        lambda i: i["body"].update(seq=True),
        lambda i: i["body"].update(seq=2**53),
        lambda i: i["body"].update(payload=[]),
        lambda i: i["body"]["actor"].pop("name"),
        lambda i: i["body"]["actor"].update(user_id=7),
    ],
)
def test_an_entry_that_is_not_of_the_entry_bodys_form_is_malformed(change):
    item = _item()
    change(item)
    with pytest.raises(MalformedEntry):
        read_sealed_entry(item)


# --- enums and their words ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enum", "words"),
    [
        (LotStatus, LOT_STATUS_WORDS),
        (LotStatus, LOT_DECISION_TITLES),
        (EquipmentStatus, EQUIPMENT_STATUS_WORDS),
        (SpokeStatus, SPOKE_STATUS_WORDS),
        (SyncOutcome, SYNC_OUTCOME_WORDS),
        (PhaseOrdering, ORDERING_WORDS),
        (BatchStatus, BATCH_STATUS_TITLES),
    ],
)
def test_every_value_of_a_vocabulary_has_its_words(enum: type[StrEnum], words: dict):
    assert set(words) == set(enum)
    assert all(words[member.value] == words[member] for member in enum)  # plain text finds them


def test_the_recipe_schema_allows_exactly_the_core_orderings():
    schema = json.loads(
        resources.files("mes.core").joinpath("schema/recipe.schema.json").read_text("utf-8")
    )
    found: list[list[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "ordering" in node and isinstance(node["ordering"], dict):
                found.append(node["ordering"]["enum"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(schema)
    assert found == [[o.value for o in PhaseOrdering]]


def test_the_recipe_schema_allows_exactly_the_core_criticalities_and_recipe_milestones():
    defs = json.loads(
        resources.files("mes.core").joinpath("schema/recipe.schema.json").read_text("utf-8")
    )["$defs"]
    assert defs["criticality"]["enum"] == [c.value for c in Criticality]
    assert all(
        name in defs["input"]["properties"]["milestone"]["description"]
        for name in RECIPE_MILESTONES
    )  # the checker says which, listing them
    described = defs["timeline_point"]["description"]
    assert all(m.name in described for m in MILESTONES)
