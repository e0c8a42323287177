"""A batch whose phase imported a logger file lands at the hub as the spoke holds it (issue 17):
the ``logger_imported`` entry syncs like every entry and replays there to the same projection
(the file itself stays at the spoke; the entry carries its SHA-256 and findings)."""

from __future__ import annotations

import subprocess
from datetime import timedelta

from batch_helpers import Spoke
from logger_helpers import logger_recipe
from recipe_driver import run_batch
from support import NOW, user_ctx
from sync_sites import SPOKE, entry_rows, net

from mes.pdf.render import record_html, render_record_pdf
from mes.services import ingest as hub_ingest
from mes.services import logger_files, outbox, record, review
from mes.services.logger_chart import compact_curve_svg
from mes.store import batches as store
from mes.web.qa.pages import deviation_cards

__all__ = ["net"]


def test_a_batch_with_a_logger_import_lands_at_the_hub_as_the_spoke_holds_it(net, tmp_path):
    text = logger_recipe()
    net.publish(net.approve(text))
    net.enroll()
    site = Spoke(net.spoke_uow, net.hub_key).set_up(text)
    path = tmp_path / "batch-test.yaml"
    path.write_text(text, encoding="utf-8")
    batch_id = run_batch(site, path)
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, NOW + timedelta(hours=6), batch_id, 0, 500)
        spoke_projection = store.stored_projection(uow.session, batch_id)
    with net.hub() as uow:
        ack = hub_ingest.ingest_chunk(uow, NOW + timedelta(hours=6), SPOKE, token, via="network")
    assert ack.stored == last
    assert entry_rows(net.hub_sessions) == entry_rows(net.spoke_sessions)
    with net.hub() as uow:
        hub = store.stored_projection(uow.session, batch_id)
        kinds = [e.body["kind"] for e in store.ledger(uow.session, batch_id)]
    spoke_projection["batch"]["installed_recipe_id"] = None
    assert hub == spoke_projection and hub["batch"]["status"] == "complete"
    assert "logger_imported" in kinds


def test_an_excursion_synced_to_the_hub_is_drawn_there_from_its_entry(net, tmp_path):
    """The hub has the entry, not the file: its review card and printed record draw the curve
    from the compact curve sealed in the entry (issue 17: the curve attached to the deviation)."""
    text = logger_recipe()
    net.publish(net.approve(text))
    net.enroll()
    site = Spoke(net.spoke_uow, net.hub_key).set_up(text)
    path = tmp_path / "batch-test.yaml"
    path.write_text(text, encoding="utf-8")
    batch_id = run_batch(site, path, choices={"check_bag.transport_max": "9.5"})
    with site.uow() as uow:
        token, _first, last = outbox.chunk_after(uow, NOW + timedelta(hours=6), batch_id, 0, 500)
    with net.hub() as uow:
        ack = hub_ingest.ingest_chunk(uow, NOW + timedelta(hours=6), SPOKE, token, via="network")
    assert ack.stored == last
    with net.hub() as uow:
        [logged] = [
            e.body["payload"]
            for e in store.ledger(uow.session, batch_id)
            if e.body["kind"] == "logger_imported"
        ]
        assert logger_files.logger_files.file_content(uow.session, logged["sha256"]) is None
    assert logged["within_window"] is False
    points = dict(logged["curve"]["points"])
    assert "9.5" in points.values()  # the excursion's extreme, carried in the sealed entry
    quinn = user_ctx(net.hub_ids["quinn"], at=NOW + timedelta(hours=7))
    with net.hub(read_only=True) as uow:
        view = review.review_batch(uow, quinn, batch_id)
        package = record.batch_record(uow, quinn, batch_id)
    [card] = [
        c for c in deviation_cards(view) if c["category"] == "Temperature excursion in transport"
    ]
    assert (
        card["curve"].startswith("Logger curve of ")
        and "the full file is kept at the spoke" in card["curve"]
    )
    [printed] = [d for d in package.record.deviations if d.curve is not None]
    assert printed.curve_caption == card["curve"]
    svg = compact_curve_svg(printed.curve)
    assert svg is not None and svg.startswith("<svg") and "outside the window" in svg
    html = record_html(package.record)
    assert "data:image/svg+xml;base64," in html and html.count("Logger curve of ") == 1
    pdf = tmp_path / "record.pdf"
    pdf.write_bytes(render_record_pdf(package.record, package.attachment, workers=1))
    shown = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True)
    assert "Logger curve of" in " ".join(shown.stdout.split())
