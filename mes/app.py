"""The app factory: settings → runtime (database, site key) → the role's blueprints.

``create_app()`` reads the instance's settings unless given them, refuses to start on bad
configuration or an outdated schema, and mounts the blueprints of ``BLUEPRINTS_BY_ROLE``.
"""

from __future__ import annotations

import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from mes.services.runtime import Runtime, open_runtime
from mes.settings import Settings, load_settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web application for one instance (hub or spoke)."""
    from mes.web import init_web

    if runtime is None:
        runtime = open_runtime(settings or load_settings())
    settings = runtime.settings
    app = Flask(
        "mes.web",
        template_folder="templates",
        static_folder="static",
        instance_path=str(settings.instance_path),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=f"mes_session_{settings.site_code.lower()}",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        WTF_CSRF_TIME_LIMIT=None,  # the session's own inactivity lock bounds the form's life
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        # Fault injection for the sync tests only (see mes.web.api.views.faults_after_commit).
        MES_FAULT=os.environ.get("MES_FAULT"),
    )
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    _record_configuration(runtime)
    init_web(app, runtime)
    return app


def _record_configuration(runtime: Runtime) -> None:
    """Audit the effective configuration if it changed since it was last recorded."""
    import getpass
    import socket
    from datetime import UTC, datetime

    from mes.services.configuration import record_configuration
    from mes.services.context import Context
    from mes.services.throttle import close_windows

    ctx = Context.command_line(datetime.now(UTC), getpass.getuser(), socket.gethostname())
    with runtime.uow() as uow:
        record_configuration(uow, ctx, runtime.settings)
    with runtime.uow() as uow:  # bursts of refusals whose minute ended while nothing came after
        if close_windows(uow, ctx.at):
            uow.commit()
