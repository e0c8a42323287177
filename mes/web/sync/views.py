"""The spoke's sync page: the hub it enrolled with, each batch's state, bundles, and the log."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from mes.core.access import Permission
from mes.services import outbox
from mes.web import runtime, site_zone
from mes.web.actions import reading
from mes.web.helpers import requires
from mes.web.sync.pages import sync_page

bp = Blueprint("sync", __name__, url_prefix="/sync", template_folder="templates")


@bp.get("/")
@requires(Permission.READ_RECIPES)
def overview() -> ResponseReturnValue:
    with reading() as (uow, ctx):
        view = outbox.overview(uow, ctx)
    return render_template(
        "sync/overview.html",
        page=sync_page(view, site_zone()),
        interval=runtime().settings.sync_interval_seconds,
    )
