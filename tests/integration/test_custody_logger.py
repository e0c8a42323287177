"""A custody transfer with the shipment's logger file, on SQLite and PostgreSQL (issue 17).

The file uploaded with the transfer is read by the logger's core parser, checked against the
window the recipe declares for shipments (``custody: window``), kept as received under its
SHA-256, and its SHA-256, summary, findings and compact curve are bound into the signed record;
an excursion raises a TEMPERATURE_EXCURSION deviation whose curve is drawn from the entry. A
refused file (or a recipe without the window) writes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from batch_checks import assert_sound, entries, unchanged_by
from batch_helpers import spoke
from logger_helpers import custody_recipe, logger_csv
from support import NOW, PASSWORD
from sync_sites import net

from mes.core.errors import LoggerFileRefused
from mes.core.phases.temperature_log import curve_caption, excursion_import
from mes.services import custody
from mes.services.esign import Credentials
from mes.services.logger_chart import compact_curve_svg
from mes.store import logger_files

__all__ = ["net"]  # the hub and spoke fixture (sync_sites)

LATER = NOW + timedelta(hours=1)


def receive(site, batch_id, content: bytes | None, name: str = "shipper 7.csv"):
    with site.uow() as uow:
        return custody.transfer_custody(
            uow, site.ctx("olivia", LATER), batch_id, side="received",
            material="starting_material", place="Goods-in", container="SHP-0007",
            own_organisation="", other_organisation="Lyon Collection Centre",
            other_name="Jean Courier",
            logger_file=None if content is None else (name, content),
            credentials=Credentials(PASSWORD, "olivia"), first_signing_in_session=True,
        )  # fmt: skip


def kept(site, sha256: str) -> bytes | None:
    with site.uow() as uow:
        return logger_files.file_content(uow.session, sha256)


def test_a_clean_file_is_kept_and_its_digest_and_findings_signed_with_the_transfer(make_uow):
    site = spoke(make_uow, recipe_text=custody_recipe())
    batch_id = site.start().state.id
    content = logger_csv([4.0, 5.5, 3.1], step_minutes=10)
    batch = receive(site, batch_id, content)
    [entry] = [e for e in entries(site, batch_id) if e.kind == "custody_transferred"]
    logger = entry.payload["record"]["logger"]
    assert logger["sha256"] == hashlib.sha256(content).hexdigest()
    assert logger["file_name"] == "shipper 7.csv"
    found = logger["findings"]
    assert (found["min"], found["max"], found["minutes_outside"]) == ("3.1", "5.5", "0")
    assert found["excursions"] == [] and found["within_window"] is True
    assert found["window"] == {"low": "2", "high": "8", "unit": "°C", "max_minutes_outside": "0"}
    assert "lowest 3.1 °C, highest 5.5 °C, 0 min outside 2–8 °C" in logger["summary"]
    assert len(found["curve"]["points"]) == 3
    assert kept(site, logger["sha256"]) == content
    assert not batch.state.deviations
    assert_sound(site, batch_id)


def test_an_excursion_raises_a_deviation_with_the_curve_from_the_entry(make_uow):
    site = spoke(make_uow, recipe_text=custody_recipe())
    batch_id = site.start().state.id
    content = logger_csv([5.0, 9.5, 12.5, 7.0], step_minutes=10)
    batch = receive(site, batch_id, content)
    kinds = [e.kind for e in entries(site, batch_id)]
    assert kinds[-2:] == ["custody_transferred", "deviation_raised"]
    [deviation] = batch.state.deviations.values()
    assert deviation.category == "temperature_excursion" and deviation.phase is None
    assert deviation.description.startswith(
        "Custody transfer of the apheresis starting material: logger file 'shipper 7.csv' "
        "20 min outside 2–8 °C"
    )
    found = excursion_import(batch, deviation.id)
    assert found is not None and found["excursions"][0]["extreme"] == "12.5"
    assert "12.5" in dict(found["curve"]["points"]).values()
    assert curve_caption(found).startswith("Logger curve of 'shipper 7.csv'")
    svg = compact_curve_svg(found)
    assert svg is not None and "outside the window" in svg
    assert kept(site, found["sha256"]) == content
    assert_sound(site, batch_id)


def test_a_refused_file_names_the_line_and_writes_nothing(make_uow):
    site = spoke(make_uow, recipe_text=custody_recipe())
    batch_id = site.start().state.id
    bad = b"time,temperature_c\n2026-11-20T08:00:00Z,4\n2026-11-20T08:10:00Z,warm\n"
    refusal = unchanged_by(site, lambda: receive(site, batch_id, bad), LoggerFileRefused)
    assert str(refusal).startswith("The logger file is refused at line 3:")
    gap = logger_csv([4.0, 4.0], step_minutes=30)  # the recipe samples every 10 min at most
    refusal = unchanged_by(site, lambda: receive(site, batch_id, gap), LoggerFileRefused)
    assert "line 3" in str(refusal) and "sampling allowance of 10 min" in str(refusal)


def test_a_recipe_without_a_shipment_window_refuses_the_file_and_writes_nothing(make_uow):
    site = spoke(make_uow)
    batch_id = site.start().state.id
    content = logger_csv([4.0, 5.0], step_minutes=10)
    refusal = unchanged_by(site, lambda: receive(site, batch_id, content), LoggerFileRefused)
    assert "declares no temperature window for shipments" in str(refusal)


def test_an_excursion_in_the_dispatch_after_release_reaches_the_hub_with_its_curve(net, tmp_path):
    """The product to the clinic after QA's release, its shipper's logger outside the window:
    the transfer and its deviation are entries the hub accepts after the decision, and the hub
    draws the curve from the entry (it never has the file)."""
    from batch_helpers import Spoke
    from recipe_driver import run_batch
    from test_batch_release import decide, enrolled, send, view

    from mes.services.review import receive_review_entries
    from mes.store.review import review_ledger

    text = custody_recipe()
    net.publish(net.approve(text))
    net.enroll()
    site = Spoke(net.spoke_uow, net.hub_key).set_up(text)
    enrolled(site)
    path = tmp_path / "batch-test.yaml"
    path.write_text(text, encoding="utf-8")
    batch_id = run_batch(site, path)
    sent = send(net, site, batch_id)
    decide(net, batch_id)
    later = NOW + timedelta(days=2)
    with net.hub(read_only=True) as uow:
        released = review_ledger(uow.session, batch_id)
    with site.uow() as uow:
        receive_review_entries(uow, later, released)
    content = logger_csv([4.0, 8.6, 5.0], step_minutes=10)
    with site.uow() as uow:
        custody.transfer_custody(
            uow, site.ctx("olivia", later), batch_id, side="handed_over",
            material="final_product", place="Dock", container="DRY-0007",
            own_organisation="", other_organisation="Clinic Haematology",
            other_name="Dr Ada Nurse", logger_file=("dry shipper.csv", content),
            credentials=Credentials(PASSWORD, "olivia"), first_signing_in_session=True,
        )  # fmt: skip
    assert send(net, site, batch_id, after=sent, at=later) == sent + 2
    hub = view(net, batch_id).batch
    [excursion] = [
        d for d in hub.state.deviations.values() if d.category == "temperature_excursion"
    ]
    found = excursion_import(hub, excursion.id)
    assert found is not None and found["max"] == "8.6"
    assert compact_curve_svg(found) is not None
    with net.hub() as uow:
        assert logger_files.file_content(uow.session, found["sha256"]) is None
