"""Administration: users and roles, terminals, training records, and the audit trail viewer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from mes.core.access import (
    Permission,
    allowed,
    normalise_username,
    signing_roles_beside_admin,
)
from mes.core.audit import describe_changes
from mes.core.esign import SIGNING_METHOD_TITLES
from mes.services import badges, configuration, terminals, training, users
from mes.services.audit import AuditFilter, read_audit_trail
from mes.web import runtime, site_zone, terminal_binding
from mes.web.actions import act, done, flashed, reading, reasons, shown_on, submitted
from mes.web.admin.forms import (
    AdministratorsMaySignForm,
    AuditFilterForm,
    BadgeForm,
    NewUserForm,
    PlainForm,
    ReasonForm,
    RolesForm,
    SigningMethodsForm,
    TerminalForm,
    TrainingForm,
)
from mes.web.forms import whole_number
from mes.web.helpers import requires

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")
T = TypeVar("T")


# --- users --------------------------------------------------------------------------------


def _users_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    with reading(read_only=False) as (uow, _ctx):
        people = users.list_users(uow)
        setting = configuration.administrators_may_sign(uow)
        methods = configuration.signing_methods(uow)
    return render_template(
        "admin/users.html",
        users=people,
        setting=setting,
        setting_form=AdministratorsMaySignForm(allowed=["yes"] if setting.allowed else []),
        both={u.username: signing_roles_beside_admin(u.role_names) for u in people},
        error=error,
        methods=methods,
        methods_form=SigningMethodsForm(methods=methods.values),
        method_titles=SIGNING_METHOD_TITLES,
    ), status


@bp.get("/users")
@requires(Permission.MANAGE_USERS)
def user_list() -> ResponseReturnValue:
    """Every user ever created (deactivated too: IDs are never reused), and who may sign."""
    return _users_page()


@bp.post("/settings/administrators-may-sign")
@requires(Permission.MANAGE_USERS)
def administrators_may_sign() -> ResponseReturnValue:
    """Allow or forbid administration together with a GMP signing role (reason required)."""
    form = AdministratorsMaySignForm()
    if not form.validate_on_submit():
        return _users_page("Give the reason for the change.", 400)
    allowed = "yes" in (form.allowed.data or [])
    act(
        configuration.set_administrators_may_sign,
        allowed,
        form.reason.data or "",
        refused=shown_on(_users_page),
    )
    return done(
        "Administrators may now also hold a signing role."
        if allowed
        else "Administrators may no longer hold a signing role or sign.",
        "admin.user_list",
    )


@bp.post("/settings/signing-methods")
@requires(Permission.MANAGE_USERS)
def signing_methods() -> ResponseReturnValue:
    """Choose the ways to sign the site allows: user ID + password, badge + PIN (reason required)."""
    form = SigningMethodsForm()
    if not form.validate_on_submit():
        return _users_page("Give the reason for the change.", 400)
    act(
        configuration.set_signing_methods,
        form.methods.data or [],
        form.reason.data or "",
        refused=shown_on(_users_page),
    )
    return done("The ways to sign were changed.", "admin.user_list", anchor="signing-methods")


@bp.route("/users/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_USERS)
def user_new() -> ResponseReturnValue:
    """Create a user; the initial password must be changed at first login."""
    form = NewUserForm()

    def page(errors: list[str], status: int) -> ResponseReturnValue:
        return render_template("admin/user_new.html", form=form, errors=errors), status

    if not form.validate_on_submit():
        return page([], 400 if form.errors else 200)
    act(
        users.add_user,
        username=form.username.data,
        full_name=form.full_name.data,
        roles=form.roles.data or [],
        password=form.password.data,
        must_change_password=True,
        refused=lambda err: page(reasons(err), 400),
    )
    username = normalise_username(form.username.data)
    return _back_to_user(f"User {username} created.", username)


def _user_page(
    username: str, error: str | None = None, status: int = 200, temporary: str | None = None
) -> ResponseReturnValue:
    with reading(read_only=False) as (uow, _ctx):
        user = users.find_user(uow, username)
        history = training.training_records(uow, user)
        setting = configuration.administrators_may_sign(uow)
        badge = badges.badge_of(uow, user)
    roles_form = RolesForm(roles=sorted(user.role_names))
    return render_template(
        "admin/user_detail.html",
        user=user,
        own=user.id == current_user.id,
        both=signing_roles_beside_admin(user.role_names),
        setting=setting,
        training=history,
        roles_form=roles_form,
        reason_form=ReasonForm(),
        plain_form=PlainForm(),
        badge_form=BadgeForm(),
        badge=badge,
        error=error,
        temporary=temporary,
    ), status


def _on_user(service: Callable[..., T], username: str, *args: Any) -> T:
    """``service`` on ``username``'s account; a refusal shows the user's page with its words."""
    return act(service, username, *args, refused=shown_on(_user_page, username))


def _back_to_user(message: str, username: str) -> ResponseReturnValue:
    """``message`` flashed on the user's page."""
    return done(message, "admin.user_detail", username=username)


@bp.get("/users/<username>")
@requires(Permission.MANAGE_USERS)
def user_detail(username: str) -> ResponseReturnValue:
    """One user: roles, status, training, and the actions an administrator can take."""
    return _user_page(username)


@bp.post("/users/<username>/roles")
@requires(Permission.MANAGE_USERS)
def user_roles(username: str) -> ResponseReturnValue:
    """Replace the user's roles (reason required)."""
    form = RolesForm()
    if not form.validate_on_submit():
        return _user_page(username, "Give the reason for the change.", 400)
    _on_user(users.set_roles, username, form.roles.data or [], form.reason.data)
    return _back_to_user("Roles changed.", username)


@bp.post("/users/<username>/deactivate")
@requires(Permission.MANAGE_USERS)
def user_deactivate(username: str) -> ResponseReturnValue:
    """Deactivate the user for good (reason required)."""
    form = submitted(ReasonForm())
    _on_user(users.deactivate_user, username, form.reason.data or "")
    return _back_to_user(f"{username} deactivated.", username)


@bp.post("/users/<username>/unlock")
@requires(Permission.MANAGE_USERS)
def user_unlock(username: str) -> ResponseReturnValue:
    """Unlock after failed authentications."""
    form = submitted(ReasonForm())
    _on_user(users.unlock_user, username, form.reason.data)
    return _back_to_user(f"{username} unlocked.", username)


@bp.post("/users/<username>/reset-password")
@requires(Permission.MANAGE_USERS)
def user_reset_password(username: str) -> ResponseReturnValue:
    """Issue a one-time password, shown once, that must be changed at the next login."""
    submitted(PlainForm())
    temporary = _on_user(users.reset_password, username)
    return _user_page(username, temporary=temporary)


@bp.post("/users/<username>/badge")
@requires(Permission.MANAGE_USERS)
def user_badge(username: str) -> ResponseReturnValue:
    """Enroll the badge scanned into the field (never one's own; audited)."""
    form = BadgeForm()
    if not form.validate_on_submit():
        return _user_page(username, "Scan the badge into the badge field.", 400)
    hint = _on_user(badges.enroll_badge, username, form.badge.data)
    return _back_to_user(f"Badge {hint} enrolled to {username}.", username)


@bp.post("/users/<username>/badge/revoke")
@requires(Permission.MANAGE_USERS)
def user_badge_revoke(username: str) -> ResponseReturnValue:
    """Revoke the user's badge (lost, stolen, damaged), with the reason: it stops working now."""
    form = submitted(ReasonForm())
    hint = _on_user(badges.revoke_badge, username, form.reason.data or "")
    return _back_to_user(f"Badge {hint} of {username} revoked.", username)


# --- terminals ----------------------------------------------------------------------------


@bp.route("/terminals", methods=["GET", "POST"])
@requires(Permission.MANAGE_TERMINALS)
def terminal_list() -> ResponseReturnValue:
    """The site's terminals; register this browser as a new one."""
    form = TerminalForm()

    def page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
        with reading(read_only=False) as (uow, _ctx):
            registered = terminals.list_terminals(uow)
        return render_template(
            "admin/terminals.html",
            form=form,
            terminals=registered,
            error=error,
            reason_form=ReasonForm(),
        ), status

    if not form.validate_on_submit():
        return page(status=400 if form.errors else 200)
    terminal_id = act(
        terminals.register_terminal,
        form.name.data,
        form.location.data or "",
        refused=lambda err: page(str(err), 400),
    )
    response = done(f"This browser is now the terminal '{form.name.data}'.", "admin.terminal_list")
    terminal_binding.bind(response, terminal_id)
    return response


@bp.post("/terminals/<terminal_id>/deactivate")
@requires(Permission.MANAGE_TERMINALS)
def terminal_deactivate(terminal_id: str) -> ResponseReturnValue:
    """Withdraw a terminal (reason required); browsers bound to it can no longer sign."""
    form = submitted(ReasonForm())
    act(
        terminals.deactivate_terminal,
        terminal_id,
        form.reason.data or "",
        refused=flashed("admin.terminal_list"),
    )
    return done("Terminal deactivated.", "admin.terminal_list")


# --- training -----------------------------------------------------------------------------


@bp.route("/training", methods=["GET", "POST"])
@requires(Permission.MANAGE_TRAINING)
def training_page() -> ResponseReturnValue:
    """Record qualifications; see each user's training."""
    form = TrainingForm()

    def page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
        with reading(read_only=False) as (uow, _ctx):
            people = [
                (u, training.training_records(uow, u)) for u in users.list_users(uow) if u.active
            ]
        return render_template("admin/training.html", form=form, people=people, error=error), status

    if not form.validate_on_submit():
        return page(status=400 if form.errors else 200)
    act(
        training.record_training,
        username=form.username.data,
        procedure=form.procedure.data,
        qualified_on=form.qualified_on.data,
        expires_on=form.expires_on.data,
        refused=lambda err: page(str(err), 400),
    )
    return done("Training recorded.", "admin.training_page")


# --- audit trail --------------------------------------------------------------------------


def _batch_events_url() -> Callable[[str], str | None]:
    """Where a reader of the audit trail sees a batch's events: its ledger in words.

    At a spoke, the batch's record (its ledger); at the hub, the QA record's ledger section.
    None where the reader may not read batch records (an administrator).
    """
    if runtime().settings.role == "spoke":
        endpoint, permission, anchor = "operator.record", Permission.READ_BATCHES, None
    else:
        endpoint, permission, anchor = "qa.record", Permission.REVIEW_BATCHES, "ledger"
    if not allowed(current_user.roles, permission):
        return lambda _batch_id: None
    return lambda batch_id: url_for(endpoint, batch_id=batch_id, _anchor=anchor)


@bp.get("/audit")
@requires(Permission.READ_AUDIT_TRAIL)
def audit_trail() -> ResponseReturnValue:
    """The audit trail in words: who, when, where, what changed (before → after) and why."""
    form = AuditFilterForm(request.args)
    status = 200 if form.validate() else 400  # the refused filter is shown beside its field
    zone = ZoneInfo(site_zone())

    def start_of(day, offset_days: int = 0) -> datetime | None:
        if not day:
            return None
        return datetime.combine(day + timedelta(days=offset_days), time.min, zone).astimezone(UTC)

    def accepted(field):  # a refused filter is shown beside its field, never applied
        return None if field.errors or not field.data else field.data

    since, until = accepted(form.since), accepted(form.until)
    flt = AuditFilter(
        record_type=accepted(form.record_type),
        record_id=accepted(form.record_id),
        username=accepted(form.username),
        since=start_of(since) if since else None,
        until=start_of(until, 1) if until else None,
    )
    # The spoke's trail is mostly sign-ins at its panels: hidden there unless asked for.
    sign_ins = request.args.get("sign_ins")
    if sign_ins not in ("hide", "show"):
        sign_ins = "hide" if runtime().settings.role == "spoke" else "show"
    # Bounded: a huge page number would overflow the database's OFFSET (a 500, not a page).
    page_number = min(whole_number(request.args.get("page")) or 1, 1_000_000) or 1
    with reading(read_only=False) as (uow, ctx):
        trail = read_audit_trail(uow, ctx, flt, page_number, hide_sign_ins=sign_ins == "hide")
    page, types = trail.page, trail.record_types
    rows = [
        (entry, describe_changes(entry.old, entry.new), trail.name_of(entry))
        for entry in page.entries
    ]
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "admin/audit.html",
        form=form,
        page=page,
        rows=rows,
        types=types,
        args=args,
        sign_ins=sign_ins,
        events_url=_batch_events_url(),
        batch=trail.batch,
    ), status
