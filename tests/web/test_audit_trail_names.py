"""The audit trail at a spoke reads as people know the records (issue 15, item 11).

Records are named by their business identity (a recipe version as "BATCH-TEST v1", a lot by its
number, a user by their user ID, a batch by its number), never by an internal ID; the sign-ins
that fill a spoke's trail are hidden unless asked for; a row about a batch leads to the batch's
events. On SQLite and PostgreSQL, through the real app.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

from batch_helpers import LOT, NOW
from spoke_pages import app, browser, site, start_batch
from web_helpers import text

from mes.core.audit import Actor
from mes.services.audit import record_entry
from mes.services.context import Context
from mes.services.labels import LABEL_PRINTED, LABEL_RECORD_TYPE
from mes.store.models import Batch as BatchRow
from mes.store.models import InstalledRecipe, MaterialLot

__all__ = ["app", "site"]  # the fixtures of the spoke's pages (spoke_pages)


def what_column(page: str) -> list[str]:
    """The 'What' cell (action, record type and the record's name) of each row, in words."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    cells = [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row[3])).split())
        for row in cells
        if len(row) == 7
    ]


def batch_with_its_label_printed(app, site) -> tuple[str, str]:
    """A batch Olivia started, its label printed by Sam 5 minutes later: (its ID, its number)."""
    batch_id = start_batch(browser(app, site, "olivia"))
    with site.uow() as uow:
        number = uow.session.get(BatchRow, batch_id).number
        ctx = Context.command_line(NOW + timedelta(minutes=5), "tester", "testhost")
        record_entry(
            uow, ctx, Actor(site.ids["sam"], "sam", "Sam Tester"), LABEL_PRINTED,
            LABEL_RECORD_TYPE, batch_id,
        )  # fmt: skip
        uow.commit()
    return batch_id, number


def test_records_are_named_as_people_know_them_not_by_their_internal_id(app, site):
    quinn = browser(app, site, "quinn")
    page = text(quinn.get("/admin/audit?sign_ins=show"))
    rows = what_column(page)
    with site.uow() as uow:
        installed = uow.session.query(InstalledRecipe).one()
        lot = uow.session.query(MaterialLot).filter_by(lot_number=LOT).one()
    assert "recipe version installed installed-recipe BATCH-TEST v1" in rows
    assert f"material lot received material-lot {LOT} (MAT-SYRINGE)" in rows
    assert any(r.startswith("signed: acknowledged esign-attestation olivia") for r in rows)
    assert "equipment registered equipment CC-01 (Cell Counter)" in rows
    assert "terminal registered terminal Suite A 1" in rows
    # the internal IDs are no longer the name (kept only as the name's tooltip)
    assert not any(installed.id in r or lot.id in r or site.ids["olivia"] in r for r in rows)


def test_the_record_type_filter_shows_only_that_kind_of_record(app, site):
    quinn = browser(app, site, "quinn")
    page = quinn.get("/admin/audit?record_type=material-lot")
    assert page.status_code == 200
    rows = what_column(text(page))
    assert rows and all(" material-lot " in r for r in rows)


def test_sign_ins_are_hidden_by_default_at_the_spoke_and_shown_on_request(app, site):
    quinn = browser(app, site, "quinn")
    browser(app, site, "olivia")
    hidden = text(quinn.get("/admin/audit"))
    assert "sign-ins hidden" in hidden
    assert not any(r.startswith("logged in") for r in what_column(hidden))
    assert '<option value="hide" selected>Hidden</option>' in hidden
    shown = what_column(text(quinn.get("/admin/audit?sign_ins=show")))
    assert "logged in user olivia" in shown and "logged in user quinn" in shown
    # the filter holds on the next page of the same view and combines with the others
    only = what_column(text(quinn.get("/admin/audit?sign_ins=show&record_type=user")))
    assert only and all(" user " in r for r in only)


def test_a_row_about_a_batch_names_its_number_and_leads_to_the_batchs_events(app, site):
    batch_id, number = batch_with_its_label_printed(app, site)
    quinn = browser(app, site, "quinn")
    page = text(quinn.get(f"/admin/audit?record_type={LABEL_RECORD_TYPE}"))
    assert what_column(page) == [f"{LABEL_PRINTED} {LABEL_RECORD_TYPE} {number} The batch's events"]
    link = re.search(r'<a class="batch-events" href="([^"]+)"', page).group(1)
    assert link == f"/batches/{batch_id}/record"
    events = quinn.get(link)
    assert events.status_code == 200
    assert "started the batch" in text(events)


def test_an_administrator_who_may_not_read_batches_gets_no_dead_link(app, site):
    batch_with_its_label_printed(app, site)
    site.add_person("ada", ["admin"])
    ada = browser(app, site, "ada")
    page = text(ada.get(f"/admin/audit?record_type={LABEL_RECORD_TYPE}"))
    assert len(what_column(page)) == 1
    assert "batch-events" not in page


def test_the_record_filter_takes_a_batch_number_or_a_recipe_version_by_name(app, site):
    batch_id, number = batch_with_its_label_printed(app, site)
    quinn = browser(app, site, "quinn")
    page = text(quinn.get(f"/admin/audit?record_id={number}"))
    assert what_column(page) == [f"{LABEL_PRINTED} {LABEL_RECORD_TYPE} {number} The batch's events"]
    # the batch's own events (values, scans, signatures) are one link away
    assert f"The events of batch {number}" in page
    assert page.count(f'href="/batches/{batch_id}/record"') == 2
    recipe = what_column(text(quinn.get("/admin/audit?record_id=BATCH-TEST+v1")))
    assert recipe == ["recipe version installed installed-recipe BATCH-TEST v1"]
