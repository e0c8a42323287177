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


# Values of every JSON kind, with keys and strings from all of Unicode (astral characters,
# control characters, U+2028, quotes, backslashes), floats of every magnitude and integers
# around ±2^53: the fast path must give rfc8785's bytes, or fall back to it.
ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",)), max_size=6), children, max_size=4
        )
    ),
    max_leaves=16,
)


@settings(max_examples=1500, database=None, deadline=None)
@given(ANY_JSON)
def test_the_fast_path_writes_exactly_what_rfc8785_writes(value):
    import rfc8785

    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        return  # out of RFC 8785's domain: canonical_json refuses it too (checked below)
    assert canonical_json(value) == expected


def test_values_outside_rfc_8785_are_refused_as_rfc8785_refuses_them():
    import pytest
    import rfc8785

    for value in (2**53, {"a": -(2**60)}, "\ud800", {"k": float("nan")}):
        with pytest.raises(rfc8785.CanonicalizationError):
            rfc8785.dumps(value)
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical_json(value)


def test_keys_beyond_the_basic_plane_sort_by_utf16_code_units():
    # U+FF61 sorts after U+1F600 in UTF-16 (0xD83D < 0xFF61) but before it by code point.
    value = {"\uff61": 1, "\U0001f600": 2}
    assert canonical_json(value) == '{"\U0001f600":2,"\uff61":1}'.encode()
