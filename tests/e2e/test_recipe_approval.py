"""In a real browser against a real hub (``mes init --role hub`` + ``mes serve``): an author uploads
a master recipe and signs it, a supervisor reviews it, QA approves it and makes it effective,
each in the e-signature dialog (21 CFR 11.50, 11.200; Annex 11 §10); then the next version is
compared with it."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from support import PASSWORD

from mes.core.recipe import load_recipe

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "car-t-fresh.yaml"
ARTIFACTS = ROOT / "test-artifacts"
# (user ID, full name, role) of the people who take a version to effective.
SIGNERS = (
    ("aaron", "Aaron Author", "author"),
    ("sam", "Sam Supervisor", "supervisor"),
    ("quinn", "Quinn Quality", "qa"),
)


def _mes(instance: Path, *args: str) -> None:
    executable = shutil.which("mes")
    assert executable, "the 'mes' command is not installed (pip install -e .)"
    result = subprocess.run(
        [executable, "--instance", str(instance), *args],
        input=f"{PASSWORD}\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MES_INSTANCE": ""},
        check=False,
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mes init`` a hub with an author, a supervisor and QA, and ``mes serve`` it."""
    folder = tmp_path_factory.mktemp("e2e-hub")
    instance = folder / "instance"
    _mes(
        instance,
        "init",
        "--role",
        "hub",
        "--site",
        "HUB",
        "--time-zone",
        "Europe/London",
        "--admin",
        "ada",
        "--name",
        "Ada Admin",
        "--password-stdin",
    )
    for username, name, role in SIGNERS:
        _mes(instance, "user", "add", username, "--name", name, "--role", role, "--password-stdin")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [
                shutil.which("mes") or "mes",
                "--instance",
                str(instance),
                "serve",
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MES_INSTANCE": ""},
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, f"mes serve exited: {log.read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, f"mes serve did not answer: {log.read_text()}"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()


def log_in(page: Page, url: str, username: str) -> None:
    if "/login" not in page.url:
        page.goto(f"{url}/login")
    page.get_by_label("User ID").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").tap()
    expect(page.locator(".who .user")).to_contain_text(f"({username})")


def sign_in_dialog(page: Page, button: str, *, with_user_id: bool, username: str) -> None:
    """Tap the sign button, check the dialog asks for what it should, type it and sign."""
    page.get_by_role("button", name=button, exact=True).tap()
    dialog = page.locator("dialog.esign[open]")
    expect(dialog).to_be_visible()
    if with_user_id:
        dialog.get_by_label("User ID").fill(username)
    else:
        expect(dialog.get_by_label("User ID")).to_have_count(0)
    dialog.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).tap()


def start_signing_session(page: Page, url: str, username: str) -> None:
    """Log in, acknowledge the accountability statement, and log in again: a new session whose
    first signature needs the user ID as well as the password."""
    log_in(page, url, username)
    page.goto(f"{url}/account")
    sign_in_dialog(page, "Acknowledge and sign", with_user_id=True, username=username)
    expect(
        page.get_by_text("Signed: you acknowledged the accountability statement.")
    ).to_be_visible()
    page.get_by_role("button", name="Log out").tap()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    log_in(page, url, username)


def test_a_recipe_is_authored_reviewed_approved_and_made_effective_in_the_browser(
    new_context, hub_url, screenshot
):
    compiled = load_recipe(RECIPE.read_bytes(), RECIPE.name)
    name = f"{compiled.recipe_code} v{compiled.version}"

    author = new_context().new_page()
    start_signing_session(author, hub_url, "aaron")
    author.get_by_role("link", name="Recipes", exact=True).tap()
    author.get_by_role("link", name="Upload a recipe").tap()
    author.get_by_label("Recipe file (.yaml)").set_input_files(RECIPE)
    author.get_by_role("button", name="Upload and check").tap()
    expect(author.get_by_text(f"Uploaded {name}; it is draft.")).to_be_visible()
    expect(author.locator(".status-line .pill")).to_have_text("Draft")
    version_url = author.url
    expect(author.locator(".phase")).to_have_count(sum(1 for _ in compiled.phases()))
    sign_in_dialog(
        author, "Sign as author and submit for review", with_user_id=True, username="aaron"
    )
    expect(author.get_by_text("Signed: authored. The version is now in review.")).to_be_visible()
    expect(author.locator(".status-line .pill")).to_have_text("In review")

    supervisor = new_context().new_page()
    start_signing_session(supervisor, hub_url, "sam")
    supervisor.goto(version_url)
    sign_in_dialog(supervisor, "Sign the technical review", with_user_id=True, username="sam")
    expect(supervisor.get_by_text("Signed: reviewed.")).to_be_visible()

    qa = new_context().new_page()
    start_signing_session(qa, hub_url, "quinn")
    qa.goto(version_url)
    sign_in_dialog(qa, "Sign the QA approval", with_user_id=True, username="quinn")
    expect(qa.get_by_text("Signed: approved. The version is now approved.")).to_be_visible()
    effective_from = qa.get_by_label("Effective from (site date)")
    expect(effective_from).to_have_value(re.compile(r"^\d{4}-\d\d-\d\d$"))
    today = effective_from.input_value()
    sign_in_dialog(qa, "Make effective", with_user_id=False, username="quinn")
    expect(qa.get_by_text("Signed: made effective. The version is now effective.")).to_be_visible()
    expect(qa.locator(".status-line .pill")).to_have_text(f"Effective from {today}")
    signatures = qa.locator("#signatures .manifestation")
    expect(signatures).to_have_count(4)
    for index, (who, meaning) in enumerate(
        [
            ("Aaron Author (aaron)", "Authored"),
            ("Sam Supervisor (sam)", "Reviewed"),
            ("Quinn Quality (quinn)", "Approved"),
            ("Quinn Quality (quinn)", "Made effective"),
        ]
    ):
        expect(signatures.nth(index)).to_have_text(
            re.compile(
                rf"^{re.escape(who)} · {meaning} · \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d (GMT|BST) · "
                r"unregistered browser \(127\.0\.0\.1\)$"
            )
        )
    # The procedure runs to dozens of screens: the record's head (header, signatures) is the shot.
    ARTIFACTS.mkdir(exist_ok=True)
    qa.set_viewport_size({"width": 1280, "height": 1400})
    qa.screenshot(path=str(ARTIFACTS / "e2e-recipe-01-version-effective.png"))

    # The next version changes one limit; the comparison names it in a sentence.
    source = RECIPE.read_text(encoding="utf-8")
    changed = re.sub(r"^version: \d+$", f"version: {compiled.version + 1}", source, flags=re.M)
    changed = changed.replace("action_low: 80", "action_low: 75", 1)
    author.goto(f"{hub_url}/recipes/upload")
    author.get_by_label("Recipe file (.yaml)").set_input_files(
        {"name": "car-t-fresh-v2.yaml", "mimeType": "text/yaml", "buffer": changed.encode()}
    )
    author.get_by_role("button", name="Upload and check").tap()
    expect(author.locator(".status-line .pill")).to_have_text("Draft")
    author.get_by_role("link", name=f"Compare with version {compiled.version}").tap()
    expect(author.get_by_role("heading", level=1)).to_have_text(
        f"{compiled.recipe_code} v{compiled.version} → v{compiled.version + 1}"
    )
    expect(author.locator(".change-item.changed").first).to_contain_text(
        "action low limit changed from 80 % to 75 %."
    )
    expect(author.locator(".change-item.changed .kind").first).to_have_text("changed")
    screenshot(author, "recipe-02-diff")
