"""What every template may use: filters for times, values and Markdown, and the page globals."""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from flask_login import current_user

from mes import __version__
from mes.core.access import ROLE_TITLES, Permission, allowed
from mes.core.clock import local_text, parse_utc_text
from mes.core.dates import date_pattern, date_time_pattern, site_date_text
from mes.core.esign import MEANING_STATEMENTS, Meaning, SigningMethod, required_components
from mes.services.configuration import signing_methods
from mes.services.runtime import Runtime
from mes.web.helpers import first_signing_in_session, session_signed_with
from mes.web.rendering import markdown
from mes.web.session_user import session_locked


def plain_value(value: Any) -> str:
    """A stored value as people read it: yes/no, lists joined, empty as a dash."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(plain_value(v) for v in value)
    return str(value)


def allowed_signing_methods() -> list[str]:
    """The ways to sign the site allows (its setting), read when a page shows the dialog."""
    from mes.web import runtime

    if "signing_methods" not in g:
        with runtime().uow(read_only=True) as uow:
            g.signing_methods = signing_methods(uow).values
    return g.signing_methods


def init_app(app: Flask, rt: Runtime) -> None:
    """Register the filters and the globals every page is rendered with."""
    app.add_template_filter(parse_utc_text, "utc")
    app.add_template_filter(plain_value, "plain")
    app.add_template_filter(markdown, "markdown")

    @app.context_processor
    def template_globals() -> dict[str, Any]:
        return {
            "site": rt.site,
            "version": __version__,
            "terminal": g.get("terminal"),
            "timeout_seconds": rt.settings.session_timeout_seconds,
            "session_locked": session_locked(),
            "local_time": lambda at: local_text(at, rt.site.time_zone),
            "local_date": lambda day: site_date_text(day, rt.site.time_zone),
            "date_pattern": date_pattern(rt.site.time_zone),
            "date_time_pattern": date_time_pattern(rt.site.time_zone),
            "can": lambda permission: (
                current_user.is_authenticated
                and allowed(current_user.roles, Permission(permission))
            ),
            "role_titles": ROLE_TITLES,
            "meaning_statements": MEANING_STATEMENTS,
            "Meaning": Meaning,
            "esign_components": required_components(
                first_signing_in_session(),
                SigningMethod(session_signed_with() or SigningMethod.PASSWORD),
            ),
            "esign_methods": allowed_signing_methods,
        }
