"""Hash chains (21 CFR 11.10(a), (e)): any edit, re-hash, insertion, deletion, reordering or
truncation of a sealed chain is detected, and the first wrong entry is named."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes.core.audit import Actor, AuditEvent, EntryKind, entry_body
from mes.core.canonical import canonical_json, content_hash
from mes.core.errors import ChainBroken
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, ChainHead, SealedEntry, next_link, seal, verify_chain

SITE_KEY = SiteKey.generate()
FORGER_KEY = SiteKey.generate()
PUBLIC = SITE_KEY.public
START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
ALICE = Actor(user_id="u-alice", username="alice", name="Alice Tester")


def _body(seq: int, prev: str, n: int | None = None) -> dict[str, Any]:
    n = seq if n is None else n
    return entry_body(
        seq=seq,
        prev=prev,
        site="TEST",
        event=AuditEvent(
            at=START + timedelta(minutes=n),
            terminal="Bench 1",
            actor=ALICE,
            kind=EntryKind.CHANGE,
            action="training recorded",
            record_type="training",
            record_id=f"alice/SOP-{n}",
            old=None,
            new={"qualified_on": "2026-11-21", "n": n},
            reason=None,
        ),
    )


def build_chain(length: int, key: SiteKey = SITE_KEY) -> tuple[list[SealedEntry], ChainHead]:
    """A valid chain of ``length`` entries and the head the site recorded for it."""
    entries: list[SealedEntry] = []
    last_seq, last_hash = 0, None
    for _ in range(length):
        seq, prev = next_link(last_seq, last_hash)
        entries.append(seal(_body(seq, prev), key))
        last_seq, last_hash = seq, entries[-1].hash
    return entries, ChainHead(last_seq=last_seq, last_hash=last_hash)


def edited(entry: SealedEntry, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(dict(entry.body))
    body.update(changes)
    return body


def broken(entries: list[SealedEntry], head: ChainHead | None = None) -> ChainBroken:
    with pytest.raises(ChainBroken) as caught:
        verify_chain(entries, PUBLIC, head)
    return caught.value


def test_a_valid_chain_verifies_and_returns_its_length():
    entries, head = build_chain(5)
    assert verify_chain(entries, PUBLIC, head) == 5
    assert entries[0].body["prev"] == GENESIS
    assert [e.body["prev"] for e in entries[1:]] == [e.hash for e in entries[:-1]]


def test_an_empty_chain_verifies_against_an_empty_head():
    assert verify_chain([], PUBLIC, ChainHead(last_seq=0, last_hash=None)) == 0


def test_an_edited_entry_body_is_named_as_edited():
    entries, head = build_chain(5)
    entries[2] = SealedEntry(
        body=edited(entries[2], new={"qualified_on": "2026-01-01", "n": 3}),
        hash=entries[2].hash,
        signature=entries[2].signature,
    )
    error = broken(entries, head)
    assert error.seq == 3
    assert "edited" in error.problem


def test_an_edited_entry_that_was_rehashed_fails_the_site_signature():
    entries, head = build_chain(5)
    body = edited(entries[2], reason="nobody will notice")
    entries[2] = SealedEntry(body=body, hash=content_hash(body), signature=entries[2].signature)
    error = broken(entries, head)
    assert error.seq == 3
    assert "signature" in error.problem


def test_an_edited_entry_resealed_with_another_key_fails_the_site_signature():
    entries, head = build_chain(5)
    entries[2] = seal(edited(entries[2], reason="forged"), FORGER_KEY)
    error = broken(entries, head)
    assert error.seq == 3
    assert "signature" in error.problem


def test_an_entry_edited_and_resealed_with_the_site_key_breaks_the_next_link():
    entries, head = build_chain(5)
    entries[2] = seal(edited(entries[2], reason="insider"), SITE_KEY)
    error = broken(entries, head)
    assert error.seq == 4
    assert "prev hash differs" in error.problem


def test_the_last_entry_edited_and_resealed_with_the_site_key_no_longer_matches_the_head():
    entries, head = build_chain(5)
    entries[4] = seal(edited(entries[4], reason="insider"), SITE_KEY)
    error = broken(entries, head)
    assert error.seq == 5
    assert "last" in error.problem


def test_a_deleted_middle_entry_is_named_as_missing():
    entries, head = build_chain(5)
    del entries[2]
    error = broken(entries, head)
    assert error.seq == 3
    assert "missing" in error.problem


def test_reordered_entries_are_detected_at_the_first_position_out_of_order():
    entries, head = build_chain(5)
    entries[1], entries[2] = entries[2], entries[1]
    error = broken(entries, head)
    assert error.seq == 2


def test_a_renumbered_entry_moved_to_another_position_fails_its_hash():
    entries, head = build_chain(5)
    # Swap the bodies' seq numbers so the order of seq looks right: the content hashes do not.
    second, third = entries[1], entries[2]
    entries[1] = SealedEntry(edited(third, seq=2), third.hash, third.signature)
    entries[2] = SealedEntry(edited(second, seq=3), second.hash, second.signature)
    error = broken(entries, head)
    assert error.seq == 2
    assert "edited" in error.problem


def test_an_entry_inserted_with_a_forged_signature_is_named():
    entries, head = build_chain(5)
    intruder = seal(_body(3, entries[1].hash, n=99), FORGER_KEY)
    entries.insert(2, intruder)
    error = broken(entries, head)
    assert error.seq == 3
    assert "signature" in error.problem


def test_an_entry_inserted_with_the_site_key_makes_the_following_entry_appear_twice():
    entries, head = build_chain(5)
    intruder = seal(_body(3, entries[1].hash, n=99), SITE_KEY)
    entries.insert(2, intruder)
    error = broken(entries, head)
    assert error.seq == 3
    assert "twice" in error.problem


def test_a_duplicated_entry_is_detected():
    entries, head = build_chain(4)
    entries.insert(2, entries[1])
    error = broken(entries, head)
    assert error.seq == 2
    assert "twice" in error.problem


def test_a_truncated_tail_is_detected_against_the_chain_head():
    entries, head = build_chain(5)
    error = broken(entries[:3], head)
    assert error.seq == 4
    assert "deleted" in error.problem


def test_a_truncated_tail_cannot_be_seen_without_the_chain_head():
    # Why the head is kept: the links alone cannot show that the newest entries are gone.
    entries, _head = build_chain(5)
    assert verify_chain(entries[:3], PUBLIC) == 3


def test_an_entry_appended_beyond_the_chain_head_is_named():
    entries, head = build_chain(5)
    entries.append(seal(_body(6, entries[-1].hash), SITE_KEY))
    error = broken(entries, head)
    assert error.seq == 6
    assert "added" in error.problem


def test_a_head_naming_another_last_hash_is_refused():
    entries, _head = build_chain(3)
    error = broken(entries, ChainHead(last_seq=3, last_hash="f" * 64))
    assert error.seq == 3


def test_a_chain_that_does_not_start_at_genesis_is_refused():
    first = seal(_body(1, "1" * 64), SITE_KEY)
    error = broken([first], ChainHead(last_seq=1, last_hash=first.hash))
    assert error.seq == 1
    assert "prev" in error.problem


def test_a_chain_sealed_by_another_site_does_not_verify_with_this_sites_key():
    entries, head = build_chain(2, key=FORGER_KEY)
    error = broken(entries, head)
    assert error.seq == 1
    assert "signature" in error.problem


@pytest.mark.parametrize("bad_seq", [0, -1, None, "three", [3]])
def test_an_entry_without_a_valid_sequence_number_is_named_by_its_position(bad_seq):
    entries, head = build_chain(4)
    entries[2] = SealedEntry(edited(entries[2], seq=bad_seq), entries[2].hash, entries[2].signature)
    error = broken(entries, head)
    assert error.seq == 3
    assert "sequence number" in error.problem


def test_an_entry_whose_sequence_number_was_removed_is_named_by_its_position():
    entries, head = build_chain(4)
    body = edited(entries[2])
    del body["seq"]
    entries[2] = SealedEntry(body, entries[2].hash, entries[2].signature)
    assert broken(entries, head).seq == 3


def test_the_chain_broken_message_names_the_entry_and_says_what_to_do():
    entries, head = build_chain(3)
    del entries[1]
    error = broken(entries, head)
    assert str(error).startswith("entry 2:")
    assert "incident" in error.what_to_do


# --- property: any single mutation of a valid chain is detected ---------------------------

CHAINS = {n: build_chain(n) for n in range(1, 7)}
FIELDS = ["seq", "prev", "at", "site", "terminal", "actor", "kind", "action", "record", "old"]
FIELDS += ["new", "reason", "extra"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


def _changed_body(data: st.DataObject, entry: SealedEntry) -> dict[str, Any]:
    """The entry's body with one field set to a different value (or removed, or added)."""
    body = copy.deepcopy(dict(entry.body))
    field = data.draw(st.sampled_from(FIELDS), label="field")
    if field in body and data.draw(st.booleans(), label="remove field"):
        del body[field]
        return body
    values = JSON_VALUES | st.integers(-3, 10) if field == "seq" else JSON_VALUES
    value = data.draw(
        values.filter(
            lambda v: field not in body or canonical_json(v) != canonical_json(body[field])
        ),
        label="value",
    )
    body[field] = value
    return body


def _mutate(data: st.DataObject, entries: list[SealedEntry]) -> list[SealedEntry]:
    n = len(entries)
    chain = list(entries)
    index = st.integers(0, n - 1)
    kind = data.draw(
        st.sampled_from(
            [
                "edit body",
                "edit and re-hash",
                "edit and re-seal with another key",
                "edit and re-seal with the site key",
                "replace hash",
                "replace signature",
                "delete",
                "swap",
                "duplicate",
                "truncate",
                "append",
            ]
        ),
        label="mutation",
    )
    if kind == "swap" and n < 2:
        kind = "delete"
    if kind.startswith("edit"):
        i = data.draw(index, label="entry")
        body = _changed_body(data, chain[i])
        if kind == "edit body":
            chain[i] = SealedEntry(body, chain[i].hash, chain[i].signature)
        elif kind == "edit and re-hash":
            chain[i] = SealedEntry(body, content_hash(body), chain[i].signature)
        elif kind == "edit and re-seal with another key":
            chain[i] = seal(body, FORGER_KEY)
        else:
            chain[i] = seal(body, SITE_KEY)
    elif kind == "replace hash":
        i = data.draw(index, label="entry")
        other = data.draw(st.text("0123456789abcdef", min_size=64, max_size=64))
        chain[i] = SealedEntry(chain[i].body, other, chain[i].signature)
        if other == entries[i].hash:
            chain[i] = SealedEntry(chain[i].body, "x" * 64, chain[i].signature)
    elif kind == "replace signature":
        i = data.draw(index, label="entry")
        chain[i] = SealedEntry(
            chain[i].body, chain[i].hash, FORGER_KEY.sign(chain[i].hash.encode())
        )
    elif kind == "delete":
        del chain[data.draw(index, label="entry")]
    elif kind == "swap":
        i, j = data.draw(st.lists(index, min_size=2, max_size=2, unique=True), label="entries")
        chain[i], chain[j] = chain[j], chain[i]
    elif kind == "duplicate":
        i = data.draw(index, label="entry")
        chain.insert(data.draw(st.integers(0, n), label="position"), chain[i])
    elif kind == "truncate":
        chain = chain[: data.draw(st.integers(0, n - 1), label="keep")]
    else:
        key = data.draw(st.sampled_from([SITE_KEY, FORGER_KEY]), label="key")
        chain.append(seal(_body(n + 1, chain[-1].hash), key))
    return chain


@settings(max_examples=300, database=None, deadline=None)
@given(length=st.integers(1, 6), data=st.data())
def test_any_single_mutation_of_a_valid_chain_is_detected(length, data):
    entries, head = CHAINS[length]
    mutated = _mutate(data, entries)
    assert _as_plain(mutated) != _as_plain(entries)
    with pytest.raises(ChainBroken) as caught:
        verify_chain(mutated, PUBLIC, head)
    assert 1 <= caught.value.seq <= length + 1


def _as_plain(entries: list[SealedEntry]) -> list[tuple[bytes, str, str]]:
    def body(b: Mapping[str, Any]) -> bytes:
        return canonical_json(dict(b))

    return [(body(e.body), e.hash, e.signature) for e in entries]
