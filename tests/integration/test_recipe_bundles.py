"""Hub publishes effective versions as signed bundles; a spoke installs only what its pinned hub
key signed for it, refuses everything else with the reason, and records each refusal."""

from __future__ import annotations

import pytest
from integration_helpers import attest, audit_entries, count_rows
from recipe_helpers import TODAY, recipe_text, sign
from support import user_ctx

from mes.core.errors import (
    BundleSuperseded,
    BundleTampered,
    BundleUnknownKey,
    BundleUnreadable,
    BundleWrongSite,
    ConfigurationError,
    LifecycleStepRefused,
    NotAuthorised,
)
from mes.core.keys import SiteKey
from mes.core.lifecycle import Step
from mes.services import recipes
from mes.store.models import InstalledRecipe, RecipePublication


@pytest.fixture
def effective(make_uow, create_user):
    """``effective(version)`` → the ID of an effective MINI-TEST version at the hub."""
    ids = {}
    for username, roles in {"aaron": ["author"], "sam": ["supervisor"], "quinn": ["qa"]}.items():
        ids[username] = create_user(username, roles=roles)
        attest(make_uow, ids[username], username)

    def factory(version: int = 1) -> str:
        with make_uow() as uow:
            version_id = recipes.import_recipe(
                uow,
                user_ctx(ids["aaron"]),
                recipe_text(version, viability_action=80 - version),
                "mini.yaml",
            ).id
        sign(make_uow, ids["aaron"], "aaron", version_id, Step.SUBMIT)
        sign(make_uow, ids["sam"], "sam", version_id, Step.REVIEW)
        sign(make_uow, ids["quinn"], "quinn", version_id, Step.APPROVE)
        sign(make_uow, ids["quinn"], "quinn", version_id, Step.MAKE_EFFECTIVE, effective_from=TODAY)
        return version_id

    factory.ids = ids  # type: ignore[attr-defined]
    return factory


def publish(make_uow, cli_ctx, version_id, sites=("SPK1",)):
    with make_uow() as uow:
        token, _ = recipes.publish(uow, cli_ctx, version_id, sites)
        return token


def install(make_uow, site_key, cli_ctx, token, *, hub_key="pinned"):
    key = site_key.public if hub_key == "pinned" else hub_key
    with make_uow("spoke", hub_key=key) as uow:
        return recipes.install_bundle(uow, cli_ctx, token, "bundle.jws")


def test_an_effective_version_installs_once_and_reinstalling_changes_nothing(
    make_uow, site_key, cli_ctx, effective
):
    token = publish(make_uow, cli_ctx, effective(), ("SPK1", "spk2"))
    first = install(make_uow, site_key, cli_ctx, token)
    assert first.newly_installed
    assert (first.recipe.recipe_code, first.recipe.version) == ("MINI-TEST", 1)
    assert first.recipe.effective_from == TODAY
    again = install(make_uow, site_key, cli_ctx, token)
    assert not again.newly_installed
    assert count_rows(make_uow, InstalledRecipe) == 1
    with make_uow() as uow:
        publication = uow.session.query(RecipePublication).one()
        assert publication.sites == ["SPK1", "SPK2"]
    with make_uow("spoke") as uow:
        assert recipes.usable_version(uow, "MINI-TEST", TODAY).version == 1
        assert recipes.usable_version(uow, "MINI-TEST", TODAY.replace(day=20)) is None
    actions = [e.action for e in audit_entries(make_uow)]
    assert actions.count("recipe version installed") == 1
    assert actions.count("recipe version published") == 1


def refused(make_uow, site_key, cli_ctx, token, error_class, **kwargs):
    before = count_rows(make_uow, InstalledRecipe)
    with pytest.raises(error_class) as caught:
        install(make_uow, site_key, cli_ctx, token, **kwargs)
    assert count_rows(make_uow, InstalledRecipe) == before
    entry = audit_entries(make_uow)[-1]
    assert (entry.kind, entry.action, entry.reason) == (
        "security",
        "recipe bundle refused",
        caught.value.message,
    )
    return str(caught.value)


def flip(token: str, index: int) -> str:
    return token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]


def test_a_tampered_bundle_is_refused(make_uow, site_key, cli_ctx, effective):
    token = publish(make_uow, cli_ctx, effective())
    middle = token.index(".") + (token.rindex(".") - token.index(".")) // 2
    message = refused(make_uow, site_key, cli_ctx, flip(token, middle), BundleTampered)
    assert message.startswith("The bundle's signature does not verify")
    refused(make_uow, site_key, cli_ctx, flip(token, len(token) - 10), BundleTampered)


def test_a_bundle_signed_by_another_key_is_refused(make_uow, site_key, cli_ctx, effective):
    token = publish(make_uow, cli_ctx, effective())
    stranger = SiteKey.generate().public
    message = refused(make_uow, site_key, cli_ctx, token, BundleUnknownKey, hub_key=stranger)
    assert f"not the hub key this site trusts ({stranger.key_id})" in message
    message = refused(make_uow, site_key, cli_ctx, token, BundleUnknownKey, hub_key=None)
    assert message.startswith("This spoke has no pinned hub key")


def test_another_sites_bundle_is_refused(make_uow, site_key, cli_ctx, effective):
    token = publish(make_uow, cli_ctx, effective(), ("LDN1", "MAD2"))
    message = refused(make_uow, site_key, cli_ctx, token, BundleWrongSite)
    assert message.startswith("The bundle is for LDN1, MAD2, not for this site (SPK1).")


def test_a_superseded_version_is_refused(make_uow, site_key, cli_ctx, effective):
    old_token = publish(make_uow, cli_ctx, effective(1))
    new_token = publish(make_uow, cli_ctx, effective(2))
    install(make_uow, site_key, cli_ctx, new_token)
    message = refused(make_uow, site_key, cli_ctx, old_token, BundleSuperseded)
    assert message.startswith("MINI-TEST v1 is superseded: v2 is already installed here.")


def test_a_file_that_is_not_a_bundle_is_refused(make_uow, site_key, cli_ctx, effective):
    for junk in (b"", b"\xff\xfe", b"a.b.c", b"not a bundle at all"):
        message = refused(make_uow, site_key, cli_ctx, junk, BundleUnreadable)
        assert "not a recipe bundle" in message


def test_only_effective_versions_are_published_and_only_by_qa_at_the_hub(
    make_uow, site_key, cli_ctx, effective, create_user
):
    version_id = effective()
    with make_uow() as uow:
        draft = recipes.import_recipe(uow, cli_ctx, recipe_text(2), "mini.yaml")
    with pytest.raises(LifecycleStepRefused) as caught:
        publish(make_uow, cli_ctx, draft.id)
    assert str(caught.value) == (
        "MINI-TEST v2 is draft; only effective versions are published to sites. "
        "Publish the effective version of the recipe."
    )
    with make_uow() as uow, pytest.raises(NotAuthorised):
        recipes.publish(uow, user_ctx(effective.ids["aaron"]), version_id, ["SPK1"])
    with make_uow("spoke") as uow, pytest.raises(ConfigurationError):
        recipes.publish(uow, cli_ctx, version_id, ["SPK1"])
    assert count_rows(make_uow, RecipePublication) == 0
