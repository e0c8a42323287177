"""Results after release on the pages, through the real hub and spoke apps (SQLite, PostgreSQL).

A batch of a recipe with two pending results (sterility, VCN) is made at SPK1 and released at
the hub. At the hub, QC opens the review page (pending results, certification "provisional")
and enters a sterility result out of specification; the page and the network alerts show the
event, QA's final certification is refused with the gate's sentence until QA records the
physician's notification. At the spoke, once the review has come back, the batch page, the
board and the final label say "provisional"; QC enters a VCN out of specification there and the
page asks for the physician's notification.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from itsdangerous import URLSafeSerializer
from review_network import spoke_app
from support import PASSWORD
from sync_sites import CLI, SPOKE
from sync_sites import net as net  # the fixture
from test_network_pages import browser, words
from test_qa_pages import refusal, seen_seq
from test_results_after_release import released
from web_helpers import alerts, client_of, login, post_form, text

from mes.services import outbox, review

__all__ = ["net"]


def test_the_hub_review_page_takes_a_result_and_holds_final_certification_until_notified(
    net, make_app, tmp_path
):
    _site, batch_id = released(net, tmp_path)
    app = make_app("hub")
    page = f"/qa/batches/{batch_id}"
    quill = browser(app, "quill")  # QC at the hub
    shown = quill.get(page)
    assert shown.status_code == 200
    assert "After release Provisional — results pending" in words(shown)
    assert re.findall(r'data-pending="([^"]+)"', text(shown)) == ["sterility_final", "vcn"]
    assert "certified-final" not in text(shown)  # QA signs it, not QC
    growth = {"result": "sterility_final", "value": "Growth: S. epidermidis",
              "reference": "MB-118", "within": ""}  # fmt: skip
    answer = post_form(quill, f"{page}/results", {**growth, "seen_review_seq": seen_seq(shown)},
                       page=page)  # fmt: skip
    assert answer.status_code == 303, words(answer)
    shown = quill.get(page)
    assert 'data-after-release-event="sterility_final"' in text(shown)
    again = post_form(quill, f"{page}/results", {**growth, "seen_review_seq": seen_seq(shown)},
                      page=page)  # fmt: skip
    assert again.status_code == 409
    assert "is already recorded: Growth: S. epidermidis" in refusal(again)
    listed = quill.get("/network/alerts.json")
    assert listed.status_code == 403  # QC does not watch the network; QA does
    quinn = browser(app, "quinn")
    first = quinn.get("/network/alerts.json").get_json()["alerts"][0]
    assert first["category"] == "Result out of specification after release"
    assert first["value"] == "Sterility (14-day culture): Growth: S. epidermidis"
    queue = quinn.get("/qa/")  # the batch heads QA's queue, and its row says why
    assert queue.status_code == 200
    said = re.findall(r'data-field="after_release">([^<]+)<', text(queue))
    assert said == ["Result out of specification after release: Sterility (14-day culture) — "
                    "notify the treating physician"]  # fmt: skip
    shown = quinn.get(page)
    refused = post_form(quinn, f"{page}/certified-final",
                        {"esign_password": PASSWORD,
                         "seen_review_seq": seen_seq(shown)}, page=page)  # fmt: skip
    assert refused.status_code == 409
    assert "the treating physician's notification is not recorded" in refusal(refused)
    told_at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    notified = post_form(quinn, f"{page}/physician-notified",
                         {"result": "sterility_final", "physician": "Dr Ada Haem", "how": "phone",
                          "told_at": told_at, "esign_password": PASSWORD, "esign_username": "quinn",
                          "seen_review_seq": seen_seq(quinn.get(page))}, page=page)  # fmt: skip
    assert notified.status_code == 303, words(notified)
    shown = quinn.get(page)
    assert "data-after-release-event" not in text(shown)
    said = re.findall(r'data-field="after_release">([^<]+)<', text(quinn.get("/qa/")))
    assert said == ["Provisional: awaiting Vector copy number"]
    assert all(
        a["category"] != "Result out of specification after release"
        for a in quinn.get("/network/alerts.json").get_json()["alerts"]
    )


def test_the_spoke_says_provisional_and_takes_a_qc_result_and_the_physicians_notification(
    net, tmp_path
):
    site, batch_id = released(net, tmp_path)
    with net.hub() as uow:  # the review travels back, as a sync round carries it
        entries = review.review_updates(uow, SPOKE, {batch_id: 0})
    with net.spoke_uow() as uow:  # the spoke knows its hub (as 'mes spoke enroll' records)
        outbox.record_enrollment(uow, CLI, "http://hub.test", "HUB", net.hub_key.public.key_id)
    with net.spoke_uow() as uow:
        review.receive_review_entries(uow, datetime.now(UTC), entries)
    app = spoke_app(net)
    cora = client_of(app)
    cookie = URLSafeSerializer("sync-tests-spoke", salt="mes-terminal")
    cora.set_cookie("mes_terminal", cookie.dumps(site.terminal_id))
    assert login(cora, "cora").status_code == 302
    page = f"/batches/{batch_id}"
    shown = cora.get(page)
    assert 'data-certification="provisional"' in text(shown)
    assert "data-result-form" in text(shown)
    answer = post_form(cora, f"{page}/results",
                       {"result": "vcn", "value": "7.2", "reference": "PCR-9", "within": ""},
                       page=page)  # fmt: skip
    assert answer.status_code == 303, alerts(answer)
    shown = cora.get(page)
    assert 'data-after-release-event="vcn"' in text(shown)
    assert "data-notification-form" in text(shown)  # QC may record it too
    board = cora.get("/batches")
    assert 'data-certification="event"' in text(board)
    label = cora.get(f"{page}/label")
    assert label.status_code == 200
    assert "PROVISIONAL — results pending: Sterility (14-day culture)" in words(label)


def test_the_qa_queue_says_why_a_released_batch_is_still_there(net, make_app, tmp_path):
    """Walk 17: a provisional or out-of-specification batch read "Released" and nothing more,
    and the queue's "need QA's attention" did not count the event it puts first."""
    _site, batch_id = released(net, tmp_path)
    app = make_app("hub")
    quinn = browser(app, "quinn")
    queue = quinn.get("/qa/")
    row = re.search(r'<tr data-batch="[^"]+">.*?</tr>', text(queue), re.S).group(0)
    assert "Provisional: awaiting Sterility (14-day culture), Vector copy number" in words_of(row)
    assert "0 need QA's attention" in words(queue)
    page = f"/qa/batches/{batch_id}"
    quill = browser(app, "quill")
    growth = {"result": "sterility_final", "value": "Growth: S. epidermidis",
              "reference": "MB-118", "within": ""}  # fmt: skip
    shown = quill.get(page)
    post_form(quill, f"{page}/results", {**growth, "seen_review_seq": seen_seq(shown)}, page=page)
    queue = quinn.get("/qa/")
    row = re.search(r'<tr data-batch="[^"]+">.*?</tr>', text(queue), re.S).group(0)
    assert (
        "Result out of specification after release: Sterility (14-day culture) — notify the "
        "treating physician" in words_of(row)
    )
    assert "1 needs QA's attention" in words(queue)


def words_of(html_text: str) -> str:
    """A piece of a page as people read it."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", html_text)).split())


def test_qc_at_the_hub_finds_the_batches_awaiting_results_from_home(net, make_app, tmp_path):
    """Walk 17: QC at the hub had no way to a batch awaiting its results (the QA queue is
    QA's: 403; home and the menu offered nothing) but to type the batch's URL."""
    _site, batch_id = released(net, tmp_path)
    app = make_app("hub")
    quill = browser(app, "quill")
    home = text(quill.get("/"))
    assert 'href="/qa/results"' in home
    listed = quill.get("/qa/results")
    assert listed.status_code == 200
    row = re.search(r'<tr data-batch="[^"]+">.*?</tr>', text(listed), re.S).group(0)
    assert f'href="/qa/batches/{batch_id}#after-release"' in row
    assert "Provisional: awaiting Sterility (14-day culture), Vector copy number" in words_of(row)
    assert browser(app, "quinn").get("/qa/results").status_code == 200


def test_the_card_says_what_final_certification_waits_for(net, make_app, tmp_path):
    """Walk 17: with every result in and within specification the card still read
    "Provisional — results pending", and QA was offered the final certification while results
    were pending (to be refused on signing)."""
    _site, batch_id = released(net, tmp_path)
    app = make_app("hub")
    page = f"/qa/batches/{batch_id}"
    quinn = browser(app, "quinn")
    shown = quinn.get(page)
    assert "certified-final" not in text(shown)  # nothing to sign while results are pending
    assert (
        "QA certifies final once nothing keeps the release provisional: "
        "Sterility (14-day culture) is pending; Vector copy number is pending." in words(shown)
    )
    quill = browser(app, "quill")
    for result, value in (("sterility_final", "No growth"), ("vcn", "2.1")):
        entered = {"result": result, "value": value, "reference": "LAB-1", "within": ""}
        answer = post_form(quill, f"{page}/results",
                           {**entered, "seen_review_seq": seen_seq(quill.get(page))},
                           page=page)  # fmt: skip
        assert answer.status_code == 303, words(answer)
    shown = quinn.get(page)
    assert "After release Provisional — every result in: QA to certify final" in words(shown)
    assert "results pending" not in words(shown)
    assert "data-kept-provisional" not in text(shown)
    assert "certified-final" in text(shown)


def test_the_notification_form_says_how_to_type_when_and_the_card_names_the_result_out_of_spec(
    net, make_app, tmp_path
):
    """Walk 17: "When (date and time)" gave no format, and with every result in but one out
    of specification the card still read "Provisional — results pending"."""
    _site, batch_id = released(net, tmp_path)
    app = make_app("hub")
    page = f"/qa/batches/{batch_id}"
    quill = browser(app, "quill")
    for result, value, within in (("vcn", "2.1", ""), ("sterility_final", "Growth", "no")):
        entered = {"result": result, "value": value, "reference": "LAB-1", "within": within}
        post_form(quill, f"{page}/results",
                  {**entered, "seen_review_seq": seen_seq(quill.get(page))}, page=page)  # fmt: skip
    shown = words(browser(app, "quinn").get(page))
    assert "After release Provisional — a result out of specification" in shown
    assert "results pending" not in shown
    assert "When the physician was told (DD/MM/YYYY HH:MM, 24-hour clock)" in shown


def test_a_look_back_disposition_waits_for_the_physicians_notification(net, make_app, tmp_path):
    """Walk 17: with a result out of specification and the physician not told, QA signed a
    look-back disposition on the batch: the gate ("nothing else may be signed") let it by."""
    from sqlalchemy import select

    from mes.store.models import BatchUsage

    _site, batch_id = released(net, tmp_path)
    with net.hub() as uow:
        lot = uow.session.scalars(
            select(BatchUsage.identifier).where(
                BatchUsage.batch_id == batch_id, BatchUsage.kind == "lot"
            )
        ).first()
    app = make_app("hub")
    page = f"/qa/batches/{batch_id}"
    quill = browser(app, "quill")
    growth = {"result": "sterility_final", "value": "Growth", "reference": "MB-1", "within": "no"}
    post_form(quill, f"{page}/results", {**growth, "seen_review_seq": seen_seq(quill.get(page))},
              page=page)  # fmt: skip
    quinn = browser(app, "quinn")
    search = f"/network/lookback/?kind=lot&subject={lot}"
    opened = post_form(quinn, "/network/lookback/",
                       {"kind": "lot", "subject": lot, "reason": "Supplier recall"}, page=search)  # fmt: skip
    case_url = opened.headers["Location"]
    disposition = {"batch_id": batch_id, "disposition": "no_action", "reason": "Not affected",
                   "esign_password": PASSWORD, "esign_username": "quinn"}  # fmt: skip
    refused = post_form(quinn, case_url.rstrip("/") + "/dispositions", disposition, page=case_url)
    assert refused.status_code == 409
    assert "the treating physician's notification is not recorded" in refusal(refused)
    assert "data-disposition=" not in text(quinn.get(case_url))
