"""Dates typed on the start form and the masters pages: text boxes in the site's order
(Europe/London: DD/MM/YYYY), read by mes.core.dates, never the browser's US-order picker; a date
that cannot be read is refused at its field, with what was typed kept."""

from __future__ import annotations

import re
from datetime import date

import pytest
from batch_helpers import COUNTER, DIN_TYPED, PATIENT, TEST_RECIPE, spoke
from spoke_pages import browser, sign_form
from sqlalchemy import select
from web_helpers import location, post_form, text

from mes.store.models import Equipment, MaterialLot

# The test recipe with the patient's date of birth in its chain of identity.
RECIPE_WITH_BIRTH_DATE = TEST_RECIPE.replace(
    "  patient_id: {label: Patient identifier, kind: identifier}\n",
    "  patient_id: {label: Patient identifier, kind: identifier}\n"
    "  patient_dob: {label: Patient date of birth, kind: date}\n",
)


@pytest.fixture
def site(make_uow):
    assert RECIPE_WITH_BIRTH_DATE != TEST_RECIPE
    return spoke(make_uow, recipe_text=RECIPE_WITH_BIRTH_DATE)


@pytest.fixture
def app(make_app, site):
    return make_app("spoke", hub_key=site.hub_key.public)


def _input(page: str, name: str) -> str:
    found = re.search(rf'<input name="{re.escape(name)}"[^>]*>', page)
    assert found, name
    return found.group(0)


def _start(client, dob: str):
    return post_form(
        client,
        "/batches/new",
        {
            "recipe": "BATCH-TEST",
            "coi:din": DIN_TYPED,
            "coi:patient_id": PATIENT,
            "coi:patient_dob": dob,
            **sign_form("olivia"),
        },
        page="/batches/new?recipe=BATCH-TEST",
    )


def test_the_start_form_asks_for_the_date_of_birth_in_the_site_order(app, site):
    olivia = browser(app, site, "olivia")
    field = _input(
        olivia.get("/batches/new?recipe=BATCH-TEST").get_data(as_text=True), "coi:patient_dob"
    )
    assert 'type="date"' not in field
    assert 'placeholder="DD/MM/YYYY"' in field and "data-scan" in field


def test_a_date_of_birth_typed_day_first_starts_the_batch(app, site):
    olivia = browser(app, site, "olivia")
    started = _start(olivia, "17/05/1970")
    assert started.status_code == 303, text(started)
    batch_page = text(olivia.get(location(started)))
    assert "1970-05-17" in batch_page or "17/05/1970" in batch_page


def test_a_date_of_birth_in_us_order_is_refused_at_its_field_and_kept(app, site):
    olivia = browser(app, site, "olivia")
    refused = _start(olivia, "05/17/1970")
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert 'value="05/17/1970"' in _input(page, "coi:patient_dob")
    error = page.split('name="coi:patient_dob"')[1].split("</label>")[0]
    assert "field-error" in error and "DD/MM/YYYY" in error


def test_a_lot_expiry_is_read_in_the_site_order(app, site, make_uow):
    sam = browser(app, site, "sam")
    field = _input(sam.get("/materials").get_data(as_text=True), "expiry")
    assert 'type="date"' not in field and 'placeholder="DD/MM/YYYY"' in field
    received = post_form(
        sam,
        "/materials/lots",
        {"material_code": "MAT-SYRINGE", "lot_number": "LOT-NEW-1", "expiry": "05/12/2030"},
        page="/materials",
    )
    assert received.status_code == 303, text(received)
    with make_uow() as uow:
        lot = uow.session.execute(
            select(MaterialLot).where(MaterialLot.lot_number == "LOT-NEW-1")
        ).scalar_one()
        assert lot.expiry == date(2030, 12, 5)


def test_a_lot_expiry_that_is_not_a_date_is_refused_at_the_field(app, site, make_uow):
    sam = browser(app, site, "sam")
    refused = post_form(
        sam,
        "/materials/lots",
        {"material_code": "MAT-SYRINGE", "lot_number": "LOT-NEW-2", "expiry": "31/02/2030"},
        page="/materials",
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    at_field = page.split('name="expiry"')[1].split("</label>")[0]
    assert 'value="31/02/2030"' in _input(page, "expiry")
    assert (
        "field-error" in at_field
        and "Expiry: &#39;31/02/2030&#39; is not a date of the calendar" in at_field
    )
    with make_uow() as uow:
        assert (
            uow.session.execute(
                select(MaterialLot).where(MaterialLot.lot_number == "LOT-NEW-2")
            ).scalar_one_or_none()
            is None
        )


def test_calibration_dates_are_read_in_the_site_order(app, site, make_uow):
    sam = browser(app, site, "sam")
    field = _input(sam.get("/equipment").get_data(as_text=True), "calibration_due")
    assert 'type="date"' not in field and 'placeholder="DD/MM/YYYY"' in field
    registered = post_form(
        sam,
        "/equipment",
        {"equipment_id": "EQ-NEW-1", "equipment_class": "cell_counter", "name": "Counter 2",
         "location": "Suite A", "calibration_due": "01/06/2030"},
        page="/equipment",
    )  # fmt: skip
    assert registered.status_code == 303, text(registered)
    logbook = f"/equipment/{COUNTER}"
    assert 'placeholder="DD/MM/YYYY"' in _input(sam.get(logbook).get_data(as_text=True), "next_due")
    recorded = post_form(
        sam,
        f"{logbook}/calibration",
        {"certificate": "CERT-9", "next_due": "02/07/2030"},
        page=logbook,
    )
    assert recorded.status_code == 303, text(recorded)
    refused = post_form(
        sam,
        f"{logbook}/calibration",
        {"certificate": "CERT-10", "next_due": "7/2/30"},
        page=logbook,
    )
    assert refused.status_code == 422
    at_field = refused.get_data(as_text=True).split('name="next_due"')[1].split("</label>")[0]
    assert "field-error" in at_field and "year that is not written in full" in at_field
    with make_uow() as uow:
        due = {e.id: e.calibration_due for e in uow.session.execute(select(Equipment)).scalars()}
    assert due["EQ-NEW-1"] == date(2030, 6, 1) and due[COUNTER] == date(2030, 7, 2)
