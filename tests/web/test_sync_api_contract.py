"""The hub's sync API keeps to its OpenAPI document (``mes/web/api/openapi.json``).

(a) The document is valid OpenAPI 3.1 (the OAS 3.1 meta-schema schemathesis ships, and every
schema in it a valid JSON Schema 2020-12), describes exactly the routes the hub mounts under
``/api/v1``, is what the hub serves, and ships with the package.

(b) Schemathesis generates requests for every operation from the document (valid ones, and ones
that break it) and sends them to the real hub app, on SQLite and on PostgreSQL (PostgreSQL refuses
what SQLite stores, e.g. NUL in text), unsigned and signed by an enrolled spoke: no answer is a
server error, and each answer's status, content type and body are those the document gives for
the operation; requests that break the document are refused.

(c) Explicit cases: every refusal the document names, each checked against the document too, and
a real chunk of a real batch stored, acknowledged again, refused for a gap, a fork, tampering and
an undeployed recipe. Every error is JSON ``{error, what_to_do, code}``: never a page, never a
traceback. Answers decided before any database work (routing, body size, the form of the
enrollment request) are checked on SQLite only.
"""

from __future__ import annotations

import copy
import json
import secrets
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema_rs
import pytest
import schemathesis
from batch_helpers import DIN_TYPED
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from recipe_helpers import TODAY, recipe_text
from recipe_helpers import sign as sign_step
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select
from support import PASSWORD, user_ctx
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

import mes.web.api
from mes.core.audit import Actor
from mes.core.batch import ACTION_MEANINGS, Action, Batch, Operator
from mes.core.esign import Manifestation
from mes.core.keys import SiteKey, SitePublicKey
from mes.core.ledger import SealedEntry
from mes.core.lifecycle import Step
from mes.core.sync import ack_verifies, make_chunk, sign_request
from mes.services import recipes
from mes.services.batches import procedure_for
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.spokes import add_spoke, change_spoke_status, enroll
from mes.store.models import RecipeVersion, SyncEvent

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = Path(mes.web.api.__file__).with_name("openapi.json")
API = "/api/v1"
SPOKE = "LDN1"
JOSE = "application/jose"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Answers decided before any database work (routing, body size, the enrollment request's form) are
# checked on SQLite only; everything that reads or writes sync state runs on both databases.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# Examples per operation and generation mode. Each is a real request on a real database; the
# whole property-based run stays at a few seconds per database.
EXAMPLES = 12


@schemathesis.serializer(JOSE)
def _jose_body(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """Chunks travel as the compact JWS text itself (generated values that are not text: JSON)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")


# --- the enrolled spoke and its signed requests ----------------------------------------------


@dataclass(frozen=True)
class Spoke:
    """A spoke enrolled at the hub through the services, with its own key."""

    site: str
    key: SiteKey


def enroll_spoke(make_uow, site: str = SPOKE) -> Spoke:
    now = datetime.now(UTC)
    ctx = Context.command_line(now, "tester", "testhost")
    with make_uow() as uow:
        ticket = add_spoke(uow, ctx, site, f"Spoke {site}", "Europe/London")
    key = SiteKey.generate()
    with make_uow() as uow:
        enroll(uow, now, site, ticket.code, key.public.pem().decode("ascii"))
    return Spoke(site, key)


def signature(
    spoke: Spoke, method: str, path: str, body: bytes = b"", *, key: SiteKey | None = None
) -> dict[str, str]:
    """The five X-MES-* headers of a request, signed as the spoke client signs them."""
    return sign_request(
        method,
        path,
        body,
        site=spoke.site,
        key=key or spoke.key,
        at=datetime.now(UTC),
        nonce=secrets.token_urlsafe(24),
    )


def case_signature(case: schemathesis.Case, spoke: Spoke) -> dict[str, str]:
    """Sign a generated case over the path and body bytes the hub will receive."""
    sent = case.as_transport_kwargs()
    sent["headers"] = {k: v for k, v in sent["headers"].items() if isinstance(v, str)}
    request = Request(EnvironBuilder(**sent).get_environ())
    path = unquote(request.full_path.rstrip("?"))
    return signature(spoke, case.method, path, request.get_data())


def header(response: Any, name: str) -> str:
    """A header of a Werkzeug or a schemathesis response (lower-case names, lists of values)."""
    if isinstance(response.headers, dict):
        return (response.headers.get(name.lower()) or [""])[0]
    return response.headers.get(name, "")


def assert_api_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """A JSON error with the reason, what to do and the code — not a page, not a traceback."""
    text = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
    assert response.status_code == status, text
    assert "Traceback" not in text and "<html" not in text.lower(), text
    assert header(response, "Content-Type").startswith("application/json"), text
    body = json.loads(text)
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"].strip(), body
    assert isinstance(body["what_to_do"], str), body
    return body


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def hub_app(make_app):
    return make_app("hub")


@pytest.fixture
def api(hub_app):
    """The document, loaded by schemathesis to call the real hub app in-process (WSGI).

    Loaded from the file (which the hub serves as it is, checked below) rather than with
    ``from_wsgi``, which leaves out the operation that serves the document itself.
    """
    schema = schemathesis.openapi.from_path(DOCUMENT)
    schema.app = hub_app
    return schema


@pytest.fixture
def spoke(make_uow, hub_app) -> Spoke:
    return enroll_spoke(make_uow)


@pytest.fixture
def client(hub_app):
    return hub_app.test_client()


# --- (a) the document --------------------------------------------------------------------------


def schemas_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every Schema Object of the document (under ``schema`` keys and components/schemas)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and isinstance(value, dict):
                yield value
            elif key == "schemas" and isinstance(value, dict):
                yield from (v for v in value.values() if isinstance(v, dict))
            yield from schemas_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from schemas_in(item)


def test_the_document_is_valid_openapi_3_1():
    raw = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert raw["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(copy.deepcopy(raw)).validate()  # the OAS 3.1 meta-schema
    found = list(schemas_in(raw))
    assert len(found) >= 15
    for schema in found:
        Draft202012Validator.check_schema(schema)
    # The validation is real: the same document with a broken part is refused.
    broken = copy.deepcopy(raw)
    broken["paths"]["/enroll"]["post"]["responses"]["200"].pop("description")
    with pytest.raises(jsonschema_rs.ValidationError, match="description"):
        schemathesis.openapi.from_dict(broken).validate()
    with pytest.raises(SchemaError, match="less than the minimum"):
        Draft202012Validator.check_schema({"type": "string", "maxLength": -1})


@SQLITE_ONLY
def test_the_document_describes_exactly_the_routes_the_hub_mounts(hub_app, api, client):
    raw = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert [s["url"] for s in raw["servers"]] == [API]
    documented = {
        (API + path.replace("{", "<").replace("}", ">"), method.upper())
        for path, item in raw["paths"].items()
        for method in item
    }
    mounted = {
        (rule.rule.replace("<string:", "<"), method)
        for rule in hub_app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == mounted
    served = client.get(f"{API}/openapi.json")
    assert served.status_code == 200 and served.mimetype == "application/json"
    assert served.json == raw
    assert {op.ok().label for op in api.get_all_operations()} == {
        "GET /",
        "GET /openapi.json",
        "POST /enroll",
        "GET /sync/bundles",
        "GET /sync/bundles/{bundle_hash}",
        "POST /sync/chunks",
        "POST /sync/reviews",
        "POST /sync/audit-head",
    }
    # Every 4xx body the document names is the one error schema, with the codes it lists.
    for item in raw["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[1]
                    response = raw["components"]["responses"][name]
                if status.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


def test_the_document_ships_with_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["*"]
    package = DOCUMENT.parent
    assert any(DOCUMENT in package.glob(pattern) for pattern in patterns), patterns


# --- (b) generated requests ----------------------------------------------------------------------


def answers_to_generated_cases(
    operation: schemathesis.APIOperation, mode: GenerationMode, spoke: Spoke | None
) -> list[int]:
    """Send generated cases of one operation (signed by ``spoke``); each answer as documented."""
    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=case_signature(case, spoke) if spoke else None)
        case.validate_response(response, checks=checks)
        assert "Traceback" not in response.text
        if response.status_code >= 400:
            assert set(response.json()) >= {"error", "what_to_do", "code"}
        statuses.append(response.status_code)

    check()
    assert statuses, operation.label
    return sorted(set(statuses))


def generated_requests_keep_to_the_document(
    api, spoke: Spoke | None, mode: GenerationMode
) -> dict[str, list[int]]:
    """The statuses generated cases got, by operation (signed: only the signed operations)."""
    answers = {}
    for result in api.get_all_operations():
        operation = result.ok()
        definition = operation.definition.raw
        if spoke is not None and not definition["security"]:
            continue  # operations that take no signature are covered by the unsigned run
        if mode == GenerationMode.NEGATIVE and not (
            definition.get("parameters") or definition.get("requestBody") or definition["security"]
        ):
            continue  # nothing to break: no parameter, body or signature header
        answers[operation.label] = answers_to_generated_cases(operation, mode, spoke)
    return answers


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_documented_answers(api, mode):
    answers = generated_requests_keep_to_the_document(api, None, mode)
    if mode == GenerationMode.POSITIVE:
        assert answers.pop("GET /") == [200]
        assert answers.pop("GET /openapi.json") == [200]
        # Well-formed, but no code the hub issued: refused (or 400 for a blank code); after ten
        # refusals in a minute the test client's address is turned away (429).
        assert set(answers.pop("POST /enroll")) <= {400, 403, 429}
    else:
        assert set(answers.pop("POST /enroll")) <= {400, 403, 413, 429}
    # Unsigned, nothing of the sync operations is served (nor is a body over 2 MB read).
    assert set(answers) == {
        "GET /sync/bundles",
        "GET /sync/bundles/{bundle_hash}",
        "POST /sync/chunks",
        "POST /sync/reviews",
        "POST /sync/audit-head",
    }
    for label, statuses in answers.items():
        assert set(statuses) <= {401, 413} and 401 in statuses, (label, statuses)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_signed_requests_get_documented_answers(api, spoke, mode):
    answers = generated_requests_keep_to_the_document(api, spoke, mode)
    if mode == GenerationMode.POSITIVE:
        # The signature is accepted: the answers are the operations' own.
        assert answers == {
            "GET /sync/bundles": [200],  # none published for the spoke
            "GET /sync/bundles/{bundle_hash}": [404],  # no such bundle
            "POST /sync/chunks": [422],  # JWS-shaped text that is no chunk
            "POST /sync/reviews": [200],  # heads of batches the hub holds none of: no entries
            "POST /sync/audit-head": [422],  # a head the spoke did not sign
        }
    else:
        # Negative cases leave out or break the signature headers (401) or break the path or
        # body under a good signature (404, 413, 422).
        assert answers["GET /sync/bundles"] == [401]
        assert set(answers["GET /sync/bundles/{bundle_hash}"]) <= {401, 404}
        assert set(answers["POST /sync/chunks"]) <= {401, 413, 422}
        assert set(answers["POST /sync/reviews"]) <= {400, 401, 413}
        assert set(answers["POST /sync/audit-head"]) <= {400, 401, 413, 422}


# --- (c) explicit cases ----------------------------------------------------------------------------


def error_schema() -> Draft202012Validator:
    raw = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return Draft202012Validator(raw["components"]["schemas"]["Error"])


def documented(api, method: str, path: str, response: Any, **parameters: Any) -> Any:
    """Check a raw answer against what the document says of the operation; return it."""
    case = api[path][method].Case(path_parameters=parameters or None)
    case.validate_response(response, checks=CHECKS)
    return response


def send(api, method: str, path: str, spoke: Spoke | None = None, **request: Any) -> Any:
    """A request built from the document (signed by ``spoke``), its answer checked against it."""
    case = api[path][method].Case(**request)
    headers = case_signature(case, spoke) if spoke else None
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS)
    return response


@SQLITE_ONLY
def test_malformed_enrollment_requests_are_400_json(api, client, spoke):
    bodies = {
        "not JSON": (b'{"site_code": "LDN1", "code": ', "application/json"),
        "not UTF-8": (b"\xff\xfe{}", "application/json"),
        "JSON, not declared": (
            b'{"site_code": "LDN1", "code": "X", "public_key_pem": "Y"}',
            "text/plain",
        ),
        "a list": (b"[]", "application/json"),
        "100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        "a field missing": (b'{"site_code": "LDN1", "code": "ABCD"}', "application/json"),
        "a number": (
            b'{"site_code": "LDN1", "code": 1234, "public_key_pem": "Y"}',
            "application/json",
        ),
        "blank": (
            b'{"site_code": "LDN1", "code": "  ", "public_key_pem": "Y"}',
            "application/json",
        ),
        "too long": (
            json.dumps({"site_code": "LDN1", "code": "A" * 65, "public_key_pem": "Y"}).encode(),
            "application/json",
        ),
        "no site code": (
            json.dumps({"site_code": "L\u0000N1", "code": "ABCD", "public_key_pem": "Y"}).encode(),
            "application/json",
        ),
    }
    for what, (body, content_type) in bodies.items():
        response = client.post(f"{API}/enroll", data=body, content_type=content_type)
        documented(api, "POST", "/enroll", response)
        answer = assert_api_error(response, 400, "invalid-input")
        assert "enrollment request" in answer["error"], what
        assert "mes spoke enroll" in answer["what_to_do"], what


def test_enrollment_with_a_wrong_code_is_403_with_the_reason(api, make_uow, hub_app):
    now = datetime.now(UTC)
    with make_uow() as uow:
        ticket = add_spoke(
            uow, Context.command_line(now, "t", "h"), "MAD2", "Madrid", "Europe/Madrid"
        )
    key = SiteKey.generate()
    pem = key.public.pem().decode("ascii")

    def attempt(site: str, code: str, public_key_pem: str = pem) -> Any:
        body = {"site_code": site, "code": code, "public_key_pem": public_key_pem}
        return send(api, "POST", "/enroll", body=body, media_type="application/json")

    refusals = {
        "the hub never issued it": attempt("MAD2", "ABCD-EFGH-JKLM-NPQR-STUV"),
        "issued for another site": attempt("LDN1", ticket.code),
        "not an Ed25519 public key": attempt("MAD2", ticket.code, "-----BEGIN PUBLIC KEY-----"),
    }
    for reason, response in refusals.items():
        answer = assert_api_error(response, 403, "enrollment-refused")
        assert reason in answer["error"], answer
    # The right code (typed in lower case with spaces) enrolls, once.
    enrolled = attempt("mad2", ticket.code.lower().replace("-", " "))
    assert enrolled.status_code == 200, enrolled.text
    answer = enrolled.json()
    assert answer["spoke"] == {"site_code": "MAD2", "name": "Madrid", "time_zone": "Europe/Madrid"}
    assert answer["hub"]["site_code"] == "TEST"
    hub_key = SitePublicKey.from_pem(answer["hub"]["public_key_pem"].encode("ascii"))
    assert answer["hub"]["key_id"] == hub_key.key_id
    again = attempt("MAD2", ticket.code)
    assert "used already" in assert_api_error(again, 403, "enrollment-refused")["error"]
    with make_uow() as uow:
        logged = uow.session.execute(
            select(SyncEvent.outcome, SyncEvent.code).where(SyncEvent.action == "enroll")
        ).all()
    # Refusals from one address within a minute: the first logged in full, the others counted
    # (their count is logged when the minute closes).
    assert sorted(logged) == sorted([("refused", "enrollment-refused"), ("accepted", None)])


def test_a_spokes_audit_head_is_countersigned_and_one_that_went_backwards_is_422(
    api, spoke, site_key
):
    from mes.core.heads import audit_chain, countersigned_by, sign_head

    def head(seq: int):
        return sign_head(
            spoke.key, audit_chain(spoke.site), seq, f"{seq:064x}", "2026-12-05T10:00:00.000000Z"
        )

    def post(sent):
        body = {"head": sent.as_dict(), "hub_head_seen": None}
        return send(
            api, "POST", "/sync/audit-head", spoke, body=body, media_type="application/json"
        )

    answer = post(head(3))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["head"] == head(3).as_dict()
    assert countersigned_by(head(3), data["countersigned_at"], data["countersignature"],
                            site_key.public)  # fmt: skip
    assert data["hub_head"]["chain"] == "audit:TEST"
    assert post(head(3)).status_code == 200  # the same head again: countersigned again
    backwards = assert_api_error(post(head(2)), 422, "audit-head-refused")
    assert "audit chain went backwards" in backwards["error"]
    forged = sign_head(SiteKey.generate(), audit_chain(spoke.site), 9, "9" * 64, "2026-12-05")
    assert (
        "signed with its key" in assert_api_error(post(forged), 422, "audit-head-refused")["error"]
    )


@SQLITE_ONLY
def test_oversized_bodies_are_413_json(api, client, spoke):
    big = b"a" * (2 * 1024 * 1024 + 1)
    chunk = client.post(
        f"{API}/sync/chunks",
        data=big,
        content_type=JOSE,
        headers=signature(spoke, "POST", f"{API}/sync/chunks", big),
    )
    documented(api, "POST", "/sync/chunks", chunk)
    assert "larger than 2 MB" in assert_api_error(chunk, 413, "too-large")["error"]
    unsigned = client.post(f"{API}/sync/chunks", data=big, content_type=JOSE)
    assert_api_error(documented(api, "POST", "/sync/chunks", unsigned), 413, "too-large")
    listing = client.get(f"{API}/sync/bundles", data=big)
    assert_api_error(documented(api, "GET", "/sync/bundles", listing), 413, "too-large")
    enrollment = client.post(f"{API}/enroll", data=big, content_type="application/json")
    assert_api_error(documented(api, "POST", "/enroll", enrollment), 413, "too-large")


def test_requests_not_signed_by_an_enrolled_spoke_are_401_json(api, client, spoke, make_uow):
    path = f"{API}/sync/bundles"
    good = signature(spoke, "GET", path)
    partial = {k: v for k, v in good.items() if k != "X-MES-Nonce"}
    bad_signature = {**good, "X-MES-Signature": good["X-MES-Signature"][::-1]}
    other_path = signature(spoke, "GET", f"{API}/sync/chunks")
    stale = sign_request(
        "GET",
        path,
        b"",
        site=SPOKE,
        key=spoke.key,
        at=datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
        nonce=secrets.token_urlsafe(24),
    )
    stranger = signature(Spoke("ZZZ9", SiteKey.generate()), "GET", path)
    other_key = signature(spoke, "GET", path, key=SiteKey.generate())
    cases = {
        "no headers": ({}, "missing X-MES-Site, X-MES-Key-Id"),
        "partial headers": (partial, "missing X-MES-Nonce"),
        "bad signature": (bad_signature, "signature does not verify"),
        "signed for another path": (other_path, "signature does not verify"),
        "stale": (stale, "behind the hub's clock"),
        "unknown site": (stranger, "'ZZZ9' is not a spoke enrolled at this hub"),
        "another key": (other_key, "not the key LDN1 enrolled with"),
        "short nonce": ({**good, "X-MES-Nonce": "abc"}, "nonce must be 16-64"),
        "bad timestamp": ({**good, "X-MES-Timestamp": "yesterday"}, "is not UTC time"),
    }
    for n, (what, (headers, reason)) in enumerate(cases.items()):
        # Each from its own address: the first refusal from an address in a minute is logged in
        # full (the rest are counted), and this test reads what each refusal logs.
        response = client.get(path, headers=headers, environ_base={"REMOTE_ADDR": f"10.9.0.{n}"})
        documented(api, "GET", "/sync/bundles", response)
        assert reason in assert_api_error(response, 401, "unauthenticated")["error"], what
    for operation, method in (("/sync/bundles/" + "0" * 64, "GET"), ("/sync/chunks", "POST")):
        response = client.open(API + operation, method=method, data=b"x.y.z", content_type=JOSE)
        assert_api_error(response, 401, "unauthenticated")
    with make_uow() as uow:
        refused = uow.session.execute(
            select(SyncEvent.peer, SyncEvent.code).where(SyncEvent.outcome == "refused")
        ).all()
    # Refusals after the headers were read are logged with the site they claim.
    assert ("ZZZ9", "unauthenticated") in refused and ("LDN1", "unauthenticated") in refused


def test_a_replayed_request_is_409_and_a_suspended_spoke_403(api, client, spoke, make_uow):
    path = f"{API}/sync/bundles"
    headers = signature(spoke, "GET", path)
    first = client.get(path, headers=headers)
    assert documented(api, "GET", "/sync/bundles", first).status_code == 200
    assert first.json == {"bundles": []}
    replay = client.get(path, headers=headers)
    documented(api, "GET", "/sync/bundles", replay)
    assert "received before" in assert_api_error(replay, 409, "replayed")["error"]
    ctx = Context.command_line(datetime.now(UTC), "tester", "testhost")
    with make_uow() as uow:
        change_spoke_status(uow, ctx, SPOKE, "suspend", "Audit of the site")
    suspended = client.get(path, headers=signature(spoke, "GET", path))
    documented(api, "GET", "/sync/bundles", suspended)
    answer = assert_api_error(suspended, 403, "spoke-not-active")
    assert "suspended" in answer["error"] and "Audit of the site" in answer["error"]


@SQLITE_ONLY
def test_a_wrong_method_is_405_json_with_allow(client):
    for method, path, allowed in (
        ("GET", "/enroll", "OPTIONS, POST"),
        ("PUT", "/sync/chunks", "OPTIONS, POST"),
        ("POST", "/sync/bundles", "GET, HEAD, OPTIONS"),
        ("DELETE", "/sync/bundles/" + "0" * 64, "GET, HEAD, OPTIONS"),
        ("POST", "/openapi.json", "GET, HEAD, OPTIONS"),
    ):
        response = client.open(API + path, method=method)
        body = assert_api_error(response, 405, "method-not-allowed")
        error_schema().validate(body)
        assert response.headers["Allow"] == allowed
        assert allowed in body["what_to_do"]


@SQLITE_ONLY
def test_an_unknown_address_under_the_api_is_404_json(client, spoke):
    for path in ("/api/v1/nothing", "/api/v1/sync", "/api/v2/enroll", "/api/v1/sync/chunks/x"):
        response = client.get(path, headers=signature(spoke, "GET", path))
        body = assert_api_error(response, 404, "not-found")
        error_schema().validate(body)
        assert "openapi.json" in body["what_to_do"]


def test_unreadable_chunks_with_a_good_signature_are_422_json(api, spoke, client):
    for body in (b"garbage", b"a.b.c", b"eyJhbGciOiJFZDI1NTE5In0.e30.c2ln", "é.é.é".encode()):
        response = client.post(
            f"{API}/sync/chunks",
            data=body,
            content_type=JOSE,
            headers=signature(spoke, "POST", f"{API}/sync/chunks", body),
        )
        documented(api, "POST", "/sync/chunks", response)
        answer = assert_api_error(response, 422, "chunk-unreadable")
        assert "chunk" in answer["error"], body


def test_nul_characters_are_refused_not_crashed_on(api, client, spoke, make_uow):
    """PostgreSQL refuses NUL in text: such input must be a 4xx before it reaches the database."""
    path = f"{API}/sync/bundles/%00"
    # Each refusal from its own address, so that each is logged in full (see above).
    client.environ_base["REMOTE_ADDR"] = "10.9.1.1"
    nul_site = client.get(path, headers={**signature(spoke, "GET", path), "X-MES-Site": "L\x00"})
    assert "is not a site code" in assert_api_error(nul_site, 401, "unauthenticated")["error"]
    # Signed over the path as sent (the hub reads it decoded): refused, and logged.
    client.environ_base["REMOTE_ADDR"] = "10.9.1.2"
    misread = client.get(path, headers=signature(spoke, "GET", path))
    assert_api_error(misread, 401, "unauthenticated")
    signed = client.get(path, headers=signature(spoke, "GET", unquote(path)))
    assert_api_error(
        documented(api, "GET", "/sync/bundles/{bundle_hash}", signed), 404, "not-found"
    )
    body = b"\x00.\x00.\x00"
    chunk = client.post(
        f"{API}/sync/chunks",
        data=body,
        content_type=JOSE,
        headers=signature(spoke, "POST", f"{API}/sync/chunks", body),
    )
    assert_api_error(documented(api, "POST", "/sync/chunks", chunk), 422, "chunk-unreadable")
    stranger = signature(Spoke("ZZ\x00", SiteKey.generate()), "GET", f"{API}/sync/bundles")
    client.environ_base["REMOTE_ADDR"] = "10.9.1.3"
    assert_api_error(client.get(f"{API}/sync/bundles", headers=stranger), 401, "unauthenticated")
    with make_uow() as uow:
        items = uow.session.execute(
            select(SyncEvent.item, SyncEvent.peer)
            .where(SyncEvent.code == "unauthenticated")
            .order_by(SyncEvent.id)
        ).all()
        # Every refusal is logged; a claimed site that is not a site code is not named as a peer.
        assert [tuple(i) for i in items] == [
            ("GET /api/v1/sync/bundles/\\x00 from 10.9.1.1", None),
            ("GET /api/v1/sync/bundles/\\x00 from 10.9.1.2", spoke.site),
            ("GET /api/v1/sync/bundles from 10.9.1.3", None),
        ]


# --- a real spoke's round: bundles down, a batch record up ----------------------------------------


@dataclass(frozen=True)
class Published:
    """An effective MINI-TEST v1 at the hub, published for the spoke."""

    token: str
    bundle_hash: str
    content_hash: str
    compiled: str


@pytest.fixture
def published(make_uow, create_user, cli_ctx, spoke) -> Published:
    ids = {}
    for username, roles in {"aaron": ["author"], "sam": ["supervisor"], "quinn": ["qa"]}.items():
        ids[username] = create_user(username, roles=roles)
        with make_uow() as uow:
            acknowledge_accountability(
                uow,
                user_ctx(ids[username]),
                Credentials(password=PASSWORD, username=username),
                first_signing_in_session=True,
            )
    with make_uow() as uow:
        version_id = recipes.import_recipe(
            uow, user_ctx(ids["aaron"]), recipe_text(1), "mini.yaml"
        ).id
    sign_step(make_uow, ids["aaron"], "aaron", version_id, Step.SUBMIT)
    sign_step(make_uow, ids["sam"], "sam", version_id, Step.REVIEW)
    sign_step(make_uow, ids["quinn"], "quinn", version_id, Step.APPROVE)
    sign_step(
        make_uow, ids["quinn"], "quinn", version_id, Step.MAKE_EFFECTIVE, effective_from=TODAY
    )
    with make_uow() as uow:
        token, publication = recipes.publish(uow, cli_ctx, version_id, [spoke.site])
        bundle_hash = publication.bundle_hash
    with make_uow() as uow:
        version = uow.session.execute(
            select(RecipeVersion).where(RecipeVersion.id == version_id)
        ).scalar_one()
        return Published(token, bundle_hash, version.content_hash, version.compiled)


def spoke_batch(
    spoke: Spoke,
    published: Published,
    *,
    batch_id: str,
    content_hash: str | None = None,
    serial: int = 1,
) -> list[SealedEntry]:
    """A batch made at the spoke, as its own ledger holds it: created, then signed as started."""
    at = datetime.now(UTC)
    olivia = Operator(Actor("u-olivia", "olivia", "Olivia Tester"), frozenset({"operator"}), True)
    batch = Batch.create(
        procedure_for(published.content_hash, published.compiled),
        batch_id=batch_id,
        number=f"{spoke.site}-2026-{serial:04d}",
        site=spoke.site,
        recipe={
            "code": "MINI-TEST",
            "version": 1,
            "content_hash": content_hash or published.content_hash,
            "bundle_hash": published.bundle_hash,
        },
        identifiers={"din": DIN_TYPED},
        who=olivia,
        at=at,
        terminal="Bench 1",
        key=spoke.key,
        time_zone="Europe/London",
    )
    record = batch.prepare(Action.START, olivia, at, terminal="Bench 1")
    manifestation = Manifestation.for_record(
        record_type=record["type"],
        record_id=batch.state.id,
        record=record,
        signer_id="u-olivia",
        username="olivia",
        printed_name="Olivia Tester",
        meaning=ACTION_MEANINGS[Action.START],
        at=at,
        terminal="Bench 1",
        site=spoke.site,
    )
    batch.signed(record, manifestation, olivia, at, "Bench 1")
    return list(batch.new_entries)


class Acknowledged:
    """A checked answer whose JSON is the acknowledgement without its (verified) signature."""

    def __init__(self, response: Any, ack: dict[str, Any]) -> None:
        self._response, self._ack = response, ack

    def json(self) -> dict[str, Any]:
        return self._ack

    def __getattr__(self, name: str) -> Any:
        return getattr(self._response, name)


def test_a_spokes_round_gets_documented_answers(api, spoke, published, hub_app):
    hub_key = hub_app.extensions["mes"].site.key.public

    def push(entries: list[SealedEntry], *, token: str | None = None) -> Any:
        chunk = token or make_chunk(
            entries, site=spoke.site, key=spoke.key, issued_at=datetime.now(UTC)
        )
        response = send(api, "POST", "/sync/chunks", spoke, body=chunk, media_type=JOSE)
        if response.status_code == 200:  # signed by the hub for this very request
            ack = response.json()
            nonce = response.request.headers["X-MES-Nonce"]
            fields = {k: ack[k] for k in ("batch", "last_seq", "last_hash")}
            assert ack_verifies(
                hub_key, ack.pop("signature"), site=spoke.site, nonce=nonce, **fields
            )
            assert not ack_verifies(
                hub_key, spoke.key.sign(b"x"), site=spoke.site, nonce=nonce, **fields
            )
            return Acknowledged(response, ack)  # the rest of the test reads the acknowledgement
        return response

    listing = send(api, "GET", "/sync/bundles", spoke)
    assert listing.status_code == 200
    [offer] = listing.json()["bundles"]
    assert offer["bundle_hash"] == published.bundle_hash
    assert (offer["recipe_code"], offer["version"]) == ("MINI-TEST", 1)
    fetched = send(
        api,
        "GET",
        "/sync/bundles/{bundle_hash}",
        spoke,
        path_parameters={"bundle_hash": published.bundle_hash},
    )
    assert fetched.status_code == 200 and fetched.text == published.token
    assert header(fetched, "Content-Type").startswith(JOSE)

    entries = spoke_batch(spoke, published, batch_id=str(uuid.uuid4()))
    batch = entries[0].body["batch"]
    gap = push(entries[1:])  # entry 2 before entry 1
    answer = assert_api_error(gap, 409, "chain-gap")
    assert (answer["last_seq"], answer["last_hash"]) == (0, None)
    first = push(entries[:1])
    assert first.status_code == 200, first.text
    assert first.json() == {
        "batch": batch,
        "stored": 1,
        "duplicates": 0,
        "last_seq": 1,
        "last_hash": entries[0].hash,
    }
    both = push(entries)  # entry 1 again: acknowledged, not stored twice
    assert both.json() == {
        "batch": batch,
        "stored": 1,
        "duplicates": 1,
        "last_seq": 2,
        "last_hash": entries[1].hash,
    }
    again = push(entries)
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 2)

    fork = spoke_batch(spoke, published, batch_id=batch)  # another entry 1 for the same batch
    assert fork[0].hash != entries[0].hash
    assert_api_error(push(fork[:1]), 409, "chain-conflict")
    token = make_chunk(entries, site=spoke.site, key=spoke.key, issued_at=datetime.now(UTC))
    header_part, payload, sig = token.split(".")
    tampered = ".".join([header_part, payload, ("A" if sig[0] != "A" else "B") + sig[1:]])
    assert_api_error(push(entries, token=tampered), 422, "chunk-tampered")
    undeployed = spoke_batch(
        spoke, published, batch_id=str(uuid.uuid4()), content_hash="1" * 64, serial=2
    )
    answer = assert_api_error(push(undeployed), 422, "recipe-not-deployed")
    assert "never deployed to LDN1" in answer["error"]
    # Another batch under a number the hub holds already (a spoke restored from an old backup):
    # refused as a conflict, never a second batch with the same number.
    renumbered = spoke_batch(spoke, published, batch_id=str(uuid.uuid4()))
    answer = assert_api_error(push(renumbered), 409, "chain-conflict")
    assert "is already held by another batch at the hub" in answer["error"]
