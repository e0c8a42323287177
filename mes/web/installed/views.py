"""Master recipes at a spoke: the versions installed from hub bundles, and installing one.

A bundle is verified by the service against the hub key this site pinned; a refusal is shown
with its reason (and recorded in the audit trail by the service).
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from werkzeug.utils import secure_filename

from mes.core.access import Permission
from mes.services import recipes
from mes.web.actions import act, done, reading, shown_on
from mes.web.helpers import requires
from mes.web.installed.forms import InstallForm
from mes.web.rendering import procedure_in_words

bp = Blueprint("installed", __name__, url_prefix="/recipes", template_folder="templates")


def _list_page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    with reading(read_only=False) as (uow, ctx):
        installed = recipes.installed_recipes(uow, ctx)
        today = recipes.site_today(uow, ctx)
        codes = {item.recipe_code for item in installed}
        usable = [recipes.usable_version(uow, code, today) for code in codes]
    return render_template(
        "installed/list.html",
        installed=installed,
        in_use={item.id for item in usable if item is not None},
        today=today,
        form=InstallForm(),
        error=error,
    ), status


@bp.get("")
def installed_list() -> ResponseReturnValue:
    """Installed versions, and which one new batches of each recipe take today."""
    return _list_page()


@bp.post("/install")
@requires(Permission.INSTALL_RECIPES)
def install() -> ResponseReturnValue:
    """Verify a hub bundle and install its version; a refusal says why."""
    form = InstallForm()
    if not form.validate_on_submit():
        return _list_page(" ".join(form.bundle.errors) or "Choose the bundle file to install.", 400)
    chosen = form.bundle.data
    source_name = secure_filename(chosen.filename or "") or "bundle.jws"
    outcome = act(recipes.install_bundle, chosen.read(), source_name, refused=shown_on(_list_page))
    name = recipes.label(outcome.recipe)
    if outcome.newly_installed:
        since = outcome.recipe.effective_from.isoformat()
        return done(f"Installed {name} (in use from {since}).", "installed.installed_list")
    return done(f"{name} is already installed; nothing changed.", "installed.installed_list")


@bp.get("/<recipe_id>")
def installed_page(recipe_id: str) -> ResponseReturnValue:
    """One installed version, as operators' batches will follow it."""
    with reading(read_only=False) as (uow, ctx):
        item = recipes.get_installed(uow, ctx, recipe_id)
        in_use = recipes.usable_version(uow, item.recipe_code, recipes.site_today(uow, ctx))
    return render_template(
        "installed/version.html",
        item=item,
        recipe=procedure_in_words(recipes.compiled_of(item)),
        in_use=in_use is not None and in_use.id == item.id,
    )
