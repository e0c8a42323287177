"""What a spoke makes of an answer from the way to its hub: the hub's verdict, or an outage.

Only a 4xx whose body is the hub's JSON error (``application/json``, ``error``, ``what_to_do``
and a ``code`` of the API's form) is the hub's verdict. A 5xx — a proxy's 502 page, or the hub's
own 500 in its JSON shape — a "try later", and any answer in another shape are outages: no
verdict on what was sent, retried after 0.5 s, 1 s, then every 2 s (issue 13, finding 9).
"""

from __future__ import annotations

import json

import httpx
import pytest

from mes.sync.answers import NotTheHubsAnswer, outage_wait, verdict_of

CHUNKS = "https://hub.example:8443/api/v1/sync/chunks"


def answer(status: int, body: bytes | dict, content_type: str = "application/json"):
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    return httpx.Response(
        status,
        headers={"Content-Type": content_type},
        content=content,
        request=httpx.Request("POST", CHUNKS),
    )


def hub_error(code: str, error: str = "Refused.", what_to_do: str = "Do this.") -> dict:
    return {"error": error, "what_to_do": what_to_do, "code": code}


NGINX_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (
            answer(502, NGINX_502, "text/html"),
            "answered 502 Bad Gateway (text/html), not the hub's",
        ),
        (answer(503, b"", ""), "answered 503 Service Unavailable (no content type)"),
        (answer(500, hub_error("internal-error", "Internal error")), "500 Internal Server Error: "),
        (answer(500, {"message": "database connection lost"}), "500 Internal Server Error (appl"),
        (answer(504, b"upstream timed out", "text/plain"), "answered 504 Gateway Timeout"),
    ],
    ids=["502-html", "503-empty", "500-hub-json", "500-other-json", "504-text"],
)
def test_every_5xx_is_an_outage_whatever_its_body(response, says):
    with pytest.raises(NotTheHubsAnswer) as raised:
        verdict_of(response)
    assert raised.value.message.startswith("The hub at https://hub.example:8443 answered")
    assert says in raised.value.message
    assert "Nothing was lost" in raised.value.what_to_do
    assert "<html>" not in str(raised.value)  # nothing of a page that came back is repeated


@pytest.mark.parametrize(
    "response",
    [
        answer(404, b"<h1>Not Found</h1>", "text/html"),
        answer(403, {"message": "blocked by policy"}),
        answer(401, b"Proxy authentication required", "text/plain"),
        answer(409, json.dumps(hub_error("chain-gap")).encode(), "text/plain"),
        answer(422, hub_error("Chunk Tampered")),  # not a code of the API's form
        answer(422, {**hub_error("chunk-tampered"), "error": ""}),
        answer(422, {"error": "Refused.", "code": "chunk-tampered"}),  # no what_to_do
        answer(400, b"[1, 2]"),
        answer(400, b"{not json", "application/json"),
        answer(302, b"", "text/html"),
        answer(204, b"", ""),
    ],
    ids=[
        "404-page",
        "403-other-json",
        "401-text",
        "hub-shape-as-text",
        "code-not-of-the-api",
        "empty-error",
        "no-what-to-do",
        "json-list",
        "broken-json",
        "redirect",
        "no-content",
    ],
)
def test_an_answer_not_in_the_hubs_json_error_shape_is_an_outage(response):
    with pytest.raises(NotTheHubsAnswer, match="not the hub's own answer"):
        verdict_of(response)


@pytest.mark.parametrize("status", [408, 425, 429])
def test_a_try_later_is_an_outage_even_in_the_hubs_shape(status):
    with pytest.raises(NotTheHubsAnswer, match=f"answered {status} "):
        verdict_of(answer(status, hub_error("too-many-requests", "Slow down.")))


@pytest.mark.parametrize(
    ("status", "code", "refuses_spoke"),
    [
        (409, "chain-gap", False),
        (409, "chain-conflict", False),
        (422, "chunk-tampered", False),
        (422, "recipe-not-deployed", False),
        (413, "too-large", False),
        (404, "not-found", False),
        (401, "unauthenticated", True),
        (403, "spoke-not-active", True),
    ],
)
def test_the_hubs_4xx_json_error_is_its_verdict(status, code, refuses_spoke):
    body = {**hub_error(code, "Entry 3 differs.", "Compare the copies."), "last_seq": 2}
    verdict = verdict_of(answer(status, body, "application/json; charset=utf-8"))
    assert (verdict.status, verdict.code, verdict.refuses_spoke) == (status, code, refuses_spoke)
    assert verdict.message == "Entry 3 differs. Compare the copies."
    assert verdict.body["last_seq"] == 2


def test_while_the_hub_is_unreachable_rounds_come_after_half_a_second_one_then_every_two():
    assert [outage_wait(n) for n in (1, 2, 3, 4, 10, 1000)] == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]
