"""The hub's sync API (JSON over HTTPS, spoke-initiated), described in ``openapi.json``.

Thin views: read the request, call the service, answer JSON. Every sync call except enrollment
is signed by the spoke (:mod:`mes.core.sync`); every refusal is a 4xx JSON error with the
reason (``error``), what to do, and a stable ``code``.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from mes.core.errors import (
    ChunkGap,
    InvalidInput,
    MesError,
    NotFound,
    TooLarge,
    TooManyAttempts,
)
from mes.services.anchors import countersign_audit_head, read_audit_head_request
from mes.services.document_certificate import document_certificate_pem
from mes.services.ingest import Received, authenticate, receive_chunk
from mes.services.review import review_updates
from mes.services.spokes import bundle_token, bundles_for, enroll
from mes.settings import SITE_CODE
from mes.web import api_error_response, error_code, runtime
from mes.web.helpers import request_source

bp = Blueprint("api", __name__, url_prefix="/api/v1", template_folder="templates")

JOSE = "application/jose"
MAX_BODY = 2 * 1024 * 1024
BUNDLE_HASH = re.compile(r"[0-9a-f]{64}")
# The enrollment request's fields and their longest accepted length (as in openapi.json).
ENROLL_FIELDS = {"site_code": 12, "code": 64, "public_key_pem": 2000}
# The review-updates request: how many batches it may name, how long a batch ID may be, the
# largest review head (as in openapi.json).
MAX_KNOWN = 10_000
MAX_BATCH_ID = 36
MAX_SEQ = 2**53 - 1


def api_error(err: MesError) -> tuple[Response, int]:
    """A refusal as the API's JSON error body."""
    extra: dict[str, Any] = {}
    if isinstance(err, ChunkGap):
        extra = {"last_seq": err.last_seq, "last_hash": err.last_hash}
    code = getattr(err, "code", None) or error_code(type(err).__name__)
    response, status = api_error_response(
        err.http_status, err.message, err.what_to_do, code, **extra
    )
    if isinstance(err, TooManyAttempts):
        response.headers["Retry-After"] = str(err.retry_after)  # RFC 9110 10.2.3
    return response, status


@bp.errorhandler(MesError)
def _refused(err: MesError) -> tuple[Response, int]:
    return api_error(err)


def _body() -> bytes:
    if (request.content_length or 0) > MAX_BODY:
        raise TooLarge(
            f"The request body is larger than {MAX_BODY // (1024 * 1024)} MB.",
            what_to_do="Send smaller chunks.",
        )
    return request.get_data(cache=True)


def _as_signed() -> Received:
    """What the hub checks of a signed request (its refusals counted under its address)."""
    skew = runtime().settings.sync_clock_skew_seconds
    path = request.full_path.rstrip("?")
    return Received(g.now, request.headers, request.method, path, _body(), skew, request_source())


def _signed() -> str:
    """The enrolled, active spoke that signed this request (or a 4xx refusal)."""
    with runtime().uow() as uow:
        return authenticate(uow, _as_signed())


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template("api/index.html")


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    document = resources.files("mes.web.api").joinpath("openapi.json").read_bytes()
    return Response(document, mimetype="application/json")


def _enrollment_request() -> dict[str, str]:
    """The enrollment request's fields, or a 400 naming what is wrong with it."""
    _body()
    data = request.get_json(silent=True) if request.is_json else None
    how = "Enroll with 'mes spoke enroll --hub URL --code CODE' at the spoke."
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and data[k].strip() for k in ENROLL_FIELDS
    ):
        raise InvalidInput(
            "The enrollment request needs site_code, code and public_key_pem (JSON strings).",
            what_to_do=how,
        )
    fields = {k: data[k].strip() for k in ENROLL_FIELDS}
    too_long = [k for k, most in ENROLL_FIELDS.items() if len(fields[k]) > most]
    if too_long:
        raise InvalidInput(
            "The enrollment request's "
            + ", ".join(f"{k} is longer than {ENROLL_FIELDS[k]} characters" for k in too_long)
            + ".",
            what_to_do=how,
        )
    fields["site_code"] = fields["site_code"].upper()
    if not SITE_CODE.fullmatch(fields["site_code"]):
        raise InvalidInput(
            "The enrollment request's site_code is not a site code (2 to 12 capital letters "
            "or digits, starting with a letter).",
            what_to_do=how,
        )
    return fields


def _hub_certificate_pem() -> str | None:
    pem = document_certificate_pem(runtime().settings)
    return pem.decode("ascii") if pem is not None else None


@bp.post("/enroll")
def enroll_spoke() -> ResponseReturnValue:
    fields = _enrollment_request()
    with runtime().uow() as uow:
        enrollment = enroll(
            uow,
            g.now,
            fields["site_code"],
            fields["code"],
            fields["public_key_pem"],
            _hub_certificate_pem(),
            source=request_source(),
        )
    return jsonify(enrollment.as_json())


@bp.get("/sync/bundles")
def list_bundles() -> ResponseReturnValue:
    site = _signed()
    with runtime().uow(read_only=True) as uow:
        offers = bundles_for(uow, site)
    return jsonify(
        {
            "bundles": [
                {
                    "bundle_hash": o.bundle_hash,
                    "recipe_code": o.recipe_code,
                    "version": o.version,
                    "published_at": o.published_at.isoformat(),
                }
                for o in offers
            ]
        }
    )


@bp.get("/sync/bundles/<string:bundle_hash>")
def get_bundle(bundle_hash: str) -> ResponseReturnValue:
    site = _signed()
    if not BUNDLE_HASH.fullmatch(bundle_hash):
        raise NotFound(
            "A bundle is named by its SHA-256 (64 lowercase hex digits); "
            f"{bundle_hash[:70]!r} is not one.",
            what_to_do="List the bundles for this site first.",
        )
    with runtime().uow(read_only=True) as uow:
        token = bundle_token(uow, site, bundle_hash)
    return Response(token, mimetype=JOSE)


@bp.post("/sync/chunks")
def push_chunk() -> ResponseReturnValue:
    # The request's signature, the chunk's and every entry's are checked before anything is
    # written; then the nonce and the new entries are stored in one transaction.
    with runtime().uow() as uow:
        ack = receive_chunk(uow, _as_signed())
    faults_after_commit()
    return jsonify(ack.as_json())


def _known_reviews() -> dict[str, int]:
    """The review heads a spoke names (batch ID → last seq it holds), or a 400 saying why not."""
    data = request.get_json(silent=True) if request.is_json else None
    how = 'Send a JSON object {"known": {"<batch id>": <review last seq>, ...}}.'
    known = data.get("known") if isinstance(data, dict) and set(data) == {"known"} else None
    if not isinstance(known, dict):
        raise InvalidInput(
            "The request needs exactly one field, known: an object of batch IDs and review heads.",
            what_to_do=how,
        )
    if len(known) > MAX_KNOWN:
        raise InvalidInput(
            f"The request names {len(known)} batches; at most {MAX_KNOWN:,} are taken at once.",
            what_to_do=f"Ask for at most {MAX_KNOWN:,} batches a request.",
        )
    for batch_id, seq in known.items():
        if not re.fullmatch(rf"[0-9A-Za-z-]{{1,{MAX_BATCH_ID}}}", batch_id):
            raise InvalidInput(
                f"{batch_id[:40]!r} is not a batch ID (1 to {MAX_BATCH_ID} letters, digits "
                "or hyphens).",
                what_to_do=how,
            )
        if isinstance(seq, float) and seq.is_integer():
            seq = known[batch_id] = int(seq)  # 3.0 is an integer in JSON Schema
        if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
            raise InvalidInput(
                f"The review head of batch {batch_id} is not a whole number from 0.",
                what_to_do=how,
            )
    return known


@bp.post("/sync/reviews")
def review_entries() -> ResponseReturnValue:
    # Signed first (a body nobody signed is not even read), then the heads are checked; only
    # the calling spoke's own batches are answered, with the entries after the heads it names.
    site = _signed()
    known = _known_reviews()
    with runtime().uow(read_only=True) as uow:
        entries = review_updates(uow, site, known)
    return jsonify({"entries": [e.as_dict() for e in entries]})


@bp.post("/sync/audit-head")
def audit_head() -> ResponseReturnValue:
    # Signed first; the hub countersigns the spoke's signed audit head (refusing one that went
    # backwards) and answers with its own signed audit head, which the spoke keeps.
    site = _signed()
    data = request.get_json(silent=True) if request.is_json else None
    head, seen = read_audit_head_request(data)
    with runtime().uow() as uow:
        answer = countersign_audit_head(uow, g.now, site, head, seen)
    return jsonify(answer)


def faults_after_commit() -> None:
    """Fault injection for the sync tests: die after the commit, before the answer is sent.

    Active only when the instance's settings name it (``MES_FAULT=ingest-committed`` and a
    marker file the test writes); a normal deployment never sets it.
    """
    fault = current_app.config.get("MES_FAULT")
    if fault != "ingest-committed":
        return
    marker = runtime().settings.instance_path / "fault-once"
    try:
        marker.unlink()
    except FileNotFoundError:
        return
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
