"""The hub's look-back pages: every batch at every spoke that used a suspect item.

A lot, an instrument, an operator or a recipe version; QA opens a look-back and signs a
disposition per batch.

Thin views over :mod:`mes.services.lookback`; the rules (what a subject is, one disposition per
batch, a reason for "no action") are the core's (:mod:`mes.core.lookback`), said in its words.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.core.clock import local_text, parse_utc_text
from mes.core.errors import MesError
from mes.core.lookback import DISPOSITION_TITLES, USAGE_KIND_TITLES, Disposition, UsageKind
from mes.core.review import QA_STATE_TITLES, REVIEW_ACTIONS, QaState, ReviewKind
from mes.services import lookback
from mes.web import site_zone
from mes.web.actions import act, done, reading, shown_on
from mes.web.forms import whole_number
from mes.web.helpers import requires
from mes.web.network.forms import DispositionForm, OpenLookBackForm

bp = Blueprint("lookback", __name__, url_prefix="/network/lookback", template_folder="templates")


def _page_asked() -> int:
    return whole_number(request.args.get("page"), most=10**6) or 1


def _when(at: str | None) -> str:
    return local_text(parse_utc_text(at), site_zone()) if at else "—"


def _rows(batches: list[Any], dispositions: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each batch as the tables show it: patient, status and QA's decision, dates."""
    rows = []
    for b in batches:
        coi = b.chain_of_identity
        rows.append(
            {
                "id": b.batch_id,
                "site": b.site,
                "number": b.number,
                "recipe": b.recipe,
                "detail": b.detail,
                "patient": coi.get("patient_id") or "—",
                "identifiers": ", ".join(
                    f"{k.replace('_', ' ')} {v}"
                    for k, v in sorted(coi.items())
                    if k != "patient_id" and isinstance(v, str | int)
                ),
                "status": b.status.replace("_", " "),
                "qa_state": QA_STATE_TITLES.get(QaState(b.qa_state), b.qa_state),
                "created": _when(b.created_at),
                "completed": _when(b.completed_at),
                "decided": _when(b.decided_at),
                "disposition": (dispositions or {}).get(b.batch_id),
            }
        )
    return rows


def _search_page(error: str | None = None, status: int = 200, **typed: str) -> ResponseReturnValue:
    kind = typed.get("kind", request.args.get("kind", UsageKind.LOT.value))
    subject = typed.get("subject", request.args.get("subject", ""))
    found, problem = None, error
    with reading() as (uow, ctx):
        recent = lookback.recent(uow, ctx)
        if subject.strip() and problem is None:
            try:
                found = lookback.look_back(uow, ctx, kind, subject, page=_page_asked())
            except MesError as err:
                problem, status = str(err), err.http_status
    rows = _rows(found.batches) if found else []
    return (
        render_template(
            "network/lookback.html",
            kinds=USAGE_KIND_TITLES,
            kind=kind,
            subject=subject,
            found=found,
            rows=rows,
            recent=[
                {
                    "id": r.id,
                    "subject": f"{UsageKind(r.subject_kind).words} {r.subject}",
                    "opened": local_text(r.opened_at, site_zone()),
                    "reason": r.reason,
                }
                for r in recent
            ],
            open_form=OpenLookBackForm(kind=kind, subject=subject),
            error=problem,
        ),
        status,
    )


@bp.get("/")
@requires(Permission.LOOK_BACK)
def search() -> ResponseReturnValue:
    """The search form (kind + identifier); with an identifier, every batch that used it."""
    return _search_page()


@bp.post("/")
@requires(Permission.LOOK_BACK)
def open_lookback() -> ResponseReturnValue:
    """Open a look-back on the subject searched for, with QA's reason (an audit-trail entry)."""
    form = OpenLookBackForm()
    kind, subject = form.kind.data or "", form.subject.data or ""
    opened = act(
        lookback.open_lookback,
        kind,
        subject,
        form.reason.data,
        refused=shown_on(_search_page, kind=kind, subject=subject),
    )
    return done(
        f"Look-back opened on {UsageKind(opened.subject_kind).words.lower()} {opened.subject}.",
        "lookback.case",
        lookback_id=opened.id,
    )


def _case_page(
    lookback_id: str, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    with reading() as (uow, ctx):
        case = lookback.lookback_case(uow, ctx, lookback_id, page=_page_asked())
    rule = REVIEW_ACTIONS[ReviewKind.LOOKBACK_DISPOSITION]
    return (
        render_template(
            "network/lookback_case.html",
            case=case,
            subject=f"{case.kind.words} {case.lookback.subject}",
            opened=local_text(case.lookback.opened_at, site_zone()),
            rows=_rows(case.batches, case.dispositions),
            dispositions=DISPOSITION_TITLES,
            notify=Disposition.NOTIFY,
            meaning=rule.meaning,
            when=_when,
            error=error,
        ),
        status,
    )


@bp.get("/<lookback_id>")
@requires(Permission.LOOK_BACK)
def case(lookback_id: str) -> ResponseReturnValue:
    """One look-back: its batches, each with its disposition or the forms to sign one."""
    return _case_page(lookback_id)


@bp.post("/<lookback_id>/dispositions")
@requires(Permission.LOOK_BACK)
def dispose(lookback_id: str) -> ResponseReturnValue:
    """Sign one batch's disposition (notify, or no action with a reason) on its review chain."""
    form = DispositionForm()
    view = act(
        lookback.dispose,
        lookback_id,
        form.batch_id.data or "",
        form.disposition.data or "",
        reason=form.reason.data,
        signature=form,
        refused=shown_on(_case_page, lookback_id),
    )
    return done(
        REVIEW_ACTIONS[ReviewKind.LOOKBACK_DISPOSITION].done.format(number=view.row.number),
        "lookback.case",
        lookback_id=lookback_id,
        anchor=f"batch-{view.row.number}",
    )
