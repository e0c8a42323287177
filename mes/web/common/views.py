"""Pages every user has: login, inactivity unlock, password change, account, home."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from mes import __version__
from mes.core.errors import (
    AuthenticationFailed,
    InvalidInput,
    MesError,
    PasswordChangeRequired,
    SignatureRefused,
    TooManyAttempts,
)
from mes.core.esign import ACCOUNTABILITY_STATEMENT, ATTESTATION_RECORD_TYPE, attestation_record
from mes.services import badges, esign, sessions, users
from mes.services.training import training_records
from mes.web import runtime, safe_next, session_user
from mes.web.actions import act, done, reading, reasons, shown_on
from mes.web.common.forms import (
    AttestationForm,
    ChangePasswordForm,
    LockForm,
    LoginForm,
    LogoutForm,
    PinForm,
    UnlockForm,
)
from mes.web.helpers import request_source, service_context

bp = Blueprint("common", __name__, template_folder="templates")


@bp.get("/health")
def health() -> ResponseReturnValue:
    """Liveness for monitors and the test harness (public, no data)."""
    return jsonify({"status": "ok", "role": runtime().site.role, "site": runtime().site.code})


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Log in with user ID and password, or badge scan and PIN; a wrong one counts toward lockout."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if not form.validate_on_submit():
        return render_template("common/login.html", form=form, error=None)

    def refused(err: MesError) -> ResponseReturnValue:
        # Every refused login has the same words (LoginRefused): nobody learns from them which
        # user IDs exist or which accounts are locked. The badge field starts empty again, so
        # the next scan is not appended to the last one.
        form.badge.data = ""
        page = render_template("common/login.html", form=form, error=str(err))
        if isinstance(err, TooManyAttempts):
            return page, err.http_status, {"Retry-After": str(err.retry_after)}
        return page, err.http_status

    if (form.badge.data or "").strip():
        authenticate, who, secret = users.authenticate_by_badge, form.badge.data, form.pin.data
    else:
        authenticate, who, secret = users.authenticate, form.username.data, form.password.data
    user = act(authenticate, who, secret, source=request_source(), refused=refused)
    _start_session(user.id)
    return redirect(safe_next(form.next.data) or url_for("common.home"))


def _start_session(user_id: str) -> None:
    """Open a server-side session for this browser (a previous one of it ends)."""
    previous = session_user.session_token()
    # The session starts when the password check is over (it takes a while), not when asked.
    ctx = replace(service_context(), user_id=user_id, at=datetime.now(UTC))
    with runtime().uow() as uow:
        if previous is not None:
            sessions.end_session(uow, previous)
        token = sessions.open_session(uow, ctx, runtime().settings.session_policy)
    session_user.start(token)


def _end_session() -> None:
    """End this browser's session on the server and forget it here (logout)."""
    token = session_user.session_token()
    if token is not None:
        with runtime().uow() as uow:
            sessions.end_session(uow, token)
    session_user.end()


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Log out: the session ends on the server, for every copy of its cookie."""
    if LogoutForm().validate_on_submit():
        _end_session()
        flash("You are logged out.", "info")
    return redirect(url_for("common.login"))


@bp.post("/lock")
def lock() -> ResponseReturnValue:
    """Lock the session now (the lock button, or the page's idle timer), on the server."""
    form = LockForm()
    token = session_user.session_token()
    if form.validate_on_submit() and token is not None:
        with runtime().uow() as uow:
            sessions.lock_session(uow, token)
    return redirect(url_for("common.unlock", next=safe_next(form.next.data) or ""), 303)


@bp.route("/unlock", methods=["GET", "POST"])
def unlock() -> ResponseReturnValue:
    """The locked session asks for the password (or the PIN) again; back to where they were.

    The PIN is offered first where the user has one and the site allows badge + PIN
    (:func:`esign.unlock_methods`); the password stays available.
    """
    if not session_user.session_locked():
        return redirect(safe_next(request.args.get("next")) or url_for("common.home"))
    form = UnlockForm()
    with reading() as (uow, ctx):
        methods = [m.value for m in esign.unlock_methods(uow, ctx)]
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if not form.method.data:  # one the site does not allow is the service's to refuse
        form.method.data = methods[0]
    if len(methods) > 1:
        form.password.label.text = "PIN or password (as chosen above)"

    def page(error: str | None, status: int = 200) -> ResponseReturnValue:
        return render_template(
            "common/unlock.html", form=form, error=error, methods=methods
        ), status

    if not form.validate_on_submit():
        return page(None)

    def refused(err: MesError) -> ResponseReturnValue:
        if isinstance(err, AuthenticationFailed | InvalidInput | SignatureRefused) or (
            isinstance(err, PasswordChangeRequired) and form.method.data != "password"
        ):  # a wrong secret, or a PIN that cannot be used (the password still can)
            return page(str(err), 401 if isinstance(err, AuthenticationFailed) else 422)
        _end_session()  # locked out: the session ends
        flash(str(err), "error")
        return redirect(url_for("common.login"))

    act(
        sessions.unlock_session,
        session_user.session_token() or "",
        form.password.data,
        clock=lambda: datetime.now(UTC),
        method=form.method.data,
        refused=refused,
    )
    return redirect(safe_next(form.next.data) or url_for("common.home"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> ResponseReturnValue:
    """Change one's own password (forced after an administrator's reset or at expiry)."""
    form = ChangePasswordForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""

    def page(errors: list[str], status: int) -> ResponseReturnValue:
        return render_template("common/change_password.html", form=form, errors=errors), status

    if not form.validate_on_submit():
        return page([], 400 if form.errors else 200)
    act(
        users.change_password,
        form.current_password.data,
        form.new_password.data,
        refused=lambda err: page(reasons(err), 400),
    )
    # Every session of the user ended with the change; this browser goes on in a new one.
    _start_session(current_user.id)
    flash("Your password was changed.", "info")
    return redirect(safe_next(form.next.data) or url_for("common.home"))


@bp.get("/")
def home() -> ResponseReturnValue:
    """The start page: who is logged in, where, and what needs doing."""
    return render_template("common/home.html")


def _account_page(
    error: str | None = None,
    status: int = 200,
    pin_errors: list[str] | None = None,
    pin_form: PinForm | None = None,
) -> ResponseReturnValue:
    with reading(read_only=False) as (uow, _ctx):
        user = users.find_user(uow, current_user.username)
        training = training_records(uow, user)
        statement = attestation_record(user.id, user.username)
        signatures = esign.valid_signatures(uow, ATTESTATION_RECORD_TYPE, user.id, statement)
        badge = badges.badge_of(uow, user)
    return render_template(
        "common/account.html",
        form=AttestationForm(),
        statement=ACCOUNTABILITY_STATEMENT,
        training=training,
        signatures=signatures,
        error=error,
        badge=badge,
        pin_set_at=user.pin_changed_at if user.pin_hash else None,
        pin_form=pin_form or PinForm(),
        pin_errors=pin_errors or [],
    ), status


@bp.get("/account")
def account() -> ResponseReturnValue:
    """The user's roles, training and e-signature attestation."""
    return _account_page()


@bp.post("/account/pin")
def set_pin() -> ResponseReturnValue:
    """Set or change one's PIN (the one that goes with the badge), confirmed with the password."""
    form = PinForm()
    if not form.validate_on_submit():
        errors = [e for field in form for e in field.errors] or ["Fill in every field."]
        return _account_page(pin_errors=errors, pin_form=form, status=400)
    act(
        badges.set_pin,
        form.password.data,
        form.pin.data,
        refused=lambda err: _account_page(pin_errors=reasons(err), pin_form=form, status=400),
    )
    return done("Your PIN was set.", "common.account", anchor="pin")


@bp.post("/account/attestation")
def acknowledge() -> ResponseReturnValue:
    """Sign the accountability statement with the e-signature dialog (11.10(j))."""
    form = AttestationForm()
    if not form.validate_on_submit():
        return _account_page("Type your password in the signature dialog to sign.", 400)
    act(esign.acknowledge_accountability, signature=form, refused=shown_on(_account_page))
    return done("Signed: you acknowledged the accountability statement.", "common.account")


@bp.get("/about")
def about() -> ResponseReturnValue:
    """Version of the running software (21 CFR 11.10(k))."""
    return render_template("common/about.html", version=__version__)
