"""The web's one action boundary: a form becomes one service call, and its answer a page.

A view that changes something reads its form and hands the service to :func:`act`, which opens
the unit of work, calls the service with the request's context (actor, terminal, server time)
and, for a signed action, the credentials typed in the e-signature dialog. A refusal (any
:class:`MesError`) ends the request with the page the user was on, in the refusal's words and
with the form as typed (``refused``); a refused signature that locked the account logs the user
out instead (11.300(d)). A signature that succeeded marks the continuous session, so later
signings of it need the password only — or the PIN, when it was by badge (11.200(a)(1)). A
witness's signature ("Sign as another person") runs the same service with the witness as the
acting user (:func:`mes.services.esign.witness_context`); it neither marks nor ends the
logged-in user's session. :func:`done` flashes what happened and
redirects (303, so a reload never posts twice). GET pages read through :func:`reading`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from flask import abort, flash, g, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from mes.core.errors import MesError, WeakPassword
from mes.core.esign import signing_method
from mes.services.context import Context
from mes.services.esign import Credentials, witness_context
from mes.web.helpers import first_signing_in_session, service_context

T = TypeVar("T")
F = TypeVar("F", bound=FlaskForm)
Refused = Callable[[MesError], ResponseReturnValue]


def act(
    service: Callable[..., T],
    *args: Any,
    refused: Refused,
    signature: Any = None,
    **kwargs: Any,
) -> T:
    """``service(uow, ctx, *args, **kwargs)`` in one unit of work; a refusal ends the request.

    ``signature`` is the form holding the e-signature dialog: the service then gets
    ``credentials`` and ``first_signing_in_session`` too. ``refused(err)`` is the answer to a
    refusal: the page again with the refusal's words and the form as typed.
    """
    witness = False
    if signature is not None:
        credentials, kwargs["first_signing_in_session"] = signing_credentials(signature)
        kwargs["credentials"], witness = credentials, credentials.witness
    try:
        with _runtime().uow() as uow:
            ctx = service_context()
            if witness:  # the same service, with the witness as the acting user
                ctx = witness_context(uow, ctx, kwargs["credentials"])
            result = service(uow, ctx, *args, **kwargs)
    except MesError as err:
        if signature is not None and not current_user_still_allowed():
            stop(redirect(url_for("common.login")))
        stop(refused(err))
    if signature is not None and not witness:  # a witness signs once: the session is not theirs
        signing_succeeded(badge_given=kwargs["credentials"].badge is not None)
    return result


def submitted(form: F) -> F:
    """The posted ``form``, valid; an invalid one (expired CSRF token, missing field) is a 400."""
    if not form.validate_on_submit():
        abort(400)
    return form


def stop(answer: ResponseReturnValue) -> NoReturn:
    """End the request with ``answer`` (a page and its status, or a redirect)."""
    abort(make_response(answer))


def done(message: str, endpoint: str, *, anchor: str | None = None, **values: Any) -> Response:
    """The action is done: say so, and go to ``endpoint`` (303: a reload never posts again)."""
    flash(message, "info")
    return redirect(url_for(endpoint, _anchor=anchor, **values), 303)


def shown_on(page: Callable[..., ResponseReturnValue], *args: Any, **kwargs: Any) -> Refused:
    """A refusal shown at the top of ``page`` (which takes ``error`` and ``status``)."""
    return lambda err: page(*args, error=str(err), status=err.http_status, **kwargs)


def flashed(endpoint: str, **values: Any) -> Refused:
    """A refusal flashed as an error on ``endpoint``, where the user goes back to."""

    def answer(err: MesError) -> ResponseReturnValue:
        flash(str(err), "error")
        return redirect(url_for(endpoint, **values))

    return answer


def reasons(err: MesError) -> list[str]:
    """A refusal as the lines a form lists: each broken password rule, else the message."""
    return err.reasons if isinstance(err, WeakPassword) else [str(err)]


def typed() -> dict[str, str]:
    """The form as typed, to show it again after a refusal (nothing typed is lost)."""
    return dict(request.form)


@contextmanager
def reading(*, read_only: bool = True) -> Iterator[tuple[Any, Context]]:
    """A unit of work and the request's context for a page that shows data."""
    with _runtime().uow(read_only=read_only) as uow:
        yield uow, service_context()


# --- the e-signature of a continuous session (11.200(a)(1)) -------------------------------------


def signing_credentials(form: Any) -> tuple[Credentials, bool]:
    """The credentials typed in the signature dialog, and whether this is the session's first signing.

    A witness's signature ("Sign as another person") is always a first signing: both components.
    The dialog's badge field (scanned) makes it a badge + PIN signing; the secret field then
    holds the PIN.
    """
    witness = bool(getattr(form, "esign_witness", None) and form.esign_witness.data)
    first = witness or first_signing_in_session()
    username = (form.esign_username.data or "").strip() or None
    badge = (form.esign_badge.data or "").strip() or None if hasattr(form, "esign_badge") else None
    credentials = Credentials(
        password=form.esign_password.data or "", username=username, badge=badge, witness=witness
    )
    return credentials, first


def signing_succeeded(*, badge_given: bool) -> None:
    """After a successful signature, later signings of this continuous session take the secret only.

    The session remembers how its first signing identified the user: after a badge the PIN,
    after a user ID the password (11.200(a)(1)(i)).
    """
    from mes.services import sessions
    from mes.web.session_user import session_token

    token = session_token()
    if token is not None and not g.get("session_signed"):
        method = signing_method(
            badge_given=badge_given,
            first_signing_in_session=True,
        )
        with _runtime().uow() as uow:
            sessions.mark_signed(uow, token, method.value)
        g.session_signed = True
        g.session_signed_with = method.value


def current_user_still_allowed() -> bool:
    """After a refused signature: if the account got locked, log the user out (11.300(d)).

    The lockout ended every session of the user on the server; this browser forgets its own.
    """
    from mes.services import sessions
    from mes.web.session_user import end, session_token

    token = session_token()
    with _runtime().uow(read_only=True) as uow:
        still_open = token is not None and sessions.find_session(uow, token) is not None
    if not still_open:
        end()
        flash(
            "Your account is locked after repeated failed signatures. Ask an administrator.",
            "error",
        )
        return False
    return True


def _runtime() -> Any:
    from mes.web import runtime

    return runtime()
