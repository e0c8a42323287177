"""Master recipes at the hub: drafts, the master batch record, its signed lifecycle, bundles.

Authors upload drafts; reviewers and QA read the version as a printable master batch record and
sign its lifecycle steps; anyone compares versions and exports BatchML or the YAML source; QA
publishes effective versions to sites as signed bundles.

Every rule (who may sign what, when, with which date) is the services' and the core's; the pages
show what the core allows (``steps_from``, ``STEP_RULES``) and the service's message when it
refuses.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, abort, flash, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.utils import secure_filename

from mes.core.access import Permission
from mes.core.errors import MesError
from mes.core.lifecycle import STATE_TITLES, STEP_RULES, Step, VersionState
from mes.core.recipe import RecipeInvalid, recipe_schema, recipe_warnings
from mes.core.recipe_diff import diff_recipes, summary
from mes.services import recipes
from mes.services.esign import valid_signatures
from mes.services.recipes import RecipeVersion
from mes.web.actions import act, done, reading, shown_on
from mes.web.authoring.forms import PublishForm, StepForm, UploadForm
from mes.web.helpers import requires
from mes.web.rendering import grouped_by_place, procedure_in_words

bp = Blueprint("authoring", __name__, url_prefix="/recipes", template_folder="templates")


@bp.get("")
def version_list() -> ResponseReturnValue:
    """Every recipe version, grouped by recipe code, newest first, with its status."""
    with reading(read_only=False) as (uow, ctx):
        versions = recipes.list_versions(uow, ctx)
    return render_template("authoring/list.html", versions=versions, state_titles=STATE_TITLES)


@bp.get("/schema.json")
def schema() -> ResponseReturnValue:
    """The JSON Schema of the recipe format, for authors' editors (public, no data)."""
    return Response(json.dumps(recipe_schema(), indent=2), mimetype="application/schema+json")


@bp.route("/upload", methods=["GET", "POST"])
@requires(Permission.IMPORT_RECIPES)
def upload() -> ResponseReturnValue:
    """Import a recipe file as a draft; an invalid file lists every problem and stores nothing.

    Warnings (a field in the older mapping form) are listed too, and refuse nothing.
    """
    form = UploadForm()

    def page(
        status: int, source_name: str | None = None, err: MesError | None = None
    ) -> ResponseReturnValue:
        """The upload form: an invalid file's problems and warnings, or a refusal's words."""
        invalid = isinstance(err, RecipeInvalid)
        return render_template(
            "authoring/upload.html",
            form=form,
            problems=err.lines() if invalid else [],  # type: ignore[union-attr]
            warnings=err.warning_lines() if invalid else [],  # type: ignore[union-attr]
            source_name=source_name,
            error=str(err) if err is not None and not invalid else None,
        ), status

    if not form.validate_on_submit():
        return page(400 if form.is_submitted() else 200)
    chosen = form.recipe.data
    source_name = secure_filename(chosen.filename or "") or "recipe.yaml"
    text = chosen.read()
    version = act(
        recipes.import_recipe,
        text,
        source_name,
        refused=lambda err: page(err.http_status, source_name, err),
    )
    state = STATE_TITLES[VersionState(version.status)].lower()
    for line in recipe_warnings(text, source_name):
        flash(line, "warning")
    return done(
        f"Uploaded {recipes.label(version)}; it is {state}.",
        "authoring.version_page",
        version_id=version.id,
    )


# --- the master batch record -------------------------------------------------------------


def _previous(version: RecipeVersion, siblings: list[RecipeVersion]) -> RecipeVersion | None:
    """The version just before ``version`` (siblings come newest first)."""
    return next((v for v in siblings if v.version < version.version), None)


def _version_page(
    version_id: str, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    with reading(read_only=False) as (uow, ctx):
        version = recipes.get_version(uow, ctx, version_id)
        siblings = recipes.versions_of(uow, ctx, version.recipe_code)
        record = recipes.version_record(version)
        signatures = valid_signatures(uow, recipes.RECORD_TYPE, version.id, record)
        publications = recipes.publications_of(uow, version.id)
        today = recipes.site_today(uow, ctx)
        steps = [(step, STEP_RULES[step]) for step in recipes.signable_steps(uow, ctx, version)]
    return render_template(
        "authoring/version.html",
        recipe_version=version,
        state_titles=STATE_TITLES,
        recipe=procedure_in_words(recipes.compiled_of(version)),
        previous=_previous(version, siblings),
        signatures=signatures,
        publications=publications,
        steps=steps,
        step_form=StepForm(effective_from=today),
        publish_form=PublishForm(),
        error=error,
    ), status


@bp.get("/<version_id>")
def version_page(version_id: str) -> ResponseReturnValue:
    """The version as reviewers and auditors read it: header, signatures, actions, procedure."""
    return _version_page(version_id)


def _form_problem(form: StepForm | PublishForm) -> str:
    messages = []
    for name, errors in form.errors.items():
        field = getattr(form, name, None)
        for message in errors:
            if name in ("esign_password", "sites") or field is None:
                messages.append(message)
            else:
                messages.append(f"{field.label.text}: {message}")
    return " ".join(messages)


@bp.post("/<version_id>/sign/<step_name>")
def sign(version_id: str, step_name: str) -> ResponseReturnValue:
    """Sign one lifecycle step with the e-signature dialog (21 CFR 11.50, 11.200; Annex 11 §10)."""
    try:
        step = Step(step_name)
    except ValueError:
        abort(404, f"'{step_name}' is not a lifecycle step.")
    if step not in STEP_RULES:
        abort(404, f"'{step_name}' is not a step anyone signs.")
    form = StepForm()
    if not form.validate_on_submit():
        return _version_page(version_id, _form_problem(form), 400)
    result = act(
        recipes.sign_step,
        version_id,
        step,
        effective_from=form.effective_from.data,
        reason=form.reason.data,
        signature=form,
        refused=shown_on(_version_page, version_id),
    )
    message = f"{STEP_RULES[step].done} The version is now {STATE_TITLES[result.state].lower()}."
    if result.superseded:
        count = len(result.superseded)
        message += f" It supersedes {count} earlier version{'s' * (count != 1)}."
    return done(message, "authoring.version_page", version_id=version_id)


@bp.post("/<version_id>/publish")
@requires(Permission.PUBLISH_RECIPES)
def publish(version_id: str) -> ResponseReturnValue:
    """Publish an effective version to sites: the signed bundle (JWS) is downloaded."""
    form = PublishForm()
    if not form.validate_on_submit():
        return _version_page(version_id, _form_problem(form), 400)

    def publish_and_read(uow: Any, ctx: Any, sites: list[str]) -> tuple[str, RecipeVersion]:
        token, _publication = recipes.publish(uow, ctx, version_id, sites)
        return token, recipes.get_version(uow, ctx, version_id)

    token, version = act(
        publish_and_read, form.site_codes(), refused=shown_on(_version_page, version_id)
    )
    return _download(token + "\n", f"{_file_stem(version)}.jws", "application/jose")


# --- comparing and exporting -------------------------------------------------------------


@bp.get("/<version_id>/diff")
def diff(version_id: str) -> ResponseReturnValue:
    """What changed from another version (the previous one by default), one sentence each."""
    against = request.args.get("against") or None
    with reading(read_only=False) as (uow, ctx):
        version = recipes.get_version(uow, ctx, version_id)
        siblings = recipes.versions_of(uow, ctx, version.recipe_code)
        other = recipes.get_version(uow, ctx, against) if against else _previous(version, siblings)
    changes = (
        diff_recipes(recipes.compiled_of(other), recipes.compiled_of(version)) if other else []
    )
    return render_template(
        "authoring/diff.html",
        recipe_version=version,
        other=other,
        siblings=siblings,
        groups=grouped_by_place(changes),
        summary=summary(changes),
        state_titles=STATE_TITLES,
    )


@bp.get("/<version_id>/batchml")
def batchml(version_id: str) -> ResponseReturnValue:
    """The version as B2MML BatchML (master recipe), with its status and signatures."""
    with reading(read_only=False) as (uow, ctx):
        version = recipes.get_version(uow, ctx, version_id)
        xml = recipes.batchml_export(uow, ctx, version)
    return _download(xml, f"{_file_stem(version)}.batchml.xml", "application/xml")


@bp.get("/<version_id>/source")
def source(version_id: str) -> ResponseReturnValue:
    """The YAML file exactly as it was imported."""
    with reading(read_only=False) as (uow, ctx):
        version = recipes.get_version(uow, ctx, version_id)
    return _download(version.source_text, f"{_file_stem(version)}.yaml", "text/plain")


def _file_stem(version: RecipeVersion) -> str:
    """'CART-CD19-FRESH-v2': recipe codes are capitals, digits and '-', safe in a file name."""
    return f"{version.recipe_code}-v{version.version}"


def _download(body: str | bytes, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response
