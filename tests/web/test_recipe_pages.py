"""Recipe pages: upload drafts, read the master batch record, sign its lifecycle in the dialog,
compare versions, download BatchML/YAML/bundles at the hub, and install bundles at a spoke
(21 CFR 11.50, 11.70, 11.200; Annex 11 §10)."""

from __future__ import annotations

import html
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from support import PASSWORD, user_ctx
from web_helpers import alerts, client_of, location, login, logout, post_form, text

from mes import __version__
from mes.core.keys import SiteKey
from mes.core.lifecycle import Step
from mes.core.passwords import PasswordPolicy
from mes.core.recipe import RecipeInvalid, load_recipe
from mes.core.site import Site
from mes.services import recipes
from mes.services.esign import Credentials, acknowledge_accountability
from mes.store.models import AuditEntry, InstalledRecipe, RecipeVersion

WRONG = "not-the-right-password"


def recipe_text(
    version: int = 1, *, viability_action: int = 80, instructions: str = "Scan the **bag** label."
) -> str:
    """A small recipe using every part the version page shows."""
    return f"""\
format: gmp-mes/recipe/1
recipe_code: MINI-TEST
version: {version}
title: Minimal test recipe
product: {{code: MINI, name: Mini product, modality: autologous_cell}}
expected_duration: 2 d
change_reason: Version {version} for the page tests.
chain_of_identity:
  - {{id: din, label: Donation identification number, kind: isbt128_din}}
unit_procedures:
  - id: receipt
    name: Receipt
    operations:
      - id: receive
        name: Receive the bag
        phases:
          - id: scan_bag
            name: Scan the bag
            instructions: {json.dumps(instructions)}
            verify: supervisor
            identity_checks:
              - {{id: bag_din, label: Bag DIN, matches: din}}
            inputs:
              - {{id: bag_intact, label: Bag intact, type: yes_no}}
              - {{id: viability, label: Viability, type: number, unit: "%", decimals: 1, target: 95, alert_low: 85, action_low: {viability_action}}}
              - {{id: volume, label: Volume, type: number, unit: mL}}
            calculations:
              - {{id: volume_l, label: Volume in litres, expression: volume / 1000, unit: L, action_high: 1}}
          - id: activate
            name: Activate T cells
            instructions: Add the activation reagent.
            materials:
              - {{code: MAT-TRANSACT, name: TransAct, quantity: 1.5, unit: mL}}
            equipment:
              - {{class: biosafety_cabinet, label: Cabinet in suite A}}
      - id: follow_up
        name: Follow up
        ordering: any_order
        phases:
          - id: report_damage
            name: Report the damaged bag
            perform: supervisor
            verify: qa
            when: {{input: scan_bag.bag_intact, equals: false}}
            instructions: Open a deviation.
          - id: transduce
            name: Transduce
            instructions: Add the vector.
            timers: [{{after: activate, min: 20 h, max: 28 h}}]
"""


def site_today() -> str:
    """Today at the test site (Europe/London), as the date input sends it."""
    return datetime.now(ZoneInfo("Europe/London")).date().isoformat()


@pytest.fixture
def signer(create_user, make_uow):
    """``signer("quinn", ["qa"])``: a user who has acknowledged the accountability statement
    (outside any web session, so the first signing in the browser needs the user ID)."""

    def make(username: str, roles: list[str], role: str = "hub") -> str:
        user_id = create_user(username, roles=roles, role=role)
        with make_uow(role) as uow:
            acknowledge_accountability(
                uow,
                user_ctx(user_id),
                Credentials(PASSWORD, username),
                first_signing_in_session=True,
            )
        return user_id

    return make


@pytest.fixture
def state_of(make_uow):
    """``state_of(version_id)``: the version's lifecycle state as stored now."""

    def read(version_id: str) -> str:
        with make_uow() as uow:
            return uow.session.get(RecipeVersion, version_id).status

    return read


def upload(client, content: str | bytes, name: str = "mini.yaml", page: str = "/recipes/upload"):
    data = content.encode("utf-8") if isinstance(content, str) else content
    return post_form(client, "/recipes/upload", {"recipe": (io.BytesIO(data), name)}, page=page)


def uploaded(client, content: str, name: str = "mini.yaml") -> str:
    """Upload a valid recipe; the new version's ID."""
    response = upload(client, content, name)
    assert response.status_code == 303, text(response)
    return location(response).rsplit("/", 1)[1]


def sign(client, version_id: str, step: str, password: str = PASSWORD, **fields: str):
    """Submit the signature dialog of a lifecycle step on the version page."""
    data = {"esign_password": password, **fields}
    return post_form(
        client, f"/recipes/{version_id}/sign/{step}", data, page=f"/recipes/{version_id}"
    )


def as_user(client, username: str) -> None:
    logout(client)
    assert login(client, username).status_code == 302


def manifestations(page: str) -> list[str]:
    found = re.findall(r'<span class="manifestation">(.*?)</span>', page, re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", m)).split()) for m in found]


def status_pill(page: str) -> str:
    match = re.search(r'<span class="pill status[^"]*"[^>]*>(.*?)</span>', page, re.S)
    assert match, "no status pill"
    return match.group(1).strip()


# --- upload and reading --------------------------------------------------------------------


def test_an_author_uploads_a_recipe_and_reads_it_as_the_master_batch_record(
    client, create_user, audit_entries
):
    create_user("aaron", roles=["author"], full_name="Aaron Author")
    login(client, "aaron")
    recipes_page = text(client.get("/recipes"))
    assert "Upload a recipe" in recipes_page
    assert "No recipes yet." in recipes_page

    response = upload(client, recipe_text())
    assert response.status_code == 303
    version_id = location(response).rsplit("/", 1)[1]
    page = text(client.get(f"/recipes/{version_id}"))
    assert "Uploaded MINI-TEST v1; it is draft." in page
    assert status_pill(page) == "Draft"
    assert "MINI-TEST v1 — Minimal test recipe" in page
    assert "MINI — Mini product" in page
    assert "autologous cell therapy" in page
    assert load_recipe(recipe_text(), "mini.yaml").content_hash in page
    assert "Version 1 for the page tests." in page
    assert "Nobody has signed this version yet." in page
    assert "Sign as author and submit for review" in page
    for phase in ("Scan the bag", "Activate T cells", "Report the damaged bag", "Transduce"):
        assert phase in page
    assert "<p>Scan the <strong>bag</strong> label.</p>" in page
    assert "Phases in this order" in page
    assert "Phases in any order" in page
    assert "Performed by operator · verified by supervisor" in page
    assert "Performed by supervisor · verified by QA" in page
    assert "Only when &#39;Bag intact&#39; is No" in page
    assert "Start at least 20 h and at most 28 h after &#39;Activate T cells&#39;" in page
    assert "Scan &#39;Bag DIN&#39; — must match Donation identification number" in page
    assert "Expected duration</dt><dd>2 d</dd>" in page
    viability = re.search(r"<tr>\s*<td>Viability.*?</tr>", page, re.S).group(0)
    cells = [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", viability, re.S)]
    assert cells[1:] == ["number, 1 decimal", "%", "95", "85", "—", "80", "—", "yes"]
    assert "<code>volume / 1000</code>" in page
    assert '<code>MAT-TRANSACT</code></td><td>TransAct</td><td class="num">1.5 mL</td>' in page
    assert "<code>biosafety_cabinet</code> — Cabinet in suite A" in page
    assert "Compare with version" not in page  # the first version has nothing to compare with
    assert f"GMP-in-a-box MES {__version__} · times in Europe/London" in page

    listing = text(client.get("/recipes"))
    assert f'href="/recipes/{version_id}">v1</a>' in listing
    assert ">Draft</span>" in listing
    (entry,) = audit_entries(action="recipe version imported")
    assert entry.record_id == version_id


def test_instructions_are_markdown_without_scripts_or_javascript_links(client, create_user):
    create_user("aaron", roles=["author"])
    login(client, "aaron")
    instructions = (
        "<script>alert(1)</script>\n\n[x](javascript:alert(1)) and "
        "[the SOP](https://sop.example/cart-12), <javascript:alert(2)>, "
        '<a href="javascript:alert(3)">a</a> [y](data:text/html;base64,PHNjcmlwdD4=) '
        "![pixel](https://tracker.example/p.png)"
    )
    version_id = uploaded(client, recipe_text(instructions=instructions))
    page = text(client.get(f"/recipes/{version_id}"))
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page.lower()
    assert "[x](javascript:alert(1))" in page
    assert '<a href="https://sop.example/cart-12" rel="noopener noreferrer">the SOP</a>' in page
    assert "&lt;a href=&quot;javascript:alert(3)&quot;&gt;" in page
    assert 'href="data:' not in page
    assert "<img" not in page  # nothing is fetched from elsewhere while the record is read


def test_an_invalid_recipe_lists_every_problem_and_stores_nothing(client, create_user, make_uow):
    create_user("aaron", roles=["author"])
    login(client, "aaron")
    broken = (
        recipe_text()
        .replace("action_low: 80", "action_low: 90")
        .replace("after: activate", "after: nowhere")
        .replace("matches: din", "matches: dna")
    )
    with pytest.raises(RecipeInvalid) as expected:
        load_recipe(broken, "broken.yaml")
    assert len(expected.value.lines()) >= 3

    response = upload(client, broken, "broken.yaml")
    assert response.status_code == 422
    page = text(response)
    listed = [html.unescape(line) for line in re.findall(r"<li><code>(.*?)</code></li>", page)]
    assert listed == expected.value.lines()
    assert all(re.match(r"broken\.yaml:\d+:\d+ \S+: ", line) for line in listed)
    assert f"{len(listed)} problems in broken.yaml — nothing was stored" in page
    with make_uow() as uow:
        assert uow.session.execute(select(func.count()).select_from(RecipeVersion)).scalar() == 0

    not_yaml = upload(client, "x: 1", "recipe.txt")
    assert not_yaml.status_code == 400
    assert "A recipe is a .yaml file." in text(not_yaml)


def older_form(text: str) -> str:
    """``text`` with its chain of identity and inputs in the older mapping form."""
    text = text.replace("  - {id: din, label:", "  din: {label:")
    for name in ("bag_intact", "viability", "volume"):
        text = text.replace(
            f"              - {{id: {name}, label:", f"              {name}: {{label:"
        )
    return text


def test_an_upload_in_the_older_mapping_form_is_stored_and_its_warnings_are_shown(
    client, create_user, make_uow
):
    create_user("aaron", roles=["author"])
    login(client, "aaron")
    older = older_form(recipe_text())
    warnings = load_recipe(older, "older.yaml").warnings
    assert len(warnings) == 2
    response = upload(client, older, "older.yaml")
    assert response.status_code == 303
    page = text(client.get(location(response)))
    assert "Uploaded MINI-TEST v1; it is draft." in page
    shown = [html.unescape(w) for w in re.findall(r'<p class="flash warning"[^>]*>(.*?)</p>', page)]
    assert shown == list(warnings)
    assert shown[0].startswith("older.yaml:8:1 chain_of_identity: warning: chain_of_identity is ")
    assert load_recipe(older, "x").content_hash == load_recipe(recipe_text(), "x").content_hash

    broken = older_form(recipe_text(2)).replace("after: activate", "after: nowhere")
    refused = upload(client, broken, "broken.yaml")
    assert refused.status_code == 422
    page = text(refused)
    assert "1 problem in broken.yaml — nothing was stored" in page
    listed = re.search(r'<ul class="warnings problems">(.*?)</ul>', page, re.S).group(1)
    assert [html.unescape(w) for w in re.findall(r"<code>(.*?)</code>", listed)] == list(
        load_recipe(older_form(recipe_text(2)), "broken.yaml").warnings
    )
    with make_uow() as uow:
        assert uow.session.execute(select(func.count()).select_from(RecipeVersion)).scalar() == 1


def test_an_operator_can_read_recipes_but_cannot_upload(client, create_user):
    create_user("aaron", roles=["author"])
    create_user("olivia", roles=["operator"])
    login(client, "aaron")
    version_id = uploaded(client, recipe_text())
    as_user(client, "olivia")
    assert "Upload a recipe" not in text(client.get("/recipes"))
    assert client.get("/recipes/upload").status_code == 403
    refused = upload(client, recipe_text(2), page="/recipes")
    assert refused.status_code == 403
    assert "You are not allowed to import recipe drafts." in text(refused)
    page = text(client.get(f"/recipes/{version_id}"))
    assert "Scan the bag" in page
    assert "What you can sign now" not in page  # operators sign no lifecycle step


def test_a_version_that_does_not_exist_is_a_404_page(client, create_user):
    create_user("olivia", roles=["operator"])
    login(client, "olivia")
    response = client.get("/recipes/no-such-version")
    assert response.status_code == 404
    assert "There is no recipe version &#39;no-such-version&#39;." in text(response)


# --- the signed lifecycle ------------------------------------------------------------------


def test_author_reviewer_and_qa_take_a_version_to_effective_with_their_signatures(
    client, signer, state_of
):
    signer("aaron", ["author"])
    signer("sam", ["supervisor"])
    signer("quinn", ["qa"])
    login(client, "aaron")
    version_id = uploaded(client, recipe_text())

    page = text(client.get(f"/recipes/{version_id}"))
    assert 'name="esign_username"' in page  # the first signing of the session asks for it
    without_user_id = sign(client, version_id, "submit")
    assert without_user_id.status_code == 400
    assert alerts(without_user_id) == [
        "The first signature of a session needs your user ID and password. "
        "Type your user ID as well as your password, or scan your badge and type your PIN."
    ]
    assert state_of(version_id) == "draft"
    submitted = sign(client, version_id, "submit", esign_username="aaron")
    assert submitted.status_code == 303
    assert location(submitted) == f"/recipes/{version_id}"
    page = text(client.get(f"/recipes/{version_id}"))
    assert "Signed: authored. The version is now in review." in page
    assert status_pill(page) == "In review"
    assert 'name="esign_username"' not in page  # later signings: the password only

    as_user(client, "sam")
    page = text(client.get(f"/recipes/{version_id}"))
    assert "Sign the technical review" in page
    assert "Sign the QA approval" not in page  # not a supervisor's step
    assert sign(client, version_id, "review", esign_username="sam").status_code == 303

    as_user(client, "quinn")
    assert sign(client, version_id, "approve", esign_username="quinn").status_code == 303
    assert state_of(version_id) == "approved"
    page = text(client.get(f"/recipes/{version_id}"))
    assert f'name="effective_from" required type="date" value="{site_today()}"' in page
    effective = sign(client, version_id, "make_effective", effective_from=site_today())
    assert effective.status_code == 303
    assert state_of(version_id) == "effective"

    page = text(client.get(f"/recipes/{version_id}"))
    assert "Signed: made effective. The version is now effective." in page
    assert status_pill(page) == f"Effective from {site_today()}"
    signed = manifestations(page)
    assert [s.split(" · ")[:2] for s in signed] == [
        ["Aaron Tester (aaron)", "Authored"],
        ["Sam Tester (sam)", "Reviewed"],
        ["Quinn Tester (quinn)", "Approved"],
        ["Quinn Tester (quinn)", "Made effective"],
    ]
    assert all(re.search(r" · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GMT|BST) · ", s) for s in signed)
    assert "Retire this version" in page
    assert "Publish to sites" in page


def test_the_author_cannot_approve_their_own_version(client, signer, state_of, audit_entries):
    signer("alex", ["author", "qa"])
    signer("sam", ["supervisor"])
    login(client, "alex")
    version_id = uploaded(client, recipe_text())
    assert sign(client, version_id, "submit", esign_username="alex").status_code == 303
    as_user(client, "sam")
    assert sign(client, version_id, "review", esign_username="sam").status_code == 303
    as_user(client, "alex")
    refused = sign(client, version_id, "approve", esign_username="alex")
    assert refused.status_code == 403
    assert alerts(refused) == [
        "The author of a recipe version cannot review or approve it. "
        "Ask another qualified person to sign."
    ]
    assert "Scan the bag" in text(refused)  # the version page, with the reason
    assert state_of(version_id) == "in_review"
    meanings = [e.new["meaning"] for e in audit_entries(kind="signature", record_id=version_id)]
    assert meanings == ["authored", "reviewed"]
    # The page offers the author no approval button in the first place (the guards are asked).
    page = text(client.get(f"/recipes/{version_id}"))
    assert "Sign the QA approval" not in page
    assert "Retire this version" in page


def test_the_page_offers_only_the_steps_the_user_may_sign_now(client, signer):
    signer("aaron", ["author"])
    signer("alma", ["author"])
    login(client, "aaron")
    version_id = uploaded(client, recipe_text())
    assert sign(client, version_id, "submit", esign_username="aaron").status_code == 303
    assert "Sign the technical review" not in text(client.get(f"/recipes/{version_id}"))
    as_user(client, "alma")
    assert "Sign the technical review" in text(client.get(f"/recipes/{version_id}"))


def test_a_wrong_password_signs_nothing(client, signer, state_of, audit_entries, user_row):
    signer("aaron", ["author"])
    login(client, "aaron")
    version_id = uploaded(client, recipe_text())
    refused = sign(client, version_id, "submit", password=WRONG, esign_username="aaron")
    assert refused.status_code == 401
    assert alerts(refused) == [
        "The user ID or password is wrong. Try again; 4 more failed attempts will lock the account."
    ]
    assert state_of(version_id) == "draft"
    assert audit_entries(kind="signature", record_id=version_id) == []
    assert user_row("aaron").failed_attempts == 1


def test_making_effective_needs_a_date_that_is_not_in_the_past(client, signer, state_of):
    signer("aaron", ["author"])
    signer("sam", ["supervisor"])
    signer("quinn", ["qa"])
    login(client, "aaron")
    version_id = uploaded(client, recipe_text())
    sign(client, version_id, "submit", esign_username="aaron")
    as_user(client, "sam")
    sign(client, version_id, "review", esign_username="sam")
    as_user(client, "quinn")
    sign(client, version_id, "approve", esign_username="quinn")
    refused = sign(client, version_id, "make_effective", effective_from="2020-01-01")
    assert refused.status_code == 409
    assert alerts(refused) == [
        "The effective date 2020-01-01 is in the past. "
        "Choose today or a later date; effectivity is never backdated."
    ]
    garbled = sign(client, version_id, "make_effective", effective_from="soon")
    assert garbled.status_code == 400
    assert alerts(garbled) == ["Effective from (site date): Not a valid date value."]
    assert state_of(version_id) == "approved"


def test_a_step_nobody_signs_is_not_found(client, signer):
    signer("quinn", ["qa"])
    signer("aaron", ["author"])
    login(client, "aaron")
    version_id = uploaded(client, recipe_text())
    assert sign(client, version_id, "supersede", esign_username="aaron").status_code == 404
    assert sign(client, version_id, "publish", esign_username="aaron").status_code == 404


# --- comparing and exporting ---------------------------------------------------------------


def test_the_diff_page_says_what_changed_between_two_versions(client, create_user):
    create_user("aaron", roles=["author"])
    login(client, "aaron")
    first = uploaded(client, recipe_text(1))
    second = uploaded(client, recipe_text(2, viability_action=75))
    page = text(client.get(f"/recipes/{second}"))
    assert f'href="/recipes/{second}/diff">Compare with version 1</a>' in page

    response = client.get(f"/recipes/{second}/diff")
    assert response.status_code == 200
    page = html.unescape(text(response))
    assert "<h1>MINI-TEST v1 → v2</h1>" in page
    assert "2 changes: 2 changed" in page
    assert (
        "Phase 'Scan the bag': input 'Viability': action low limit changed from 80 % to 75 %."
        in page
    )
    assert "Recipe: change reason changed from" in page
    assert '<span class="kind changed">changed</span>' in page
    assert "Unit procedure 'Receipt' › Operation 'Receive the bag' › Phase 'Scan the bag'" in page
    assert f'<option value="{first}" selected>Version 1 — Draft</option>' in page
    assert f"GMP-in-a-box MES {__version__} · times in Europe/London" in page

    same = html.unescape(text(client.get(f"/recipes/{second}/diff?against={second}")))
    assert "No changes" in same
    first_page = text(client.get(f"/recipes/{first}/diff"))
    assert "there is no earlier version to compare it with" in first_page
    assert client.get(f"/recipes/{second}/diff?against=nothing").status_code == 404


def test_batchml_and_the_yaml_source_download(client, create_user):
    create_user("aaron", roles=["author"])
    login(client, "aaron")
    source = recipe_text()
    version_id = uploaded(client, source)

    xml = client.get(f"/recipes/{version_id}/batchml")
    assert xml.status_code == 200
    assert xml.mimetype == "application/xml"
    assert xml.headers["Content-Disposition"] == "attachment; filename=MINI-TEST-v1.batchml.xml"
    root = ET.fromstring(xml.data)
    namespace = {"b": "http://www.mesa.org/xml/B2MML"}
    assert root.tag == "{http://www.mesa.org/xml/B2MML}BatchInformation"
    assert root.findtext("b:MasterRecipe/b:ID", namespaces=namespace) == "MINI-TEST"
    status = root.find("b:MasterRecipe/b:Header/b:Status", namespace)
    assert status.get("OtherValue") == "Draft"

    yaml = client.get(f"/recipes/{version_id}/source")
    assert yaml.status_code == 200
    assert yaml.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert yaml.headers["Content-Disposition"] == "attachment; filename=MINI-TEST-v1.yaml"
    assert yaml.get_data(as_text=True) == source


def test_the_recipe_schema_needs_no_login(hub):
    browser = client_of(hub)
    response = browser.get("/recipes/schema.json")
    assert response.status_code == 200
    assert response.mimetype == "application/schema+json"
    schema = response.get_json(force=True)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "unit_procedures" in schema["required"]
    assert location(browser.get("/recipes")).startswith("/login")


# --- publishing and installing -------------------------------------------------------------


@pytest.fixture
def effective_version(client, signer):
    """An effective MINI-TEST v1 made through the pages; the client is left logged in as QA."""
    signer("aaron", ["author"])
    signer("sam", ["supervisor"])
    signer("quinn", ["qa"])
    login(client, "aaron")
    version_id = uploaded(client, recipe_text())
    sign(client, version_id, "submit", esign_username="aaron")
    as_user(client, "sam")
    sign(client, version_id, "review", esign_username="sam")
    as_user(client, "quinn")
    sign(client, version_id, "approve", esign_username="quinn")
    assert (
        sign(client, version_id, "make_effective", effective_from=site_today()).status_code == 303
    )
    return version_id


def test_qa_publishes_an_effective_version_as_a_signed_bundle(client, effective_version):
    bundle = post_form(
        client,
        f"/recipes/{effective_version}/publish",
        {"sites": "SPK1, spk2"},
        page=f"/recipes/{effective_version}",
    )
    assert bundle.status_code == 200
    assert bundle.mimetype == "application/jose"
    assert bundle.headers["Content-Disposition"] == "attachment; filename=MINI-TEST-v1.jws"
    parts = bundle.get_data(as_text=True).strip().split(".")
    assert len(parts) == 3 and all(parts)
    page = text(client.get(f"/recipes/{effective_version}"))
    assert "<td>SPK1, SPK2</td>" in page
    audit_link = f"/admin/audit?record_type=recipe-version&amp;record_id={effective_version}"
    assert f'href="{audit_link}">Audit trail of this version</a>' in page

    xml = ET.fromstring(client.get(f"/recipes/{effective_version}/batchml").data)
    header = xml.find("b:MasterRecipe/b:Header", {"b": "http://www.mesa.org/xml/B2MML"})
    assert header.findtext("{http://www.mesa.org/xml/B2MML}EffectiveDate").startswith(
        f"{site_today()}T00:00:00"
    )
    approvals = header.findall(".//{http://www.mesa.org/xml/B2MML}ApprovedBy")
    assert [a.text for a in approvals] == [
        "Aaron Tester (aaron), authored",
        "Sam Tester (sam), reviewed",
        "Quinn Tester (quinn), approved",
        "Quinn Tester (quinn), made effective",
    ]

    bad_site = post_form(
        client,
        f"/recipes/{effective_version}/publish",
        {"sites": "SPK1, X"},
        page=f"/recipes/{effective_version}",
    )
    assert bad_site.status_code == 400
    assert alerts(bad_site)[0].startswith("'X' is not a valid site code.")

    as_user(client, "aaron")
    page = text(client.get(f"/recipes/{effective_version}"))
    assert "Publish to sites" not in page
    assert "Audit trail of this version" not in page  # authors do not read the audit trail
    refused = post_form(
        client,
        f"/recipes/{effective_version}/publish",
        {"sites": "SPK1"},
        page=f"/recipes/{effective_version}",
    )
    assert refused.status_code == 403


@pytest.fixture
def hub_bundle(signer, make_uow):
    """``hub_bundle()``: a bundle for SPK1 of an effective MINI-TEST v1, made with the services
    and signed with the test site key (which the spoke below pins as its hub key)."""

    def make() -> str:
        ids = {
            name: signer(name, [role])
            for name, role in [("aaron", "author"), ("sam", "supervisor"), ("quinn", "qa")]
        }
        now = datetime.now(UTC)
        today = datetime.now(ZoneInfo("Europe/London")).date()
        with make_uow() as uow:
            version_id = recipes.import_recipe(
                uow, user_ctx(ids["aaron"], at=now), recipe_text(), "mini.yaml"
            ).id
        for name, step in [
            ("aaron", Step.SUBMIT),
            ("sam", Step.REVIEW),
            ("quinn", Step.APPROVE),
            ("quinn", Step.MAKE_EFFECTIVE),
        ]:
            with make_uow() as uow:
                recipes.sign_step(
                    uow,
                    user_ctx(ids[name], at=now),
                    version_id,
                    step,
                    Credentials(PASSWORD, name),
                    first_signing_in_session=True,
                    effective_from=today,
                )
        with make_uow() as uow:
            token, _ = recipes.publish(uow, user_ctx(ids["quinn"], at=now), version_id, ["SPK1"])
        return token

    return make


@pytest.fixture
def spoke(engine, site_key: SiteKey, tmp_path: Path):
    """The spoke's app, pinning the test site key as its hub key (``make_app`` pins none)."""
    from mes.app import create_app
    from mes.services.runtime import Runtime
    from mes.settings import Settings
    from mes.store.engine import session_factory

    settings = Settings(
        instance_path=tmp_path,
        role="spoke",
        site_code="SPK1",
        site_name="Test spoke",
        time_zone="Europe/London",
        database_url=str(engine.url),
        secret_key="test-secret-spoke",
        session_timeout_seconds=300,
    )
    site = Site(
        code="SPK1",
        name="Test spoke",
        role="spoke",
        time_zone="Europe/London",
        key=site_key,
        password_policy=PasswordPolicy(),
        hub_key=site_key.public,
    )
    app = create_app(runtime=Runtime(settings, engine, session_factory(engine), site))
    app.config["TESTING"] = True
    return app


def install(browser, token: str, name: str = "MINI-TEST-v1.jws"):
    return post_form(
        browser,
        "/recipes/install",
        {"bundle": (io.BytesIO(token.encode("ascii")), name)},
        page="/recipes",
    )


def test_a_spoke_installs_a_hub_bundle_once_and_shows_the_version(
    spoke, hub_bundle, create_user, make_uow
):
    token = hub_bundle()
    create_user("ada", roles=["admin"], role="spoke")
    browser = client_of(spoke)
    login(browser, "ada")
    listing = text(browser.get("/recipes"))
    assert "No recipe is installed yet." in listing
    assert "Install a bundle from the hub" in listing

    installed = install(browser, token)
    assert installed.status_code == 303
    assert location(installed) == "/recipes"
    listing = text(browser.get("/recipes"))
    assert f"Installed MINI-TEST v1 (in use from {site_today()})." in listing
    assert "New batches take this version" in listing
    with make_uow("spoke") as uow:
        item = uow.session.execute(select(InstalledRecipe)).scalar_one()
    assert f'<code title="{item.content_hash}">{item.content_hash[:12]}…</code>' in listing

    page = text(browser.get(f"/recipes/{item.id}"))
    assert "MINI-TEST v1 — Minimal test recipe" in page
    assert "<p>Scan the <strong>bag</strong> label.</p>" in page
    assert "Only when &#39;Bag intact&#39; is No" in page
    assert "What you can sign now" not in page
    assert browser.get("/recipes/upload").status_code == 404  # authoring is the hub's

    again = install(browser, token)
    assert again.status_code == 303
    assert "MINI-TEST v1 is already installed; nothing changed." in text(browser.get("/recipes"))
    with make_uow("spoke") as uow:
        assert uow.session.execute(select(func.count()).select_from(InstalledRecipe)).scalar() == 1


def test_a_spoke_refuses_a_tampered_bundle_and_says_why(spoke, hub_bundle, create_user, make_uow):
    token = hub_bundle()
    create_user("ada", roles=["admin"], role="spoke")
    browser = client_of(spoke)
    login(browser, "ada")
    middle = token.index(".") + (token.rindex(".") - token.index(".")) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    refused = install(browser, tampered)
    assert refused.status_code == 422
    assert alerts(refused) == [
        "The bundle's signature does not verify: it was altered after the hub signed it. "
        "Do not use this file; ask the hub to publish the bundle again."
    ]
    assert "Installed master recipes" in text(refused)  # the list is still shown
    assert "No recipe is installed yet." in text(refused)
    with make_uow("spoke") as uow:
        assert uow.session.execute(select(func.count()).select_from(InstalledRecipe)).scalar() == 0
        refusal = uow.session.execute(
            select(AuditEntry).where(AuditEntry.action == "recipe bundle refused")
        ).scalar_one()
    assert refusal.record_id == "MINI-TEST-v1.jws"

    not_a_bundle = install(browser, "hello", "notes.txt")
    assert not_a_bundle.status_code == 422
    assert "The file is not a recipe bundle" in alerts(not_a_bundle)[0]


def test_at_a_spoke_an_operator_reads_installed_recipes_but_cannot_install(
    spoke, hub_bundle, create_user
):
    token = hub_bundle()
    create_user("olivia", roles=["operator"], role="spoke")
    browser = client_of(spoke)
    login(browser, "olivia")
    listing = text(browser.get("/recipes"))
    assert "Install a bundle from the hub" not in listing
    refused = install(browser, token)
    assert refused.status_code == 403
    assert "You are not allowed to install recipe bundles from the hub." in text(refused)


def test_the_master_recipe_page_has_a_table_of_contents_linking_every_part(client, create_user):
    create_user("aaron", roles=["author"])
    login(client, "aaron")
    page = text(client.get(f"/recipes/{uploaded(client, recipe_text())}"))
    contents = page.split('<nav class="card recipe-part contents"', 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'<a href="#([^"]+)">(.*?)</a>', contents, re.S)
    words = [(anchor, " ".join(re.sub(r"<[^>]+>", " ", label).split())) for anchor, label in links]
    assert words == [
        ("chain-of-identity", "Chain of identity"),
        ("unit-receipt", "1 Receipt"),
        ("operation-receive", "1.1 Receive the bag"),
        ("phase-scan_bag", "1.1.1 Scan the bag"),
        ("phase-activate", "1.1.2 Activate T cells"),
        ("operation-follow_up", "1.2 Follow up"),
        ("phase-report_damage", "1.2.1 Report the damaged bag"),
        ("phase-transduce", "1.2.2 Transduce"),
    ]
    for anchor, _ in words:  # every link lands on a part of the page
        assert page.count(f'id="{anchor}"') == 1


def test_a_calculation_reads_in_words_with_its_formula_on_request(client, create_user):
    create_user("aaron", roles=["author"])
    login(client, "aaron")
    page = text(client.get(f"/recipes/{uploaded(client, recipe_text())}"))
    row = re.search(r"<tr>\s*<td>Volume in litres.*?</tr>", page, re.S).group(0)
    assert "Worked out from Volume." in row
    assert (
        '<details class="formula"><summary>Formula</summary><code>volume / 1000</code></details>'
        in row
    )
