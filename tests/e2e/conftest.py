"""A real spoke instance made with the real ``mes`` command, served by ``mes serve`` in a
subprocess, and a real Chromium driven by Playwright.

One instance and one browser per test process (xdist worker); each test opens its own browser
context (its own cookies: a "fresh" browser) so tests do not depend on each other's order.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from support import PASSWORD, wait_until_up

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_SECONDS = 3  # the instance's inactivity lock, short enough to wait for in a test
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# (user ID, full name, role): one user per test, so that no test depends on another's effects.
USERS = (
    ("quinn", "Quinn Quality", "qa"),
    ("sam", "Sam Supervisor", "supervisor"),
    ("oscar", "Oscar Operator", "operator"),
    ("olivia", "Olivia Operator", "operator"),
)


@dataclass(frozen=True)
class Spoke:
    """The running spoke: where it answers and where its instance folder is."""

    url: str
    instance: Path
    timeout_seconds: int


def _mes(instance: Path, *args: str, password: str | None = None) -> str:
    """Run the real ``mes`` command; fail the run with its output if it fails."""
    executable = shutil.which("mes")
    assert executable, "the 'mes' command is not installed (pip install -e .)"
    result = subprocess.run(
        [executable, "--instance", str(instance), *args],
        input=f"{password}\n" if password is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MES_INSTANCE": ""},
        check=False,
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def spoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spoke]:
    """``mes init`` a spoke (site SPK1, admin ada), add users, and ``mes serve`` it."""
    folder = tmp_path_factory.mktemp("e2e")
    instance = folder / "instance"
    _mes(
        instance,
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
        password=PASSWORD,
    )
    for username, name, role in USERS:
        _mes(
            instance,
            "user",
            "add",
            username,
            "--name",
            name,
            "--role",
            role,
            "--password-stdin",
            password=PASSWORD,
        )
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
            env={
                **os.environ,
                "MES_INSTANCE": "",
                "MES_SESSION_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            },
        )
    try:
        wait_until_up(url, server, log)
        yield Spoke(url, instance, TIMEOUT_SECONDS)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Chromium as installed on the machine."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """``new_context()``: a fresh touch-screen browser profile (no cookies), closed after."""
    contexts: list[BrowserContext] = []

    def make(**options) -> BrowserContext:
        context = browser.new_context(
            has_touch=True, viewport={"width": 1280, "height": 800}, **options
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context) -> Page:
    """A tab of a fresh browser."""
    return new_context().new_page()


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Path]:
    """``screenshot(page, "name")``: save what the user saw to test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)

    def save(page: Page, name: str) -> Path:
        path = ARTIFACTS / f"e2e-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
