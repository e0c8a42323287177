"""Recipe bundles alone: a JWS any JOSE library verifies, refused for every alteration."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime

import pytest
from joserfc import jws
from joserfc.jwk import OKPKey
from recipe_helpers import recipe_text

from mes.core.bundle import make_bundle, open_bundle
from mes.core.canonical import canonical_json, content_hash
from mes.core.errors import (
    BundleRefused,
    BundleTampered,
    BundleUnknownKey,
    BundleUnreadable,
    BundleWrongSite,
)
from mes.core.keys import SiteKey
from mes.core.recipe import load_recipe

HUB = SiteKey.generate()
RECIPE = load_recipe(recipe_text(), "mini.yaml").data


def bundle(sites=("SPK1",), key=HUB) -> str:
    return make_bundle(
        RECIPE,
        effective_from=date(2026, 11, 22),
        sites=sites,
        issuer="HUB",
        issued_at=datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
        key=key,
    )


def segment(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_a_bundle_is_a_standard_jws_over_the_canonical_payload():
    token = bundle(("spk2", "SPK1"))
    header, _payload, _ = token.split(".")
    assert segment(header) == {
        "alg": "Ed25519",
        "kid": HUB.public.key_id,
        "typ": "mes-recipe-bundle+jws",
    }
    # Any JOSE library verifies it with the hub's public key alone.
    verified = jws.deserialize_compact(
        token, OKPKey.import_key(HUB.public.pem()), algorithms=["Ed25519"]
    )
    body = json.loads(verified.payload)
    assert verified.payload == canonical_json(body)
    assert body["content_hash"] == content_hash(RECIPE)
    assert (body["recipe_code"], body["version"], body["effective_from"]) == (
        "MINI-TEST",
        1,
        "2026-11-22",
    )
    assert body["sites"] == ["SPK1", "spk2"]
    opened = open_bundle(token, HUB.public, "SPK1")
    assert opened.recipe == RECIPE and opened.key_id == HUB.public.key_id


def test_no_single_character_change_anywhere_is_accepted():
    token = bundle()
    refusals = set()
    for index, char in enumerate(token):
        if char == ".":
            continue
        altered = token[:index] + ("A" if char != "A" else "B") + token[index + 1 :]
        with pytest.raises(BundleRefused) as caught:
            open_bundle(altered, HUB.public, "SPK1")
        refusals.add(type(caught.value))
    assert BundleTampered in refusals


def test_a_payload_resigned_by_another_key_is_refused_as_unknown():
    with pytest.raises(BundleUnknownKey, match="not the hub key this site trusts"):
        open_bundle(bundle(key=SiteKey.generate()), HUB.public, "SPK1")


def test_a_stranger_cannot_pass_off_a_bundle_under_the_hubs_key_id():
    stranger = SiteKey.generate()
    token = bundle(key=stranger)
    header = (
        base64.urlsafe_b64encode(
            json.dumps(
                {"alg": "Ed25519", "kid": HUB.public.key_id, "typ": "mes-recipe-bundle+jws"}
            ).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    forged = ".".join([header, *token.split(".")[1:]])
    with pytest.raises(BundleTampered):
        open_bundle(forged, HUB.public, "SPK1")


def test_a_bundle_for_other_sites_is_refused():
    with pytest.raises(BundleWrongSite, match=r"for LDN1, MAD2, not for this site \(SPK1\)"):
        open_bundle(bundle(("MAD2", "LDN1")), HUB.public, "SPK1")


@pytest.mark.parametrize("junk", ["", "x", "a.b", "a.b.c.d", "e30.e30.e30", "\u00e9.a.b"])
def test_text_that_is_not_a_bundle_is_unreadable(junk):
    with pytest.raises(BundleUnreadable):
        open_bundle(junk, HUB.public, "SPK1")


def test_a_jws_of_another_type_is_not_taken_for_a_bundle():
    other = jws.serialize_compact(
        {"alg": "Ed25519", "kid": HUB.public.key_id},
        b"{}",
        OKPKey.import_key(HUB.private_pem()),
        algorithms=["Ed25519"],
    )
    with pytest.raises(BundleUnreadable, match="not a recipe bundle"):
        open_bundle(other, HUB.public, "SPK1")
