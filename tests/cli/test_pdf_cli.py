"""``mes pdf`` (and ``mes verify`` of what it wrote) as real subprocesses, SQLite and PostgreSQL.

Refusals are one line on stderr and exit 1. For the whole path a hub must hold a batch received
from a spoke, made with a recipe the hub approved: the two-site network of the integration tests
(``integration/sync_sites.py``: hub and spoke SPK1 on two databases, the batch made through the
spoke's services and ingested as a chunk) is given an instance folder (mes.toml, secret key, the
hub's site key) so that ``mes --instance`` runs against the hub's database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from batch_helpers import Spoke
from cli_helpers import assert_refused, run_bare
from conftest import Instance
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import func, select
from support import NOW, PASSWORD
from sync_sites import SPOKE, Network, net

from mes.core.keys import SiteKey
from mes.services import ingest, outbox
from mes.services.document_certificate import DOCUMENT_CERTIFICATE_FILE
from mes.services.runtime import open_runtime
from mes.settings import (
    SECRET_KEY_FILE,
    SITE_KEY_FILE,
    SITE_PUBLIC_KEY_FILE,
    load_settings,
    render_config,
)
from mes.store.files import PRIVATE_FILE, PRIVATE_FOLDER, sqlite_files
from mes.store.models import BatchEntry

HUB_ONLY = (
    "Only the hub signs PDF documents (batch records, comparability reports); this instance "
    "is a spoke. "
    "Issue and verify signed documents at the hub."
)


def pdf_fingerprint(instance_path: Path) -> str:
    """The SHA-256 of the hub's certificate as ``AB:CD:…``, worked out here from the file."""
    pem = (instance_path / DOCUMENT_CERTIFICATE_FILE).read_bytes()
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex(":").upper()


@pytest.fixture
def hub(instance: Instance) -> Instance:
    result = instance.init()
    assert result.code == 0, result.err
    return instance


# --- refusals ----------------------------------------------------------------------------------


def test_mes_pdf_at_a_spoke_is_refused_in_one_line_even_for_a_batch_the_spoke_holds(
    instance: Instance, tmp_path: Path
):
    hub_key = SiteKey.generate()  # the key the spoke pins, which signs its recipe bundle
    pinned = tmp_path / "hub.pub.pem"
    pinned.write_bytes(hub_key.public.pem())
    args = ["init", "--role", "spoke", "--site", "SPK1", "--admin", "ada", "--name", "Ada Admin"]
    args += ["--password-stdin", "--hub-key", str(pinned)]
    if instance.database_url:
        args += ["--database-url", instance.database_url]
    created = instance.run(*args, stdin=PASSWORD + "\n")
    assert created.code == 0, created.err
    runtime = open_runtime(load_settings(instance.path, env={}))
    try:
        site = Spoke(lambda *_, **__: runtime.uow(), hub_key).set_up()
        number = site.start().state.number
    finally:
        runtime.close()
    assert number == "SPK1-2026-0001"
    out = tmp_path / "record.pdf"
    assert_refused(instance.run("pdf", number, "--out", str(out)), HUB_ONLY)
    assert not out.exists()


def test_mes_pdf_names_an_unknown_batch_in_one_line_without_a_traceback(hub, tmp_path):
    out = tmp_path / "record.pdf"
    result = hub.run("pdf", "SPK1-2026-0999", "--out", str(out))
    assert_refused(result, "There is no batch 'SPK1-2026-0999'. Check the batch number.")
    assert "Traceback" not in result.err
    assert not out.exists()


def test_mes_pdf_never_overwrites_an_existing_file(hub, tmp_path):
    out = tmp_path / "record.pdf"
    out.write_bytes(b"someone else's file")
    assert_refused(
        hub.run("pdf", "SPK1-2026-0001", "--out", str(out)),
        f"{out} exists already. Choose another --out file.",
    )
    assert out.read_bytes() == b"someone else's file"
    assert_refused(
        hub.run("pdf", "SPK1-2026-0001", "--out", str(tmp_path / "no-folder" / "record.pdf")),
        f"There is no folder {tmp_path / 'no-folder'}. Create it first.",
    )


def test_site_certificate_prints_the_fingerprint_at_a_hub_that_holds_no_batch(hub, tmp_path):
    out = tmp_path / "hub.pem"
    result = hub.run("site", "certificate", "--out", str(out))
    assert (result.code, result.err) == (0, "")
    fingerprint = pdf_fingerprint(hub.path)
    assert f"SHA-256 fingerprint: {fingerprint}\n" in result.out
    assert len(fingerprint.split(":")) == 32
    assert out.read_bytes() == (hub.path / DOCUMENT_CERTIFICATE_FILE).read_bytes()


# --- a hub holding a received batch ------------------------------------------------------------


def received_batch(net: Network) -> str:
    """A batch started and its bag checked at SPK1, sent to the hub; its number."""
    site = net.connected()
    batch = site.start()
    site.do_check_bag(batch.state.id)
    with site.uow() as uow:
        token, _first, _last = outbox.chunk_after(uow, NOW, batch.state.id, 0, 500)
    with net.hub() as uow:
        ingest.ingest_chunk(uow, NOW, SPOKE, token)
    return batch.state.number


def hub_instance(net: Network) -> Instance:
    """An instance folder for the network's hub: its settings, secret key and site key."""
    settings = net.runtime("hub").settings
    path = settings.instance_path
    (path / "keys").mkdir(parents=True, exist_ok=True)
    (path / "mes.toml").write_text(
        render_config(
            role="hub",
            site_code=settings.site_code,
            site_name=settings.site_name,
            time_zone=settings.time_zone,
            database_url=settings.database_url,
        ),
        encoding="utf-8",
    )
    (path / SECRET_KEY_FILE).write_text(settings.secret_key + "\n", encoding="ascii")
    (path / SITE_KEY_FILE).write_bytes(net.hub_key.private_pem())
    (path / SITE_PUBLIC_KEY_FILE).write_bytes(net.hub_key.public.pem())
    # Private, as 'mes init' makes an instance: otherwise 'mes' refuses to open it.
    for made in (path, *path.rglob("*"), *sqlite_files(settings.database_url)):
        if made.exists():
            made.chmod(PRIVATE_FOLDER if made.is_dir() else PRIVATE_FILE)
    return Instance(path, settings.database_url)


def test_mes_pdf_writes_a_received_batch_that_mes_verify_accepts_here_and_against_the_hub(
    net, tmp_path
):
    number = received_batch(net)
    hub = hub_instance(net)
    refused = hub.run("pdf", number, "--out", str(tmp_path / "early.pdf"))
    assert_refused(
        refused,
        "This hub has no document-signing certificate, so it cannot sign PDF records. "
        "Create it once with 'mes site certificate' (or restore keys/ from backup).",
    )
    made = hub.run("site", "certificate", "--out", str(tmp_path / "hub.pem"))
    assert made.code == 0, made.err
    assert made.out.startswith("Created the hub's document-signing certificate")
    assert f"SHA-256 fingerprint: {pdf_fingerprint(hub.path)}\n" in made.out

    record = tmp_path / "record.pdf"
    written = hub.run("pdf", number, "--out", str(record))
    assert (written.code, written.err) == (0, "")
    size = record.stat().st_size
    assert written.out == (
        f"Wrote {record}: batch {number}, {size:,} bytes (made and signed now).\n"
    )
    assert record.read_bytes().startswith(b"%PDF-1.7")
    again = tmp_path / "again.pdf"
    kept = hub.run("pdf", number.lower(), "--out", str(again))
    assert kept.out == (
        f"Wrote {again}: batch {number}, {size:,} bytes (as issued earlier for this state).\n"
    )
    assert again.read_bytes() == record.read_bytes()

    here = hub.run("verify", str(record))
    assert (here.code, here.err) == (0, "")
    assert here.out.startswith("ok: record.pdf\n  Signed by Test hub (HUB) batch records on ")
    assert f"(certificate SHA-256 {pdf_fingerprint(hub.path)})\n" in here.out
    with net.hub() as uow:
        entries = uow.session.execute(select(func.count()).select_from(BatchEntry)).scalar_one()
    assert entries > 5
    assert f"  Batch {number} made at SPK1: {entries} ledger entries verified, " in here.out
    against = hub.run("verify", str(record), "--against-hub")
    assert (against.code, against.err) == (0, "")
    assert against.out == here.out + "  The hub's database holds the same entries.\n"
    auditor = run_bare("verify", str(record), "--trust", str(tmp_path / "hub.pem"))
    assert (auditor.returncode, auditor.stderr) == (0, "")
    assert auditor.stdout == here.out


__all__ = ["net"]  # the fixture, imported from sync_sites
