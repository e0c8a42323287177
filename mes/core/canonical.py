"""Canonical JSON (RFC 8785) and SHA-256 content hashes: the identity of every GMP record.

Most records hold only strings, whole numbers, booleans, nulls, lists and objects whose keys are
ordinary text. For those, RFC 8785 is exactly what Python's ``json`` module writes with sorted
keys, no spaces and no ASCII escaping — which is several times faster than the general
``rfc8785`` implementation. Anything else (a float, a key with characters beyond U+D7FF, whose
order differs between code points and UTF-16 units, a whole number beyond ±(2^53 − 1), a tuple
or another type) goes to ``rfc8785`` itself. A property test checks that both paths agree.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

_SAFE_INTEGER = 2**53 - 1
_ORDINARY_KEY_LIMIT = "\ud7ff"  # up to here, code-point order equals UTF-16 code-unit order


def _ordinary(value: Any) -> bool:
    """True when ``json.dumps`` writes ``value`` exactly as RFC 8785 does."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -_SAFE_INTEGER <= item <= _SAFE_INTEGER:
                continue
            return False
        if kind is dict:
            for key, member in item.items():
                if type(key) is not str or (key and max(key) > _ORDINARY_KEY_LIMIT):
                    return False
                stack.append(member)
            continue
        if kind is list:
            stack.extend(item)
            continue
        return False
    return True


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes: the same value always gives the same bytes."""
    if _ordinary(value):
        try:
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 refuses it with its own error
            pass
    return rfc8785.dumps(value)


def content_hash(value: Any) -> str:
    """Hex SHA-256 of the canonical JSON of ``value`` (the record's content identity)."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_loads(raw: bytes | str) -> Any:
    """JSON from outside (a request, a file, a signed token), read strictly.

    No NaN or Infinity; absurd nesting (100,000 brackets) is a ``ValueError`` like any other
    malformed JSON, not a crash.
    """
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
