"""QA at the hub: the queue of received batches, review by exception, deviations and release.

A view reads the form, calls one review service (:mod:`mes.services.review`) and shows the
result or the refusal in the service's words, on the page the reviewer was on, with a 4xx
status: a wrong password, a stale page (someone else recorded in the review since it was
opened: the message says who and when), an investigation not complete, a release blocked.
Every signing form is signed in the e-signature dialog (user ID at the session's first signing,
then the password; the meaning is shown).
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.core.errors import MesError
from mes.core.esign import Meaning
from mes.core.review import ASSESSMENT_FIELDS, ASSESSMENT_TITLES, Decision
from mes.services import review
from mes.services.record import batch_record
from mes.web import runtime
from mes.web.forms import whole_number
from mes.web.helpers import (
    current_user_still_allowed,
    requires,
    service_context,
    signing_credentials,
    signing_succeeded,
)
from mes.web.qa.forms import (
    AssessmentForm,
    CloseDeviationForm,
    DecisionForm,
    ReviewExceptionForm,
    seen_state,
)
from mes.web.qa.pages import CLASSIFICATION_CHOICES, queue_page, review_header, review_page

bp = Blueprint("qa", __name__, url_prefix="/qa", template_folder="templates")


def _zone() -> str:
    return runtime().site.time_zone


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
        with runtime().uow(read_only=True) as uow:
            found = review.qa_queue(
                uow,
                service_context(),
                site=chosen["site"],
                product=chosen["product"],
                state=chosen["state"],
                min_age_days=min_age,
            )
    except MesError as err:
        error, status = str(err), err.http_status
        chosen["state"] = None
        with runtime().uow(read_only=True) as uow:
            found = review.qa_queue(uow, service_context())
    page = queue_page(found, _zone(), chosen)
    return render_template("qa/queue.html", page=page, error=error), status


# --- one batch ----------------------------------------------------------------------------------


def _review_page(
    batch_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    assessments: dict[str, dict[str, str]] | None = None,
) -> ResponseReturnValue:
    """The review page, with a refusal shown at the top (and the typed text kept) if any."""
    with runtime().uow(read_only=True) as uow:
        view = review.review_batch(uow, service_context(), batch_id)
        page = review_page(view)
    for card in page["deviations"]:
        if assessments and card["id"] in assessments:
            card["assessment"] = assessments[card["id"]]
    return render_template(
        "qa/review.html",
        page=page,
        header=page["header"],
        error=error,
        reviewed_meaning=Meaning.REVIEWED,
        closed_meaning=Meaning.CLOSED,
        released_meaning=Meaning.RELEASED,
        rejected_meaning=Meaning.REJECTED,
        assessment_titles=ASSESSMENT_TITLES,
        classification_choices=CLASSIFICATION_CHOICES,
        typed_reason=request.form.get("reason", "") if request.method == "POST" else "",
        pdf_available="qa.record_pdf" in current_app.view_functions,
    ), status


def _refused(batch_id: str, err: MesError, **kwargs: Any) -> ResponseReturnValue:
    """A refusal: the account may have been locked by it; otherwise show the page and why."""
    if not current_user_still_allowed():
        return redirect(url_for("common.login"))
    return _review_page(batch_id, error=str(err), status=err.http_status, **kwargs)


def _back(batch_id: str, anchor: str) -> ResponseReturnValue:
    return redirect(url_for("qa.batch", batch_id=batch_id, _anchor=anchor), 303)


@bp.get("/batches/<batch_id>")
@requires(Permission.REVIEW_BATCHES)
def batch(batch_id: str) -> ResponseReturnValue:
    """Review by exception: the verdict, then each exception, the deviations and the decision."""
    return _review_page(batch_id)


@bp.post("/batches/<batch_id>/reviewed")
@requires(Permission.REVIEW_BATCHES)
def mark_reviewed(batch_id: str) -> ResponseReturnValue:
    """Sign one exception "reviewed" (with an optional note)."""
    form = ReviewExceptionForm()
    credentials, first = signing_credentials(form)
    try:
        with runtime().uow() as uow:
            review.mark_reviewed(
                uow,
                service_context(),
                batch_id,
                form.exception.data or "",
                credentials,
                first_signing_in_session=first,
                note=form.note.data,
                **seen_state(form),
            )
    except MesError as err:
        return _refused(batch_id, err)
    signing_succeeded()
    flash("Signed: reviewed.", "info")
    return _back(batch_id, "findings")


@bp.post("/batches/<batch_id>/deviations/<deviation_id>/assessment")
@requires(Permission.REVIEW_BATCHES)
def assess_deviation(batch_id: str, deviation_id: str) -> ResponseReturnValue:
    """Save QA's classification and investigation of a deviation (no signature)."""
    form = AssessmentForm()
    typed = {name: (getattr(form, name).data or "") for name in ASSESSMENT_FIELDS}
    try:
        with runtime().uow() as uow:
            changed = review.assess_deviation(
                uow,
                service_context(),
                batch_id,
                deviation_id,
                typed,
                **seen_state(form),
            )
    except MesError as err:
        return _review_page(
            batch_id,
            error=str(err),
            status=err.http_status,
            assessments={deviation_id: typed},
        )
    flash(
        f"Deviation {deviation_id}: investigation saved."
        if changed
        else f"Deviation {deviation_id}: nothing changed, nothing saved.",
        "info",
    )
    return _back(batch_id, f"deviation-{deviation_id}")


@bp.post("/batches/<batch_id>/deviations/<deviation_id>/close")
@requires(Permission.REVIEW_BATCHES)
def close_deviation(batch_id: str, deviation_id: str) -> ResponseReturnValue:
    """Close a deviation whose investigation is complete, signed "closed"."""
    form = CloseDeviationForm()
    credentials, first = signing_credentials(form)
    try:
        with runtime().uow() as uow:
            review.close_deviation(
                uow,
                service_context(),
                batch_id,
                deviation_id,
                credentials,
                first_signing_in_session=first,
                **seen_state(form),
            )
    except MesError as err:
        return _refused(batch_id, err)
    signing_succeeded()
    flash(f"Deviation {deviation_id} closed.", "info")
    return _back(batch_id, f"deviation-{deviation_id}")


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
    credentials, first = signing_credentials(form)
    try:
        with runtime().uow() as uow:
            view = review.decide_batch(
                uow,
                service_context(),
                batch_id,
                decision,
                credentials,
                first_signing_in_session=first,
                reason=form.reason.data if decision is Decision.REJECTED else None,
                **seen_state(form),
            )
    except MesError as err:
        return _refused(batch_id, err)
    signing_succeeded()
    flash(f"Batch {view.row.number} {decision.value}.", "info")
    return _back(batch_id, "decision")


# --- the full record ----------------------------------------------------------------------------


@bp.get("/batches/<batch_id>/record")
@requires(Permission.REVIEW_BATCHES)
def record(batch_id: str) -> ResponseReturnValue:
    """The whole record in recipe order, then every ledger and review entry in words."""
    with runtime().uow(read_only=True) as uow:
        package = batch_record(uow, service_context(), batch_id)
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
