"""The operator's pages at a spoke: the board, starting a batch, one phase at a time.

Made for a gloved hand on a touchscreen: big targets, one phase per page, scan fields that take
a keyboard-wedge scanner (autofocus, Enter saves), errors in plain words next to the field.
Every rule is the core's; a view reads the form, calls one service, and shows the result or the
refusal. Forms carry the phase's last entry number (``seen_seq``), so a page that went stale
while someone else acted is refused with who did what, instead of acting twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.core.batch import (
    ACTION_MEANINGS,
    Action,
    PhaseStatus,
)
from mes.core.errors import BatchNotActive, ChainBroken, MesError, NotAuthorised
from mes.core.limits import InvalidValue
from mes.core.phases import parse_form
from mes.services import batches, labels, outbox
from mes.services.esign import Credentials
from mes.web import error_response, runtime
from mes.web.forms import SignatureForm, whole_number
from mes.web.helpers import (
    current_user_still_allowed,
    requires,
    service_context,
    signing_credentials,
    signing_succeeded,
)
from mes.web.operator.forms import (
    CommentForm,
    CorrectionForm,
    DeviationReportForm,
    ReasonForm,
    SignedReasonForm,
)
from mes.web.operator.pages import (
    batch_header,
    deviation_item,
    phase_page,
    procedure_progress,
)

bp = Blueprint("operator", __name__, url_prefix="/batches", template_folder="templates")


def _zone() -> str:
    return runtime().site.time_zone


def _credentials() -> tuple[Credentials, bool]:
    return signing_credentials(SignatureForm())


def _seen() -> int | None:
    return whole_number(request.form.get("seen_seq"))


# --- the board ------------------------------------------------------------------------------


@bp.get("")
@requires(Permission.READ_BATCHES)
def board() -> ResponseReturnValue:
    """Every batch in progress at this site: current phases, timers due, open deviations."""
    show_all = request.args.get("all") == "1"
    with runtime().uow(read_only=True) as uow:
        rows = batches.board(uow, service_context(), include_closed=show_all)
        sync = outbox.batch_sync(uow, [row.id for row in rows])
    return render_template(
        "operator/board.html", rows=rows, sync=sync, show_all=show_all, now=g.now
    )


# --- starting a batch --------------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@requires(Permission.EXECUTE_BATCHES)
def start() -> ResponseReturnValue:
    """Pick a recipe, scan the chain of identity, sign "started"."""
    ctx = service_context()
    with runtime().uow(read_only=True) as uow:
        recipes = batches.startable_recipes(uow, ctx)
    code = (request.values.get("recipe") or "").strip().upper()
    chosen = next((r for r in recipes if r.installed.recipe_code == code), None)
    if len(recipes) == 1 and chosen is None and request.method == "GET":
        chosen = recipes[0]
    if request.method == "GET" or chosen is None:
        if request.method == "POST":
            return _start_page(recipes, None, {}, "Choose a recipe.", 400)
        return _start_page(recipes, chosen, {}, None, 200)
    identifiers = {
        spec["id"]: request.form.get(f"coi:{spec['id']}", "")
        for spec in chosen.procedure.chain_of_identity
    }
    credentials, first = _credentials()
    try:
        with runtime().uow() as uow:
            batch = batches.start_batch(
                uow, ctx, code, identifiers, credentials, first_signing_in_session=first
            )
    except MesError as err:
        if not current_user_still_allowed():
            return redirect(url_for("common.login"))
        return _start_page(recipes, chosen, dict(request.form), str(err), err.http_status)
    signing_succeeded()
    flash(f"Batch {batch.state.number} started.", "info")
    first_phase = batch.current_phases()[0] if batch.current_phases() else None
    if first_phase:
        return redirect(
            url_for("operator.phase", batch_id=batch.state.id, phase_id=first_phase), 303
        )
    return redirect(url_for("operator.batch_page", batch_id=batch.state.id), 303)


def _start_page(
    recipes: list[Any], chosen: Any, entered: Mapping[str, str], error: str | None, status: int
) -> ResponseReturnValue:
    return render_template(
        "operator/start.html",
        recipes=recipes,
        chosen=chosen,
        entered=entered,
        error=error,
        meaning=ACTION_MEANINGS[Action.START],
    ), status


# --- one batch ------------------------------------------------------------------------------


def _integrity(uow: Any, ctx: Any, batch_id: str) -> str | None:
    """None when the batch's ledger verifies; otherwise what is wrong (shown as a warning)."""
    try:
        batches.verify_batch(uow, ctx, batch_id)
    except ChainBroken as broken:
        return f"This batch record fails verification: {broken}"
    return None


def _batch_page(
    batch_id: str,
    error: str | None = None,
    status: int = 200,
    entered: Mapping[str, str] | None = None,
) -> ResponseReturnValue:
    """The batch page; ``entered`` is what was typed in a refused form (``form`` names which)."""
    ctx = service_context()
    with runtime().uow(read_only=True) as uow:
        view = batches.get_batch(uow, ctx, batch_id)
        broken = _integrity(uow, ctx, batch_id)
        hub_review = labels.hub_review(uow, ctx, batch_id)
    batch, viewer = view.batch, view.viewer
    zone = _zone()
    may = {
        action: viewer is not None and batch.refusal(action, viewer, ctx.at) is None
        for action in ("hold", "resume", "complete", "abort", "report")
    }
    # Why a batch in progress cannot be completed yet, for those who may complete it.
    complete_refusal = batch.refusal("complete", viewer, ctx.at) if viewer is not None else None
    why_not_complete = (
        str(complete_refusal)
        if complete_refusal is not None
        and not isinstance(complete_refusal, NotAuthorised | BatchNotActive)
        else None
    )
    return render_template(
        "operator/batch.html",
        header=batch_header(batch, zone),
        units=procedure_progress(batch, zone),
        deviations=[deviation_item(batch, d, viewer, ctx.at, zone) for d in batch.state.deviations],
        current=[
            {"id": p, "name": batch.procedure.phases[p].name} for p in batch.current_phases()[:4]
        ],
        may=may,
        why_not_complete=why_not_complete,
        complete_meaning=ACTION_MEANINGS[Action.COMPLETE],
        abort_meaning=ACTION_MEANINGS[Action.ABORT],
        ack_meaning=ACTION_MEANINGS[Action.ACKNOWLEDGE],
        error=error,
        broken=broken,
        hub_review=hub_review,
        entered=entered or {},
    ), status


@bp.get("/<batch_id>")
@requires(Permission.READ_BATCHES)
def batch_page(batch_id: str) -> ResponseReturnValue:
    """The batch: its chain of identity, the procedure's progress, deviations, batch actions."""
    return _batch_page(batch_id)


@bp.get("/<batch_id>/record")
@requires(Permission.READ_BATCHES)
def record(batch_id: str) -> ResponseReturnValue:
    """The batch record as it happened: every ledger entry in words, oldest first."""
    from mes.core.record import entries_in_words

    ctx = service_context()
    with runtime().uow(read_only=True) as uow:
        view = batches.get_batch(uow, ctx, batch_id)
        entries = batches.ledger_entries(uow, ctx, batch_id)
        broken = _integrity(uow, ctx, batch_id)
    return render_template(
        "operator/record.html",
        broken=broken,
        header=batch_header(view.batch, _zone()),
        lines=entries_in_words(view.batch, entries, _zone()),
    )


# --- one phase ------------------------------------------------------------------------------


def _phase_page(
    batch_id: str,
    phase_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    entered: Mapping[str, str] | None = None,
    field_errors: Mapping[str, str] | None = None,
) -> ResponseReturnValue:
    ctx = service_context()
    with runtime().uow(read_only=True) as uow:
        view = batches.get_batch(uow, ctx, batch_id)
    batch = view.batch
    zone = _zone()
    page = phase_page(
        batch, phase_id, view.viewer, ctx.at, zone, entered=entered, field_errors=field_errors
    )
    return render_template(
        "operator/phase.html",
        header=batch_header(batch, zone),
        phase=page,
        error=error,
        perform_meaning=ACTION_MEANINGS[Action.PERFORM],
        verify_meaning=ACTION_MEANINGS[Action.VERIFY],
        correct_meaning=ACTION_MEANINGS[Action.CORRECT],
        ack_meaning=ACTION_MEANINGS[Action.ACKNOWLEDGE],
    ), status


@bp.get("/<batch_id>/phases/<phase_id>")
@requires(Permission.READ_BATCHES)
def phase(batch_id: str, phase_id: str) -> ResponseReturnValue:
    """One phase: instructions, timers, scans and values, signatures, what comes next."""
    return _phase_page(batch_id, phase_id)


@bp.post("/<batch_id>/phases/<phase_id>/start")
@requires(Permission.EXECUTE_BATCHES)
def start_phase(batch_id: str, phase_id: str) -> ResponseReturnValue:
    """Start the phase (refused when out of order, early, or by someone not trained)."""
    try:
        with runtime().uow() as uow:
            batch = batches.start_phase(
                uow, service_context(), batch_id, phase_id, seen_seq=_seen()
            )
    except MesError as err:
        return _phase_page(batch_id, phase_id, error=str(err), status=err.http_status)
    late = [d for d in batch.state.deviations.values() if d.phase == phase_id and d.comment is None]
    if late:
        flash(f"Deviation {late[-1].id}: {late[-1].description} Say what happened.", "error")
    return redirect(url_for("operator.phase", batch_id=batch_id, phase_id=phase_id), 303)


def _phase_data(phase_fields: Mapping[str, str]) -> dict[str, Any]:
    """The phase form's fields as each phase kind's entries (the kinds parse their own)."""
    return parse_form(phase_fields)


def _record(batch_id: str, phase_id: str) -> tuple[batches.PhaseResult | None, Any]:
    """Record what the form carries; (result, None) or (None, the error page)."""
    data = _phase_data(request.form)
    if not any(data.values()):
        return None, None
    try:
        with runtime().uow() as uow:
            result = batches.record_phase(
                uow, service_context(), batch_id, phase_id, seen_seq=_seen(), **data
            )
    except InvalidValue as err:
        return None, _phase_page(
            batch_id,
            phase_id,
            error=f"{err.what_to_do}",
            status=err.http_status,
            entered=dict(request.form),
            field_errors=err.fields,
        )
    except MesError as err:
        return None, _phase_page(
            batch_id, phase_id, error=str(err), status=err.http_status, entered=dict(request.form)
        )
    return result, None


@bp.post("/<batch_id>/phases/<phase_id>/record")
@requires(Permission.EXECUTE_BATCHES)
def record_phase(batch_id: str, phase_id: str) -> ResponseReturnValue:
    """Save what was entered and scanned (each value and scan is its own ledger entry)."""
    result, error_page = _record(batch_id, phase_id)
    if error_page is not None:
        return error_page
    if result is not None and result.field_errors:
        kept = {k: v for k, v in request.form.items() if k not in result.field_errors}
        return _phase_page(
            batch_id,
            phase_id,
            error="Some scans were refused; see the messages next to them. "
            "Everything else was saved.",
            status=422,
            entered=kept,
            field_errors=result.field_errors,
        )
    if result is not None and result.recorded:
        flash("Saved.", "info")
    return redirect(url_for("operator.phase", batch_id=batch_id, phase_id=phase_id), 303)


@bp.post("/<batch_id>/phases/<phase_id>/sign/<action_name>")
@requires(Permission.EXECUTE_BATCHES)
def sign_phase(batch_id: str, phase_id: str, action_name: str) -> ResponseReturnValue:
    """Sign performed (saving the form first) or verified, in the e-signature dialog."""
    if action_name not in ("perform", "verify"):
        abort(404)
    action = Action(action_name)
    data = batches.PhaseData(_phase_data(request.form)) if action is Action.PERFORM else None
    credentials, first = _credentials()
    try:
        with runtime().uow() as uow:
            batch = batches.sign_phase(
                uow,
                service_context(),
                batch_id,
                phase_id,
                action,
                credentials,
                first_signing_in_session=first,
                seen_seq=_seen(),
                data=data,
            )
    except (InvalidValue, batches.ScansRefused) as err:
        kept = {k: v for k, v in request.form.items() if k not in err.fields}
        return _phase_page(
            batch_id,
            phase_id,
            error=str(err) if isinstance(err, batches.ScansRefused) else err.what_to_do,
            status=err.http_status,
            entered=kept if isinstance(err, batches.ScansRefused) else dict(request.form),
            field_errors=err.fields,
        )
    except MesError as err:
        if not current_user_still_allowed():
            return redirect(url_for("common.login"))
        return _phase_page(
            batch_id, phase_id, error=str(err), status=err.http_status, entered=dict(request.form)
        )
    signing_succeeded()
    flash(f"Signed: {ACTION_MEANINGS[action].value}.", "info")
    following = [p for p in batch.current_phases() if p != phase_id]
    if action is Action.PERFORM and batch.state.phases[phase_id].status is PhaseStatus.PERFORMED:
        needs = batch.procedure.phases[phase_id].needs_verification
        if needs:
            flash("A second person must now verify this phase.", "info")
    if following:
        return redirect(url_for("operator.phase", batch_id=batch_id, phase_id=following[0]), 303)
    return redirect(url_for("operator.batch_page", batch_id=batch_id), 303)


@bp.post("/<batch_id>/phases/<phase_id>/correct")
@requires(Permission.EXECUTE_BATCHES)
def correct(batch_id: str, phase_id: str) -> ResponseReturnValue:
    """Correct a signed value: new value, reason, signature; the original stays visible."""
    credentials, first = _credentials()
    form = CorrectionForm()
    try:
        with runtime().uow() as uow:
            batches.correct_value(
                uow,
                service_context(),
                batch_id,
                phase_id,
                form.value_id.data or "",
                form.new_value.data or "",
                form.reason.data or "",
                credentials,
                first_signing_in_session=first,
            )
    except MesError as err:
        if not current_user_still_allowed():
            return redirect(url_for("common.login"))
        return _phase_page(
            batch_id, phase_id, error=str(err), status=err.http_status, entered=dict(request.form)
        )
    signing_succeeded()
    flash("Correction signed. The original value stays in the record.", "info")
    return redirect(url_for("operator.phase", batch_id=batch_id, phase_id=phase_id), 303)


# --- deviations ----------------------------------------------------------------------------


def _back(batch_id: str) -> ResponseReturnValue:
    phase_id = request.form.get("phase_id")
    if phase_id:
        return redirect(url_for("operator.phase", batch_id=batch_id, phase_id=phase_id), 303)
    return redirect(url_for("operator.batch_page", batch_id=batch_id), 303)


def _error_page(batch_id: str, err: MesError) -> ResponseReturnValue:
    phase_id = request.form.get("phase_id")
    if phase_id:
        return _phase_page(
            batch_id, phase_id, error=str(err), status=err.http_status, entered=dict(request.form)
        )
    return _batch_page(batch_id, str(err), err.http_status, _typed("report"))


def _typed(form: str) -> dict[str, str]:
    """What was typed in the refused form ``form``, to show it again (nothing typed is lost)."""
    return {**request.form, "form": form}


@bp.post("/<batch_id>/deviations/<deviation_id>/comment")
@requires(Permission.EXECUTE_BATCHES)
def comment_deviation(batch_id: str, deviation_id: str) -> ResponseReturnValue:
    """Say what happened in a deviation."""
    try:
        with runtime().uow() as uow:
            batches.comment_deviation(
                uow, service_context(), batch_id, deviation_id, CommentForm().comment.data or ""
            )
    except MesError as err:
        return _error_page(batch_id, err)
    flash(f"Comment added to deviation {deviation_id}.", "info")
    return _back(batch_id)


@bp.post("/<batch_id>/deviations/<deviation_id>/acknowledge")
@requires(Permission.EXECUTE_BATCHES)
def acknowledge_deviation(batch_id: str, deviation_id: str) -> ResponseReturnValue:
    """A supervisor or QA acknowledges a deviation, signed."""
    credentials, first = _credentials()
    try:
        with runtime().uow() as uow:
            batches.acknowledge_deviation(
                uow,
                service_context(),
                batch_id,
                deviation_id,
                credentials,
                first_signing_in_session=first,
            )
    except MesError as err:
        if not current_user_still_allowed():
            return redirect(url_for("common.login"))
        return _error_page(batch_id, err)
    signing_succeeded()
    flash(f"Deviation {deviation_id} acknowledged.", "info")
    return _back(batch_id)


@bp.post("/<batch_id>/deviations")
@requires(Permission.EXECUTE_BATCHES)
def report_deviation(batch_id: str) -> ResponseReturnValue:
    """Report a deviation by hand, for the batch or one phase."""
    form = DeviationReportForm()
    try:
        with runtime().uow() as uow:
            batches.report_deviation(
                uow,
                service_context(),
                batch_id,
                form.description.data or "",
                form.phase_id.data or None,
            )
    except MesError as err:
        return _error_page(batch_id, err)
    flash("Deviation reported.", "info")
    return _back(batch_id)


# --- the batch as a whole ----------------------------------------------------------------


@bp.post("/<batch_id>/hold")
@requires(Permission.EXECUTE_BATCHES)
def hold(batch_id: str) -> ResponseReturnValue:
    """Put the batch on hold, with the reason."""
    try:
        with runtime().uow() as uow:
            batches.hold_batch(uow, service_context(), batch_id, ReasonForm().reason.data or "")
    except MesError as err:
        return _batch_page(batch_id, str(err), err.http_status, _typed("hold"))
    flash("The batch is on hold.", "info")
    return redirect(url_for("operator.batch_page", batch_id=batch_id), 303)


@bp.post("/<batch_id>/resume")
@requires(Permission.EXECUTE_BATCHES)
def resume(batch_id: str) -> ResponseReturnValue:
    """A supervisor resumes the batch, with the reason."""
    try:
        with runtime().uow() as uow:
            batches.resume_batch(uow, service_context(), batch_id, ReasonForm().reason.data or "")
    except MesError as err:
        return _batch_page(batch_id, str(err), err.http_status, _typed("resume"))
    flash("The batch is in progress again.", "info")
    return redirect(url_for("operator.batch_page", batch_id=batch_id), 303)


@bp.post("/<batch_id>/complete")
@requires(Permission.EXECUTE_BATCHES)
def complete(batch_id: str) -> ResponseReturnValue:
    """A supervisor signs the batch complete."""
    credentials, first = _credentials()
    try:
        with runtime().uow() as uow:
            batches.complete_batch(
                uow, service_context(), batch_id, credentials, first_signing_in_session=first
            )
    except MesError as err:
        if not current_user_still_allowed():
            return redirect(url_for("common.login"))
        return _batch_page(batch_id, str(err), err.http_status)
    signing_succeeded()
    flash("The batch is complete.", "info")
    return redirect(url_for("operator.batch_page", batch_id=batch_id), 303)


@bp.post("/<batch_id>/abort")
@requires(Permission.EXECUTE_BATCHES)
def abort_batch(batch_id: str) -> ResponseReturnValue:
    """A supervisor aborts the batch, with the reason and a signature."""
    credentials, first = _credentials()
    try:
        with runtime().uow() as uow:
            batches.abort_batch(
                uow,
                service_context(),
                batch_id,
                SignedReasonForm().reason.data or "",
                credentials,
                first_signing_in_session=first,
            )
    except MesError as err:
        if not current_user_still_allowed():
            return redirect(url_for("common.login"))
        return _batch_page(batch_id, str(err), err.http_status, _typed("abort"))
    signing_succeeded()
    flash("The batch is aborted. Its record stays.", "info")
    return redirect(url_for("operator.batch_page", batch_id=batch_id), 303)


# --- the final label of a released batch ----------------------------------------------------


def _label_page(label: labels.FinalLabel, printing: bool = False) -> ResponseReturnValue:
    return render_template("operator/label.html", label=label, printing=printing)


@bp.get("/<batch_id>/label")
@requires(Permission.READ_BATCHES)
def label(batch_id: str) -> ResponseReturnValue:
    """The final label (100 × 60 mm) of a batch the hub released; refused for any other."""
    try:
        with runtime().uow(read_only=True) as uow:
            issued = labels.final_label(uow, service_context(), batch_id)
    except labels.LabelRefused as refusal:
        return error_response(refusal.http_status, "No final label", str(refusal))
    return _label_page(issued)


@bp.post("/<batch_id>/label")
@requires(Permission.EXECUTE_BATCHES)
def print_label(batch_id: str) -> ResponseReturnValue:
    """Print the final label: recorded in the audit trail, then the browser's print dialog."""
    try:
        with runtime().uow() as uow:
            issued = labels.record_label_printed(uow, service_context(), batch_id)
    except labels.LabelRefused as refusal:
        return error_response(refusal.http_status, "No final label", str(refusal))
    return _label_page(issued, printing=True)
