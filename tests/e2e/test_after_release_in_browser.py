"""After release at the hub, in a real browser (1280 × 800): the certification and a look-back.

A batch of a recipe with two pending results (sterility, VCN) is made at SPK1, sent to the hub
and released there (provisional). The hub's real app is served over HTTP on its own database.
Quill (QC at the hub) enters both results on the review page's "After release" card; Quinn (QA)
signs the final certification and the card then says final. Quinn looks back at a lot the batch
used, opens a look-back with the recall notice as its reason and signs "no action" for the batch.
The context is the conftest's 1280 × 800 touch screen. Every target is at least 48 px; screenshots go to test-artifacts/e2e-after-release-*.png.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select
from support import PASSWORD
from sync_sites import Network
from test_network_in_browser import small_targets
from test_results_after_release import released
from werkzeug.serving import make_server

from mes.store.engine import make_engine
from mes.store.models import BatchUsage

pytestmark = pytest.mark.e2e


@dataclass
class Hub:
    url: str
    batch_id: str
    lot: str


@pytest.fixture
def hub(tmp_path, sqlite_template, site_key) -> Iterator[Hub]:
    """A released, provisional batch at the hub, and the hub's app served over HTTP."""
    hub_file, spoke_file = tmp_path / "hub.sqlite3", tmp_path / "spoke.sqlite3"
    shutil.copyfile(sqlite_template, hub_file)
    shutil.copyfile(sqlite_template, spoke_file)
    hub_engine = make_engine(f"sqlite:///{hub_file}")
    spoke_engine = make_engine(f"sqlite:///{spoke_file}")
    net = Network(hub_engine, spoke_engine, site_key, folder=tmp_path)
    _site, batch_id = released(net, tmp_path)
    with net.hub() as uow:
        lot = (
            uow.session.execute(
                select(BatchUsage.identifier).where(
                    BatchUsage.batch_id == batch_id, BatchUsage.kind == "lot"
                )
            )
            .scalars()
            .first()
        )
    assert lot, "the batch used no lot: nothing to look back at"

    from mes.app import create_app

    runtime = net.runtime("hub")
    runtime.settings.instance_path.mkdir(parents=True, exist_ok=True)
    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hub(f"http://127.0.0.1:{server.server_port}", batch_id, lot)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        hub_engine.dispose()
        spoke_engine.dispose()


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("User ID").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who .user")).to_be_visible()


def sign(page: Page, form: Locator, button: str, username: str) -> None:
    """Open the form's e-signature dialog with ``button`` and sign (user ID if it asks)."""
    form.get_by_role("button", name=button, exact=True).click()
    dialog = form.locator("dialog.esign")
    expect(dialog).to_be_visible()
    user = dialog.locator("input[name=esign_username]")
    if user.count():
        user.fill(username)
    dialog.locator("input[name=esign_password]").fill(PASSWORD)
    with page.expect_navigation():
        dialog.get_by_role("button", name="Sign", exact=True).click()


def test_qc_enters_the_pending_results_and_qa_certifies_the_batch_final(
    hub: Hub, new_context, screenshot
):
    review = f"{hub.url}/qa/batches/{hub.batch_id}"
    qc = new_context().new_page()
    log_in(qc, hub.url, "quill")
    qc.goto(review)
    card = qc.locator("#after-release")
    expect(card.locator("[data-certification]")).to_have_text(re.compile("Provisional"))
    expect(card.locator("[data-pending]")).to_have_count(2)
    form = card.locator("form[data-result-form]")
    for result, value, report in (("sterility_final", "No growth", "MB-201"),
                                  ("vcn", "2.1", "VCN-77")):  # fmt: skip
        form.locator("select[name=result]").select_option(result)
        form.locator("input[name=value]").fill(value)
        form.locator("input[name=reference]").fill(report)
        with qc.expect_navigation():
            form.get_by_role("button").click()
        expect(qc.locator("[data-refusal]")).to_have_count(0)
        expect(card.locator(f"tr[data-result={result}]")).to_contain_text(value)
    expect(card.locator("[data-pending]")).to_have_count(0)
    expect(card.locator("form[data-result-form]")).to_have_count(0)
    assert small_targets(qc) == []
    screenshot(qc, "after-release-01-results")

    qa = new_context().new_page()
    log_in(qa, hub.url, "quinn")
    qa.goto(review)
    card = qa.locator("#after-release")
    certify = card.locator("form[action$='/certified-final']")
    expect(certify).to_have_count(1)
    assert small_targets(qa) == []
    sign(qa, certify, certify.locator("[data-esign-open]").inner_text(), "quinn")
    expect(qa.locator("[data-refusal]")).to_have_count(0)
    expect(card.locator("[data-certification]")).to_have_attribute("data-certification", "final")
    expect(card.locator("[data-certification]")).to_have_text(re.compile("Final", re.I))
    expect(card).to_contain_text("Certified final by Quinn Hub")
    expect(card.locator("form[action$='/certified-final']")).to_have_count(0)
    screenshot(qa, "after-release-02-final")


def test_qa_looks_back_at_a_lot_opens_a_look_back_and_signs_a_disposition(
    hub: Hub, new_context, screenshot
):
    page = new_context().new_page()
    log_in(page, hub.url, "quinn")
    page.goto(f"{hub.url}/network/lookback")
    search = page.locator("form[data-lookback-search]")
    search.locator("select[name=kind]").select_option("lot")
    search.locator("input[name=subject]").fill(hub.lot)
    with page.expect_navigation():
        search.get_by_role("button", name="Look back").click()
    found = page.locator("[data-lookback-results] tr[data-batch]")
    expect(found).to_have_count(1)
    assert small_targets(page) == []
    screenshot(page, "after-release-03-lookback-search")

    opening = page.locator("form[data-open-lookback]")
    opening.locator("textarea[name=reason]").fill("Supplier recall notice RN-2026-14")
    with page.expect_navigation():
        opening.get_by_role("button").click()
    case = page.locator("[data-lookback]")
    expect(case).to_contain_text(f"Look-back on Material lot {hub.lot}")
    expect(page.locator("[data-open-count]")).to_contain_text("1 without a disposition")
    no_action = page.locator("form[data-dispose=no_action]")
    no_action.locator("textarea[name=reason]").fill("Lot within specification per the CoA")
    sign(page, no_action, no_action.locator("[data-esign-open]").inner_text(), "quinn")
    expect(page.locator("[data-refusal]")).to_have_count(0)
    signed = page.locator("[data-disposition]")
    expect(signed).to_contain_text("Lot within specification per the CoA")
    expect(signed).to_contain_text("(quinn)")
    expect(page.locator("[data-open-count]")).to_contain_text("0 without a disposition")
    assert small_targets(page) == []
    screenshot(page, "after-release-04-lookback-signed")
