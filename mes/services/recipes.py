"""Master recipes: import drafts, move versions through their signed lifecycle, publish, install.

Hub: :func:`import_recipe` creates (or, while still a draft, replaces) a version from a YAML
file; :func:`sign_step` applies one lifecycle step with its e-signature; :func:`publish`
writes a bundle signed with the hub key. Spoke: :func:`install_bundle` verifies a bundle
against the pinned hub key and installs it. Each call is one transaction; every change and
every refusal of a bundle is an audit entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from mes.core import lifecycle
from mes.core.access import Permission
from mes.core.audit import Actor, EntryKind
from mes.core.batchml import master_recipe_batchml
from mes.core.bundle import Bundle, make_bundle, open_bundle
from mes.core.clock import as_utc, parse_utc_text
from mes.core.errors import (
    BundleRefused,
    BundleSuperseded,
    BundleUnknownKey,
    ConfigurationError,
    InvalidInput,
    LifecycleStepRefused,
    NotFound,
    RecipeVersionExists,
)
from mes.core.lifecycle import STATE_TITLES, Step, VersionModel, VersionState
from mes.core.recipe import CompiledRecipe, load_recipe
from mes.core.text import free_text
from mes.services.audit import record_entry
from mes.services.context import Context, acting_user, authorise
from mes.services.esign import AppliedSignature, Credentials, sign_record, valid_signatures
from mes.services.ids import new_id
from mes.settings import check_site_code
from mes.store import recipes as store
from mes.store.models import InstalledRecipe, RecipePublication
from mes.store.models import RecipeVersion as RecipeVersion  # the versions it returns
from mes.store.uow import UnitOfWork

RECORD_TYPE = "recipe-version"
INSTALLED_RECORD_TYPE = "installed-recipe"


def version_record(version: RecipeVersion) -> dict[str, Any]:
    """What a lifecycle signature is bound to: the version's identity and content hash."""
    return {
        "type": RECORD_TYPE,
        "recipe_code": version.recipe_code,
        "version": version.version,
        "content_hash": version.content_hash,
    }


def compiled_of(version: RecipeVersion | InstalledRecipe) -> dict[str, Any]:
    """The compiled recipe stored with a version."""
    return json.loads(version.compiled)


def label(version: RecipeVersion | InstalledRecipe) -> str:
    """'CART-CD19-FRESH v3' — how people name a version."""
    return f"{version.recipe_code} v{version.version}"


def _require_role(uow: UnitOfWork, role: str, what: str) -> None:
    if uow.site.role != role:
        raise ConfigurationError(
            f"{what} is done at the {role}; this site ({uow.site.code}) is a {uow.site.role}.",
            what_to_do=f"Run it at the {role}.",
        )


# --- hub: drafts ----------------------------------------------------------------------


def import_recipe(
    uow: UnitOfWork, ctx: Context, text: str | bytes, source_name: str
) -> RecipeVersion:
    """Create a draft version from a recipe file (or replace a draft of the same version).

    Refused with every problem listed when the file is not valid; refused when the version
    number is taken by a version that left draft (its content can no longer change) or is
    lower than an existing version of the recipe.
    """
    actor = authorise(uow, ctx, Permission.IMPORT_RECIPES)
    _require_role(uow, "hub", "Importing master recipes")
    compiled = load_recipe(text, source_name)
    source = text.decode("utf-8") if isinstance(text, bytes) else text
    code, number = compiled.recipe_code, compiled.version
    existing = store.numbered_version(uow.session, code, number, lock=True)
    if existing is not None:
        return _replace_draft(uow, ctx, actor, existing, compiled, source, source_name)
    newest = store.newest_number(uow.session, code)
    if newest is not None and number < newest:
        raise RecipeVersionExists(
            f"{code} already has version {newest}; version numbers only go up.",
            what_to_do=f"Number the new version {newest + 1} or higher.",
        )
    version = RecipeVersion(
        id=new_id(),
        **_content(compiled, source, source_name),
        status=VersionState.DRAFT.value,
        created_at=ctx.at,
        created_by=ctx.user_id,
        status_changed_at=ctx.at,
    )
    uow.add(version)
    uow.flush()
    record_entry(
        uow,
        ctx,
        actor,
        "recipe version imported",
        RECORD_TYPE,
        version.id,
        new={
            "recipe_code": code,
            "version": number,
            "title": compiled.title,
            "content_hash": compiled.content_hash,
            "status": VersionState.DRAFT.value,
            "source": source_name,
        },
        reason=compiled.data["change_reason"],
    )
    uow.commit()
    return version


def _content(compiled: CompiledRecipe, source: str, source_name: str) -> dict[str, Any]:
    data = compiled.data
    return {
        "recipe_code": compiled.recipe_code,
        "version": compiled.version,
        "title": compiled.title,
        "product_code": data["product"]["code"],
        "product_name": data["product"]["name"],
        "modality": data["product"]["modality"],
        "change_reason": data["change_reason"],
        "content_hash": compiled.content_hash,
        "compiled": compiled.canonical.decode("utf-8"),
        "source_name": source_name[:200],
        "source_text": source,
    }


def _replace_draft(
    uow: UnitOfWork,
    ctx: Context,
    actor: Actor,
    existing: RecipeVersion,
    compiled: CompiledRecipe,
    source: str,
    source_name: str,
) -> RecipeVersion:
    if existing.content_hash == compiled.content_hash:
        if existing.status == VersionState.DRAFT.value and existing.source_text != source:
            pass  # same content, different layout: keep the new text for authors to read
        else:
            return existing  # importing the same file again changes nothing
    if existing.status != VersionState.DRAFT.value:
        raise RecipeVersionExists(
            f"{label(existing)} is {STATE_TITLES[VersionState(existing.status)].lower()}: its "
            "content can no longer change.",
            what_to_do="Give the changed recipe a new version number and a change reason.",
        )
    old_hash = existing.content_hash
    for name, value in _content(compiled, source, source_name).items():
        setattr(existing, name, value)
    record_entry(
        uow,
        ctx,
        actor,
        "recipe draft replaced",
        RECORD_TYPE,
        existing.id,
        old={"content_hash": old_hash},
        new={"content_hash": compiled.content_hash, "source": source_name},
        reason=compiled.data["change_reason"],
    )
    uow.commit()
    return existing


# --- hub: lifecycle ---------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """What a lifecycle step did: the new state, the signature, versions it superseded."""

    state: VersionState
    signature: AppliedSignature
    superseded: tuple[str, ...] = ()


def _model(version: RecipeVersion) -> VersionModel:
    return VersionModel(
        recipe_code=version.recipe_code,
        version=version.version,
        state=version.status,
        author=version.authored_by,
        reviewer=version.reviewed_by,
        approver=version.approved_by,
        effective_from=version.effective_from,
    )


def site_today(uow: UnitOfWork, ctx: Context) -> date:
    """Today's date at the site (effective dates are site dates)."""
    return ctx.at.astimezone(ZoneInfo(uow.site.time_zone)).date()


def sign_step(
    uow: UnitOfWork,
    ctx: Context,
    version_id: str,
    step: Step,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    effective_from: date | None = None,
    reason: str | None = None,
) -> StepResult:
    """Apply one signed lifecycle step to a version (guards first, then the signature)."""
    authorise(uow, ctx, Permission.READ_RECIPES)
    _require_role(uow, "hub", "Approving master recipes")
    if step not in lifecycle.STEP_RULES:
        raise LifecycleStepRefused(f"'{step.value}' is not a step anyone signs.")
    version = _locked_version(uow, version_id)
    model = _model(version)
    others: list[RecipeVersion] = []
    context: dict[str, Any] = {"signer": ctx.user_id}
    if step is Step.MAKE_EFFECTIVE:
        if effective_from is None:
            raise InvalidInput(
                "Making a version effective needs an effective date.",
                what_to_do="Give the date from which it may be used.",
            )
        others = store.effective_siblings(uow.session, version)
        model.newest_effective_version = max((o.version for o in others), default=None)
        context.update(effective_from=effective_from, today=site_today(uow, ctx))
    if step is Step.RETIRE:
        reason = free_text(reason, "The reason")  # refused when too long, never cut
        context["reason"] = reason
    old_state = version.status
    model.fire(step, **context)
    rule = lifecycle.STEP_RULES[step]
    signature = sign_record(
        uow,
        ctx,
        record_type=RECORD_TYPE,
        record_id=version.id,
        record=version_record(version),
        meaning=rule.meaning,
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
        signer_roles=[r.value for r in rule.roles],
    )
    version.status = model.state
    version.authored_by = model.author
    version.reviewed_by = model.reviewer
    version.approved_by = model.approver
    version.effective_from = model.effective_from
    if model.state != old_state:
        version.status_changed_at = ctx.at
    if step is Step.RETIRE:
        version.status_reason = reason or ""
    actor = Actor(
        user_id=signature.manifestation.signer_id,
        username=signature.manifestation.username,
        name=signature.manifestation.printed_name,
    )
    new: dict[str, Any] = {"status": model.state, "signature_entry": signature.entry_seq}
    if step is Step.MAKE_EFFECTIVE:
        new["effective_from"] = effective_from.isoformat() if effective_from else None
    record_entry(
        uow,
        ctx,
        actor,
        f"recipe version {_ACTION[step]}",
        RECORD_TYPE,
        version.id,
        old={"status": old_state},
        new=new,
        reason=(reason or "").strip() or None,
    )
    superseded = []
    for other in others:
        if other.version < version.version:
            other_model = _model(other)
            other_model.fire(Step.SUPERSEDE)
            other.status = other_model.state
            other.status_changed_at = ctx.at
            other.status_reason = f"superseded by {label(version)}"
            record_entry(
                uow,
                ctx,
                actor,
                "recipe version superseded",
                RECORD_TYPE,
                other.id,
                old={"status": VersionState.EFFECTIVE.value},
                new={"status": VersionState.SUPERSEDED.value, "superseded_by": version.id},
                reason=f"{label(version)} became effective",
            )
            superseded.append(other.id)
    uow.commit()
    return StepResult(VersionState(version.status), signature, tuple(superseded))


_ACTION = {
    Step.SUBMIT: "submitted for review",
    Step.REVIEW: "reviewed",
    Step.APPROVE: "approved",
    Step.MAKE_EFFECTIVE: "made effective",
    Step.RETIRE: "retired",
}


def _locked_version(uow: UnitOfWork, version_id: str) -> RecipeVersion:
    version = store.version(uow.session, version_id, lock=True)
    if version is None:
        raise NotFound(f"There is no recipe version {version_id!r}.")
    return version


# --- hub: reading -------------------------------------------------------------------------


def list_versions(uow: UnitOfWork, ctx: Context) -> list[RecipeVersion]:
    """Every version, grouped by recipe code, newest version first."""
    authorise(uow, ctx, Permission.READ_RECIPES)
    return store.all_versions(uow.session)


def get_version(uow: UnitOfWork, ctx: Context, version_id: str) -> RecipeVersion:
    """One version by its ID."""
    authorise(uow, ctx, Permission.READ_RECIPES)
    version = store.version(uow.session, version_id)
    if version is None:
        raise NotFound(
            f"There is no recipe version {version_id!r}.", what_to_do="Pick one from the list."
        )
    return version


def versions_of(uow: UnitOfWork, ctx: Context, recipe_code: str) -> list[RecipeVersion]:
    """Every version of one recipe, newest first."""
    authorise(uow, ctx, Permission.READ_RECIPES)
    return store.versions_of(uow.session, recipe_code)


def signable_steps(uow: UnitOfWork, ctx: Context, version: RecipeVersion) -> list[Step]:
    """The lifecycle steps the logged-in user may sign on ``version`` now (for the page)."""
    if ctx.user_id is None:
        return []
    user = acting_user(uow, ctx)
    model = _model(version)
    today = site_today(uow, ctx)
    return [
        step
        for step in lifecycle.steps_from(version.status)
        if lifecycle.may_sign(model, step, user.id, user.role_names, today)
    ]


def batchml_export(uow: UnitOfWork, ctx: Context, version: RecipeVersion) -> bytes:
    """The version as B2MML BatchML: status, effectivity (start of the site's day), approvals."""
    authorise(uow, ctx, Permission.READ_RECIPES)
    zone = ZoneInfo(uow.site.time_zone)
    signatures = valid_signatures(uow, RECORD_TYPE, version.id, version_record(version))
    effective = (
        datetime.combine(version.effective_from, time.min, zone).isoformat()
        if version.effective_from
        else None
    )
    return master_recipe_batchml(
        compiled_of(version),
        status=STATE_TITLES[VersionState(version.status)],
        effective_from=effective,
        approvals=[
            (f"{s.printed_name} ({s.username}), {s.meaning}", parse_utc_text(s.at).isoformat())
            for s in signatures
        ],
        version_date=as_utc(version.created_at).isoformat(),
    )


def find_version(uow: UnitOfWork, ctx: Context, reference: str) -> RecipeVersion:
    """A version by 'CODE@N' (or 'CODE@latest') or by its ID."""
    authorise(uow, ctx, Permission.READ_RECIPES)
    code, _, number = reference.strip().partition("@")
    if not number:
        return get_version(uow, ctx, reference.strip())
    if number == "latest":
        version = store.latest_version(uow.session, code.upper())
    else:
        if not number.isdigit():
            raise InvalidInput(
                f"'{reference}' does not name a version.",
                what_to_do="Write CODE@NUMBER, e.g. CART-CD19-FRESH@2.",
            )
        version = store.numbered_version(uow.session, code.upper(), int(number))
    if version is None:
        raise NotFound(
            f"There is no recipe version {reference}.",
            what_to_do="'mes recipe list' shows the versions.",
        )
    return version


def publications_of(uow: UnitOfWork, version_id: str) -> list[RecipePublication]:
    """Every bundle published for a version."""
    return store.publications_of(uow.session, version_id)


# --- hub: publishing --------------------------------------------------------------------


def publish(
    uow: UnitOfWork, ctx: Context, version_id: str, sites: Iterable[str]
) -> tuple[str, RecipePublication]:
    """A bundle of an effective version for ``sites``, signed with the hub key (JWS)."""
    actor = authorise(uow, ctx, Permission.PUBLISH_RECIPES)
    _require_role(uow, "hub", "Publishing recipe bundles")
    codes = sorted({check_site_code(s.strip().upper()) for s in sites if s.strip()})
    if not codes:
        raise InvalidInput(
            "A bundle needs at least one target site.", what_to_do="Name the site codes."
        )
    version = get_version(uow, ctx, version_id)
    if version.status != VersionState.EFFECTIVE.value or version.effective_from is None:
        raise LifecycleStepRefused(
            f"{label(version)} is {STATE_TITLES[VersionState(version.status)].lower()}; only "
            "effective versions are published to sites.",
            what_to_do="Publish the effective version of the recipe.",
        )
    token = make_bundle(
        compiled_of(version),
        effective_from=version.effective_from,
        sites=codes,
        issuer=uow.site.code,
        issued_at=ctx.at,
        key=uow.site.key,
    )
    bundle = open_bundle(token, uow.site.key.public, codes[0])
    publication = RecipePublication(
        id=new_id(),
        version_id=version.id,
        sites=codes,
        bundle_hash=bundle.bundle_hash,
        published_at=ctx.at,
        published_by=ctx.user_id,
        token=token,
    )
    uow.add(publication)
    record_entry(
        uow,
        ctx,
        actor,
        "recipe version published",
        RECORD_TYPE,
        version.id,
        new={
            "sites": codes,
            "bundle_hash": bundle.bundle_hash,
            "content_hash": version.content_hash,
        },
    )
    uow.commit()
    return token, publication


# --- spoke: installing ------------------------------------------------------------------


@dataclass(frozen=True)
class Installation:
    """The outcome of installing a bundle: the installed version, and whether it is new."""

    recipe: InstalledRecipe
    newly_installed: bool


def install_bundle(
    uow: UnitOfWork, ctx: Context, data: bytes | str, source_name: str
) -> Installation:
    """Verify a hub bundle and install its recipe version at this spoke.

    Refused (and the refusal recorded in the audit trail with its reason) when the bundle was
    altered, is signed by another key, is for another site, or a newer version of the recipe
    is installed. Installing the same bundle again changes nothing.
    """
    actor = authorise(uow, ctx, Permission.INSTALL_RECIPES)
    _require_role(uow, "spoke", "Installing recipe bundles")
    try:
        bundle = _verified(uow, data)
        return _install(uow, ctx, actor, bundle)
    except BundleRefused as refusal:
        uow.rollback()
        record_entry(
            uow,
            ctx,
            actor,
            "recipe bundle refused",
            "recipe-bundle",
            source_name[:200],
            kind=EntryKind.SECURITY,
            new={"refusal": type(refusal).__name__},
            reason=refusal.message,
        )
        uow.commit()
        raise


def _verified(uow: UnitOfWork, data: bytes | str) -> Bundle:
    if uow.site.hub_key is None:
        raise BundleUnknownKey(
            "This spoke has no pinned hub key, so it cannot trust any bundle.",
            what_to_do="Pin the hub's public key (mes init --role spoke --hub-key FILE).",
        )
    return open_bundle(data, uow.site.hub_key, uow.site.code)


def _install(uow: UnitOfWork, ctx: Context, actor: Actor, bundle: Bundle) -> Installation:
    same = store.installed_version(uow.session, bundle.recipe_code, bundle.version)
    if same is not None:
        if same.content_hash != bundle.content_hash:
            raise BundleRefused(
                f"{bundle.recipe_code} v{bundle.version} is already installed with other content "
                f"({same.content_hash[:12]}…, the bundle has {bundle.content_hash[:12]}…).",
                what_to_do="Report this to the hub: one version number must have one content.",
            )
        return Installation(same, newly_installed=False)
    newer = store.newest_installed_number(uow.session, bundle.recipe_code)
    if newer is not None and newer > bundle.version:
        raise BundleSuperseded(
            f"{bundle.recipe_code} v{bundle.version} is superseded: v{newer} is already "
            "installed here.",
            what_to_do="Nothing to do; batches use the newest installed effective version.",
        )
    installed = InstalledRecipe(
        id=new_id(),
        recipe_code=bundle.recipe_code,
        version=bundle.version,
        title=str(bundle.recipe.get("title", ""))[:200],
        content_hash=bundle.content_hash,
        compiled=CompiledRecipe(bundle.recipe).canonical.decode("utf-8"),
        effective_from=bundle.effective_from,
        bundle=bundle.token,
        bundle_hash=bundle.bundle_hash,
        hub_key_id=bundle.key_id,
        issued_at=bundle.issued_at,
        installed_at=ctx.at,
        installed_by=ctx.user_id,
    )
    uow.add(installed)
    uow.flush()
    record_entry(
        uow,
        ctx,
        actor,
        "recipe version installed",
        INSTALLED_RECORD_TYPE,
        installed.id,
        new={
            "recipe_code": bundle.recipe_code,
            "version": bundle.version,
            "content_hash": bundle.content_hash,
            "effective_from": bundle.effective_from.isoformat(),
            "issuer": bundle.issuer,
            "hub_key_id": bundle.key_id,
            "bundle_hash": bundle.bundle_hash,
        },
    )
    uow.commit()
    return Installation(installed, newly_installed=True)


def installed_recipes(uow: UnitOfWork, ctx: Context) -> list[InstalledRecipe]:
    """Every installed version, by recipe, newest first."""
    authorise(uow, ctx, Permission.READ_RECIPES)
    return store.all_installed(uow.session)


def get_installed(uow: UnitOfWork, ctx: Context, installed_id: str) -> InstalledRecipe:
    """One installed version by its ID."""
    authorise(uow, ctx, Permission.READ_RECIPES)
    installed = store.installed(uow.session, installed_id)
    if installed is None:
        raise NotFound(
            f"There is no installed recipe version {installed_id!r}.",
            what_to_do="Pick one from the list.",
        )
    return installed


def usable_version(uow: UnitOfWork, recipe_code: str, today: date) -> InstalledRecipe | None:
    """The version new batches of ``recipe_code`` take: newest installed, effective by ``today``."""
    return store.usable_installed(uow.session, recipe_code, today)
