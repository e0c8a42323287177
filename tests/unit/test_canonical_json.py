"""Canonical JSON (RFC 8785) and content hashes: the identity of every GMP record."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from mes.core.canonical import canonical_json, content_hash

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


def test_the_content_hash_does_not_depend_on_key_order():
    one = {"batch": "B-1", "phase": {"name": "thaw", "limits": [1, 2]}, "value": 37}
    other = {"value": 37, "phase": {"limits": [1, 2], "name": "thaw"}, "batch": "B-1"}
    assert canonical_json(one) == canonical_json(other)
    assert content_hash(one) == content_hash(other)


@settings(max_examples=100, database=None, deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6))
def test_the_content_hash_of_any_record_is_stable_when_its_keys_are_reordered(record):
    reordered = dict(reversed(list(record.items())))
    assert content_hash(reordered) == content_hash(record)


def test_canonical_json_is_rfc_8785_sorted_compact_utf8():
    assert canonical_json({"b": 1, "a": [1.0, "é", None, True]}) == (
        b'{"a":[1,"\xc3\xa9",null,true],"b":1}'
    )


def test_the_content_hash_is_the_sha256_of_the_canonical_json():
    record = {"z": "last", "a": "first"}
    assert content_hash(record) == hashlib.sha256(b'{"a":"first","z":"last"}').hexdigest()


def test_a_changed_value_changes_the_content_hash():
    assert content_hash({"value": 37}) != content_hash({"value": 38})
    assert content_hash({"value": 37}) != content_hash({"value": "37"})
    assert content_hash({"value": None}) != content_hash({})
