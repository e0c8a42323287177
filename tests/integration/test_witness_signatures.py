"""A witness who signs in place, on both databases: a second person verifies, acknowledges or
signs the batch complete at the performer's terminal and session, identified with their own user
ID and password, while the performer stays logged in (issue 15; 21 CFR 11.200(a), 11.300(d)).

The adapter's path is the one the web's ``act`` takes: :func:`witness_context` makes the witness
the acting user of the request's context, and the same service runs with it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_checks import assert_sound, entries, unchanged_by
from batch_helpers import DIN_BARCODE, PATIENT, SCANNER, spoke
from sqlalchemy import select
from support import NOW, PASSWORD

from mes.core.batch import Action, BatchStatus, PhaseStatus
from mes.core.errors import (
    AccountLocked,
    AuthenticationFailed,
    InvalidInput,
    NotAuthorised,
    NotQualified,
    SelfVerificationForbidden,
)
from mes.core.esign import Meaning
from mes.core.sessions import SessionPolicy
from mes.services import batches, sessions
from mes.services.esign import Credentials, sign_record, witness_context
from mes.store.models import AuditEntry, User

LATER = NOW + timedelta(hours=3)
POLICY = SessionPolicy(idle_timeout=timedelta(minutes=5), lifetime=timedelta(hours=12))


def witnessed(site, host, witness, service, *args, password=PASSWORD, at=NOW, **kwargs):
    """``service`` signed by ``witness`` in place at ``host``'s session (as ``act`` does)."""
    credentials = Credentials(password, witness, witness=True)
    with site.uow() as uow:
        ctx = witness_context(uow, site.ctx(host, at), credentials)
        return service(
            uow, ctx, *args, credentials=credentials, first_signing_in_session=True, **kwargs
        )


def verify_in_place(site, batch_id, host="olivia", witness="sam", **kwargs):
    return witnessed(
        site, host, witness, batches.sign_phase, batch_id, "check_bag", Action.VERIFY, **kwargs
    )


def performed(site, who="olivia") -> str:
    """A batch whose bag check ``who`` performed; it awaits verification."""
    batch_id = site.start().state.id
    site.start_phase(batch_id, "check_bag", who=who)
    site.record(
        batch_id, "check_bag", who=who, values={"bag_intact": "yes"},
        equipment={0: SCANNER}, identity={"bag_din": DIN_BARCODE, "bag_patient": PATIENT},
    )  # fmt: skip
    site.sign(batch_id, "check_bag", who=who)
    return batch_id


def session_of(site, who) -> str:
    with site.uow() as uow:
        return sessions.open_session(uow, site.ctx(who), POLICY)


def still_open(site, token) -> bool:
    with site.uow() as uow:
        return sessions.find_session(uow, token) is not None


def failed_attempts(site, username) -> int:
    with site.uow() as uow:
        return uow.session.get(User, site.ids[username]).failed_attempts


def test_a_supervisor_verifies_in_place_while_the_operator_stays_logged_in(make_uow):
    site = spoke(make_uow)
    batch_id = performed(site)
    olivia = session_of(site, "olivia")
    batch = verify_in_place(site, batch_id)
    phase = batch.state.phases["check_bag"]
    assert phase.status is PhaseStatus.VERIFIED
    assert phase.verified_by.username == "sam"
    assert still_open(site, olivia)
    with site.uow() as uow:
        resumed = sessions.resume_session(uow, olivia, NOW, POLICY, activity=False)
    assert resumed is not None and not resumed.locked and not resumed.signed
    assert resumed.user.username == "olivia"
    assert_sound(site, batch_id)


def test_the_ledger_entry_names_the_witness_as_signer_and_the_session_it_was_given_in(make_uow):
    site = spoke(make_uow)
    batch_id = performed(site)
    verify_in_place(site, batch_id)
    entry = entries(site, batch_id)[-1]
    assert entry.kind == "signature"
    assert (entry.actor_username, entry.actor_id) == ("sam", site.ids["sam"])
    assert entry.terminal == "Suite A 1"
    manifestation = entry.payload["manifestation"]
    assert (manifestation["username"], manifestation["meaning"]) == ("sam", "verified")
    assert set(manifestation) == {
        "record_type", "record_id", "record_hash", "signer_id", "username", "printed_name",
        "meaning", "at", "terminal", "site",
    }  # fmt: skip
    assert entry.payload["in_session_of"] == {
        "user_id": site.ids["olivia"], "username": "olivia", "name": "Olivia Tester",
    }  # fmt: skip
    from mes.core.record import entries_in_words

    view = site.view(batch_id)
    with site.uow() as uow:
        sealed = batches.ledger_entries(uow, site.ctx("olivia"), batch_id)
    words = entries_in_words(view.batch, sealed, "Europe/London")[-1]
    assert "as a witness at the session of Olivia Tester (olivia)" in str(words)


def test_the_performer_cannot_witness_their_own_phase(make_uow):
    site = spoke(make_uow)
    site.add_person("sofia", ["operator", "supervisor"], train_on=("BATCH-TEST", 1))
    batch_id = performed(site, who="sofia")
    refusal = unchanged_by(
        site,
        lambda: verify_in_place(site, batch_id, host="oscar", witness="sofia"),
        SelfVerificationForbidden,
    )
    assert str(refusal) == (
        "You recorded or signed data in 'Check the bag': you cannot verify it. "
        "Ask another trained person to verify."
    )
    refusal = unchanged_by(
        site,
        lambda: verify_in_place(site, batch_id, host="sofia", witness="sofia"),
        InvalidInput,
    )
    assert str(refusal).startswith("You are the logged-in user: a witness is another person.")
    assert failed_attempts(site, "sofia") == 0


def test_a_witness_without_the_role_or_the_training_is_refused_in_words(make_uow):
    site = spoke(make_uow)
    site.add_person("steve", ["supervisor"])  # never trained on BATCH-TEST
    batch_id = performed(site)
    refusal = unchanged_by(
        site, lambda: verify_in_place(site, batch_id, witness="oscar"), NotAuthorised
    )
    assert str(refusal) == (
        "To verify 'Check the bag' you need the supervisor role. Ask a person who holds it."
    )
    refusal = unchanged_by(
        site,
        lambda: verify_in_place(site, batch_id, witness="steve", password="wrong"),
        NotQualified,
    )
    assert str(refusal).startswith(
        "Steve Tester has no current training record for 'BATCH-TEST v1'."
    )
    assert failed_attempts(site, "steve") == 0  # refused before the password counted


def test_a_wrong_witness_password_counts_on_the_witness_and_never_logs_the_performer_out(
    make_uow,
):
    site = spoke(make_uow)
    batch_id = performed(site)
    olivia, sam = session_of(site, "olivia"), session_of(site, "sam")
    with pytest.raises(AuthenticationFailed, match=r"The user ID or password is wrong\."):
        verify_in_place(site, batch_id, password="wrong")
    assert (failed_attempts(site, "sam"), failed_attempts(site, "olivia")) == (1, 0)
    for count in (2, 3, 4):
        with pytest.raises(AuthenticationFailed):
            verify_in_place(site, batch_id, password="wrong")
        assert failed_attempts(site, "sam") == count
    with pytest.raises(AccountLocked, match="The account sam is now locked"):
        verify_in_place(site, batch_id, password="wrong")
    assert not still_open(site, sam)  # the witness's own sessions end with the lockout
    assert still_open(site, olivia)
    assert failed_attempts(site, "olivia") == 0
    assert site.view(batch_id).batch.state.phases["check_bag"].status is PhaseStatus.PERFORMED


def test_an_unknown_witness_user_id_gets_the_words_of_a_wrong_password(make_uow):
    site = spoke(make_uow)
    batch_id = performed(site)
    with pytest.raises(AuthenticationFailed, match=r"^The user ID or password is wrong\."):
        verify_in_place(site, batch_id, witness="nobody")
    with site.uow() as uow:  # 11.300(d): the attempt is a security entry of the audit trail
        entry = uow.session.execute(
            select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)
        ).scalar_one()
    assert (entry.kind, entry.action, entry.record_id) == (
        "security", "witness signature refused", "nobody",
    )  # fmt: skip
    assert (entry.actor_username, entry.reason) == ("olivia", "unknown user ID")
    assert site.view(batch_id).batch.state.phases["check_bag"].status is PhaseStatus.PERFORMED
    with pytest.raises(
        InvalidInput, match="A witness signs with their own badge and PIN, or user ID"
    ):
        verify_in_place(site, batch_id, witness="")


def test_only_the_actions_the_table_marks_may_be_signed_by_a_witness(make_uow):
    site = spoke(make_uow)
    batch_id = site.start().state.id
    site.start_phase(batch_id, "check_bag")
    refusal = unchanged_by(
        site,
        lambda: witnessed(
            site, "olivia", "oscar", batches.sign_phase, batch_id, "check_bag", Action.PERFORM
        ),
        NotAuthorised,
    )
    assert str(refusal).startswith(
        "'Sign performed' cannot be signed by a witness in place: only Verify, Acknowledge, "
        "Sign the batch complete, Sign the custody transfer can."
    )
    with pytest.raises(NotAuthorised, match="cannot be given by a witness in place"):
        witnessed(
            site, "olivia", "sam", sign_record,
            record_type="note", record_id="n1", record={"type": "note"},
            meaning=Meaning.REVIEWED,
        )  # fmt: skip


def test_a_deviation_is_acknowledged_and_the_batch_signed_complete_in_place(make_uow):
    site = spoke(make_uow)
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    site.do_count(batch_id, viability="60.0")  # outside the action limits: a deviation
    site.do_culture_and_harvest(batch_id, at=LATER)
    deviation = "SPK1-2026-0001-D1"
    batch = witnessed(
        site, "olivia", "sam", batches.acknowledge_deviation, batch_id, deviation, at=LATER
    )
    assert batch.state.deviations[deviation].acknowledged_by.username == "sam"
    batch = witnessed(site, "olivia", "sam", batches.complete_batch, batch_id, at=LATER)
    assert batch.state.status is BatchStatus.COMPLETE
    last = entries(site, batch_id)[-1]
    assert last.actor_username == "sam"
    assert last.payload["in_session_of"]["username"] == "olivia"
    assert_sound(site, batch_id)


SAM_BADGE, SAM_PIN = "BADGE-20002", "738164"


def with_badge(site, username="sam", badge=SAM_BADGE, pin=SAM_PIN):
    """``username`` gets a badge and a PIN, enrolled from the command line."""
    from mes.services.badges import enroll_badge, set_pin_for
    from mes.services.context import Context

    system = Context.command_line(NOW - timedelta(days=1), "tester", "testhost")
    with site.uow() as uow:
        enroll_badge(uow, system, username, badge)
    with site.uow() as uow:
        set_pin_for(uow, system, username, pin)


def verify_by_badge(site, batch_id, badge=SAM_BADGE, pin=SAM_PIN):
    credentials = Credentials(pin, badge=badge, witness=True)
    with site.uow() as uow:
        ctx = witness_context(uow, site.ctx("olivia"), credentials)
        return batches.sign_phase(
            uow, ctx, batch_id, "check_bag", Action.VERIFY,
            credentials=credentials, first_signing_in_session=True,
        )  # fmt: skip


def test_a_witness_verifies_in_place_with_their_badge_and_pin(make_uow):
    site = spoke(make_uow)
    with_badge(site)
    batch_id = performed(site)
    olivia = session_of(site, "olivia")
    batch = verify_by_badge(site, batch_id)
    assert batch.state.phases["check_bag"].verified_by.username == "sam"
    assert entries(site, batch_id)[-1].payload["in_session_of"]["username"] == "olivia"
    assert still_open(site, olivia)
    assert_sound(site, batch_id)


def test_a_wrong_witness_pin_counts_on_the_badge_holder_and_an_unknown_badge_is_refused(
    make_uow,
):
    site = spoke(make_uow)
    with_badge(site)
    batch_id = performed(site)
    with pytest.raises(AuthenticationFailed, match="PIN"):
        verify_by_badge(site, batch_id, pin="905173")
    assert (failed_attempts(site, "sam"), failed_attempts(site, "olivia")) == (1, 0)
    with pytest.raises(AuthenticationFailed, match="PIN"):
        verify_by_badge(site, batch_id, badge="BADGE-99999")
    assert site.view(batch_id).batch.state.phases["check_bag"].status is PhaseStatus.PERFORMED


def test_the_performers_own_badge_cannot_witness_their_phase(make_uow):
    site = spoke(make_uow)
    with_badge(site, "olivia", "BADGE-20001", "604917")
    batch_id = performed(site)
    with pytest.raises(InvalidInput, match="a witness is another person"):
        verify_by_badge(site, batch_id, badge="BADGE-20001", pin="604917")
