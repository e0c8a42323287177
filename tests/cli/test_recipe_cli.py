"""``mes recipe``: validate, show, import, diff, publish at a hub, install at a spoke, export."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import run_bare
from conftest import Instance
from recipe_helpers import recipe_text, sign
from support import PASSWORD, user_ctx

from mes.core.lifecycle import Step
from mes.services.context import Context
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.runtime import open_runtime
from mes.services.users import add_user
from mes.settings import load_settings
from mes.store.models import User

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "recipes").glob("*.yaml"))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_recipes_validate():
    assert len(EXAMPLES) >= 3
    result = run_bare("recipe", "validate", *map(str, EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": valid — ") == len(EXAMPLES)


def test_validate_lists_every_problem_and_exits_1(tmp_path):
    broken = recipe_text().replace('unit: "%"', "unit: pct").replace("max: 2 h", "max: soon")
    path = write(tmp_path, "broken.yaml", broken)
    good = write(tmp_path, "good.yaml", recipe_text())
    result = run_bare("recipe", "validate", str(good), str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{good}: valid — MINI-TEST v1, 2 phases, content hash ")
    assert lines[1:] == [
        "broken.yaml:24:65 unit_procedures[0].operations[0].phases[0].inputs[0]: "
        "unknown unit 'pct'; use a unit from the list in docs/recipe-format.md",
        "broken.yaml:28:45 unit_procedures[0].operations[0].phases[1].timers[0].max: "
        "'soon' is not allowed here: A duration such as '30 min', '48 h' or '14 d'.",
    ]
    assert result.stderr == f"{path}: 2 problem(s)\n"


def mapping_form(text: str) -> str:
    """``recipe_text()`` with its chain of identity and inputs in the older mapping form."""
    return text.replace("  - {id: din, label:", "  din: {label:").replace(
        "              - {id: viability, label:", "              viability: {label:"
    )


def test_validate_shows_the_warnings_of_the_older_mapping_form_and_accepts_the_file(tmp_path):
    path = write(tmp_path, "older.yaml", mapping_form(recipe_text()))
    result = run_bare("recipe", "validate", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    first, second, valid = result.stdout.splitlines()
    assert first.startswith(
        "older.yaml:8:1 chain_of_identity: warning: chain_of_identity is written as a mapping, "
        "but the order of its keys is significant"
    )
    assert first.endswith("(- id: din, then its fields)")
    assert second.startswith(
        "older.yaml:23:13 unit_procedures[0].operations[0].phases[0].inputs: warning: inputs is "
    )
    listed = write(tmp_path, "listed.yaml", recipe_text())
    same = run_bare("recipe", "validate", str(listed)).stdout
    assert valid.startswith(f"{path}: valid — MINI-TEST v1, 2 phases, content hash ")
    assert valid.split("content hash ")[1] == same.split("content hash ")[1].strip()

    broken = write(
        tmp_path, "broken.yaml", mapping_form(recipe_text()).replace("max: 2 h", "max: soon")
    )
    refused = run_bare("recipe", "validate", str(broken))
    assert refused.returncode == 1
    problem, *warnings = refused.stdout.splitlines()
    assert problem.startswith("broken.yaml:28:45 ")
    assert [w.split(" ")[1] for w in warnings] == [
        "chain_of_identity:",
        "unit_procedures[0].operations[0].phases[0].inputs:",
    ]
    assert refused.stderr == f"{broken}: 1 problem(s)\n"


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\xff\xfe", b"a: [", b"- just\n- a list\n", b"format: 1\n" * 3, b"\t- tab"],
)
def test_validate_never_crashes_on_malformed_files(tmp_path, content):
    path = tmp_path / "junk.yaml"
    path.write_bytes(content)
    result = run_bare("recipe", "validate", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith("junk.yaml:1:") or result.stdout.startswith("junk.yaml:")


def test_validate_a_missing_file_says_so(tmp_path):
    result = run_bare("recipe", "validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert (
        result.stderr == f"{tmp_path / 'nope.yaml'}: There is no file {tmp_path / 'nope.yaml'}.\n"
    )


def test_show_json_prints_the_canonical_form_whose_hash_is_the_identity(tmp_path):
    block = write(tmp_path, "a.yaml", recipe_text())
    # The same recipe with keys in another order and in flow style.
    reordered = recipe_text().replace(
        "format: gmp-mes/recipe/1\nrecipe_code: MINI-TEST\nversion: 1\n",
        "version: 1\nrecipe_code: MINI-TEST\nformat: 'gmp-mes/recipe/1'\n",
    )
    other = write(tmp_path, "b.yaml", reordered)
    first = run_bare("recipe", "show", str(block), "--json")
    second = run_bare("recipe", "show", str(other), "--json")
    assert first.returncode == 0 and first.stdout == second.stdout
    canonical = first.stdout.rstrip("\n").encode()
    assert json.loads(canonical)["recipe_code"] == "MINI-TEST"
    summary = run_bare("recipe", "show", str(block))
    assert f"Content hash (SHA-256 of RFC 8785 JSON): {hashlib.sha256(canonical).hexdigest()}" in (
        summary.stdout
    )


def test_diff_of_two_files_says_what_changed(tmp_path):
    old = write(tmp_path, "v1.yaml", recipe_text(1))
    new = write(tmp_path, "v2.yaml", recipe_text(2, viability_action=75))
    result = run_bare("recipe", "diff", str(old), str(new))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("v1.yaml → v2.yaml: ")
    assert "80 %" in result.stdout and "75 %" in result.stdout


def test_export_batchml_of_a_file(tmp_path):
    path = write(tmp_path, "mini.yaml", recipe_text())
    result = run_bare("recipe", "export-batchml", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<?xml")
    assert "<MasterRecipe>" in result.stdout or "MasterRecipe" in result.stdout


PEOPLE = {"aaron": "author", "sam": "supervisor", "quinn": "qa"}


def _make_effective_at_hub(hub: Instance, tmp_path: Path, version: int = 1) -> None:
    """Import with the CLI, then three people sign the lifecycle, as they would in the pages."""
    source = write(
        tmp_path, f"mini-v{version}.yaml", recipe_text(version, viability_action=80 - version)
    )
    imported = hub.run("recipe", "import", str(source))
    assert imported.code == 0, imported.err
    assert imported.out.startswith(f"MINI-TEST v{version} is draft (id ")
    version_id = imported.out.split("(id ")[1].split(",")[0]
    runtime = open_runtime(load_settings(hub.path, env={}))
    try:
        ids = {}
        for username, role in PEOPLE.items():
            with runtime.uow() as uow:
                found = uow.session.query(User).filter_by(username=username).one_or_none()
                if found is None:
                    ids[username] = add_user(
                        uow,
                        command_line(),
                        username=username,
                        full_name=username.title(),
                        roles=[role],
                        password=PASSWORD,
                    )
                    with runtime.uow() as attest_uow:
                        acknowledge_accountability(
                            attest_uow,
                            user_ctx(ids[username], at=datetime.now(UTC)),
                            Credentials(PASSWORD, username),
                            first_signing_in_session=True,
                        )
                else:
                    ids[username] = found.id
        make_uow = lambda *_: runtime.uow()  # noqa: E731
        now = datetime.now(UTC)
        sign(make_uow, ids["aaron"], "aaron", version_id, Step.SUBMIT, at=now)
        sign(make_uow, ids["sam"], "sam", version_id, Step.REVIEW, at=now)
        sign(make_uow, ids["quinn"], "quinn", version_id, Step.APPROVE, at=now)
        sign(
            make_uow,
            ids["quinn"],
            "quinn",
            version_id,
            Step.MAKE_EFFECTIVE,
            at=now,
            effective_from=now.date(),
        )
    finally:
        runtime.close()


def command_line() -> Context:
    return Context.command_line(datetime.now(UTC), "tester", "testhost")


def test_publish_at_the_hub_and_install_at_a_spoke(instance, tmp_path):
    hub = instance
    assert hub.init().code == 0
    refused = hub.run("recipe", "publish", "MINI-TEST@1", "--site", "SPK1", "--out", "x.jws")
    assert refused.code == 1 and "There is no recipe version MINI-TEST@1." in refused.err
    _make_effective_at_hub(hub, tmp_path, 1)
    listing = hub.run("recipe", "list")
    assert listing.out.startswith("MINI-TEST v1\tEffective from ")
    exported = hub.run("recipe", "export-batchml", "MINI-TEST@1")
    assert exported.code == 0, exported.err
    assert "<EffectiveDate>" in exported.out and 'OtherValue="Effective"' in exported.out
    bundle = tmp_path / "mini-v1.jws"
    published = hub.run(
        "recipe", "publish", "MINI-TEST@1", "--site", "SPK1", "--site", "SPK2", "--out", str(bundle)
    )
    assert published.code == 0, published.err
    assert published.out == f"Wrote MINI-TEST v1 for SPK1, SPK2 to {bundle}\n"
    assert bundle.read_text().count(".") == 2

    hub_key = tmp_path / "hub.pub.pem"
    assert hub.run("site", "key", "--out", str(hub_key)).code == 0
    spoke = Instance(tmp_path / "spoke", None)
    created = spoke.run(
        "init",
        "--role",
        "spoke",
        "--site",
        "SPK1",
        "--admin",
        "ada",
        "--name",
        "Ada Admin",
        "--password-stdin",
        "--hub-key",
        str(hub_key),
        stdin=PASSWORD + "\n",
    )
    assert created.code == 0, created.err
    assert "Trusted hub key id: " in created.out

    installed = spoke.run("recipe", "install", str(bundle))
    assert installed.code == 0, installed.err
    assert installed.out.startswith("Installed MINI-TEST v1 (in use from ")
    again = spoke.run("recipe", "install", str(bundle))
    assert again.out == "MINI-TEST v1 is already installed; nothing changed.\n"
    assert spoke.run("recipe", "list").out.startswith("MINI-TEST v1\tin use from ")

    token = bundle.read_text().strip()
    tampered = tmp_path / "tampered.jws"
    middle = len(token) // 2
    tampered.write_text(
        token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    )
    result = spoke.run("recipe", "install", str(tampered))
    assert result.code == 1
    assert result.err.startswith("error: The bundle's signature does not verify")
    assert "Traceback" not in result.err
    verify = spoke.run("audit", "verify")
    assert verify.code == 0, verify.out + verify.err


def test_a_hub_takes_no_hub_key_and_a_spoke_refuses_a_file_that_is_not_a_key(tmp_path):
    junk = write(tmp_path, "junk.pem", "not a key")
    spoke = Instance(tmp_path / "spoke", None)
    result = spoke.run(
        "init",
        "--role",
        "spoke",
        "--site",
        "SPK1",
        "--admin",
        "ada",
        "--name",
        "Ada Admin",
        "--password-stdin",
        "--hub-key",
        str(junk),
        stdin=PASSWORD + "\n",
    )
    assert result.code == 1
    assert result.err.startswith("error: The hub key file is not an Ed25519 public key")
    assert not spoke.path.exists()
    hub = Instance(tmp_path / "hub", None)
    result = hub.run(
        "init",
        "--role",
        "hub",
        "--site",
        "HUB",
        "--admin",
        "ada",
        "--name",
        "Ada Admin",
        "--password-stdin",
        "--hub-key",
        str(junk),
        stdin=PASSWORD + "\n",
    )
    assert result.code == 1
    assert result.err.startswith("error: --hub-key is for spokes")


def test_import_of_the_older_mapping_form_shows_its_warnings_and_stores_the_draft(
    instance, tmp_path
):
    assert instance.init().code == 0
    source = write(tmp_path, "older.yaml", mapping_form(recipe_text()))
    imported = instance.run("recipe", "import", str(source))
    assert imported.code == 0, imported.err
    *warnings, stored = imported.out.splitlines()
    assert [w.split(" ")[0] for w in warnings] == ["older.yaml:8:1", "older.yaml:23:13"]
    assert all(": warning: " in w for w in warnings)
    assert stored.startswith("MINI-TEST v1 is draft (id ")


def test_import_at_a_spoke_is_refused(tmp_path):
    spoke = Instance(tmp_path / "spoke", None)
    assert spoke.init(role="spoke", site="SPK1").code == 0
    result = spoke.run("recipe", "import", str(write(tmp_path, "m.yaml", recipe_text())))
    assert result.code == 1
    assert result.err == (
        "error: Importing master recipes is done at the hub; this site (SPK1) is a spoke. "
        "Run it at the hub.\n"
    )
