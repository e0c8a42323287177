"""The curve of a temperature excursion at the hub, through the real app (issue 17), on both
databases: the hub holds the spoke's ``logger_imported`` entry but never the file, and draws
the compact curve sealed in the entry on QA's deviation card and in the printed record PDF."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta

import pytest
from batch_helpers import Spoke
from logger_helpers import logger_csv, logger_recipe
from support import NOW, PASSWORD, user_ctx
from test_network_pages import browser, hub_app, people
from web_helpers import text

from mes.core.certificate import DocumentSigningKey
from mes.core.keys import SiteKey
from mes.core.lifecycle import Step
from mes.core.passwords import PasswordPolicy
from mes.core.site import Site
from mes.services import ingest, logger_files, outbox, recipes, spokes
from mes.services.document_certificate import write_document_key
from mes.services.esign import Credentials, acknowledge_accountability
from mes.store.engine import make_engine, session_factory
from mes.store.uow import UnitOfWork

__all__ = ["hub_app", "people"]


@pytest.fixture
def excursion_received(people, make_uow, tmp_path, sqlite_template, site_key):
    """Spoke SPK1 imports a logger file with an excursion; the hub ingests the batch's entries."""
    text_ = logger_recipe()
    for name in ("aaron", "sam", "quinn"):
        with make_uow() as uow:
            acknowledge_accountability(
                uow, user_ctx(people[name], at=NOW - timedelta(days=2)),
                Credentials(PASSWORD, name), first_signing_in_session=True,
            )  # fmt: skip
    with make_uow() as uow:
        version = recipes.import_recipe(uow, user_ctx(people["aaron"]), text_, "t.yaml").id
    for step, who in (
        (Step.SUBMIT, "aaron"),
        (Step.REVIEW, "sam"),
        (Step.APPROVE, "quinn"),
        (Step.MAKE_EFFECTIVE, "quinn"),
    ):
        with make_uow() as uow:
            recipes.sign_step(
                uow, user_ctx(people[who]), version, step, Credentials(PASSWORD, who),
                first_signing_in_session=True,
                **({"effective_from": NOW.date()} if step is Step.MAKE_EFFECTIVE else {}),
            )  # fmt: skip
    with make_uow() as uow:
        recipes.publish(uow, user_ctx(people["quinn"]), version, ["SPK1"])
    with make_uow() as uow:
        ticket = spokes.add_spoke(uow, user_ctx(people["ada"]), "SPK1", "Suite A", "Europe/London")
    spoke_file = tmp_path / "spoke.sqlite3"
    shutil.copyfile(sqlite_template, spoke_file)
    engine = make_engine(f"sqlite:///{spoke_file}")
    sessions = session_factory(engine)
    spoke_key = SiteKey.generate()

    def spoke_uow(role: str = "spoke", hub_key=None) -> UnitOfWork:
        site = Site(
            code="SPK1", name="Suite A", role="spoke", time_zone="Europe/London",
            key=spoke_key, password_policy=PasswordPolicy(), hub_key=site_key.public,
        )  # fmt: skip
        return UnitOfWork(sessions, site)

    site = Spoke(spoke_uow, site_key).set_up(text_)
    with make_uow() as uow:
        spokes.enroll(uow, NOW, "SPK1", ticket.code, spoke_key.public.pem().decode("ascii"))
    batch_id = site.start().state.id
    with site.uow() as uow:
        logger_files.import_logger_file(
            uow, site.ctx("olivia", NOW), batch_id, "check_bag", "transport_logger",
            "trip <1>.csv", logger_csv([5.0, 9.5, 12.5, 7.0]),
        )  # fmt: skip
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, NOW, batch_id, 0)
    with make_uow() as uow:
        ack = ingest.ingest_chunk(uow, NOW + timedelta(seconds=1), "SPK1", token)
    assert ack.stored == last
    yield batch_id
    engine.dispose()


def test_qa_sees_the_excursion_curve_on_the_review_page_and_in_the_record_pdf(
    hub_app, excursion_received, tmp_path
):
    batch_id = excursion_received
    quinn = browser(hub_app, "quinn")
    page = text(quinn.get(f"/qa/batches/{batch_id}"))
    cards = page.split('id="deviations"')[1]
    card = next(c for c in cards.split("<article")[1:] if "Temperature excursion in transport" in c)
    assert "data-curve" in card
    assert "Logger curve of &#39;trip &lt;1&gt;.csv&#39;" in card  # escaped
    assert "the full file is kept at the spoke" in card
    deviation = card.split('data-deviation="')[1].split('"')[0]
    url = f"/qa/batches/{batch_id}/deviations/{deviation}/curve.svg"
    assert url in card
    svg = quinn.get(url)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert "outside the window" in svg.get_data(as_text=True)
    assert svg.headers["Content-Security-Policy"].startswith("default-src 'none'")
    (tmp_path / "keys").mkdir(exist_ok=True)
    write_document_key(tmp_path, DocumentSigningKey.generate("TEST", "Test site", NOW))
    response = quinn.get(f"/qa/batches/{batch_id}/record.pdf")
    assert response.status_code == 200, text(response)
    pdf = tmp_path / "record.pdf"
    pdf.write_bytes(response.data)
    shown = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    words = " ".join(shown.stdout.split())
    assert "Logger curve of 'trip <1>.csv'" in words
    assert "the full file is kept at the spoke" in words
