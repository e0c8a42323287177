"""The operator's pages at a spoke: the board, starting a batch, one phase at a time.

Made for a gloved hand on a touchscreen: big targets, one phase per page, scan fields that take
a keyboard-wedge scanner (autofocus, Enter saves), errors in plain words next to the field.
Every rule is the core's; a view reads the form, calls one service, and shows the result or the
refusal. Forms carry the phase's last entry number (``seen_seq``), so a page that went stale
while someone else acted is refused with who did what, instead of acting twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.core.actions import Subject
from mes.core.batch import (
    ACTION_MEANINGS,
    BATCH_ACTIONS,
    DEVIATION_CATEGORY_TITLES,
    Action,
    PhaseStatus,
    next_steps,
)
from mes.core.errors import BatchNotActive, ChainBroken, MesError, NotAuthorised, PhaseIncomplete
from mes.core.limits import InvalidValue
from mes.core.phases import parse_form
from mes.core.phases.temperature_log import excursion_import
from mes.services import batches, bedside, custody, labels, logger_files, outbox
from mes.services.esign import Credentials
from mes.services.logger_chart import compact_curve_svg
from mes.web import error_response, site_zone, wants_json
from mes.web.actions import Refused, act, done, reading, shown_on, typed
from mes.web.forms import (
    WITHIN_CHOICES,
    NotificationForm,
    ResultForm,
    SignatureForm,
    notification_fields,
    result_fields,
    whole_number,
)
from mes.web.helpers import requires
from mes.web.operator.forms import (
    CommentForm,
    CorrectionForm,
    CustodyForm,
    DeviationReportForm,
    ReasonForm,
    SignedReasonForm,
)
from mes.web.operator.pages import (
    CUSTODY_MEANINGS,
    batch_header,
    custody_items,
    deviation_item,
    next_step_items,
    phase_page,
    procedure_progress,
    witness_mode,
)
from mes.web.rendering import after_release_items

bp = Blueprint("operator", __name__, url_prefix="/batches", template_folder="templates")


def _seen() -> int | None:
    return whole_number(request.form.get("seen_seq"))


# --- the board ------------------------------------------------------------------------------


@bp.get("")
@requires(Permission.READ_BATCHES)
def board() -> ResponseReturnValue:
    """Every batch in progress at this site: current phases, timers due, open deviations."""
    show_all = request.args.get("all") == "1"
    with reading() as (uow, ctx):
        rows = batches.board(uow, ctx, include_closed=show_all)
        sync = outbox.batch_sync(uow, [row.id for row in rows])
        running = [row.id for row in rows if row.status in ("in_progress", "on_hold")]
        guidance = batches.board_guidance(uow, ctx, running)
        after_release = bedside.board_alerts(uow, ctx)
    return render_template(
        "operator/board.html",
        after_release=after_release,
        category_titles=DEVIATION_CATEGORY_TITLES,
        rows=rows,
        sync=sync,
        show_all=show_all,
        now=g.now,
        guidance=guidance,
    )


# --- starting a batch --------------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@requires(Permission.EXECUTE_BATCHES)
def start() -> ResponseReturnValue:
    """Pick a recipe, scan the chain of identity, sign "started"."""
    with reading() as (uow, ctx):
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
    batch = act(
        batches.start_batch,
        code,
        identifiers,
        signature=SignatureForm(),
        refused=lambda err: _start_page(
            recipes,
            chosen,
            typed(),
            str(err),
            err.http_status,
            field_errors={f"coi:{k}": v for k, v in getattr(err, "fields", {}).items()},
        ),
    )
    message = BATCH_ACTIONS[Action.START].done.format(number=batch.state.number)
    if batch.current_phases():
        return done(
            message, "operator.phase", batch_id=batch.state.id, phase_id=batch.current_phases()[0]
        )
    return done(message, "operator.batch_page", batch_id=batch.state.id)


def _start_page(
    recipes: list[Any],
    chosen: Any,
    entered: Mapping[str, str],
    error: str | None,
    status: int,
    field_errors: Mapping[str, str] | None = None,
) -> ResponseReturnValue:
    """The start form, with what was typed.

    A refusal naming identifiers is shown at each of their fields, any other at the sign
    button (where the scanner's or the finger's next action is).
    """
    return render_template(
        "operator/start.html",
        recipes=recipes,
        chosen=chosen,
        entered=entered,
        error=error,
        field_errors=field_errors or {},
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
    with reading() as (uow, ctx):
        view = batches.get_batch(uow, ctx, batch_id)
        broken = _integrity(uow, ctx, batch_id)
        hub_review = labels.hub_review(uow, ctx, batch_id)
        chain = custody.custody_of(uow, ctx, view.batch)
    batch, viewer = view.batch, view.viewer
    zone = site_zone()
    # The batch's buttons: the actions the viewer may take now (the core's table decides).
    may = (
        {action.value: True for action in batch.available_actions(viewer, ctx.at)} if viewer else {}
    )
    # Why a batch in progress cannot be completed yet, for those who may complete it.
    complete_refusal = (
        batch.refusal(Action.COMPLETE, viewer, ctx.at) if viewer is not None else None
    )
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
        next_steps=next_step_items(batch, next_steps(batch, ctx.at), viewer, ctx.at),
        may=may,
        actions=BATCH_ACTIONS,
        why_not_complete=why_not_complete,
        witness_complete=witness_mode(batch, Action.COMPLETE, viewer, ctx.at),
        custody=custody_items(chain, zone),
        custody_meanings=CUSTODY_MEANINGS,
        complete_meaning=ACTION_MEANINGS[Action.COMPLETE],
        abort_meaning=ACTION_MEANINGS[Action.ABORT],
        ack_meaning=ACTION_MEANINGS[Action.ACKNOWLEDGE],
        error=error,
        broken=broken,
        hub_review=hub_review,
        entered=entered or {},
        after_release=after_release_items(batch.after_release(), zone),
        within_choices=WITHIN_CHOICES,
        notify_meaning=ACTION_MEANINGS[Action.NOTIFY_PHYSICIAN],
    ), status


def _on_batch_page(batch_id: str, form: str | None = None) -> Refused:
    """A refusal shown on the batch page, with what was typed in the form ``form`` kept."""
    return shown_on(_batch_page, batch_id, entered={**typed(), "form": form} if form else None)


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

    with reading() as (uow, ctx):
        view = batches.get_batch(uow, ctx, batch_id)
        entries = batches.ledger_entries(uow, ctx, batch_id)
        broken = _integrity(uow, ctx, batch_id)
    return render_template(
        "operator/record.html",
        broken=broken,
        header=batch_header(view.batch, site_zone()),
        lines=entries_in_words(view.batch, entries, site_zone()),
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
    refused_at: str | None = None,
) -> ResponseReturnValue:
    """The phase page, with what was typed (``entered``).

    A refusal is shown at its fields (``field_errors``), at the button ``refused_at`` names
    (``perform``, ``verify``, or ``comments``: the comment boxes of the deviations still
    without one), else at the top (``error``).
    """
    context = _phase_context(batch_id, phase_id, entered, field_errors, error, refused_at)
    return render_template("operator/phase.html", **context), status


def _phase_context(
    batch_id: str,
    phase_id: str,
    entered: Mapping[str, str] | None,
    field_errors: Mapping[str, str] | None,
    error: str | None = None,
    refused_at: str | None = None,
) -> dict[str, Any]:
    with reading() as (uow, ctx):
        view = batches.get_batch(uow, ctx, batch_id)
    batch = view.batch
    zone = site_zone()
    page = phase_page(
        batch,
        phase_id,
        view.viewer,
        ctx.at,
        zone,
        entered=entered,
        field_errors=field_errors,
        refusal=(refused_at, error) if refused_at and error else None,
    )
    return {
        "header": batch_header(batch, zone),
        "phase": page,
        # A refusal shown where it was caused is not repeated at the top; a summary of refused
        # fields is (what was saved and what not), as a status beside the fields' alerts.
        "error": None if page["refusal"] else error,
        "error_role": "status" if field_errors else "alert",
        "perform_meaning": ACTION_MEANINGS[Action.PERFORM],
        "verify_meaning": ACTION_MEANINGS[Action.VERIFY],
        "correct_meaning": ACTION_MEANINGS[Action.CORRECT],
        "ack_meaning": ACTION_MEANINGS[Action.ACKNOWLEDGE],
    }


def _on_phase_page(batch_id: str, phase_id: str, action: Action | None = None) -> Refused:
    """A refusal shown on the phase page with the form as typed, where it was caused.

    A refused value or scan is shown next to its field; a refused scan's text is cleared (the
    scan is kept in the record). A refused signature (``action``) is shown at its button, or,
    when a deviation still needs its comment, at the comment boxes under the values.
    """

    def answer(err: MesError) -> ResponseReturnValue:
        if isinstance(err, InvalidValue):
            return _phase_page(
                batch_id,
                phase_id,
                error=err.what_to_do,
                status=err.http_status,
                entered=typed(),
                field_errors=err.fields,
            )
        if isinstance(err, batches.ScansRefused):
            kept = {k: v for k, v in request.form.items() if k not in err.fields}
            return _phase_page(
                batch_id,
                phase_id,
                error=str(err),
                status=err.http_status,
                entered=kept,
                field_errors=err.fields,
            )
        where = None if action is None else action.value
        if action is Action.PERFORM and isinstance(err, PhaseIncomplete):
            where = "comments"
        return _phase_page(
            batch_id,
            phase_id,
            error=str(err),
            status=err.http_status,
            entered=typed(),
            refused_at=where,
        )

    return answer


@bp.get("/<batch_id>/phases/<phase_id>")
@requires(Permission.READ_BATCHES)
def phase(batch_id: str, phase_id: str) -> ResponseReturnValue:
    """One phase: instructions, timers, scans and values, signatures, what comes next."""
    return _phase_page(batch_id, phase_id)


@bp.post("/<batch_id>/phases/<phase_id>/start")
@requires(Permission.EXECUTE_BATCHES)
def start_phase(batch_id: str, phase_id: str) -> ResponseReturnValue:
    """Start the phase (refused when out of order, early, or by someone not trained)."""
    batch = act(
        batches.start_phase,
        batch_id,
        phase_id,
        seen_seq=_seen(),
        refused=shown_on(_phase_page, batch_id, phase_id),
    )
    late = [d for d in batch.state.deviations.values() if d.phase == phase_id and d.comment is None]
    if late:
        flash(f"Deviation {late[-1].id}: {late[-1].description} Say what happened.", "error")
    return redirect(url_for("operator.phase", batch_id=batch_id, phase_id=phase_id), 303)


def _phase_data(phase_fields: Mapping[str, str]) -> dict[str, Any]:
    """The phase form's fields as each phase kind's entries (the kinds parse their own)."""
    return parse_form(phase_fields)


def _record(batch_id: str, phase_id: str, refused: Refused) -> batches.PhaseResult | None:
    """Record what the form carries (None when it carries nothing); a refusal ends the request."""
    data = _phase_data(request.form)
    if not any(data.values()):
        return None
    return act(
        batches.record_phase,
        batch_id,
        phase_id,
        seen_seq=_seen(),
        **data,
        refused=refused,
    )


def _scan_answer(
    batch_id: str,
    phase_id: str,
    *,
    status: int,
    message: str | None,
    field_errors: Mapping[str, str],
    recorded: int = 0,
) -> ResponseReturnValue:
    """The answer to a scan sent by the page's script (``Accept: application/json``).

    ``ok``, the ``message`` of a refusal, each refused field's message (``fields``), how many
    entries were ``recorded``, the phase's last entry number (``seen_seq``, for the page's next
    form), its ``status`` and ``status_title`` (the first scan starts a ready phase) and the phase page as it now is (``page``), from which the script takes the parts
    that changed: one template shows a scan, with or without script. As on the plain page
    after a save, a scan's field is empty again (its slot shows what was recorded, or why the
    scan was refused); a malformed value stays as typed next to its message.
    """
    kept = {k: v for k, v in request.form.items() if k.startswith("value:") and k in field_errors}
    context = _phase_context(batch_id, phase_id, kept, field_errors)
    return jsonify(
        {
            "ok": status < 400,
            "message": message,
            "fields": dict(field_errors),
            "recorded": recorded,
            "seen_seq": context["phase"]["seen_seq"],
            "status": context["phase"]["status"],  # a first scan starts a ready phase
            "status_title": context["phase"]["status_title"],
            "page": render_template("operator/phase.html", **context),
        }
    ), status


def _scan_refused(batch_id: str, phase_id: str) -> Refused:
    """A refused scan sent by the page's script: its message as JSON, for its field."""

    def answer(err: MesError) -> ResponseReturnValue:
        fields = getattr(err, "fields", None) or {}
        if not fields and len(request.form.keys() - {"csrf_token", "seen_seq"}) == 1:
            fields = {next(iter(request.form.keys() - {"csrf_token", "seen_seq"})): str(err)}
        return _scan_answer(
            batch_id, phase_id, status=err.http_status, message=str(err), field_errors=fields
        )

    return answer


@bp.post("/<batch_id>/phases/<phase_id>/record")
@requires(Permission.EXECUTE_BATCHES)
def record_phase(batch_id: str, phase_id: str) -> ResponseReturnValue:
    """Save what was entered and scanned (each value and scan is its own ledger entry).

    Asked for JSON (the page's script sends each scan as it is made), the same service call
    answers without a page load (:func:`_scan_answer`); a refusal is a 4xx with its message.
    """
    if wants_json():
        result = _record(batch_id, phase_id, _scan_refused(batch_id, phase_id))
        errors = result.field_errors if result is not None else {}
        return _scan_answer(
            batch_id,
            phase_id,
            status=422 if errors else 200,
            message=" ".join(errors.values()) or None,
            field_errors=errors,
            recorded=result.recorded if result is not None else 0,
        )
    result = _record(batch_id, phase_id, _on_phase_page(batch_id, phase_id))
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


@bp.post("/<batch_id>/phases/<phase_id>/logger/<log_id>")
@requires(Permission.EXECUTE_BATCHES)
def import_logger(batch_id: str, phase_id: str, log_id: str) -> ResponseReturnValue:
    """Import the logger file uploaded for ``log_id`` (kept as received; refused: nothing kept)."""
    upload = request.files.get("logger_file")
    field = f"logger:{log_id}"

    def refused(err: MesError) -> ResponseReturnValue:
        return _phase_page(
            batch_id,
            phase_id,
            error=str(err),
            status=err.http_status,
            field_errors={field: str(err)},
        )

    if upload is None or not upload.filename:
        return refused(
            MesError("Choose the logger file to upload.", what_to_do="Nothing was recorded.")
        )
    batch = act(
        logger_files.import_logger_file,
        batch_id,
        phase_id,
        log_id,
        upload.filename,
        upload.read(),
        seen_seq=_seen(),
        refused=refused,
    )
    raised = [
        d for d in batch.state.deviations.values() if d.phase == phase_id and d.comment is None
    ]
    flash("Logger file imported.", "info")
    if raised:
        flash(f"Deviation {raised[-1].id}: {raised[-1].description} Say what happened.", "error")
    return redirect(url_for("operator.phase", batch_id=batch_id, phase_id=phase_id), 303)


@bp.get("/<batch_id>/phases/<phase_id>/logger/<log_id>/curve.svg")
@requires(Permission.READ_BATCHES)
def logger_curve(batch_id: str, phase_id: str, log_id: str) -> ResponseReturnValue:
    """The curve of the logger file imported for ``log_id``, with its window (SVG)."""
    with reading() as (uow, ctx):
        batch = batches.get_batch(uow, ctx, batch_id).batch
        if phase_id not in batch.state.phases:
            abort(404)
        done = (batch.state.phases[phase_id].kinds.get("temperature_log") or {}).get(log_id)
        if done is None:
            abort(404)
        svg = logger_files.logger_chart(uow, ctx, done["sha256"], done["window"])
    answer = Response(svg, mimetype="image/svg+xml")
    answer.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return answer


@bp.get("/<batch_id>/deviations/<deviation_id>/curve.svg")
@requires(Permission.READ_BATCHES)
def deviation_curve(batch_id: str, deviation_id: str) -> ResponseReturnValue:
    """A custody transfer's excursion: the curve sealed in its entry (SVG)."""
    with reading() as (uow, ctx):
        batch = batches.get_batch(uow, ctx, batch_id).batch
    if deviation_id not in batch.state.deviations:
        abort(404)
    done = excursion_import(batch, deviation_id)
    svg = None if done is None else compact_curve_svg(done)
    if svg is None:
        abort(404)
    answer = Response(svg, mimetype="image/svg+xml")
    answer.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return answer


@bp.post("/<batch_id>/phases/<phase_id>/sign/<action_name>")
@requires(Permission.EXECUTE_BATCHES)
def sign_phase(batch_id: str, phase_id: str, action_name: str) -> ResponseReturnValue:
    """Sign performed (saving the form first) or verified, in the e-signature dialog."""
    if action_name not in ("perform", "verify"):
        abort(404)
    action = Action(action_name)
    data = batches.PhaseData(_phase_data(request.form)) if action is Action.PERFORM else None
    batch = act(
        batches.sign_phase,
        batch_id,
        phase_id,
        action,
        seen_seq=_seen(),
        data=data,
        signature=SignatureForm(),
        refused=_on_phase_page(batch_id, phase_id, action),
    )
    flash(BATCH_ACTIONS[action].done, "info")
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
    form = CorrectionForm()
    act(
        batches.correct_value,
        batch_id,
        phase_id,
        form.value_id.data or "",
        form.new_value.data or "",
        form.reason.data or "",
        signature=SignatureForm(),
        refused=shown_on(_phase_page, batch_id, phase_id, entered=typed()),
    )
    return done(
        BATCH_ACTIONS[Action.CORRECT].done,
        "operator.phase",
        batch_id=batch_id,
        phase_id=phase_id,
    )


# --- the batch and its deviations: one view for every action the table declares --------------

# What each action of the batch or of one of its deviations takes from its form (after the
# batch, and the deviation for a deviation's action); who may take it, its signature and its
# message are the core's (BATCH_ACTIONS).
_ACTION_FORMS: dict[Action, tuple[Callable[..., Any], Callable[[], tuple[Any, ...]]]] = {
    Action.HOLD: (batches.hold_batch, lambda: (ReasonForm().reason.data or "",)),
    Action.RESUME: (batches.resume_batch, lambda: (ReasonForm().reason.data or "",)),
    Action.COMPLETE: (batches.complete_batch, tuple),
    Action.ABORT: (batches.abort_batch, lambda: (SignedReasonForm().reason.data or "",)),
    Action.REPORT: (
        batches.report_deviation,
        lambda: (
            DeviationReportForm().description.data or "",
            DeviationReportForm().phase_id.data or None,
        ),
    ),
    Action.COMMENT: (batches.comment_deviation, lambda: (CommentForm().comment.data or "",)),
    Action.ACKNOWLEDGE: (batches.acknowledge_deviation, tuple),
    # after release (mes.core.after_release)
    Action.RECORD_RESULT: (batches.record_result, lambda: (result_fields(ResultForm()),)),
    Action.NOTIFY_PHYSICIAN: (
        batches.notify_physician,
        lambda: (notification_fields(NotificationForm()),),
    ),
}


def _batch_action(
    batch_id: str, action_name: str, deviation_id: str | None = None
) -> ResponseReturnValue:
    """Take one action of the batch (or of its deviation ``deviation_id``) from its form."""
    try:
        action = Action(action_name)
        service, form_words = _ACTION_FORMS[action]
    except (ValueError, KeyError):
        abort(404, f"'{action_name}' is not an action here.")
    rule = BATCH_ACTIONS[action]
    if (rule.subject is Subject.DEVIATION) != (deviation_id is not None):
        abort(404, f"'{action_name}' is not an action here.")
    subject = (batch_id,) if deviation_id is None else (batch_id, deviation_id)
    on_phase = request.form.get("phase_id")  # a deviation's form on its phase's page
    act(
        service,
        *subject,
        *form_words(),
        signature=SignatureForm() if rule.signed else None,
        refused=_on_phase_or_batch(
            batch_id, on_phase, "report" if rule.subject is not Subject.BATCH else action.value
        ),
    )
    message = rule.done.format(deviation=deviation_id)
    if on_phase:
        return done(message, "operator.phase", batch_id=batch_id, phase_id=on_phase)
    return done(message, "operator.batch_page", batch_id=batch_id)


def _on_phase_or_batch(batch_id: str, phase_id: str | None, form: str) -> Refused:
    """A refusal shown on the phase the form was on, or on the batch page with ``form`` open."""
    if phase_id:
        return shown_on(_phase_page, batch_id, phase_id, entered=typed())
    return _on_batch_page(batch_id, form)


@bp.post("/<batch_id>/<action_name>")
@requires(Permission.EXECUTE_BATCHES)
def batch_action(batch_id: str, action_name: str) -> ResponseReturnValue:
    """Hold, resume, complete (signed) or abort (signed, with a reason) the batch."""
    if action_name == Action.REPORT:  # reported at /deviations
        abort(404, f"'{action_name}' is not an action here.")
    return _batch_action(batch_id, action_name)


@bp.post("/<batch_id>/results")
@requires(Permission.RECORD_RESULTS)
def record_result(batch_id: str) -> ResponseReturnValue:
    """QC enters a result the recipe declared pending at release (the batch is complete)."""
    return _batch_action(batch_id, Action.RECORD_RESULT.value)


@bp.post("/<batch_id>/physician-notified")
@requires(Permission.READ_BATCHES)
def notify_physician(batch_id: str) -> ResponseReturnValue:
    """Record, signed, that the treating physician was told of a result out of specification."""
    return _batch_action(batch_id, Action.NOTIFY_PHYSICIAN.value)


@bp.post("/<batch_id>/deviations")
@requires(Permission.EXECUTE_BATCHES)
def report_deviation(batch_id: str) -> ResponseReturnValue:
    """Report a deviation by hand, for the batch or one phase."""
    return _batch_action(batch_id, Action.REPORT.value)


@bp.post("/<batch_id>/deviations/<deviation_id>/<action_name>")
@requires(Permission.EXECUTE_BATCHES)
def deviation_action(batch_id: str, deviation_id: str, action_name: str) -> ResponseReturnValue:
    """Say what happened in a deviation, or acknowledge it (a supervisor or QA, signed)."""
    return _batch_action(batch_id, action_name, deviation_id)


@bp.post("/<batch_id>/custody")
@requires(Permission.EXECUTE_BATCHES)
def transfer_custody(batch_id: str) -> ResponseReturnValue:
    """Record a custody transfer of the batch's material, signed by each side that is a user."""
    form = CustodyForm()
    upload = request.files.get("logger_file")  # the shipment's logger file (multipart)
    other = Credentials(
        form.other_secret.data or "",
        (form.other_username.data or "").strip() or None,
        (form.other_badge.data or "").strip() or None,
    )
    act(
        custody.transfer_custody,
        batch_id,
        side=form.side.data or "",
        material=form.material.data or "",
        place=form.place.data or "",
        container=form.container.data or "",
        own_organisation=form.own_organisation.data or "",
        other_organisation=form.other_organisation.data or "",
        other_name=form.other_name.data or "",
        other=other,
        logger_sha256=form.logger_sha256.data or None,
        logger_summary=form.logger_summary.data or None,
        logger_file=(upload.filename, upload.read()) if upload and upload.filename else None,
        signature=form,
        refused=_on_batch_page(batch_id, f"custody-{form.side.data or ''}"),
    )
    return done(
        BATCH_ACTIONS[Action.TRANSFER_CUSTODY].done,
        "operator.batch_page",
        anchor="custody",
        batch_id=batch_id,
    )


# --- the final label of a released batch ----------------------------------------------------


def _label_page(label: labels.FinalLabel, printing: bool = False) -> ResponseReturnValue:
    return render_template("operator/label.html", label=label, printing=printing)


def _no_label(refusal: MesError) -> ResponseReturnValue:
    """Only a batch the hub released has a final label; other refusals are the app's."""
    if not isinstance(refusal, labels.LabelRefused):
        raise refusal
    return error_response(refusal.http_status, "No final label", str(refusal))


@bp.get("/<batch_id>/label")
@requires(Permission.READ_BATCHES)
def label(batch_id: str) -> ResponseReturnValue:
    """The final label (100 × 60 mm) of a batch the hub released; refused for any other."""
    try:
        with reading() as (uow, ctx):
            issued = labels.final_label(uow, ctx, batch_id)
    except labels.LabelRefused as refusal:
        return _no_label(refusal)
    return _label_page(issued)


@bp.post("/<batch_id>/label")
@requires(Permission.EXECUTE_BATCHES)
def print_label(batch_id: str) -> ResponseReturnValue:
    """Print the final label: recorded in the audit trail, then the browser's print dialog."""
    issued = act(labels.record_label_printed, batch_id, refused=_no_label)
    return _label_page(issued, printing=True)
