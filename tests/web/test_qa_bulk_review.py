"""Review in bulk on the hub's QA pages, through the real app on SQLite and PostgreSQL.

The review page shows each exception's evidence inline (the entries involved: what was recorded
with its limits, who, when, on which terminal, each linked to the full record) and offers a tick
box on each exception still to review; the ticked ones are signed with one signature, the page
returns to the next exception still to review (not the top of the list), and each shows the one
signature. A settled or blocking finding among the ticked ones refuses the whole set. QA's home
offers the QA queue and the Network page; a batch in progress is "At the spoke", not blocked.
"""

from __future__ import annotations

import html
import re

from support import PASSWORD
from test_network_pages import browser, hub_app, people, received, words
from test_qa_pages import completed, finding_keys, finding_text, refusal, review_rows, seen_seq
from web_helpers import post_form, text

from mes.store.models import BatchReviewEntry

# The fixtures this module uses (named here so they count as used).
__all__ = ["completed", "hub_app", "people", "received"]


def ticks(response) -> dict[str, str]:
    """The tick boxes the page offers: exception key → the value the box sends."""
    return {
        value.rpartition("@")[0]: value
        for value in re.findall(
            r'<input type="checkbox" name="exception" value="([^"]+)" form="bulk-review"',
            text(response),
        )
    }


def bulk(client, batch_id: str, values: list[str], seen: str, **extra):
    page = f"/qa/batches/{batch_id}"
    data = {"exception": values, "seen_review_seq": seen, "esign_password": PASSWORD, **extra}
    return post_form(client, f"/qa/batches/{batch_id}/reviewed-together", data, page=page)


def test_each_exception_shows_its_entries_inline_with_a_link_to_the_full_record(hub_app, completed):
    batch_id, _number, _deviation = completed
    quinn = browser(hub_app, "quinn")
    response = quinn.get(f"/qa/batches/{batch_id}")
    value = next(k for k in finding_keys(response) if k.startswith("value:"))
    seq = value.partition(":")[2]
    said = finding_text(response, value)
    # The entry: what was recorded, against which limits, who, when and where.
    assert re.search(
        rf"Entry What Who When Terminal {seq} recorded Viability = 62\.0 % \(outside action "
        r"limits\) in 'Count cells' Limits: \S.* Olivia Tester \(olivia\) "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT \S",
        said,
    ), said
    assert f'href="/qa/batches/{batch_id}/record#entry-{seq}">{seq}</a>' in text(response)
    # A rubber stamp shows both signatures it is about: the performer's and the verifier's.
    stamp = next(k for k in finding_keys(response) if k.startswith("rubber-stamp:"))
    evidence = re.search(
        rf'data-finding="{stamp}">.*?<table class="evidence" data-evidence>(.*?)</table>',
        text(response),
        re.S,
    )
    assert evidence, words(response)
    rows = re.findall(r'<tr data-entry="(\d+)">', evidence.group(1))
    assert len(rows) == 2 and rows[1] == stamp.partition(":")[2]
    cells = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", evidence.group(1))).split())
    assert "signed as performed" in cells and "signed as verified" in cells


def test_ticked_exceptions_are_signed_with_one_signature_and_the_page_keeps_its_place(
    hub_app, completed, make_uow
):
    batch_id, _number, deviation = completed
    quinn = browser(hub_app, "quinn")
    opened = quinn.get(f"/qa/batches/{batch_id}")
    offered = ticks(opened)
    # Only what a "reviewed" signature settles is offered: not the deviation nor its value.
    assert offered and not any(k.startswith(("deviation:", "value:")) for k in offered)
    keys = list(offered)
    chosen = keys[:2] if len(keys) > 2 else keys
    done = bulk(quinn, batch_id, [offered[k] for k in chosen], seen_seq(opened),
                esign_username="quinn", note="Seen with the trend")  # fmt: skip
    assert done.status_code == 303
    # Back to the next exception still to review (or the category just finished), not the top.
    assert re.search(r"/qa/batches/[^#]+#(finding|category)-", done.headers["Location"])
    assert review_rows(make_uow) == 1
    page = quinn.get(f"/qa/batches/{batch_id}")
    for key in chosen:
        said = finding_text(page, key)
        assert re.search(
            r"Reviewed by Quinn Tester \(quinn\) · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT", said
        ), said
        if len(chosen) > 1:
            assert f"One signature for {len(chosen)} exceptions" in said
        assert "Note: Seen with the trend" in said
    assert not set(chosen) & set(ticks(page))
    with make_uow() as uow:
        [entry] = uow.session.query(BatchReviewEntry).all()
        assert entry.kind == "exceptions_reviewed"
    assert f"1 deviation is still open: {deviation}." in words(page)


def test_a_settled_finding_among_the_ticked_ones_refuses_the_whole_set(
    hub_app, completed, make_uow
):
    batch_id, _number, _deviation = completed
    quinn = browser(hub_app, "quinn")
    opened = quinn.get(f"/qa/batches/{batch_id}")
    value = next(k for k in finding_keys(opened) if k.startswith("value:"))
    values = [*ticks(opened).values(), f"{value}@whatever"]
    refused = bulk(quinn, batch_id, values, seen_seq(opened), esign_username="quinn")
    assert refused.status_code == 400
    assert "is settled by closing the deviation, not by marking it reviewed." in refusal(refused)
    assert review_rows(make_uow) == 0
    nothing = bulk(quinn, batch_id, [], seen_seq(opened), esign_username="quinn")
    assert nothing.status_code == 400
    assert refusal(nothing).startswith("No exception was chosen. Tick the exceptions")


def test_qa_home_offers_the_queue_and_the_network(hub_app, completed):
    quinn = browser(hub_app, "quinn")
    home = text(quinn.get("/"))
    assert re.search(r'href="/qa/" data-home="qa">QA queue<', home)
    assert re.search(r'href="/network/?" data-home="network">Network of sites<', home)
    assert 'data-home="qa"' not in text(browser(hub_app, "ada").get("/"))


def test_a_batch_in_progress_shows_at_the_spoke_not_blocked(hub_app, received):
    _site, number, _token = received
    quinn = browser(hub_app, "quinn")
    row = re.search(rf'<tr data-batch="{number}">(.*?)</tr>', text(quinn.get("/qa/")), re.S)
    assert row
    assert re.search(r'data-field="qa_state">At the spoke<', row.group(1))
    assert "data-blocked" not in row.group(1)
