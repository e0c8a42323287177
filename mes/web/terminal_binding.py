"""Binding a browser to a registered terminal with a signed, long-lived cookie (11.10(h))."""

from __future__ import annotations

from flask import Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer

from mes.services.runtime import Runtime
from mes.services.terminals import active_terminal

COOKIE = "mes_terminal"
TEN_YEARS = 10 * 365 * 24 * 3600


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="mes-terminal")


def resolve(rt: Runtime) -> None:
    """Set ``g.terminal`` (registered, active terminal or None) and ``g.terminal_label``."""
    g.terminal = None
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            terminal_id = _serializer().loads(raw)
        except BadSignature:
            terminal_id = None
        if isinstance(terminal_id, str):
            with rt.uow(read_only=True) as uow:
                terminal = active_terminal(uow, terminal_id)
                if terminal is not None:
                    g.terminal = {"id": terminal.id, "name": terminal.name}
    if g.terminal:
        g.terminal_label = g.terminal["name"]
    else:
        g.terminal_label = f"unregistered browser ({request.remote_addr})"


def bind(response: Response, terminal_id: str) -> None:
    """Set the cookie that binds this browser to ``terminal_id``."""
    response.set_cookie(
        COOKIE,
        _serializer().dumps(terminal_id),
        max_age=TEN_YEARS,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
