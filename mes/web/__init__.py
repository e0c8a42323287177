"""Web adapter: thin views over the services; the role decides which blueprints are mounted.

:func:`init_web` wires each concern from its own module: who gets in (:mod:`mes.web.gate`:
sessions, login, CSRF, the request gate, security headers), how refusals and failures are
answered (:mod:`mes.web.errors`), what templates may use (:mod:`mes.web.templating`), and the
role's blueprints. Views change data only through :mod:`mes.web.actions`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from mes.core.canonical import strict_loads
from mes.services.runtime import Runtime

# Re-exported: views and the session code import them from the package.
from mes.web.errors import (  # noqa: F401
    api_error_response,
    error_code,
    error_response,
    is_api_request,
    wants_json,
)
from mes.web.gate import PUBLIC_ENDPOINTS, is_user_activity, safe_next  # noqa: F401


def blueprints_by_role() -> dict[str, list[Any]]:
    """Which blueprints each role mounts."""
    from mes.web.admin.views import bp as admin
    from mes.web.api.views import bp as api
    from mes.web.authoring.views import bp as authoring
    from mes.web.bedside.views import bp as bedside
    from mes.web.common.views import bp as common
    from mes.web.installed.views import bp as installed
    from mes.web.masters.views import bp as masters
    from mes.web.network.comparability import bp as comparability
    from mes.web.network.lookback import bp as lookback
    from mes.web.network.views import bp as network
    from mes.web.operator.lookback import bp as lookback_notices
    from mes.web.operator.views import bp as operator
    from mes.web.qa.views import bp as qa
    from mes.web.sync.views import bp as sync

    return {
        "hub": [common, admin, authoring, api, network, comparability, lookback, qa],
        "spoke": [common, admin, installed, operator, lookback_notices, masters, sync, bedside],
    }


def runtime() -> Runtime:
    """The instance this app serves."""
    from flask import current_app

    return current_app.extensions["mes"]


def site_zone() -> str:
    """The site's time zone: the times a page shows are in it."""
    return runtime().site.time_zone


class StrictJSONProvider(DefaultJSONProvider):
    """Request bodies are read as the sync API's JSON is: absurd nesting is malformed JSON.

    Flask's ``get_json(silent=True)`` answers None for a ``ValueError`` but lets a
    ``RecursionError`` (100,000 nested brackets) through as a 500.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_loads(s)


def init_web(app: Flask, rt: Runtime) -> None:
    """Wire sessions, login, CSRF, the request gate, headers, error pages, templates, blueprints."""
    from mes.web import errors, gate, templating

    app.extensions["mes"] = rt
    app.json = StrictJSONProvider(app)
    gate.init_sessions(app)
    gate.init_gate(app, rt)
    gate.init_security_headers(app)
    errors.init_app(app)
    templating.init_app(app, rt)
    register_blueprints(app, rt)


def register_blueprints(app: Flask, rt: Runtime) -> None:
    """Mount the blueprints of this instance's role; the sync API signs requests, not forms."""
    for blueprint in blueprints_by_role()[rt.settings.role]:
        app.register_blueprint(blueprint)
        if blueprint.name == "api":
            from mes.web.gate import csrf

            csrf.exempt(blueprint)  # spokes sign each request; there is no browser session
