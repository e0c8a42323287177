"""The spoke's page of the hub's look-back notifications about batches made here.

Each is QA's signed disposition "notify" in a look-back at the hub, an entry of the batch's
review chain synced back to this spoke: which batch, which look-back subject and why, who at
the hub signed it and when — so the treating clinic of that patient is told.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.services import lookback
from mes.web.actions import reading
from mes.web.helpers import requires

bp = Blueprint("lookback_notices", __name__, url_prefix="/lookback", template_folder="templates")


@bp.get("/")
@requires(Permission.READ_BATCHES)
def notices() -> ResponseReturnValue:
    """The hub's look-back notifications of this site's batches, newest first."""
    with reading() as (uow, ctx):
        found = lookback.notifications(uow, ctx)
    return render_template("operator/lookback_notices.html", notices=found)
