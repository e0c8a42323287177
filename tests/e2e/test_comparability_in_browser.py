"""In a real browser against a real hub (``mes init`` + ``mes serve``): QA opens the
comparability page of a recipe whose critical values came from three spokes, sees the control
chart (an SVG document whose points link to the batch records) with its summary, freezes a
baseline in the signature dialog, then assesses the trend a later batch reveals — a CAPA, signed.
The page fits 1280 px. Screenshots go to test-artifacts/ (e2e-comparability-*.png).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import _free_port
from cpv_series import CODE, add_batches, steady
from playwright.sync_api import Page, expect
from support import NOW, PASSWORD, user_ctx, wait_until_up
from test_browser import log_in

from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.runtime import open_runtime
from mes.settings import load_settings
from mes.store.models import User

pytestmark = pytest.mark.e2e


def _mes(instance: Path, *args: str, password: str | None = None) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mes.cli", "--instance", str(instance), *args],
        input=f"{password}\n" if password is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MES_INSTANCE": ""},
        check=False,
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)


@dataclass(frozen=True)
class Hub:
    url: str
    instance: Path


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub with QA user quinn (attested) and 12 batches' viability from three spokes."""
    folder = tmp_path_factory.mktemp("cpv")
    instance = folder / "instance"
    _mes(instance, "init", "--role", "hub", "--site", "HUB", "--admin", "ada",
         "--name", "Ada Admin", "--password-stdin", password=PASSWORD)  # fmt: skip
    _mes(instance, "user", "add", "quinn", "--name", "Quinn Quality", "--role", "qa",
         "--password-stdin", password=PASSWORD)  # fmt: skip
    runtime = open_runtime(load_settings(instance, env={}))
    with runtime.uow() as uow:
        quinn = uow.session.query(User).filter_by(username="quinn").one().id
    with runtime.uow() as uow:
        acknowledge_accountability(
            uow, user_ctx(quinn), Credentials(PASSWORD, "quinn"), first_signing_in_session=True
        )
    add_batches(runtime.uow, steady())
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "mes.cli", "--instance", str(instance), "serve", "--port", str(port)],
            stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "MES_INSTANCE": ""},
        )  # fmt: skip
    try:
        wait_until_up(url, server, log)
        yield Hub(url, instance)
        runtime.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def sign(page: Page, form, *, first: bool) -> None:
    dialog = form.locator("dialog.esign")
    expect(dialog).to_be_visible()
    if first:
        dialog.locator("input[name=esign_username]").fill("quinn")
    dialog.locator("input[name=esign_password]").fill(PASSWORD)
    dialog.get_by_role("button", name="Sign", exact=True).tap()


def test_qa_reads_the_chart_freezes_a_baseline_and_assesses_a_trend(page: Page, hub, screenshot):
    log_in(page, hub.url, "quinn")
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.goto(f"{hub.url}/network/comparability/{CODE}?from=01/03/2026&to=31/12/2026")
    expect(page.get_by_role("heading", name=f"Comparability across sites — {CODE}")).to_be_visible()
    chart = page.locator("object[data-chart]").first
    expect(chart).to_be_visible()
    page.wait_for_function(
        "() => { const o = document.querySelector('object[data-chart]');"
        " return o.contentDocument && o.contentDocument.querySelectorAll('#points a').length === 12; }"
    )
    box = chart.bounding_box()
    assert box is not None and box["width"] >= 900 and box["height"] >= 350, box  # readable
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    expect(page.locator("[data-summary]").first).to_contain_text("12 batches of every site")
    screenshot(page, "comparability-provisional")

    section = page.locator("section.cpv-parameter").first
    section.get_by_text("Freeze a baseline…").tap()
    form = section.locator("form").filter(has=page.locator("input[name=period_from]"))
    form.locator("input[name=period_to]").fill("30/04/2026")
    form.locator("input[name=batches]").fill("12")
    form.get_by_role("button", name="Freeze the baseline").tap()
    sign(page, form, first=True)
    expect(page.get_by_text("Baseline frozen: 12 batches")).to_be_visible()
    expect(section.locator("[data-limits]")).to_contain_text("Baseline frozen by Quinn Quality")

    runtime = open_runtime(load_settings(hub.instance, env={}))
    add_batches(runtime.uow, [("SPK3", 99.0)], start=NOW.replace(month=5), first=200)
    runtime.close()
    page.reload()
    page.get_by_role("link", name="Assess").first.tap()
    expect(page.get_by_role("heading", name=re.compile("Trend to assess"))).to_be_visible()
    expect(page.locator("[data-trend-words]")).to_contain_text("above the upper control limit")
    page.wait_for_function(
        "() => { const o = document.querySelector('object[data-chart]');"
        " return o.contentDocument && o.contentDocument.querySelectorAll('#points a').length > 0; }"
    )
    screenshot(page, "comparability-trend")
    form = page.locator("#assessment form")
    form.get_by_label("CAPA opened").check()
    form.get_by_label("Reference: the number of the deviation").fill("CAPA-2026-031")
    form.get_by_label("Comment").fill("Incubator drift at SPK3; CAPA opened.")
    form.get_by_role("button", name="Sign the assessment").tap()
    sign(page, form, first=False)
    expect(page.get_by_role("heading", name=re.compile("Trend assessed"))).to_be_visible()
    expect(page.locator("[data-disposition]")).to_contain_text("CAPA-2026-031")
    page.goto(f"{hub.url}/network/comparability/{CODE}?from=01/03/2026&to=31/12/2026")
    expect(page.locator("table.cpv-signals")).to_contain_text("CAPA opened")
    page.wait_for_function(
        "() => { const o = document.querySelector('object[data-chart]');"
        " return o.contentDocument && o.contentDocument.querySelectorAll('#points a').length === 13; }"
    )
    screenshot(page, "comparability-baseline")
