"""The look-back pages through the real apps (hub and spoke), on SQLite and PostgreSQL.

A batch of SPK1 is received at the hub; QA at the hub searches by the lot its count used,
opens a look-back with a reason, signs a disposition for the batch in the e-signature dialog
(refused: no reason for "no action", and a second disposition); one sync round against the real
hub app brings the review chain back, and the spoke's page lists the notification.
"""

from __future__ import annotations

import html
import re

import pytest
from review_network import batch_at_the_hub, hub_client, spoke_app
from sqlalchemy import select
from support import PASSWORD
from sync_sites import net
from web_helpers import client_of, login, post_form, text

from mes.store.models import AuditEntry, BatchUsage
from mes.sync.client import sync_round

__all__ = ["net"]  # the fixture, imported from sync_sites


def words(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text(response))).split())


@pytest.fixture
def batch(net, tmp_path) -> str:
    return batch_at_the_hub(net, tmp_path)


@pytest.fixture
def hub(net):
    """The hub's real web app on the hub's database, as site HUB (whose key the spoke pins)."""
    from mes.app import create_app

    runtime = net.runtime("hub")
    runtime.settings.instance_path.mkdir(parents=True, exist_ok=True)
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    return app


def browser(app, username: str):
    client = client_of(app)
    assert login(client, username).status_code == 302
    return client


def lot_of(net, batch_id: str) -> str:
    with net.hub() as uow:
        return uow.session.scalar(
            select(BatchUsage.identifier).where(
                BatchUsage.batch_id == batch_id, BatchUsage.kind == "lot"
            )
        )


def test_qa_looks_back_from_a_lot_opens_a_look_back_and_signs_a_notification(net, batch, hub):
    lot = lot_of(net, batch)
    assert lot
    quinn = browser(hub, "quinn")
    search = f"/network/lookback/?kind=lot&subject={lot}"
    page = quinn.get(search)
    assert page.status_code == 200
    said = words(page)
    assert f"Material lot {lot}: 1 batch" in said
    with net.hub() as uow:
        from mes.store.models import Batch as BatchRow

        row = uow.session.get(BatchRow, batch)
        number, patient = row.number, row.chain_of_identity["patient_id"]
    assert number in said and patient in said and "Awaiting review" in said
    nothing = words(quinn.get("/network/lookback/?kind=lot&subject=NOBODY-USED-THIS"))
    assert "No batch held at the hub used material lot NOBODY-USED-THIS" in nothing

    # Opening needs a reason; then the look-back's page lists the batch with its forms.
    refused = post_form(
        quinn, "/network/lookback/", {"kind": "lot", "subject": lot, "reason": ""}, page=search
    )
    assert refused.status_code == 400 and "reason" in words(refused).lower()
    unknown = post_form(
        quinn, "/network/lookback/", {"kind": "lot", "subject": "NOBODY", "reason": "Recall"},
        page=search,
    )  # fmt: skip
    assert unknown.status_code == 404 and "No batch held at the hub used" in words(unknown)
    opened = post_form(
        quinn, "/network/lookback/",
        {"kind": "lot", "subject": lot, "reason": "Supplier recall: endotoxin"}, page=search,
    )  # fmt: skip
    assert opened.status_code == 303
    case_url = opened.headers["Location"]
    with net.hub() as uow:
        assert (
            uow.session.scalar(
                select(AuditEntry.reason).where(AuditEntry.action == "look-back opened")
            )
            == "Supplier recall: endotoxin"
        )
    case = quinn.get(case_url)
    assert f"Look-back on Material lot {lot}" in words(case)
    assert 'data-dispose="notify"' in text(case) and 'data-dispose="no_action"' in text(case)

    post = case_url.rstrip("/") + "/dispositions"
    no_reason = post_form(
        quinn, post, {"batch_id": batch, "disposition": "no_action", "reason": "",
                      "esign_password": PASSWORD, "esign_username": "quinn"}, page=case_url,
    )  # fmt: skip
    assert no_reason.status_code == 400 and "'No action' needs a reason" in words(no_reason)
    signed = post_form(
        quinn, post, {"batch_id": batch, "disposition": "notify", "reason": "Infused 21 Nov",
                      "esign_password": PASSWORD, "esign_username": "quinn"}, page=case_url,
    )  # fmt: skip
    assert signed.status_code == 303, words(signed)
    shown = words(quinn.get(case_url))
    assert "Notify the treating clinic — Infused 21 Nov" in shown
    assert 'signed "reviewed" by Quinn Hub (quinn)' in shown
    again = post_form(
        quinn, post, {"batch_id": batch, "disposition": "no_action", "reason": "second",
                      "esign_password": PASSWORD}, page=case_url,
    )  # fmt: skip
    assert again.status_code == 409 and "already has its disposition" in words(again)

    # Only QA looks back.
    sam = browser(hub, "sam")
    assert sam.get(search).status_code == 403

    # The spoke pulls the review chain and lists the notification.
    client = hub_client(net, hub)
    report = sync_round(client.runtime, client)
    assert report.refused == [], report.refused
    assert report.reviews_stored == 1, report
    olivia = client_of(spoke_app(net))
    assert login(olivia, "olivia").status_code == 302
    notices = words(olivia.get("/lookback/"))
    assert (
        f"{number} Material lot {lot} Supplier recall: endotoxin Infused 21 Nov Quinn Hub"
        in notices
    )
    assert "Look-back notifications" in words(olivia.get("/batches"))


def test_a_disposition_signed_after_the_release_reaches_the_spoke_in_a_later_round(net, batch, hub):
    from review_network import decide
    from support import user_ctx

    from mes.core.review import Decision
    from mes.services import lookback
    from mes.services.esign import Credentials

    decide(net, batch, Decision.RELEASED)
    client = hub_client(net, hub)
    assert sync_round(client.runtime, client).refused == []  # the release reaches the spoke
    lot = lot_of(net, batch)
    quinn = user_ctx(net.hub_ids["quinn"])
    with net.hub() as uow:
        opened = lookback.open_lookback(uow, quinn, "lot", lot, "Recall after release")
    with net.hub() as uow:
        lookback.dispose(
            uow, quinn, opened.id, batch, "notify", Credentials(PASSWORD, "quinn"),
            first_signing_in_session=True, reason="Tell the clinic",
        )  # fmt: skip
    report = sync_round(client.runtime, client)
    assert report.refused == [] and report.reviews_stored == 1, report
    olivia = client_of(spoke_app(net))
    assert login(olivia, "olivia").status_code == 302
    assert "Recall after release Tell the clinic" in words(olivia.get("/lookback/"))
    # Nothing new: the decided batch is asked about again, and nothing comes.
    assert sync_round(client.runtime, client).reviews_stored == 0
