"""The spoke moves its outbox mark only on an acknowledgement the hub signed for that very push.

Whoever sits on the path sees the hash of the last entry a spoke sends; without the hub's
signature they could answer "stored" and the spoke would stop sending a batch the hub never got.
"""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from mes.core.keys import SiteKey
from mes.core.sync import NONCE_HEADER, ack_message
from mes.sync.client import _read_ack

HUB = SiteKey.generate()
NONCE = "n" * 24
BATCH = "01a2b3c4-0000-7000-8000-000000000001"
LAST_HASH = "ab" * 32


def spoke(hub_key=HUB.public):
    return SimpleNamespace(site=SimpleNamespace(code="SPK1", hub_key=hub_key))


def answer(body, nonce: str = NONCE) -> httpx.Response:
    request = httpx.Request("POST", "http://hub/api/v1/sync/chunks", headers={NONCE_HEADER: nonce})
    return httpx.Response(200, json=body, request=request)


def ack(key: SiteKey = HUB, nonce: str = NONCE, **changes):
    body = {"batch": BATCH, "stored": 9, "duplicates": 0, "last_seq": 9, "last_hash": LAST_HASH}
    body["signature"] = key.sign(ack_message("SPK1", BATCH, 9, LAST_HASH, nonce))
    body.update(changes)
    return body


def test_an_acknowledgement_the_hub_signed_for_this_push_is_read():
    read, problem = _read_ack(spoke(), answer(ack()), BATCH, 9)
    assert problem == ""
    assert (read["last_seq"], read["last_hash"], read["stored"]) == (9, LAST_HASH, 9)


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in ack().items() if k != "signature"},  # made up on the way, unsigned
        ack(key=SiteKey.generate()),  # signed by someone else
        ack(nonce="another-request-nonce"),  # the hub's answer to another push, replayed
        ack(last_seq=8),  # altered after the hub signed it
    ],
)
def test_an_acknowledgement_not_signed_by_the_pinned_hub_for_this_push_moves_nothing(body):
    read, problem = _read_ack(spoke(), answer(body), BATCH, 9)
    assert read is None
    assert (
        problem.startswith(
            "The hub's acknowledgement is not signed with the hub key this spoke pinned"
        )
        or problem == "The hub's answer to a push is not an acknowledgement this spoke can read."
    )


def test_without_a_pinned_hub_key_no_acknowledgement_is_trusted():
    read, problem = _read_ack(spoke(hub_key=None), answer(ack()), BATCH, 9)
    assert read is None and "not signed with the hub key this spoke pinned" in problem


@pytest.mark.parametrize(
    "body",
    [
        ["a", "list"],
        "text",
        ack(batch="another-batch"),
        ack(last_seq=10**30),
        ack(stored=-1),
        ack(last_hash="short"),
        {"batch": BATCH},
    ],
)
def test_an_answer_that_is_not_an_acknowledgement_is_refused_not_a_crash(body):
    read, problem = _read_ack(spoke(), answer(body), BATCH, 9)
    assert read is None
    assert problem == "The hub's answer to a push is not an acknowledgement this spoke can read."


def test_a_page_that_is_not_json_is_refused_not_a_crash():
    request = httpx.Request("POST", "http://hub/api/v1/sync/chunks", headers={NONCE_HEADER: NONCE})
    page = httpx.Response(200, text="<html>proxy login</html>", request=request)
    assert _read_ack(spoke(), page, BATCH, 9) == (
        None,
        "The hub's answer to a push is not an acknowledgement this spoke can read.",
    )
