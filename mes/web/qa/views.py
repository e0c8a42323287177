"""QA at the hub: the queue of received batches, review by exception, deviations and release.

A view reads the form, calls one review service (:mod:`mes.services.review`) and shows the
result or the refusal in the service's words, on the page the reviewer was on, with a 4xx
status: a wrong password, a stale page (someone else recorded in the review since it was
opened: the message says who and when), an investigation not complete, a release blocked.
Every signing form is signed in the e-signature dialog (user ID at the session's first signing,
then the password; the meaning is shown).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from mes.core.access import Permission, allowed
from mes.core.errors import MesError
from mes.core.phases.temperature_log import excursion_import
from mes.core.review import (
    ASSESSMENT_FIELDS,
    ASSESSMENT_TITLES,
    DECISION_KINDS,
    REVIEW_ACTIONS,
    Decision,
    ReviewKind,
)
from mes.services import cpv, review
from mes.services.logger_chart import compact_curve_svg
from mes.services.record import batch_record
from mes.web import runtime, site_zone
from mes.web.actions import act, done, reading, shown_on
from mes.web.forms import (
    WITHIN_CHOICES,
    CertificationForm,
    NotificationForm,
    ResultForm,
    notification_fields,
    result_fields,
    whole_number,
)
from mes.web.helpers import requires, service_context
from mes.web.qa.forms import (
    AssessmentForm,
    BulkReviewForm,
    CloseDeviationForm,
    DecisionForm,
    ReviewExceptionForm,
    chosen_exceptions,
    seen_state,
)
from mes.web.qa.pages import (
    CLASSIFICATION_CHOICES,
    after_review,
    queue_page,
    queue_row,
    review_header,
    review_page,
)

bp = Blueprint("qa", __name__, url_prefix="/qa", template_folder="templates")
T = TypeVar("T")


# --- the queue ----------------------------------------------------------------------------------


@bp.get("/")
@requires(Permission.REVIEW_BATCHES)
def queue() -> ResponseReturnValue:
    """Every batch received from the spokes, filtered by site, product, QA state and age."""
    age_text = (request.args.get("age") or "").strip()
    chosen: dict[str, Any] = {
        "site": request.args.get("site") or None,
        "product": request.args.get("product") or None,
        "state": request.args.get("state") or None,
        "age": age_text,
    }
    error, status = None, 200
    min_age = whole_number(age_text, most=100_000)
    if age_text and min_age is None:
        error, status = "The age is a whole number of days from 0 to 100000 (e.g. 3).", 400
    try:
        with reading() as (uow, ctx):
            found = review.qa_queue(
                uow,
                ctx,
                site=chosen["site"],
                product=chosen["product"],
                state=chosen["state"],
                min_age_days=min_age,
            )
    except MesError as err:  # a filter the queue refuses: the whole queue, and why
        error, status = str(err), err.http_status
        chosen["state"] = None
        with reading() as (uow, ctx):
            found = review.qa_queue(uow, ctx)
    page = queue_page(found, site_zone(), chosen)
    with reading() as (uow, ctx):
        trends = cpv.trends_to_assess(uow, ctx)  # continued process verification's own block
    return render_template("qa/queue.html", page=page, error=error, trends=trends), status


@bp.get("/results")
def results() -> ResponseReturnValue:
    """Released batches awaiting results after release: where QC at the hub finds its work."""
    if not (
        allowed(current_user.roles, Permission.RECORD_RESULTS)
        or allowed(current_user.roles, Permission.REVIEW_BATCHES)
    ):
        abort(403, f"You are not allowed to {Permission.RECORD_RESULTS.value}.")
    with reading() as (uow, ctx):
        rows = review.awaiting_results(uow, ctx)
    zone = site_zone()
    return render_template("qa/results.html", rows=[queue_row(r, zone) for r in rows])


# --- one batch ----------------------------------------------------------------------------------


def _review_page(
    batch_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    assessments: dict[str, dict[str, str]] | None = None,
) -> ResponseReturnValue:
    """The review page, with a refusal shown at the top (and the typed text kept) if any."""
    with reading() as (uow, ctx):
        view = review.review_batch(uow, ctx, batch_id)
        page = review_page(view)
    for card in page["deviations"]:
        if assessments and card["id"] in assessments:
            card["assessment"] = assessments[card["id"]]
    return render_template(
        "qa/review.html",
        page=page,
        header=page["header"],
        error=error,
        actions=REVIEW_ACTIONS,
        assessment_titles=ASSESSMENT_TITLES,
        classification_choices=CLASSIFICATION_CHOICES,
        typed_reason=request.form.get("reason", "") if request.method == "POST" else "",
        pdf_available="qa.record_pdf" in current_app.view_functions,
        within_choices=WITHIN_CHOICES,
    ), status


def _signed(service: Callable[..., T], batch_id: str, *args: Any, form: Any, **kwargs: Any) -> T:
    """``service`` on the batch's review, signed in ``form``'s dialog, bound to the page as seen.

    A refusal shows the review page again with its words.
    """
    return act(
        service,
        batch_id,
        *args,
        **kwargs,
        **seen_state(form),
        signature=form,
        refused=shown_on(_review_page, batch_id),
    )


def _back_to_review(message: str, batch_id: str, anchor: str) -> ResponseReturnValue:
    """``message`` flashed on the batch's review page, at ``anchor``."""
    return done(message, "qa.batch", batch_id=batch_id, anchor=anchor)


@bp.get("/batches/<batch_id>")
def batch(batch_id: str) -> ResponseReturnValue:
    """Review by exception: the verdict, then each exception, the deviations and the decision.

    QC at the hub opens it too, to enter the results that arrive after release.
    """
    if not (
        allowed(current_user.roles, Permission.REVIEW_BATCHES)
        or allowed(current_user.roles, Permission.RECORD_RESULTS)
    ):
        abort(403, f"You are not allowed to {Permission.REVIEW_BATCHES.value}.")
    return _review_page(batch_id)


@bp.post("/batches/<batch_id>/reviewed")
@requires(Permission.REVIEW_BATCHES)
def mark_reviewed(batch_id: str) -> ResponseReturnValue:
    """Sign one exception "reviewed" (with an optional note)."""
    form = ReviewExceptionForm()
    key = form.exception.data or ""
    view = _signed(review.mark_reviewed, batch_id, key, note=form.note.data, form=form)
    rule = REVIEW_ACTIONS[ReviewKind.EXCEPTION_REVIEWED]
    return _back_to_review(rule.done, batch_id, after_review(view, [key]))


@bp.post("/batches/<batch_id>/reviewed-together")
@requires(Permission.REVIEW_BATCHES)
def mark_reviewed_together(batch_id: str) -> ResponseReturnValue:
    """Sign several exceptions "reviewed" with one signature (a category's, or those ticked)."""
    form = BulkReviewForm()
    seen = chosen_exceptions(request.form.getlist("exception"))
    view = _signed(review.mark_reviewed_together, batch_id, seen, note=form.note.data, form=form)
    rule = REVIEW_ACTIONS[ReviewKind.EXCEPTIONS_REVIEWED]
    return _back_to_review(
        rule.done.format(count=f"{len(seen)} exception{'s' if len(seen) != 1 else ''}"),
        batch_id,
        after_review(view, list(seen)),
    )


@bp.get("/batches/<batch_id>/deviations/<deviation_id>/curve.svg")
def deviation_curve(batch_id: str, deviation_id: str) -> ResponseReturnValue:
    """A temperature excursion's logger curve, drawn from its entry's compact curve (SVG).

    For whoever opens the review page (QA, or QC at the hub: :func:`batch`).
    """
    if not (
        allowed(current_user.roles, Permission.REVIEW_BATCHES)
        or allowed(current_user.roles, Permission.RECORD_RESULTS)
    ):
        abort(403, f"You are not allowed to {Permission.REVIEW_BATCHES.value}.")
    with reading() as (uow, ctx):
        view = review.review_batch(uow, ctx, batch_id)
    if deviation_id not in view.batch.state.deviations:
        abort(404)
    done = excursion_import(view.batch, deviation_id)
    svg = None if done is None else compact_curve_svg(done)
    if svg is None:
        abort(404)
    answer = Response(svg, mimetype="image/svg+xml")
    answer.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return answer


@bp.post("/batches/<batch_id>/deviations/<deviation_id>/assessment")
@requires(Permission.REVIEW_BATCHES)
def assess_deviation(batch_id: str, deviation_id: str) -> ResponseReturnValue:
    """Save QA's classification and investigation of a deviation (no signature)."""
    form = AssessmentForm()
    typed = {name: (getattr(form, name).data or "") for name in ASSESSMENT_FIELDS}
    changed = act(
        review.assess_deviation,
        batch_id,
        deviation_id,
        typed,
        **seen_state(form),
        refused=shown_on(_review_page, batch_id, assessments={deviation_id: typed}),
    )
    return _back_to_review(
        REVIEW_ACTIONS[ReviewKind.DEVIATION_ASSESSED].done.format(deviation=deviation_id)
        if changed
        else f"Deviation {deviation_id}: nothing changed, nothing saved.",
        batch_id,
        f"deviation-{deviation_id}",
    )


@bp.post("/batches/<batch_id>/deviations/<deviation_id>/close")
@requires(Permission.REVIEW_BATCHES)
def close_deviation(batch_id: str, deviation_id: str) -> ResponseReturnValue:
    """Close a deviation whose investigation is complete, signed "closed"."""
    form = CloseDeviationForm()
    _signed(review.close_deviation, batch_id, deviation_id, form=form)
    return _back_to_review(
        REVIEW_ACTIONS[ReviewKind.DEVIATION_CLOSED].done.format(deviation=deviation_id),
        batch_id,
        f"deviation-{deviation_id}",
    )


@bp.post("/batches/<batch_id>/released")
@requires(Permission.REVIEW_BATCHES)
def release(batch_id: str) -> ResponseReturnValue:
    """Release the batch, signed "released"; refused with every reason that blocks it."""
    return _decide(batch_id, Decision.RELEASED)


@bp.post("/batches/<batch_id>/rejected")
@requires(Permission.REVIEW_BATCHES)
def reject(batch_id: str) -> ResponseReturnValue:
    """Reject the batch with a reason, signed "rejected"."""
    return _decide(batch_id, Decision.REJECTED)


def _decide(batch_id: str, decision: Decision) -> ResponseReturnValue:
    form = DecisionForm()
    view = _signed(
        review.decide_batch,
        batch_id,
        decision,
        reason=form.reason.data if decision is Decision.REJECTED else None,
        form=form,
    )
    return _back_to_review(
        REVIEW_ACTIONS[DECISION_KINDS[decision]].done.format(number=view.row.number),
        batch_id,
        "decision",
    )


# --- after release (mes.core.after_release) -----------------------------------------------------


@bp.post("/batches/<batch_id>/results")
@requires(Permission.RECORD_RESULTS)
def record_result(batch_id: str) -> ResponseReturnValue:
    """The hub's QC enters a result the recipe declared pending at release (no signature)."""
    form = ResultForm()
    act(
        review.record_result_at_hub,
        batch_id,
        result_fields(form),
        **seen_state(form),
        refused=shown_on(_review_page, batch_id),
    )
    return _back_to_review(
        REVIEW_ACTIONS[ReviewKind.RESULT_RECORDED].done, batch_id, "after-release"
    )


@bp.post("/batches/<batch_id>/physician-notified")
@requires(Permission.REVIEW_BATCHES)
def notify_physician(batch_id: str) -> ResponseReturnValue:
    """QA records, signed, that the treating physician was told of a result out of spec."""
    form = NotificationForm()
    _signed(review.notify_physician_at_hub, batch_id, notification_fields(form), form=form)
    return _back_to_review(
        REVIEW_ACTIONS[ReviewKind.PHYSICIAN_NOTIFIED].done, batch_id, "after-release"
    )


@bp.post("/batches/<batch_id>/certified-final")
@requires(Permission.REVIEW_BATCHES)
def certify_final(batch_id: str) -> ResponseReturnValue:
    """QA signs the final certification once every pending result is in and within spec."""
    form = CertificationForm()
    view = _signed(review.certify_final, batch_id, form=form)
    return _back_to_review(
        REVIEW_ACTIONS[ReviewKind.BATCH_CERTIFIED_FINAL].done.format(number=view.row.number),
        batch_id,
        "after-release",
    )


# --- the full record ----------------------------------------------------------------------------


@bp.get("/batches/<batch_id>/record")
@requires(Permission.REVIEW_BATCHES)
def record(batch_id: str) -> ResponseReturnValue:
    """The whole record in recipe order, then every ledger and review entry in words."""
    with reading() as (uow, ctx):
        package = batch_record(uow, ctx, batch_id)
    view = package.view
    audit = package.record.audit
    return render_template(
        "qa/record.html",
        header=review_header(view),
        record=package.record,
        ledger=[line for line in audit if line.chain == "batch"],
        review_lines=[line for line in audit if line.chain == "review"],
        chain_problem=view.chain_problem,
    )


@bp.get("/batches/<batch_id>/record.pdf")
@requires(Permission.REVIEW_BATCHES)
def record_pdf(batch_id: str) -> ResponseReturnValue:
    """The executed batch record as signed PDF/A-3b (made once per state of the record, kept)."""
    from mes.pdf.issue import issue_record

    issued = issue_record(runtime(), service_context(), batch_id)
    return Response(
        issued.pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{issued.filename}"'},
    )
