"""Canonical JSON (RFC 8785) and SHA-256 content hashes: the identity of every GMP record."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes: the same value always gives the same bytes."""
    return rfc8785.dumps(value)


def content_hash(value: Any) -> str:
    """Hex SHA-256 of the canonical JSON of ``value`` (the record's content identity)."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
