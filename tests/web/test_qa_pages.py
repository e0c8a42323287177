"""The hub's QA pages through the real app, on SQLite and PostgreSQL.

A batch made at spoke SPK1 (its own database and key) reaches the hub as a signed chunk: the
count's viability is outside its action limits (a deviation, commented and acknowledged at the
spoke), the bag check was verified in the same second it was performed (a rubber stamp), and
the batch is complete. Only QA opens the queue, the review and the full record; the queue lists
the batch with its counts and filters it; the review page shows each exception; a signature with
a wrong password records nothing; a stale page is refused naming who acted; release is refused
while the deviation is open and signed once it is closed; a rejection needs a reason.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from support import NOW, PASSWORD, user_ctx
from test_batch_release import begin, finish
from test_network_pages import (  # the hub, its people and the batch it receives from SPK1
    browser,
    hub_app,
    people,
    received,
    words,
)
from web_helpers import login, post_form, text

from mes.services import batches, ingest, outbox
from mes.services.esign import Credentials, acknowledge_accountability
from mes.store.models import Batch as BatchRow
from mes.store.models import BatchReview, BatchReviewEntry, BatchSummary

# The network tests' fixtures this module uses (named here so they count as used).
__all__ = ["hub_app", "people", "received"]

LATER = NOW + timedelta(hours=3)


def refusal(response) -> str:
    """The refusal shown at the top of the review page."""
    found = re.search(r'<p class="error" role="alert" data-refusal>(.*?)</p>', text(response), re.S)
    assert found, words(response)
    return " ".join(html.unescape(found.group(1)).split())


def finding_keys(response) -> list[str]:
    return re.findall(r'data-finding="([^"]+)"', text(response))


def finding_text(response, key: str) -> str:
    """What the review page shows of one finding, in words."""
    item = re.search(rf'data-finding="{re.escape(key)}">(.*?)</article>', text(response), re.S)
    assert item, words(response)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", item.group(1))).split())


def to_review(response) -> list[str]:
    """The findings the page offers to mark reviewed (a "Mark reviewed" form each)."""
    return re.findall(r'<input type="hidden" name="exception" value="([^"]+)">', text(response))


def fresh(client, page: str, data: dict) -> dict:
    """``data`` with what the page shows now (the review's and the record's last entries)."""
    return {**data, "seen_review_seq": seen_seq(client.get(page))}


def seen_seq(response) -> str:
    found = re.search(r'name="seen_review_seq" value="(\d+\.\d+)"', text(response))
    assert found, words(response)
    return found.group(1)


@pytest.fixture
def quincy(create_user, make_uow) -> str:
    """A second QA reviewer at the hub (attested), to open the same review page."""
    quincy = create_user("quincy", roles=["qa"])
    with make_uow() as uow:
        acknowledge_accountability(
            uow, user_ctx(quincy, at=NOW - timedelta(days=2)),
            Credentials(PASSWORD, "quincy"), first_signing_in_session=True,
        )  # fmt: skip
    return quincy


@pytest.fixture
def completed(received, make_uow):
    """The network tests' batch, finished at the spoke and received whole: ID, number, deviation.

    At the spoke the bag check was verified in the second it was performed (a rubber stamp) and
    the count's viability is outside its action limits (a deviation, commented); the deviation
    is acknowledged, the other phases are done and the batch is signed complete.
    """
    return completed_at_the_spoke(received, make_uow)


def completed_at_the_spoke(
    received, make_uow, witness_at: str | None = None
) -> tuple[str, str, str]:
    """The ``completed`` batch (ID, number, deviation); with ``witness_at``, Sam signs it
    complete as a witness at that user's session (her panel) instead of at his own."""
    site, number, _token = received
    with site.uow() as uow:
        batch_id = uow.session.query(BatchRow.id).filter_by(number=number).scalar()
    [deviation] = site.view(batch_id).batch.state.deviations
    site.acknowledge(batch_id, deviation)
    site.do_culture_and_harvest(batch_id, at=LATER)
    ctx, credentials = site.ctx("sam", LATER), Credentials(PASSWORD, "sam")
    if witness_at is not None:
        ctx = replace(ctx, in_session_of=site.ids[witness_at])
        credentials = Credentials(PASSWORD, "sam", witness=True)
    with site.uow() as uow:
        batches.complete_batch(uow, ctx, batch_id, credentials, first_signing_in_session=True)
    with site.uow() as uow:  # from the start: what the hub holds already is stored once
        token, _first, last = outbox.chunk_after(uow, LATER, batch_id, 0)
    with make_uow() as uow:
        ack = ingest.ingest_chunk(uow, LATER + timedelta(seconds=1), "SPK1", token)
    assert ack.last_seq == last
    return batch_id, number, deviation


def review_rows(make_uow) -> int:
    with make_uow() as uow:
        return uow.session.query(BatchReviewEntry).count()


def sign_review(client, batch_id: str, key: str, seen: str, password: str = PASSWORD, **extra):
    page = f"/qa/batches/{batch_id}"
    data = {"exception": key, "seen_review_seq": seen, "esign_password": password, **extra}
    return post_form(client, f"/qa/batches/{batch_id}/reviewed", data, page=page)


# --- who may ------------------------------------------------------------------------------------


def test_only_qa_opens_the_queue_the_review_and_the_record(hub_app, completed):
    batch_id, _number, _deviation = completed
    pages = ("/qa/", f"/qa/batches/{batch_id}", f"/qa/batches/{batch_id}/record")
    for outsider in ("ada", "sam", "aaron", "otto"):
        client = browser(hub_app, outsider)
        assert [client.get(p).status_code for p in pages] == [403, 403, 403], outsider
        assert ">QA</a>" not in text(client.get("/"))
        refused = post_form(
            client, f"/qa/batches/{batch_id}/released", {"esign_password": PASSWORD}
        )
        assert refused.status_code == 403
    quinn = browser(hub_app, "quinn")
    assert ">QA</a>" in text(quinn.get("/"))
    assert [quinn.get(p).status_code for p in pages] == [200, 200, 200]
    assert quinn.get("/qa/batches/no-such-batch").status_code == 404


# --- the queue ----------------------------------------------------------------------------------


def test_the_queue_lists_the_received_batch_with_its_counts_and_filters_it(hub_app, completed):
    batch_id, number, _deviation = completed
    quinn = browser(hub_app, "quinn")
    response = quinn.get("/qa/")
    page = text(response)
    assert re.search(r'data-chip="awaiting_review"[^>]*>Awaiting review <span[^>]*>1<', page)
    assert re.search(r'data-chip="released"[^>]*>Released <span[^>]*>0<', page)
    row = re.search(rf'<tr data-batch="{number}">(.*?)</tr>', page, re.S)
    assert row, page
    cells = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row.group(1))).split())
    assert cells.startswith(f"{number} SPK1 BATCH-TEST v1 batch complete Awaiting review")
    assert re.search(r'data-field="open_deviations">1<', row.group(1))
    assert re.search(r'data-field="unreviewed">(\d+)<', row.group(1)).group(1) != "0"
    assert "data-blocked" not in row.group(1)
    assert f'href="/qa/batches/{batch_id}"' in row.group(1)

    def listed(query: str) -> bool:
        answer = quinn.get(f"/qa/?{query}")
        assert answer.status_code == 200
        return f'data-batch="{number}"' in text(answer)

    assert listed("site=SPK1") and not listed("site=SPK2")
    assert listed("product=BATCH-TEST") and not listed("product=OTHER")
    assert listed("state=awaiting_review") and not listed("state=released")
    assert listed("age=0") and not listed("age=100000")
    assert "No batch matches these filters." in words(quinn.get("/qa/?state=rejected"))
    bad = quinn.get("/qa/?state=lost")
    assert bad.status_code == 400 and "'lost' is not a QA state." in words(bad)
    assert quinn.get("/qa/?age=soon").status_code == 400


def test_the_queue_says_when_summaries_were_computed_with_other_review_settings(
    hub_app, completed, make_uow
):
    """After a [review] change the stored exception counts may be stale: the queue says so."""
    quinn = browser(hub_app, "quinn")
    assert "data-other-settings" not in text(quinn.get("/qa/"))
    with make_uow() as uow:  # as if computed before the [review] settings changed
        uow.session.execute(BatchSummary.__table__.update().values(review_digest="0" * 16))
        uow.commit()
    page = text(quinn.get("/qa/"))
    found = re.search(r"<p[^>]*data-other-settings>(.*?)</p>", page, re.S)
    assert found, page
    assert html.unescape(found.group(1)) == (
        "1 batch summary was computed with other review settings: the exception counts may be "
        "stale; run `mes network rebuild`."
    )


# --- the review page ----------------------------------------------------------------------------


def test_the_review_page_opens_on_the_verdict_and_shows_each_finding(hub_app, completed):
    batch_id, _number, deviation = completed
    quinn = browser(hub_app, "quinn")
    response = quinn.get(f"/qa/batches/{batch_id}")
    page = words(response)
    assert page.index("Not ready for release") < page.index("Exceptions")
    assert f"1 deviation is still open: {deviation}." in page
    keys = finding_keys(response)
    assert f"deviation:{deviation}" in keys
    assert any(k.startswith("value:") for k in keys)
    assert any(k.startswith("rubber-stamp:") for k in keys)
    assert any(k.startswith("comment:") for k in keys)
    categories = re.findall(r'data-category="([a-z_]+)"', text(response))
    assert categories.index("deviation") < categories.index("action_limit")
    assert categories.index("action_limit") < categories.index("rubber_stamp")
    assert "Viability = 62.0 % in 'Count cells'" in page
    # The value outside action limits raised the deviation: closing it settles the value too.
    [value] = [k for k in keys if k.startswith("value:")]
    said = finding_text(response, value)
    assert (
        "Outside action limits; recorded by Olivia Tester (olivia). "
        f"It raised deviation {deviation}: settled when that deviation is closed."
    ) in said
    assert f"Settled by investigating and closing deviation {deviation}" in said
    assert "Mark reviewed" not in said
    assert f'href="#deviation-{deviation}"' in text(response)
    assert f"Settled by investigating and closing deviation {deviation}" in finding_text(
        response, f"deviation:{deviation}"
    )
    assert f'href="/qa/batches/{batch_id}/record#entry-' in text(response)
    # All but the deviation and the value it raised are marked reviewed, one button each.
    settled = {f"deviation:{deviation}", value}
    assert sorted(to_review(response)) == sorted(k for k in keys if k not in settled)
    assert page.count("Mark reviewed") == len(keys) - 2
    # What the spoke recorded of the deviation, and the hub's workflow form.
    assert "Value outside action limits · Count cells" in page
    assert "Comment: Low viability reported to QA" in page
    assert "Acknowledgement: Acknowledged by Sam Tester (sam)" in page
    assert "Save the investigation" in page and f"Close deviation {deviation}" in page
    assert "Release the batch" in page and "Reject the batch" in page


def test_the_full_record_shows_the_procedure_and_every_entry_with_an_anchor(hub_app, completed):
    batch_id, number, _deviation = completed
    quinn = browser(hub_app, "quinn")
    response = quinn.get(f"/qa/batches/{batch_id}/record")
    page = words(response)
    assert f"Batch record {number}" in page
    assert page.index("Check the bag") < page.index("Count cells") < page.index("Harvest")
    assert "Viability 62.0 % " in page and "Outside action limits" in page
    assert "Sampling syringe (MAT-SYRINGE), lot LOT-SYR-001" in page
    assert "Performed by Olivia Tester (olivia)" in page
    entries = re.findall(r'<tr id="entry-(\d+)"', text(response))
    assert entries == [str(n) for n in range(1, len(entries) + 1)] and len(entries) > 20
    assert "Nothing recorded by QA yet." in page
    assert f'href="/qa/batches/{batch_id}"' in text(response)


# --- signing ------------------------------------------------------------------------------------


def test_marking_reviewed_needs_the_right_password_and_then_shows_the_manifestation(
    hub_app, completed, make_uow
):
    batch_id, _number, _deviation = completed
    quinn = browser(hub_app, "quinn")
    opened = quinn.get(f"/qa/batches/{batch_id}")
    # The value outside action limits is settled by closing its deviation: not marked reviewed.
    value = next(k for k in finding_keys(opened) if k.startswith("value:"))
    assert value not in to_review(opened)
    settled = sign_review(quinn, batch_id, value, seen_seq(opened), esign_username="quinn")
    assert settled.status_code == 400
    assert "is settled by closing the deviation, not by marking it reviewed." in refusal(settled)
    assert review_rows(make_uow) == 0
    key = next(k for k in to_review(opened) if k.startswith("rubber-stamp:"))
    wrong = sign_review(
        quinn, batch_id, key, seen_seq(opened), password="not-my-password", esign_username="quinn"
    )
    assert wrong.status_code == 401
    assert "password" in refusal(wrong).lower()
    assert review_rows(make_uow) == 0
    done = sign_review(
        quinn, batch_id, key, seen_seq(opened), esign_username="quinn", note="Within trend"
    )
    assert done.status_code == 303
    page = quinn.get(f"/qa/batches/{batch_id}")
    said = finding_text(page, key)
    assert re.search(
        r"Reviewed by Quinn Tester \(quinn\) · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT", said
    ), said
    assert "Note: Within trend" in said and "Mark reviewed" not in said
    assert key not in to_review(page)
    assert review_rows(make_uow) == 1
    again = sign_review(quinn, batch_id, key, seen_seq(page))
    assert again.status_code == 400 and "already reviewed by Quinn Tester" in refusal(again)
    assert review_rows(make_uow) == 1


def test_a_stale_page_is_refused_naming_who_acted(hub_app, completed, quincy, make_uow):
    batch_id, _number, _deviation = completed
    quinn, quincy = browser(hub_app, "quinn"), browser(hub_app, "quincy")
    stale = quincy.get(f"/qa/batches/{batch_id}")  # Quincy opens the page first
    keys = to_review(stale)  # neither the deviation nor the value it raised
    assert len(keys) >= 2 and not any(k.startswith(("deviation:", "value:")) for k in keys)
    assert (
        sign_review(quinn, batch_id, keys[0], seen_seq(stale), esign_username="quinn").status_code
        == 303
    )
    refused = sign_review(quincy, batch_id, keys[1], seen_seq(stale), esign_username="quincy")
    assert refused.status_code == 400
    assert "changed since you opened it by Quinn Tester at" in refusal(refused)
    assert review_rows(make_uow) == 1


def test_release_is_refused_while_the_deviation_is_open_and_signed_once_it_is_closed(
    hub_app, completed, make_uow
):
    batch_id, number, deviation = completed
    quinn = browser(hub_app, "quinn")
    page = f"/qa/batches/{batch_id}"
    opened = quinn.get(page)
    # Every exception but the deviation and the value outside action limits that raised it.
    value = next(k for k in finding_keys(opened) if k.startswith("value:"))
    keys = to_review(opened)
    assert sorted(keys) == sorted(
        k for k in finding_keys(opened) if k not in (value, f"deviation:{deviation}")
    )
    for key in keys:
        latest = quinn.get(page)
        assert (
            sign_review(quinn, batch_id, key, seen_seq(latest), esign_username="quinn").status_code
            == 303
        )
    assert to_review(quinn.get(page)) == []
    release = {"esign_password": PASSWORD}
    refused = post_form(
        quinn, f"{page}/released", {**release, "seen_review_seq": seen_seq(quinn.get(page))},
        page=page,
    )  # fmt: skip
    assert refused.status_code == 409
    assert f"cannot be released: 1 deviation is still open: {deviation}." in refusal(refused)
    assert "not reviewed" not in refusal(refused)
    # Closing before the investigation is complete is refused, naming what is missing.
    early = post_form(
        quinn, f"{page}/deviations/{deviation}/close", fresh(quinn, page, release), page=page
    )
    assert early.status_code == 400
    assert "Impact assessment, Root cause missing" in refusal(early)
    assessment = {
        "classification": "major",
        "description": "Viability 62 % at the count, below the action limit of 70 %.",
        "impact": "Dose recalculated on viable cells; no impact on identity.",
        "root_cause": "Transport delay of the apheresis bag.",
        "capa": "",
    }
    saved = post_form(
        quinn, f"{page}/deviations/{deviation}/assessment", fresh(quinn, page, assessment),
        page=page,
    )  # fmt: skip
    assert saved.status_code == 303
    no_capa = post_form(
        quinn, f"{page}/deviations/{deviation}/close", fresh(quinn, page, release), page=page
    )
    assert "CAPA reference (required for a major or critical deviation)" in refusal(no_capa)
    saved = post_form(
        quinn, f"{page}/deviations/{deviation}/assessment",
        fresh(quinn, page, {**assessment, "capa": "CAPA-2026-017"}), page=page,
    )  # fmt: skip
    assert saved.status_code == 303
    reviewed = words(quinn.get(page))
    assert (
        "Classification: — → major" in reviewed and "CAPA reference: — → CAPA-2026-017" in reviewed
    )
    closed = post_form(
        quinn, f"{page}/deviations/{deviation}/close", fresh(quinn, page, release), page=page
    )
    assert closed.status_code == 303
    assert re.search(
        r"Closure: Closed by Quinn Tester \(quinn\) · [\d-]+ [\d:]+ GMT", words(quinn.get(page))
    )
    ready = quinn.get(page)
    assert "Ready for release" in words(ready)
    # Closing the deviation settled the value it raised, with no signature of its own.
    said = finding_text(ready, value)
    assert f"Settled: deviation {deviation} is investigated and closed." in said
    assert "Reviewed by" not in said
    assert review_rows(make_uow) == len(keys) + 3  # two assessments and the closure
    released = post_form(
        quinn, f"{page}/released", {**release, "seen_review_seq": seen_seq(ready)}, page=page
    )
    assert released.status_code == 303
    after = words(quinn.get(page))
    assert re.search(
        rf"Released Batch {number}: Released by Quinn Tester \(quinn\) · [\d-]+ [\d:]+ GMT", after
    ), after
    assert "Mark reviewed" not in after and "Release the batch" not in after
    with make_uow() as uow:
        assert uow.session.get(BatchReview, batch_id).decision == "released"
    queue = text(quinn.get("/qa/?state=released"))
    assert f'data-batch="{number}"' in queue
    record = words(quinn.get(f"{page}/record"))
    assert "Disposition Released" in record and "released the batch" in record


def test_a_batch_dated_two_weeks_after_the_hub_received_it_is_never_released_and_the_page_says_why(
    hub_app, received, make_uow
):
    site, _number, _token = received
    ahead = NOW + timedelta(days=14)  # the spoke's clock two weeks ahead while it made the batch
    batch_id, number = begin(site, ahead)
    site.do_count(batch_id, at=ahead)
    finish(site, batch_id, ahead)
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, ahead, batch_id, 0)
    with make_uow() as uow:
        assert ingest.ingest_chunk(uow, NOW + timedelta(days=1), "SPK1", token).flagged
    quinn = browser(hub_app, "quinn")
    page = f"/qa/batches/{batch_id}"
    opened = quinn.get(page)
    assert finding_keys(opened)[0] == "clock-ahead:1" and "clock-ahead:1" not in to_review(opened)
    shown = finding_text(opened, "clock-ahead:1")
    assert re.match(
        rf"Entries 1–{last} dated after the hub received them Entries 1–{last} are dated after the "
        r"hub received them, up to 13 days: entry \d+ is dated 2026-12-05 12:00 UTC, 13 days after "
        r"the hub received it \(2026-11-22 09:00 UTC\); at most 300 s of clock difference is "
        r"allowed\. Nobody records an event before it happens",
        shown,
    ), shown
    assert "does not clear and cannot be marked reviewed" in shown
    for key in to_review(opened):
        sign_review(quinn, batch_id, key, seen_seq(quinn.get(page)), esign_username="quinn")
    refused = post_form(
        quinn, f"{page}/released",
        {"esign_password": PASSWORD, "seen_review_seq": seen_seq(quinn.get(page))}, page=page,
    )  # fmt: skip
    assert refused.status_code == 409
    assert f"Batch {number} cannot be released" in refusal(refused)
    assert "13 days after the hub received it" in refusal(refused)
    assert review_rows(make_uow) == len(to_review(opened))  # the reviews, and no release


def test_a_rejection_needs_a_reason(hub_app, completed, make_uow):
    batch_id, _number, _deviation = completed
    quinn = browser(hub_app, "quinn")
    page = f"/qa/batches/{batch_id}"
    unsaid = post_form(
        quinn, f"{page}/rejected", fresh(quinn, page, {"esign_password": PASSWORD, "reason": " "}),
        page=page,
    )  # fmt: skip
    assert unsaid.status_code == 400
    assert "A rejection needs a reason." in refusal(unsaid)
    assert review_rows(make_uow) == 0
    rejected = post_form(
        quinn, f"{page}/rejected",
        fresh(quinn, page, {"esign_password": PASSWORD, "esign_username": "quinn",
                            "reason": "Viability too low for the dose."}), page=page,
    )  # fmt: skip
    assert rejected.status_code == 303
    after = words(quinn.get(page))
    assert "Rejected" in after and "Reason: Viability too low for the dose." in after
    assert re.search(r"Rejected by Quinn Tester \(quinn\)", after)


@pytest.mark.parametrize(
    "age", ["\u00b2", "1" * 5000, "-1"], ids=["superscript-2", "5000-digits", "negative"]
)
def test_an_age_in_unicode_digits_or_thousands_of_digits_is_refused_400(client, create_user, age):
    create_user("quinn", roles=["qa"])
    login(client, "quinn")
    response = client.get(f"/qa/?age={age}")
    assert response.status_code == 400
    assert "The age is a whole number of days" in text(response)
