"""Signed documents between sites: compact JWS (RFC 7515) over strict JSON, signed with Ed25519.

The batch-record chunks, the hub's acknowledgements (:mod:`mes.core.sync`) and the recipe
bundles (:mod:`mes.core.bundle`) are all made and read with these few functions; each module
keeps its own types, limits and refusals.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from mes.core.canonical import strict_loads
from mes.core.errors import MesError
from mes.core.keys import SiteKey, SitePublicKey

ALGORITHM = "Ed25519"


def jws_key(key: SiteKey | SitePublicKey) -> OKPKey:
    """The key as joserfc takes it (the private key signs, the public key verifies)."""
    pem = key.private_pem() if isinstance(key, SiteKey) else key.pem()
    return OKPKey.import_key(pem)


def sign(header: Mapping[str, Any], payload: bytes, key: SiteKey) -> str:
    """The compact JWS of ``payload`` signed with ``key``."""
    return jws.serialize_compact(dict(header), payload, jws_key(key), algorithms=[ALGORITHM])


def verified_payload(token: str, key: SitePublicKey, max_bytes: int) -> bytes:
    """The payload of a token that verifies against ``key`` (joserfc's errors otherwise).

    joserfc's default refuses anything over 128 kB; a chunk of 500 entries is about 600 kB,
    so the caller says how large a payload may be.
    """
    registry = jws.JWSRegistry(algorithms=[ALGORITHM])
    registry.max_payload_length = max_bytes * 4 // 3 + 4  # base64url of the payload
    return jws.deserialize_compact(token, jws_key(key), registry=registry).payload


def verified_by(
    token: str,
    header: Mapping[str, Any],
    key: SitePublicKey,
    max_bytes: int,
    *,
    other_key: Callable[[Any], MesError],
    altered: MesError,
) -> bytes:
    """The payload of a token signed with ``key``, which its ``header`` must name.

    Refused with ``other_key(the key ID it names)`` when it names another key (never tried), and
    with ``altered`` when the signature does not verify.
    """
    if header.get("kid") != key.key_id:
        raise other_key(header.get("kid"))
    try:
        return verified_payload(token, key, max_bytes)
    except (JoseError, ValueError, UnicodeError):
        raise altered from None


def unverified_part(token: str, index: int) -> Any:
    """One part of a token (0: the header, 1: the payload) as JSON, before any verification.

    Raises ValueError, UnicodeError or IndexError when the part is missing or not JSON.
    """
    part = token.split(".")[index]
    return strict_loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def read_document(raw: bytes, valid: Callable[[dict[str, Any]], bool], refusal: MesError) -> Any:
    """A strict JSON object for which ``valid`` holds; else ``refusal`` is raised.

    ``valid`` may raise ValueError, TypeError, KeyError or AttributeError for "not valid".
    """
    try:
        document = strict_loads(raw)
        ok = isinstance(document, dict) and valid(document)
    except (ValueError, TypeError, KeyError, AttributeError):
        ok = False
    if not ok:
        raise refusal
    return document
