"""A released product at spoke SPK1, ready for the bedside check (for the bedside tests).

The batch is made at the spoke through its real services, sent to the hub, reviewed and
released there by QA Quinn, and the review chain is received back at the spoke — the way the
spoke learns that QA released it. Nina is the ward's clinician, with badge and PIN.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from batch_helpers import SCANNER, TEST_RECIPE, Spoke
from recipe_driver import din_barcode, din_for
from sqlalchemy import func, select
from support import NOW, PASSWORD
from sync_sites import SPOKE, Network

from mes.core.batch import Action
from mes.core.review import Decision
from mes.services import batches, ingest, outbox, review
from mes.services.badges import enroll_badge, set_pin_for
from mes.services.context import Context
from mes.services.esign import Credentials
from mes.store.models import Batch as BatchRow

HOURS = timedelta(hours=1)
QA_AT = NOW + timedelta(days=1)
WARD_AT = NOW + timedelta(days=2)  # the product reaches the ward two days after it was made
BADGE, PIN = "BADGE-20017", "851427"
TIMER_MINUTES = 30

# BATCH-TEST with a chain-of-identity code on the bag and an infusion timer from the check.
BEDSIDE_RECIPE = TEST_RECIPE.replace(
    "  patient_id: {label: Patient identifier, kind: identifier}\n",
    "  patient_id: {label: Patient identifier, kind: identifier}\n"
    "  coi_id: {label: Chain of identity code, kind: identifier}\n"
    "bedside:\n"
    "  timer: {starts_at: check, max_minutes: 30, label: Infuse within 30 min of the check}\n",
)


def coi_for(serial: int) -> str:
    """A chain-of-identity code of the recipes' form (test data)."""
    return f"CHA{serial:012d}"


def connected(net: Network) -> Spoke:
    """BEDSIDE_RECIPE effective at the hub and installed at SPK1, enrolled; Nina on the ward."""
    net.publish(net.approve(BEDSIDE_RECIPE))
    net.enroll()
    site = Spoke(net.spoke_uow, net.hub_key).set_up(BEDSIDE_RECIPE)
    site.add_person("nina", ["clinician"])
    system = Context.command_line(NOW - timedelta(days=1), "tester", "testhost")
    with site.uow() as uow:
        enroll_badge(uow, system, "nina", BADGE)
    with site.uow() as uow:
        set_pin_for(uow, system, "nina", PIN)
    with site.uow() as uow:
        outbox.record_enrollment(uow, system, "https://hub.example", "HUB", "hub-key-1")
    return site


def made(site: Spoke, at: datetime = NOW) -> tuple[str, dict[str, str]]:
    """A complete batch of its own donation; (ID, what its bag and wristband carry)."""
    with site.uow() as uow:
        serial = uow.session.execute(select(func.count()).select_from(BatchRow)).scalar_one() + 1
    din = din_for(serial, at.year)
    patient, coi = f"PAT-{serial:04d}", coi_for(serial)
    batch = site.start(at=at, din=din, patient_id=patient, coi_id=coi)
    batch_id = batch.state.id
    site.start_phase(batch_id, "check_bag", at=at)
    site.record(
        batch_id, "check_bag", at=at, values={"bag_intact": "yes"}, equipment={0: SCANNER},
        identity={"bag_din": din_barcode(din), "bag_patient": patient},
    )  # fmt: skip
    site.sign(batch_id, "check_bag", at=at)
    site.sign(batch_id, "check_bag", Action.VERIFY, who="sam", at=at + timedelta(minutes=10))
    site.do_count(batch_id, at=at + HOURS)
    site.do_culture_and_harvest(batch_id, at=at + 4 * HOURS)
    with site.uow() as uow:
        batches.complete_batch(
            uow, site.ctx("sam", at + 5 * HOURS), batch_id, Credentials(PASSWORD, "sam"),
            first_signing_in_session=True,
        )  # fmt: skip
    return batch_id, {"bag_din": din_barcode(din), "bag_coi": coi, "wristband": patient}


def sent(net: Network, site: Spoke, batch_id: str, at: datetime = NOW + 6 * HOURS) -> None:
    """Everything the spoke holds of the batch, pushed to the hub."""
    with site.uow() as uow:
        token, _first, _last = outbox.chunk_after(uow, at, batch_id, 0, 5000)
    with net.hub() as uow:
        ingest.ingest_chunk(uow, at, SPOKE, token)


def released(net: Network, site: Spoke, batch_id: str) -> None:
    """QA reviews every exception and releases the batch at the hub; the spoke receives it."""
    from support import user_ctx

    qa = user_ctx(net.hub_ids["quinn"], at=QA_AT, terminal="QA office")
    sent(net, site, batch_id)
    with net.hub() as uow:
        unreviewed = review.review_batch(uow, qa, batch_id).unreviewed
    for finding in unreviewed:
        with net.hub() as uow:
            review.mark_reviewed(
                uow, qa, batch_id, finding.key, Credentials(PASSWORD),
                first_signing_in_session=False,
            )  # fmt: skip
    with net.hub() as uow:
        review.decide_batch(
            uow, qa, batch_id, Decision.RELEASED, Credentials(PASSWORD),
            first_signing_in_session=False,
        )  # fmt: skip
    with site.uow() as uow:
        known = review.awaited_reviews(uow)
    with net.hub() as uow:
        updates = review.review_updates(uow, SPOKE, known)
    with site.uow() as uow:
        review.receive_review_entries(uow, QA_AT + HOURS, updates)


def nina(site: Spoke, at: datetime = WARD_AT) -> Context:
    """Nina at the ward's registered tablet."""
    return site.ctx("nina", at, terminal="Ward 4 tablet")


def badge(pin: str = PIN) -> Credentials:
    """Nina's badge scanned and her PIN."""
    return Credentials(password=pin, badge=BADGE)
