"""Signed recipe bundles: how an effective master recipe travels from the hub to a spoke.

A bundle is a compact JWS (RFC 7515) signed with the hub's Ed25519 key. Its payload is the
RFC 8785 canonical JSON of the compiled recipe, its content hash, its effectivity and the sites
it is for. The algorithm is named ``Ed25519`` (RFC 9864, which deprecates the older ``EdDSA``
name for the same signature), so any current JOSE library verifies it with the hub's public key.

:func:`open_bundle` refuses, with the reason, anything that is not exactly what the hub signed
for this site.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mes.core.canonical import canonical_json, content_hash
from mes.core.clock import utc_text
from mes.core.compact_jws import (
    ALGORITHM,
    read_document,
    sign,
    unverified_part,
    verified_by,
)
from mes.core.errors import (
    BundleTampered,
    BundleUnknownKey,
    BundleUnreadable,
    BundleWrongSite,
)
from mes.core.keys import SiteKey, SitePublicKey

MEDIA_TYPE = "mes-recipe-bundle+jws"
PAYLOAD_TYPE = "recipe-bundle"
FORMAT = 1
MAX_BUNDLE_BYTES = 5_000_000


@dataclass(frozen=True)
class Bundle:
    """A verified bundle's content."""

    recipe: dict[str, Any]
    content_hash: str
    recipe_code: str
    version: int
    effective_from: date
    sites: tuple[str, ...]
    issuer: str
    issued_at: str
    key_id: str
    token: str

    @property
    def bundle_hash(self) -> str:
        """SHA-256 of the bundle exactly as received (to recognise the same file again)."""
        return hashlib.sha256(self.token.encode("ascii")).hexdigest()


def make_bundle(
    recipe: Mapping[str, Any],
    *,
    effective_from: date,
    sites: Iterable[str],
    issuer: str,
    issued_at: datetime,
    key: SiteKey,
) -> str:
    """The compact JWS of an effective recipe version for ``sites``, signed with ``key``."""
    payload = {
        "type": PAYLOAD_TYPE,
        "format": FORMAT,
        "issuer": issuer,
        "issued_at": utc_text(issued_at),
        "recipe_code": recipe["recipe_code"],
        "version": recipe["version"],
        "content_hash": content_hash(dict(recipe)),
        "effective_from": effective_from.isoformat(),
        "sites": sorted(set(sites)),
        "recipe": dict(recipe),
    }
    header = {"alg": ALGORITHM, "kid": key.public.key_id, "typ": MEDIA_TYPE}
    return sign(header, canonical_json(payload), key)


def _header(token: str) -> dict[str, Any]:
    try:
        if token.count(".") != 2:
            raise ValueError("a compact JWS has three parts")
        header = unverified_part(token, 0)
        if not isinstance(header, dict):
            raise ValueError("the JWS header is not an object")
    except (ValueError, UnicodeError):
        raise BundleUnreadable(
            "The file is not a recipe bundle (not a signed JWS).",
            what_to_do="Use the .jws file written by 'mes recipe publish' at the hub.",
        ) from None
    if header.get("typ") != MEDIA_TYPE or header.get("alg") != ALGORITHM:
        raise BundleUnreadable(
            f"The file is a JWS but not a recipe bundle (type {header.get('typ')!r}, "
            f"algorithm {header.get('alg')!r}).",
            what_to_do="Use the .jws file written by 'mes recipe publish' at the hub.",
        )
    return header


def open_bundle(data: bytes | str, trusted: SitePublicKey, site_code: str) -> Bundle:
    """Verify a bundle for this site against the pinned hub key; refuse with the reason."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleUnreadable(f"The file is larger than {MAX_BUNDLE_BYTES // 1_000_000} MB.")
    try:
        token = (data.decode("ascii") if isinstance(data, bytes) else data).strip()
    except UnicodeDecodeError:
        raise BundleUnreadable(
            "The file is not a recipe bundle (it is not JWS text).",
            what_to_do="Use the .jws file written by 'mes recipe publish' at the hub.",
        ) from None
    header = _header(token)
    verified = verified_by(
        token,
        header,
        trusted,
        MAX_BUNDLE_BYTES,
        other_key=lambda kid: BundleUnknownKey(
            f"The bundle is signed with key {kid!r}, not the hub key this site "
            f"trusts ({trusted.key_id}).",
            what_to_do="Install only bundles published by your hub; if the hub's key changed, "
            "re-pin it.",
        ),
        altered=BundleTampered(
            "The bundle's signature does not verify: it was altered after the hub signed it.",
            what_to_do="Do not use this file; ask the hub to publish the bundle again.",
        ),
    )
    payload = _payload(verified)
    recipe = payload["recipe"]
    if content_hash(recipe) != payload["content_hash"]:
        raise BundleTampered(
            "The recipe in the bundle does not match its content hash.",
            what_to_do="Do not use this file; ask the hub to publish the bundle again.",
        )
    sites = tuple(payload["sites"])
    if site_code not in sites:
        raise BundleWrongSite(
            f"The bundle is for {', '.join(sites) or 'no site'}, not for this site ({site_code}).",
            what_to_do="Ask the hub to publish the version for this site.",
        )
    return Bundle(
        recipe=recipe,
        content_hash=payload["content_hash"],
        recipe_code=payload["recipe_code"],
        version=payload["version"],
        effective_from=date.fromisoformat(payload["effective_from"]),
        sites=sites,
        issuer=payload["issuer"],
        issued_at=payload["issued_at"],
        key_id=header["kid"],
        token=token,
    )


def _payload(raw: bytes) -> dict[str, Any]:
    return read_document(
        raw,
        _is_bundle_payload,
        BundleUnreadable(
            "The bundle's content is not a recipe bundle of a format this site understands.",
            what_to_do="Check that hub and spoke run compatible versions.",
        ),
    )


def _is_bundle_payload(payload: dict[str, Any]) -> bool:
    date.fromisoformat(payload["effective_from"])  # a ValueError when it is not a date
    return (
        payload.get("type") == PAYLOAD_TYPE
        and payload.get("format") == FORMAT
        and isinstance(payload.get("recipe"), dict)
        and isinstance(payload.get("sites"), list)
        and payload["recipe"].get("recipe_code") == payload.get("recipe_code")
        and payload["recipe"].get("version") == payload.get("version")
    )
