"""Hub ↔ spoke sync services on real SQLite and PostgreSQL databases.

The hub's side (mes.services.spokes): spokes and their one-time enrollment codes, every refused
enrollment logged and audited, status changes, signed requests with nonces kept in the database,
and the ingest of chunks — a whole batch run at the spoke lands at the hub exactly as the spoke
holds it, duplicates are acknowledged without being stored twice, gaps and forks are refused with
nothing stored. The spoke's side (mes.services.outbox): every batch action queues the batch,
deviations go first, the mark moves only on an acknowledgement naming the spoke's own entry and
never backwards. Transfer files (mes.sync.transfer) carry the same checks by USB stick.

Hub and spoke run on two separate databases of the same kind (see ``sync_sites``).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from batch_helpers import OTHER_DIN, SCANNER, TEST_RECIPE, Spoke
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from integration_helpers import audit_entries
from recipe_driver import run_batch
from sqlalchemy import func, select
from support import NOW
from sync_sites import CLI, SPOKE, Network, entry_rows, net, recipe_file

from mes.core.bundle import make_bundle, open_bundle
from mes.core.errors import (
    ChunkConflict,
    ChunkGap,
    ChunkTampered,
    ChunkUnreadable,
    EnrollmentRefused,
    InvalidInput,
    MesError,
    NotFound,
    RecipeNotDeployed,
    RequestReplayed,
    RequestUnauthenticated,
    SpokeNotActive,
)
from mes.core.identity import mod37_2
from mes.core.keys import SiteKey
from mes.core.ledger import SealedEntry, seal
from mes.core.recipe import load_recipe
from mes.core.sync import enrollment_code_hash, make_acks, make_chunk, open_chunk, sign_request
from mes.services import ingest as hub_ingest
from mes.services import outbox, spokes
from mes.services.context import Context
from mes.services.ingest import Received
from mes.services.recipes import install_bundle
from mes.store import batches as store
from mes.store.engine import make_engine, session_factory
from mes.store.models import Batch as BatchRow
from mes.store.models import EnrollmentCode, InstalledRecipe, SyncEvent, SyncNonce, SyncOutbox
from mes.store.models import Spoke as SpokeRow
from mes.store.uow import UnitOfWork
from mes.sync import transfer

PATH = "/api/v1/sync/chunks"
SKEW = 300
STRANGE_DIN_BARCODE = "=A99992600007700"  # well formed, another donation's (fake facility)
OTHER_IDENTIFIERS = {"din": f"{OTHER_DIN} 00 {mod37_2(OTHER_DIN)}", "patient_id": "PAT-0002"}


# --- small readers and actions --------------------------------------------------------------


def cli(at=NOW) -> Context:
    return Context.command_line(at, "tester", "testhost")


def add(make_uow, code: str = SPOKE, name: str = "Spoke one", time_zone: str = "Europe/London"):
    with make_uow() as uow:
        return spokes.add_spoke(uow, cli(), code, name, time_zone)


def enroll(
    make_uow, code: str, ticket: str, key: SiteKey | str, at=NOW, source: str = "unknown"
) -> spokes.Enrollment:
    pem = key if isinstance(key, str) else key.public.pem().decode()
    with make_uow() as uow:
        return spokes.enroll(uow, at, code, ticket, pem, source=source)


def change(make_uow, code: str, action: str, reason: str = "Quality audit", at=NOW):
    with make_uow() as uow:
        return spokes.change_spoke_status(uow, cli(at), code, action, reason)


def spoke_row(make_uow, code: str = SPOKE) -> SpokeRow:
    with make_uow() as uow:
        return uow.session.get(SpokeRow, code)


def events(make_uow, **where: Any) -> list[SyncEvent]:
    with make_uow() as uow:
        query = select(SyncEvent).order_by(SyncEvent.id)
        for column, value in where.items():
            query = query.where(getattr(SyncEvent, column) == value)
        return list(uow.session.execute(query).scalars())


def count(make_uow, model) -> int:
    with make_uow() as uow:
        return uow.session.execute(select(func.count()).select_from(model)).scalar_one()


def refused(action: Callable[[], object], error: type[MesError]) -> MesError:
    with pytest.raises(error) as caught:
        action()
    assert type(caught.value) is error, caught.value
    return caught.value


def other_pem(kind: str) -> str:
    """A public key in PEM form that is not Ed25519 (or not a key at all)."""
    if kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
    elif kind == "x25519":
        key = x25519.X25519PrivateKey.generate().public_key()
    else:
        return kind
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# --- spokes and their enrollment codes ------------------------------------------------------


def test_a_spoke_is_added_awaiting_enrollment_with_a_one_time_code_kept_only_as_a_hash(make_uow):
    ticket = add(make_uow, " spk1 ", "  Hospital   suite A ", "Europe/Paris")
    assert ticket.spoke == "SPK1"
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){4}", ticket.code)
    assert ticket.expires_at == NOW + timedelta(hours=72)
    row = spoke_row(make_uow)
    assert (row.name, row.time_zone, row.status, row.public_key_pem, row.key_id) == (
        "Hospital suite A",
        "Europe/Paris",
        "awaiting_enrollment",
        None,
        None,
    )
    with make_uow() as uow:
        codes = list(uow.session.execute(select(EnrollmentCode)).scalars())
    assert [(c.spoke_code, c.code_hash, c.used_at) for c in codes] == [
        ("SPK1", enrollment_code_hash(ticket.code), None)
    ]
    stored = repr([c.__dict__ for c in codes])
    assert ticket.code not in stored and ticket.code.replace("-", "") not in stored
    actions = [(e.action, e.record_id) for e in audit_entries(make_uow)]
    assert actions[-2:] == [("spoke added", "SPK1"), ("enrollment code issued", "SPK1")]


def test_adding_a_spoke_refuses_a_bad_or_taken_code_an_unknown_time_zone_and_no_name(make_uow):
    add(make_uow)
    before = audit_entries(make_uow)
    cases = {
        "1ABC": {"code": "1ABC"},
        "too long": {"code": "ABCDEFGHIJKLM"},
        "dash": {"code": "SP-2"},
        "taken": {"code": "spk1"},
        "the hub's": {"code": "TEST"},
        "zone": {"code": "SPK2", "time_zone": "Mars/Olympus"},
        "no zone": {"code": "SPK2", "time_zone": ""},
        "path": {"code": "SPK2", "time_zone": "../etc/passwd"},
        "no name": {"code": "SPK2", "name": " \t "},
    }
    messages = {}
    for case, arguments in cases.items():
        with pytest.raises(MesError) as caught:
            add(make_uow, **arguments)
        messages[case] = caught.value.message
    assert messages == {
        "1ABC": "'1ABC' is not a valid site code.",
        "too long": "'ABCDEFGHIJKLM' is not a valid site code.",
        "dash": "'SP-2' is not a valid site code.",
        "taken": "Site code SPK1 is already taken.",
        "the hub's": "Site code TEST is already taken.",
        "zone": "'Mars/Olympus' is not a known time zone.",
        "no zone": "'' is not a known time zone.",
        "path": "'../etc/passwd' is not a known time zone.",
        "no name": "A spoke needs a name.",
    }
    assert (count(make_uow, SpokeRow), count(make_uow, EnrollmentCode)) == (1, 1)
    assert len(audit_entries(make_uow)) == len(before)


def test_spokes_are_managed_at_the_hub_only(make_uow):
    with make_uow("spoke") as uow:
        message = refused(lambda: spokes.add_spoke(uow, cli(), "SPK2", "x", "UTC"), InvalidInput)
    assert str(message).startswith("Spokes are managed at the hub; this site (SPK1) is a spoke.")


def test_a_new_code_stops_the_earlier_unused_ones_and_a_used_code_stays_used(make_uow):
    first = add(make_uow)
    with make_uow() as uow:
        second = spokes.issue_enrollment_code(uow, cli(NOW + timedelta(minutes=1)), "spk1")
    assert second.code != first.code
    key = SiteKey.generate()
    late = NOW + timedelta(minutes=2)
    message = refused(lambda: enroll(make_uow, SPOKE, first.code, key, at=late), EnrollmentRefused)
    assert message.message == "The enrollment code is not valid: it expired."
    enroll(make_uow, SPOKE, second.code, key, at=late)
    with make_uow() as uow:
        spokes.issue_enrollment_code(uow, cli(NOW + timedelta(minutes=3)), SPOKE)
    again = refused(
        lambda: enroll(make_uow, SPOKE, second.code, key, at=NOW + timedelta(minutes=4)),
        EnrollmentRefused,
    )
    assert (
        again.message == "The enrollment code is not valid: it was used already (codes work once)."
    )
    with make_uow() as uow:
        refused(lambda: spokes.issue_enrollment_code(uow, cli(), "SPK9"), NotFound)
    change(make_uow, SPOKE, "revoke", "Left the network")
    with make_uow() as uow:
        revoked = refused(
            lambda: spokes.issue_enrollment_code(uow, cli(), SPOKE), EnrollmentRefused
        )
    assert revoked.message == "Spoke SPK1 is revoked; a revoked spoke never enrolls again."


def test_each_refused_enrollment_is_logged_and_audited_and_changes_nothing(make_uow, site_key):
    ticket = add(make_uow, SPOKE)
    other_site = add(make_uow, "SPK2")
    taken = SiteKey.generate()
    enroll(make_uow, "SPK3", add(make_uow, "SPK3").code, taken)
    spent = add(make_uow, "SPK5")
    enroll(make_uow, "SPK5", spent.code, SiteKey.generate())
    revoked = add(make_uow, "SPK4")
    change(make_uow, "SPK4", "revoke", "Closed", at=NOW + timedelta(hours=1))
    fresh = SiteKey.generate()
    cases = [
        (SPOKE, "ABCD-EFGH-JKLM-NPQR-STUV", fresh, NOW, "The enrollment code is not valid: the "
         "hub never issued it."),
        (SPOKE, other_site.code, fresh, NOW, "The enrollment code is not valid for site SPK1: it "
         "was issued for another site."),
        ("SPK5", spent.code, fresh, NOW, "The enrollment code is not valid: it was used already "
         "(codes work once)."),
        (SPOKE, ticket.code, fresh, NOW + timedelta(hours=72), "The enrollment code is not "
         "valid: it expired."),
        ("SPK4", revoked.code, fresh, NOW + timedelta(hours=2), "The enrollment code is not "
         "valid: it expired."),  # revoking spent the spoke's unused codes
        # A clock before the revocation: the code has not expired, the spoke is still revoked.
        ("SPK4", revoked.code, fresh, NOW, "Spoke SPK4 is revoked; it cannot enroll again."),
        (SPOKE, ticket.code, other_pem("ec"), NOW, "The public key sent is not an Ed25519 public "
         "key in PEM form."),
        (SPOKE, ticket.code, other_pem("x25519"), NOW, "The public key sent is not an Ed25519 "
         "public key in PEM form."),
        (SPOKE, ticket.code, "not a key", NOW, "The public key sent is not an Ed25519 public "
         "key in PEM form."),
        (SPOKE, ticket.code, "é", NOW, "The public key sent is not an Ed25519 public key in PEM "
         "form."),
        (SPOKE, ticket.code, taken, NOW, "This key already belongs to SPK3: every site has its "
         "own key."),
        (SPOKE, ticket.code, site_key, NOW, "This key already belongs to the hub: every site "
         "has its own key."),
    ]  # fmt: skip
    before = len(audit_entries(make_uow))
    for n, (code, plain, key, at, expected) in enumerate(cases):
        # Each from its own address: an address's first refusal in a minute is recorded in full,
        # the rest only counted (see test_anonymous_refusals), and this test reads each record.
        with pytest.raises(EnrollmentRefused) as caught:
            enroll(make_uow, code, plain, key, at=at, source=f"10.8.0.{n}")
        assert (caught.value.message, caught.value.http_status) == (expected, 403)
    logged = events(make_uow, action="enroll", outcome="refused")
    assert [(e.peer, e.code, e.reason) for e in logged] == [
        (code, "enrollment-refused", expected) for code, _p, _k, _a, expected in cases
    ]
    audited = audit_entries(make_uow)[before:]
    assert [(e.kind, e.action, e.record_type, e.record_id, e.reason) for e in audited] == [
        ("security", "spoke enrollment refused", "spoke", code, expected)
        for code, _p, _k, _a, expected in cases
    ]
    assert {e.actor_username for e in audited} == {"system"}
    row = spoke_row(make_uow)
    assert (row.status, row.key_id, row.enrolled_at) == ("awaiting_enrollment", None, None)
    with make_uow() as uow:
        code_row = uow.session.execute(
            select(EnrollmentCode).where(EnrollmentCode.spoke_code == SPOKE)
        ).scalar_one()
    assert code_row.used_at is None
    assert spoke_row(make_uow, "SPK4").status == "revoked"


def test_enrollment_pins_the_spokes_key_and_answers_with_the_hubs(make_uow, site_key):
    ticket = add(make_uow, name="Suite A", time_zone="Europe/Dublin")
    key = SiteKey.generate()
    typed = ticket.code.lower().replace("-", " ")  # read aloud, typed in lower case
    enrollment = enroll(make_uow, SPOKE, typed, key, at=NOW + timedelta(hours=71))
    assert enrollment.as_json() == {
        "spoke": {"site_code": SPOKE, "name": "Suite A", "time_zone": "Europe/Dublin"},
        "hub": {
            "site_code": "TEST",
            "name": "Test site",
            "public_key_pem": site_key.public.pem().decode(),
            "key_id": site_key.public.key_id,
            "certificate_pem": None,
        },
    }
    row = spoke_row(make_uow)
    assert (row.status, row.key_id, row.public_key_pem, row.enrolled_at) == (
        "active",
        key.public.key_id,
        key.public.pem().decode(),
        NOW + timedelta(hours=71),
    )
    assert spokes.spoke_key(row).key_id == key.public.key_id
    with make_uow() as uow:
        assert uow.session.execute(select(EnrollmentCode.used_at)).scalar_one() == (
            NOW + timedelta(hours=71)
        )
    entry = audit_entries(make_uow)[-1]
    assert (entry.action, entry.actor_username, entry.old, entry.new) == (
        "spoke enrolled",
        "system",
        {"status": "awaiting_enrollment", "key_id": None},
        {"status": "active", "key_id": key.public.key_id},
    )
    assert [(e.outcome, e.peer) for e in events(make_uow, action="enroll")] == [("accepted", SPOKE)]
    # A new key (the spoke was rebuilt) needs a new code; the old key then stops counting.
    with make_uow() as uow:
        second = spokes.issue_enrollment_code(uow, cli(NOW + timedelta(days=5)), SPOKE)
    rebuilt = SiteKey.generate()
    enroll(make_uow, SPOKE, second.code, rebuilt, at=NOW + timedelta(days=5))
    assert spoke_row(make_uow).key_id == rebuilt.public.key_id
    old = sign_request("POST", PATH, b"", site=SPOKE, key=key, at=NOW, nonce="n" * 20)
    with make_uow() as uow:
        refused(
            lambda: hub_ingest.authenticate(uow, Received(NOW, old, "POST", PATH, b"", SKEW)),
            RequestUnauthenticated,
        )


def test_a_spoke_is_suspended_reinstated_and_revoked_with_reasons_and_revoked_stays(make_uow):
    ticket = add(make_uow)
    add(make_uow, "SPK2")
    attempts = {
        "suspend, awaiting": lambda: change(make_uow, "SPK2", "suspend"),
        "no reason": lambda: change(make_uow, SPOKE, "revoke", "   "),
        "unknown action": lambda: change(make_uow, SPOKE, "delete"),
        "unknown spoke": lambda: change(make_uow, "SPK9", "suspend"),
    }
    messages = {}
    for case, attempt in attempts.items():
        with pytest.raises(MesError) as caught:
            attempt()
        messages[case] = (type(caught.value).__name__, caught.value.message)
    assert messages == {
        "suspend, awaiting": (
            "InvalidInput",
            "Spoke SPK2 is awaiting enrollment; only an active spoke can be suspended.",
        ),
        "no reason": ("InvalidInput", "Say why the spoke is to be revoked."),
        "unknown action": (
            "InvalidInput",
            "Unknown action 'delete': use suspend, reinstate or revoke.",
        ),
        "unknown spoke": ("NotFound", "There is no spoke 'SPK9' at this hub."),
    }
    key = SiteKey.generate()
    enroll(make_uow, SPOKE, ticket.code, key)
    later = NOW + timedelta(hours=1)
    assert change(make_uow, SPOKE, "suspend", " Audit   pending ", at=later).status == "suspended"
    row = spoke_row(make_uow)
    assert (row.status, row.status_reason, row.status_changed_at) == (
        "suspended",
        "Audit pending",
        later,
    )
    again = refused(lambda: change(make_uow, SPOKE, "suspend"), InvalidInput)
    assert again.message == "Spoke SPK1 is suspended; only an active spoke can be suspended."
    assert change(make_uow, SPOKE, "reinstate", "Audit passed").status == "active"
    twice = refused(lambda: change(make_uow, SPOKE, "reinstate"), InvalidInput)
    assert twice.message == "Spoke SPK1 is active; only a suspended spoke can be reinstated."
    with make_uow() as uow:  # an unused code waiting when the spoke is revoked
        waiting = spokes.issue_enrollment_code(uow, cli(), SPOKE)
    assert change(make_uow, SPOKE, "revoke", "Left the network", at=later).status == "revoked"
    finals = {}
    for action in ("suspend", "reinstate", "revoke"):
        with pytest.raises(InvalidInput) as caught:
            change(make_uow, SPOKE, action)
        finals[action] = caught.value.message
    assert finals == {
        "suspend": "Spoke SPK1 is revoked; only an active spoke can be suspended.",
        "reinstate": "Spoke SPK1 is revoked; only a suspended spoke can be reinstated.",
        "revoke": "Spoke SPK1 is revoked; a revoked spoke stays revoked.",
    }
    assert spoke_row(make_uow).status == "revoked"
    assert change(make_uow, "SPK2", "revoke", "Never joined").status == "revoked"
    with make_uow() as uow:
        expiry = uow.session.execute(
            select(EnrollmentCode.expires_at).where(
                EnrollmentCode.code_hash == enrollment_code_hash(waiting.code)
            )
        ).scalar_one()
    assert expiry == later
    changes = [
        (e.action, e.old, e.new, e.reason)
        for e in audit_entries(make_uow)
        if e.action.startswith("spoke ") and e.record_id == SPOKE and e.action != "spoke added"
    ]
    assert changes == [
        (
            "spoke enrolled",
            {"status": "awaiting_enrollment", "key_id": None},
            {"status": "active", "key_id": key.public.key_id},
            None,
        ),
        ("spoke suspended", {"status": "active"}, {"status": "suspended"}, "Audit pending"),
        ("spoke reinstated", {"status": "suspended"}, {"status": "active"}, "Audit passed"),
        ("spoke revoked", {"status": "active"}, {"status": "revoked"}, "Left the network"),
    ]


# --- signed requests ------------------------------------------------------------------------


def test_signed_requests_are_checked_and_replays_refused_by_every_worker(make_uow, engine):
    key = SiteKey.generate()
    enroll(make_uow, SPOKE, add(make_uow).code, key)
    add(make_uow, "SPK2")  # added, never enrolled

    def sent(nonce: str, at=NOW, signer: SiteKey = key, site: str = SPOKE) -> dict[str, str]:
        return sign_request("POST", PATH, b"body", site=site, key=signer, at=at, nonce=nonce)

    addresses = itertools.count(1)

    def authenticate(headers, at=NOW, uow_factory=make_uow):
        # Each request from its own address, so that each refusal is logged in full.
        source = f"10.8.1.{next(addresses)}"
        with uow_factory() as uow:
            return hub_ingest.authenticate(
                uow, Received(at, headers, "POST", PATH, b"body", SKEW, source)
            )

    first = sent("first-nonce-0000001")
    assert authenticate(first, NOW + timedelta(seconds=2)) == SPOKE
    assert spoke_row(make_uow).last_seen_at == NOW + timedelta(seconds=2)
    with make_uow() as uow:
        assert uow.session.execute(select(SyncNonce.site, SyncNonce.nonce)).all() == [
            (SPOKE, "first-nonce-0000001")
        ]
    replayed = refused(lambda: authenticate(first, NOW + timedelta(seconds=5)), RequestReplayed)
    assert replayed.message == (
        "This request was received before (its nonce was used): a replay is refused."
    )
    # Another hub worker (its own engine and sessions on the same database) refuses it too.
    other_engine = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        sessions = session_factory(other_engine)

        def other_worker() -> UnitOfWork:
            probe = make_uow()
            return UnitOfWork(sessions, probe.site)

        refused(
            lambda: authenticate(first, NOW + timedelta(seconds=6), other_worker), RequestReplayed
        )
        later = NOW + timedelta(seconds=7)
        assert authenticate(sent("second-nonce-000002"), later, other_worker) == SPOKE
    finally:
        other_engine.dispose()
    stranger = SiteKey.generate()
    cases = [
        (sent("third-nonce-0000003", site="SPK9"), RequestUnauthenticated,
         "'SPK9' is not a spoke enrolled at this hub."),
        (sent("third-nonce-0000003", site="SPK2"), RequestUnauthenticated,
         "'SPK2' is not a spoke enrolled at this hub."),
        (sent("third-nonce-0000003", signer=stranger), RequestUnauthenticated,
         f"The request is signed with key {stranger.public.key_id!r}, not the key SPK1 enrolled "
         "with."),
        (sent("third-nonce-0000003", at=NOW - timedelta(seconds=SKEW + 1)),
         RequestUnauthenticated, "The request's timestamp is 301 s behind the hub's clock (at "
         "most 300 s are accepted)."),
        (sent("third-nonce-0000003", at=NOW + timedelta(seconds=SKEW + 60)),
         RequestUnauthenticated, "The request's timestamp is 360 s ahead of the hub's clock (at "
         "most 300 s are accepted)."),
    ]  # fmt: skip
    for headers, error, expected in cases:
        assert refused(lambda h=headers, e=error: authenticate(h), error).message == expected
    change(make_uow, SPOKE, "suspend", "Audit pending")
    suspended = refused(lambda: authenticate(sent("fourth-nonce-000004")), SpokeNotActive)
    assert suspended.message == (
        "Spoke SPK1 is suspended at the hub: Audit pending; its requests are refused."
    )
    change(make_uow, SPOKE, "revoke", "Left the network")
    revoked = refused(lambda: authenticate(sent("fifth-nonce-0000005")), SpokeNotActive)
    assert revoked.message == (
        "Spoke SPK1 is revoked at the hub: Left the network; its requests are refused."
    )
    logged = events(make_uow, action="request")
    assert [(e.outcome, e.peer, e.code, e.item.split(" from ")[0]) for e in logged] == [
        ("refused", SPOKE, "replayed", f"POST {PATH}"),
        ("refused", SPOKE, "replayed", f"POST {PATH}"),
        ("refused", "SPK9", "unauthenticated", f"POST {PATH}"),
        ("refused", "SPK2", "unauthenticated", f"POST {PATH}"),
        ("refused", SPOKE, "unauthenticated", f"POST {PATH}"),
        ("refused", SPOKE, "unauthenticated", f"POST {PATH}"),
        ("refused", SPOKE, "unauthenticated", f"POST {PATH}"),
        ("refused", SPOKE, "spoke-not-active", f"POST {PATH}"),
        ("refused", SPOKE, "spoke-not-active", f"POST {PATH}"),
    ]
    assert [e.reason for e in logged][2:5] == [c[2] for c in cases[:3]]
    # Refused requests neither count as contact nor leave a nonce behind.
    assert spoke_row(make_uow).last_seen_at == NOW + timedelta(seconds=7)
    assert count(make_uow, SyncNonce) == 2
    with make_uow() as uow:
        refused(
            lambda: hub_ingest.authenticate(uow, Received(NOW, {}, "POST", PATH, b"", SKEW)),
            RequestUnauthenticated,
        )


def test_nonces_are_forgotten_once_no_request_could_still_carry_them(make_uow):
    key = SiteKey.generate()
    enroll(make_uow, SPOKE, add(make_uow).code, key)

    def authenticate(nonce: str, at) -> str:
        headers = sign_request("GET", "/x", b"", site=SPOKE, key=key, at=at, nonce=nonce)
        with make_uow() as uow:
            return hub_ingest.authenticate(uow, Received(at, headers, "GET", "/x", b"", SKEW))

    authenticate("nonce-from-the-morning", NOW)
    keep = timedelta(seconds=2 * SKEW + 60)
    authenticate("nonce-within-the-keep", NOW + keep)
    assert count(make_uow, SyncNonce) == 2
    authenticate("nonce-after-the-keep1", NOW + keep + timedelta(seconds=1))
    with make_uow() as uow:
        assert sorted(uow.session.execute(select(SyncNonce.nonce)).scalars()) == [
            "nonce-after-the-keep1",
            "nonce-within-the-keep",
        ]


# --- ingest: a whole batch, duplicates, overlaps ----------------------------------------------


def chunk(site: Spoke, batch_id: str, after: int = 0, size: int = 500) -> tuple[str, int, int]:
    with site.uow() as uow:
        made = outbox.chunk_after(uow, NOW + timedelta(hours=6), batch_id, after, size)
    assert made is not None
    return made


def ingest(net: Network, token: str, site: str = SPOKE, via: str = "network") -> hub_ingest.Ack:
    with net.hub() as uow:
        return hub_ingest.ingest_chunk(uow, NOW + timedelta(hours=6), site, token, via=via)


def spoke_projection(site: Spoke, batch_id: str) -> dict[str, Any]:
    with site.uow() as uow:
        projection = store.stored_projection(uow.session, batch_id)
    assert projection["batch"]["installed_recipe_id"] is not None
    projection["batch"]["installed_recipe_id"] = None  # a row of the spoke's database
    return projection


def hub_projection(net: Network, batch_id: str) -> dict[str, Any]:
    with net.hub() as uow:
        return store.stored_projection(uow.session, batch_id)


def ledger(site: Spoke, batch_id: str) -> list[SealedEntry]:
    with site.uow() as uow:
        return store.ledger(uow.session, batch_id)


def hub_entries(net: Network) -> list[tuple]:
    return entry_rows(net.hub_sessions)


def test_a_whole_batch_lands_at_the_hub_exactly_as_the_spoke_holds_it(net, tmp_path):
    site = net.connected()
    batch_id = run_batch(site, recipe_file(tmp_path))
    token, first, last = chunk(site, batch_id)
    entries = ledger(site, batch_id)
    assert (first, last) == (1, len(entries))
    ack = ingest(net, token)
    assert ack == hub_ingest.Ack(batch_id, last, 0, last, entries[-1].hash)
    assert ack.as_json() == {
        "batch": batch_id,
        "stored": last,
        "duplicates": 0,
        "last_seq": last,
        "last_hash": entries[-1].hash,
    }
    assert hub_projection(net, batch_id) == spoke_projection(site, batch_id)
    assert hub_projection(net, batch_id)["batch"]["status"] == "complete"
    assert hub_entries(net) == entry_rows(net.spoke_sessions)
    with net.hub() as uow:
        assert hub_ingest.verify_received(uow, batch_id) == last
        assert hub_ingest.heads_of(uow, SPOKE) == {batch_id: (last, entries[-1].hash)}
    accepted = events(net.hub, action="ingest")
    assert [
        (e.outcome, e.peer, e.via, e.batch_id, e.first_seq, e.last_seq, e.stored, e.duplicates)
        for e in accepted
    ] == [("accepted", SPOKE, "network", batch_id, 1, last, last, 0)]
    # The same chunk again (the answer was lost): acknowledged, nothing stored twice.
    again = ingest(net, token)
    assert again == hub_ingest.Ack(batch_id, 0, last, last, entries[-1].hash)
    assert hub_entries(net) == entry_rows(net.spoke_sessions)
    assert [e.stored for e in events(net.hub, action="ingest") if e.stored] == [last]
    # The spoke's mark moves on the hub's answer.
    with site.uow() as uow:
        assert outbox.acknowledge(
            uow, NOW, batch_id, ack.last_seq, ack.last_hash, stored=ack.stored
        )
    with site.uow() as uow:
        assert outbox.batch_sync(uow, [batch_id])[batch_id].text == "synced"
        assert outbox.pending(uow) == []


def started_batch(site: Spoke) -> str:
    """A batch with its receipt and count done (a dozen or so entries)."""
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    site.do_count(batch_id)
    return batch_id


def resealed(entries: list[SealedEntry], key: SiteKey, start: int, **changes: Any):
    """The chain from entry ``start`` on, with ``changes`` to its bodies, sealed again by ``key``
    and relinked: a forked (or foreign) copy that verifies on its own."""
    out = list(entries[: start - 1])
    for entry in entries[start - 1 :]:
        body = copy.deepcopy(dict(entry.body))
        body.update(changes)
        if out:
            body["prev"] = out[-1].hash
        out.append(seal(body, key))
    return out


def test_overlaps_are_stored_once_and_gaps_forks_and_foreign_claims_store_nothing(net):
    site = net.connected()
    batch_id = started_batch(site)
    entries = ledger(site, batch_id)
    total = len(entries)
    assert total >= 12
    assert ingest(net, chunk(site, batch_id, 0, 4)[0]) == hub_ingest.Ack(
        batch_id, 4, 0, 4, entries[3].hash
    )
    token, first, last = chunk(site, batch_id, 2, 5)
    assert (first, last) == (3, 7)
    assert ingest(net, token) == hub_ingest.Ack(batch_id, 3, 2, 7, entries[6].hash)
    held = hub_entries(net)
    projection = hub_projection(net, batch_id)
    # A chunk that starts after the hub's head: refused with where the hub's copy ends.
    gap = refused(lambda: ingest(net, chunk(site, batch_id, 9, 3)[0]), ChunkGap)
    assert (gap.last_seq, gap.last_hash) == (7, entries[6].hash)
    assert gap.message.startswith(f"The chunk starts at entry 10 of batch {batch_id}, but the hub")
    # A chain forked at entry 5 (sealed again by the spoke's own key): it contradicts the hub.
    forked = resealed(entries, net.spoke_key, 5, terminal="Suite B 9")
    fork = make_chunk(forked[3:8], site=SPOKE, key=net.spoke_key, issued_at=NOW)
    conflict = refused(lambda: ingest(net, fork), ChunkConflict)
    assert conflict.message.startswith(
        f"Entry 5 of batch {batch_id} differs from the entry 5 the hub already holds"
    )
    # Its continuation (entries 8…) does not link to the hub's entry 7.
    beyond = make_chunk(forked[7:10], site=SPOKE, key=net.spoke_key, issued_at=NOW)
    unlinked = refused(lambda: ingest(net, beyond), ChunkGap)
    assert (unlinked.last_seq, unlinked.last_hash) == (7, entries[6].hash)
    # SPK2, enrolled with its own key, sends a chain of the same batch ID as its own.
    other = SiteKey.generate()
    net.enroll("SPK2", other)
    foreign = resealed(entries, other, 1, site="SPK2")
    claimed = make_chunk(foreign[:9], site="SPK2", key=other, issued_at=NOW)
    claim = refused(lambda: ingest(net, claimed, site="SPK2"), ChunkConflict)
    assert claim.message == f"Batch {projection['batch']['number']} belongs to SPK1, not to SPK2."
    # Entries the spoke's key sealed but no batch can replay (a kind this hub does not know).
    unknown = resealed(entries, net.spoke_key, 8, kind="batch_teleported")
    strange = make_chunk(unknown[7:9], site=SPOKE, key=net.spoke_key, issued_at=NOW)
    unreadable = refused(lambda: ingest(net, strange), ChunkUnreadable)
    assert unreadable.message.startswith(
        f"The entries of batch {batch_id} verify but cannot be replayed:"
    )
    assert hub_entries(net) == held
    assert hub_projection(net, batch_id) == projection
    logged = events(net.hub, action="ingest", outcome="refused")
    assert [(e.peer, e.batch_id, e.code, e.reason) for e in logged] == [
        (SPOKE, batch_id, "chain-gap", gap.message),
        (SPOKE, batch_id, "chain-conflict", conflict.message),
        (SPOKE, batch_id, "chain-gap", unlinked.message),
        ("SPK2", batch_id, "chain-conflict", claim.message),
        (SPOKE, batch_id, "chunk-unreadable", unreadable.message),
    ]
    # What the spoke does on a gap: send again from the hub's head.
    rest = ingest(net, chunk(site, batch_id, gap.last_seq)[0])
    assert rest == hub_ingest.Ack(batch_id, total - 7, 0, total, entries[-1].hash)
    assert hub_projection(net, batch_id) == spoke_projection(site, batch_id)
    assert hub_entries(net) == entry_rows(net.spoke_sessions)
    with net.hub() as uow:
        assert hub_ingest.verify_received(uow, batch_id) == total


def test_a_batch_of_a_recipe_version_not_deployed_to_the_spoke_is_refused(net):
    net.enroll()
    site = net.spoke()
    batch_id = site.start().state.id
    token = chunk(site, batch_id)[0]
    with site.uow() as uow:
        recipe = uow.session.get(BatchRow, batch_id)
        expected = (
            f"The batch was made with BATCH-TEST v1 (content {recipe.content_hash[:12]}…), "
            "which this hub never deployed to SPK1."
        )
    never = refused(lambda: ingest(net, token), RecipeNotDeployed)  # the hub has no such recipe
    assert never.message == expected
    version_id = net.approve()
    net.publish(version_id, ("SPK2", "SPK3"))  # deployed, but to other spokes
    elsewhere = refused(lambda: ingest(net, token), RecipeNotDeployed)
    assert elsewhere.message == expected
    assert hub_entries(net) == []
    assert count(net.hub, BatchRow) == 0
    assert [(e.batch_id, e.code) for e in events(net.hub, outcome="refused")] == [
        (batch_id, "recipe-not-deployed")
    ] * 2
    net.publish(version_id, (SPOKE,))
    assert ingest(net, token).stored == len(ledger(site, batch_id))


def test_a_suspended_spoke_or_an_altered_chunk_is_refused_and_logged(net):
    site = net.connected()
    batch_id = started_batch(site)
    ingest(net, chunk(site, batch_id, 0, 3)[0])
    token = chunk(site, batch_id, 3)[0]
    change(net.hub, SPOKE, "suspend", "Audit pending")
    suspended = refused(lambda: ingest(net, token), SpokeNotActive)
    assert suspended.message == (
        "Spoke SPK1 is suspended at the hub: Audit pending; its records are refused."
    )
    unknown = refused(lambda: ingest(net, token, site="SPK9"), SpokeNotActive)
    assert unknown.message == "'SPK9' is not a spoke enrolled at this hub."
    assert len(hub_entries(net)) == 3
    change(net.hub, SPOKE, "reinstate", "Audit passed")
    # Tampered on the way, or signed by another key: refused after the reinstatement too.
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    refused(lambda: ingest(net, altered), ChunkTampered)
    stranger = make_chunk(
        ledger(site, batch_id)[3:], site=SPOKE, key=SiteKey.generate(), issued_at=NOW
    )
    refused(lambda: ingest(net, stranger), ChunkTampered)
    refused(lambda: ingest(net, "not a chunk"), ChunkUnreadable)
    assert ingest(net, token).stored == len(ledger(site, batch_id)) - 3
    assert hub_projection(net, batch_id) == spoke_projection(site, batch_id)
    logged = events(net.hub, action="ingest", outcome="refused")
    assert [(e.peer, e.batch_id, e.code) for e in logged] == [
        (SPOKE, None, "spoke-not-active"),
        ("SPK9", None, "spoke-not-active"),
        (SPOKE, None, "chunk-tampered"),
        (SPOKE, None, "chunk-tampered"),
        (SPOKE, None, "chunk-unreadable"),
    ]
    change(net.hub, SPOKE, "revoke", "Left the network")
    refused(lambda: ingest(net, token), SpokeNotActive)
    with site.uow() as uow:  # a spoke ingests nothing
        refused(lambda: hub_ingest.ingest_chunk(uow, NOW, SPOKE, token), InvalidInput)


# --- the spoke's outbox -----------------------------------------------------------------------


def outbox_of(site: Spoke, batch_id: str) -> SyncOutbox:
    with site.uow() as uow:
        return uow.session.get(SyncOutbox, batch_id)


def last_seq(site: Spoke, batch_id: str) -> int:
    with site.uow() as uow:
        return uow.session.get(BatchRow, batch_id).last_seq


def sync_text(site: Spoke, batch_id: str) -> str:
    with site.uow() as uow:
        return outbox.batch_sync(uow, [batch_id])[batch_id].text


def acknowledge(site: Spoke, batch_id: str, seq: int, digest: str) -> bool:
    with site.uow() as uow:
        return outbox.acknowledge(uow, NOW, batch_id, seq, digest)


@pytest.fixture
def site(make_uow) -> Spoke:
    """A spoke on the test's database (its outbox needs no hub)."""
    return Spoke(make_uow, SiteKey.generate()).set_up()


def test_every_batch_action_queues_its_batch_and_a_deviation_puts_it_first(site):
    one = site.start().state.id
    two = site.start(**OTHER_IDENTIFIERS).state.id
    low, high = sorted([one, two])  # the deviation goes to the batch that sorts last
    for batch_id in (low, high):
        row = outbox_of(site, batch_id)
        assert (row.last_seq, row.acked_seq, row.pending, row.priority, row.state) == (
            last_seq(site, batch_id),
            0,
            True,
            False,
            "pending",
        )
    site.start_phase(high, "check_bag")
    assert outbox_of(site, high).last_seq == last_seq(site, high) > outbox_of(site, low).last_seq
    with site.uow() as uow:
        assert [p.batch_id for p in outbox.pending(uow)] == [low, high]
    # The bag's label names another donation (neither batch's): a deviation is raised.
    result = site.record(
        high, "check_bag", identity={"bag_din": STRANGE_DIN_BARCODE}, equipment={0: SCANNER}
    )
    assert result.field_errors
    assert any(d.status.value == "open" for d in result.batch.state.deviations.values())
    assert (outbox_of(site, high).priority, outbox_of(site, low).priority) == (True, False)
    with site.uow() as uow:
        waiting = outbox.pending(uow)
    assert [(p.batch_id, p.priority, p.last_seq) for p in waiting] == [
        (high, True, last_seq(site, high)),
        (low, False, last_seq(site, low)),
    ]
    site.start_phase(low, "check_bag")
    assert outbox_of(site, low).last_seq == last_seq(site, low)
    assert outbox_of(site, high).priority  # still urgent: nothing acknowledged yet
    with site.uow() as uow:
        assert [p.batch_id for p in outbox.pending(uow, limit=1)] == [high]


def test_the_mark_moves_only_on_the_spokes_own_hash_and_never_backwards(site):
    batch_id = started_batch(site)
    entries = ledger(site, batch_id)
    total = len(entries)
    assert sync_text(site, batch_id) == f"pending ({total} entries)"
    assert not acknowledge(site, batch_id, 3, "f" * 64)
    row = outbox_of(site, batch_id)
    assert (row.acked_seq, row.acked_hash, row.state, row.refusal_code, row.pending) == (
        0,
        None,
        "refused",
        "ack-mismatch",
        True,
    )
    assert sync_text(site, batch_id) == (
        "refused by the hub: The hub acknowledged entry 3 with hash ffffffffffff…, which is not this "
        "spoke's entry: the copies differ."
    )
    assert not acknowledge(site, batch_id, total + 1, "f" * 64)  # beyond the spoke's ledger
    assert outbox_of(site, batch_id).acked_seq == 0
    assert acknowledge(site, batch_id, 3, entries[2].hash)
    row = outbox_of(site, batch_id)
    assert (row.acked_seq, row.acked_hash, row.state, row.refusal, row.acked_at) == (
        3,
        entries[2].hash,
        "pending",
        None,
        NOW,
    )
    assert sync_text(site, batch_id) == f"pending ({total - 3} entries)"
    assert acknowledge(site, batch_id, 2, entries[1].hash)  # a late answer to an older chunk
    assert outbox_of(site, batch_id).acked_seq == 3
    assert acknowledge(site, batch_id, total - 1, entries[-2].hash)
    assert sync_text(site, batch_id) == "pending (1 entry)"
    assert acknowledge(site, batch_id, total, entries[-1].hash)
    row = outbox_of(site, batch_id)
    assert (row.acked_seq, row.pending, row.priority, row.state) == (total, False, False, "synced")
    assert sync_text(site, batch_id) == "synced"
    with site.uow() as uow:
        assert outbox.pending(uow) == []
        pushes = list(
            uow.session.execute(
                select(SyncEvent.outcome, SyncEvent.code, SyncEvent.last_seq)
                .where(SyncEvent.action == "push")
                .order_by(SyncEvent.id)
            ).all()
        )
    assert pushes == [
        ("refused", "ack-mismatch", 3),
        ("refused", "ack-mismatch", total + 1),
        ("duplicate", None, 3),
        ("duplicate", None, 2),
        ("duplicate", None, total - 1),
        ("duplicate", None, total),
    ]
    # A new entry on a synced batch: pending again, and shown so.
    site.do_simple(batch_id, "test_a", {"a": "3"})
    added = last_seq(site, batch_id) - total
    row = outbox_of(site, batch_id)
    assert (row.pending, row.acked_seq, row.last_seq) == (True, total, total + added)
    assert sync_text(site, batch_id) == f"pending ({added} entries)"
    with site.uow() as uow:
        outbox.refused(uow, NOW, batch_id, "recipe-not-deployed", "Not deployed to SPK1.")
    assert sync_text(site, batch_id) == "refused by the hub: Not deployed to SPK1."
    site.do_simple(batch_id, "test_b", {"b": "pass"})  # a refusal stays shown until resolved
    assert sync_text(site, batch_id) == "refused by the hub: Not deployed to SPK1."
    with site.uow() as uow:
        assert [p.batch_id for p in outbox.pending(uow)] == [batch_id]


def test_an_idle_round_finds_nothing_to_send_once_all_is_synced(site):
    batch_id = started_batch(site)
    entries = ledger(site, batch_id)
    with site.uow() as uow:
        assert outbox.chunk_after(uow, NOW, batch_id, len(entries)) is None
        data, batches, count_entries = outbox.export_pending(uow, CLI)
    assert (batches, count_entries) == (1, len(entries))
    acknowledge(site, batch_id, len(entries), entries[-1].hash)
    with site.uow() as uow:
        assert outbox.pending(uow) == []
        data, batches, count_entries = outbox.export_pending(uow, CLI)
    assert (batches, count_entries) == (0, 0)
    assert transfer.read_transfer_file(data).chunks == ()


def test_a_bundle_handled_before_is_not_fetched_again(site):
    """A version published again (a new bundle of the same content) installs as 'already
    installed'; once the round notes it as handled, the next round must not fetch it again."""
    again = make_bundle(
        load_recipe(TEST_RECIPE, "test.yaml").data,
        effective_from=NOW.date(),
        sites=[SPOKE, "SPK2"],
        issuer="HUB",
        issued_at=NOW,
        key=site.hub_key,
    )
    bundle_hash = open_bundle(again, site.hub_key.public, SPOKE).bundle_hash
    with site.uow() as uow:
        assert bundle_hash not in outbox.handled_bundles(uow)
        assert not install_bundle(uow, CLI, again, "hub bundle BATCH-TEST v1").newly_installed
    with site.uow() as uow:  # what the sync round notes after installing it
        outbox.note(uow, NOW, "install", "accepted", item=bundle_hash, reason="BATCH-TEST v1")
    with site.uow() as uow:
        assert bundle_hash in outbox.handled_bundles(uow)
        installed = set(uow.session.execute(select(InstalledRecipe.bundle_hash)).scalars())
        assert installed <= outbox.handled_bundles(uow)


# --- transfer files -------------------------------------------------------------------------


def test_transfer_files_carry_the_same_chunks_and_acknowledgements_and_import_once(net, tmp_path):
    site = net.connected()
    done = run_batch(site, recipe_file(tmp_path))
    started = site.start(**OTHER_IDENTIFIERS).state.id
    with site.uow() as uow:
        data, batches, entries = outbox.export_pending(uow, CLI, max_entries=10)
    assert (batches, entries) == (2, last_seq(site, done) + last_seq(site, started))
    chunks = transfer.read_transfer_file(data).chunks
    assert len(chunks) > 2  # the long batch in several chunks
    hub, spoke = net.runtime("hub"), net.runtime("spoke")
    # A file whose last chunk was altered on the stick: that chunk is refused, the rest stored.
    last = open_chunk(chunks[-1], net.spoke_key.public, SPOKE)
    middle = len(chunks[-1]) // 2
    bad = chunks[-1][:middle] + ("A" if chunks[-1][middle] != "A" else "B")
    bad += chunks[-1][middle + 1 :]
    altered = transfer.transfer_file(
        source=SPOKE, target="HUB", created_at=NOW, chunks=[*chunks[:-1], bad]
    )
    partly = transfer.import_file(hub, CLI, altered)
    assert (partly.stored, partly.refused) == (
        entries - len(last.entries),
        ["The chunk's signature does not verify: it was altered after the spoke signed it."],
    )
    assert len(hub_entries(net)) == entries - len(last.entries)
    first = transfer.import_file(hub, CLI, data)
    assert (first.stored, first.duplicates, first.batches, first.refused) == (
        len(last.entries),
        entries - len(last.entries),
        {done, started},
        [],
    )
    held = hub_entries(net)
    assert held == entry_rows(net.spoke_sessions)
    again = transfer.import_file(hub, CLI, data)
    assert (again.stored, again.duplicates, again.refused) == (0, entries, [])
    assert again.summary() == f"0 entries stored ({entries} already held) from 2 batches."
    assert hub_entries(net) == held
    assert {e.via for e in events(net.hub, action="ingest")} == {"file"}
    for batch_id in (done, started):
        assert hub_projection(net, batch_id) == spoke_projection(site, batch_id)
    with site.uow() as uow:  # exporting moved no mark
        assert {p.batch_id for p in outbox.pending(uow)} == {done, started}
    # A hub whose copy of a batch differed would acknowledge another hash: the spoke refuses it,
    # says so, and its mark stays.
    wrong = make_acks({started: (1, "e" * 64)}, hub="HUB", site=SPOKE, key=net.hub_key, at=NOW)
    mismatch = transfer.import_file(
        spoke, CLI, transfer.transfer_file(source="HUB", target=SPOKE, created_at=NOW, acks=wrong)
    )
    assert mismatch.acknowledged == 0
    assert mismatch.refused == [
        f"Batch {started}: The hub acknowledged entry 1 with hash eeeeeeeeeeee…, which is not "
        "this spoke's entry: the copies differ."
    ]
    assert outbox_of(site, started).acked_seq == 0
    assert sync_text(site, started).startswith(
        "refused by the hub: The hub acknowledged entry 1 with hash"
    )
    # The hub's file for SPK1: the bundle published for it and the signed acknowledgements.
    back, bundles, heads = transfer.export_hub(hub, CLI, SPOKE)
    assert (bundles, heads) == (1, 2)
    report = transfer.import_file(spoke, CLI, back)
    assert (report.acknowledged, report.installed, report.refused) == (2, [], [])
    with site.uow() as uow:
        assert {b: s.text for b, s in outbox.batch_sync(uow, [done, started]).items()} == {
            done: "synced",
            started: "synced",
        }
        assert outbox.pending(uow) == []
    assert transfer.import_file(spoke, CLI, back).summary() == (
        "Nothing new in the file; nothing changed."
    )
    # Each file belongs to its side.
    with pytest.raises(ChunkUnreadable, match="import it at the hub"):
        transfer.import_file(spoke, CLI, data)
    assert transfer.import_file(hub, CLI, back).refused == [
        "recipe bundles are imported at a spoke, not at the hub"
    ]


# --- review findings: enrollment cannot undo a suspension or swap a key --------------------


def test_a_suspended_spoke_cannot_make_itself_active_again_by_enrolling(make_uow):
    key = SiteKey.generate()
    enroll(make_uow, SPOKE, add(make_uow).code, key)
    with make_uow() as uow:
        spare = spokes.issue_enrollment_code(uow, cli(), SPOKE)  # issued before the suspension
    change(make_uow, SPOKE, "suspend", "Suspected compromise of the suite's server")
    error = refused(
        lambda: enroll(make_uow, SPOKE, spare.code, SiteKey.generate()), EnrollmentRefused
    )
    assert error.message.startswith("The enrollment code is not valid")  # suspension expired it
    with make_uow() as uow:
        fresh = spokes.issue_enrollment_code(uow, cli(), SPOKE)
    error = refused(
        lambda: enroll(make_uow, SPOKE, fresh.code, SiteKey.generate()), EnrollmentRefused
    )
    assert error.message == f"Spoke {SPOKE} is suspended; it cannot enroll until it is reinstated."
    with make_uow() as uow:
        spoke = uow.session.get(SpokeRow, SPOKE)
        assert (spoke.status, spoke.key_id) == ("suspended", key.public.key_id)


def test_a_spoke_whose_records_the_hub_holds_cannot_swap_its_key_by_enrolling(net, tmp_path):
    site = net.connected()
    batch_id = run_batch(site, recipe_file(tmp_path))
    ingest(net, chunk(site, batch_id)[0])
    with net.hub() as uow:
        ticket = spokes.issue_enrollment_code(uow, cli(), SPOKE)
    other = SiteKey.generate()
    with net.hub() as uow, pytest.raises(EnrollmentRefused) as caught:
        spokes.enroll(uow, NOW, SPOKE, ticket.code, other.public.pem().decode())
    assert "the spoke's key cannot be replaced by enrolling" in caught.value.message
    with net.hub() as uow:
        assert uow.session.get(SpokeRow, SPOKE).key_id == net.spoke_key.public.key_id
        assert hub_ingest.verify_received(uow, batch_id) > 0  # its records still verify


__all__ = ["net"]  # the fixture, imported from sync_sites


def test_an_urgent_batch_ends_the_wait_between_sync_rounds(site):
    """A deviation goes to the hub at once, not at the next interval (the loop's wait ends).

    The waits run in a thread joined with a generous bound: on the old loop, which slept the
    whole interval, the hour-long wait would still be running.
    """
    from datetime import UTC, datetime
    from threading import Event, Thread
    from types import SimpleNamespace

    from mes.sync.client import RETRY_REFUSED_SECONDS, wait_for_next_round

    runtime = SimpleNamespace(uow=lambda read_only=False: site.uow())  # the spoke's database

    def wait(seconds: float) -> bool | None:
        ended: list[bool] = []
        thread = Thread(target=lambda: ended.append(wait_for_next_round(runtime, Event(), seconds)))
        thread.start()
        thread.join(timeout=120)
        assert not thread.is_alive(), f"the {seconds} s wait did not end"
        return ended[0]

    batch_id = site.start().state.id
    with site.uow() as uow:
        assert not outbox.urgent_waiting(uow, NOW, RETRY_REFUSED_SECONDS)  # pending, not urgent
    assert wait(0.3) is False  # waited the interval out
    site.start_phase(batch_id, "check_bag")
    result = site.record(
        batch_id, "check_bag", identity={"bag_din": STRANGE_DIN_BARCODE}, equipment={0: SCANNER}
    )
    assert any(d.status.value == "open" for d in result.batch.state.deviations.values())
    assert wait(3600) is True  # the deviation ended the hour's wait at the first look
    # Refused by the hub just now: offered again only after the retry delay, as in a round.
    with site.uow() as uow:
        outbox.refused(uow, datetime.now(UTC), batch_id, "refused", "Refused for the test.")
    with site.uow() as uow:
        assert not outbox.urgent_waiting(uow, datetime.now(UTC), RETRY_REFUSED_SECONDS)
    assert wait(0.3) is False
