"""Refusals and failures as answers: a page for people, the API's JSON error body for spokes.

Never a traceback: a rule's refusal (:class:`MesError`) keeps its words and status; routing,
size and CSRF failures get a readable page; anything unexpected is logged and answered 500.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from mes.core.errors import MesError

API_PREFIX = "/api/"

# The stable ``code`` of an API error that no rule of ours raised (routing, size, a bug).
HTTP_ERROR_CODES = {
    400: "invalid-input",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    500: "internal-error",
}
HTTP_WHAT_TO_DO = {
    404: "Check the address: the API's operations are listed in /api/v1/openapi.json.",
    413: "Send a smaller request: the hub accepts at most 2 MB per request.",
    500: "Nothing was saved. Try again; if it happens again, tell the hub administrator the "
    "time it happened.",
}


def is_api_request() -> bool:
    """A call of the sync API (JSON errors with a stable code, never a page)."""
    return request.path.startswith(API_PREFIX)


def error_code(name: str) -> str:
    """A stable machine-readable code from an error's name: ``NotFound`` → ``not-found``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return "-".join(spaced.lower().split())


def api_error_response(
    status: int, error: str, what_to_do: str, code: str, **extra: Any
) -> tuple[Response, int]:
    """The API's one error body: the reason, what to do about it, and a stable code."""
    return jsonify({"error": error, "what_to_do": what_to_do, "code": code, **extra}), status


def wants_json() -> bool:
    """API clients get JSON errors, browsers get pages."""
    accept = request.accept_mimetypes
    explicit_json = accept["application/json"] > accept["text/html"]  # */* counts as both
    return is_api_request() or explicit_json


def error_response(status: int, title: str, message: str) -> tuple[Response | str, int]:
    """A readable 4xx/5xx answer: JSON for API clients, a page for people (never a traceback).

    Under ``/api/`` the JSON is the API's error body (``error``, ``what_to_do``, ``code``), as
    the OpenAPI document describes it; other JSON clients get ``error`` and ``message``.
    """
    if is_api_request():
        return api_error_response(
            status,
            f"{title}: {message}" if message else title,
            HTTP_WHAT_TO_DO.get(status, "Check the request against /api/v1/openapi.json."),
            HTTP_ERROR_CODES.get(status) or error_code(title),
        )
    if wants_json():
        return jsonify({"error": title, "message": message}), status
    return render_template("error.html", status=status, title=title, message=message), status


def mes_error(err: MesError) -> tuple[Response | str, int]:
    """A rule's refusal that no view showed on its page: its words and its status."""
    if is_api_request():
        code = getattr(err, "code", None) or error_code(type(err).__name__)
        return api_error_response(err.http_status, err.message, err.what_to_do, code)
    return error_response(err.http_status, type(err).__name__, str(err))


def csrf_error(err: CSRFError) -> tuple[Response | str, int]:
    """A stale form, or one not from this site: nothing was saved."""
    return error_response(
        400,
        "Form expired",
        "The form was stale or not from this site; nothing was saved. "
        "Go back, reload the page and try again.",
    )


def http_error(err: HTTPException) -> tuple[Response | str, int]:
    """Routing and protocol errors; the API names the methods an address allows."""
    if is_api_request() and isinstance(err, MethodNotAllowed) and err.valid_methods:
        allowed_methods = ", ".join(sorted(err.valid_methods))
        response, status = api_error_response(
            405,
            f"{err.name}: {err.description}",
            f"Use {allowed_methods} for this address (see /api/v1/openapi.json).",
            HTTP_ERROR_CODES[405],
        )
        response.headers["Allow"] = allowed_methods  # RFC 9110 15.5.6
        return response, status
    return error_response(err.code or 500, err.name, err.description or "")


def init_app(app: Flask) -> None:
    """Answer every refusal and failure readably; log what nobody expected."""
    app.register_error_handler(MesError, mes_error)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(HTTPException, http_error)

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> tuple[Response | str, int]:
        app.logger.exception("unexpected error")
        return error_response(
            500,
            "Internal error",
            "Something went wrong on the server; nothing was saved. Try again, and if it "
            "happens again tell your administrator the time it happened.",
        )
