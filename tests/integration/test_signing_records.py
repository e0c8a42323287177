"""Electronic signatures through the services (21 CFR 11.10(h)-(j), 11.50, 11.70, 11.200,
11.300(d)): who may sign, with which components, where, and what a signature records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from integration_helpers import (
    PHASE_RECORD,
    attest,
    audit_entries,
    count_rows,
    outcomes,
    sign_phase,
)
from support import NOW, PASSWORD, user_ctx

from mes.core.canonical import content_hash
from mes.core.errors import (
    AccountDeactivated,
    AttestationRequired,
    AuthenticationFailed,
    InvalidInput,
    NotAuthorised,
    TerminalNotRegistered,
)
from mes.core.esign import ACCOUNTABILITY_STATEMENT, ATTESTATION_RECORD_TYPE, Meaning
from mes.services.audit import verify_audit_trail
from mes.services.esign import (
    Credentials,
    acknowledge_accountability,
    signatures_of,
    valid_signatures,
)
from mes.services.ids import new_id
from mes.services.terminals import deactivate_terminal, register_terminal
from mes.services.users import deactivate_user, find_user
from mes.store.models import AuditEntry, Terminal

RECORD = PHASE_RECORD
WRONG = "not-the-Password-9"


def sign(
    make_uow,
    ctx,
    *,
    password=PASSWORD,
    username: str | None = "carol",
    first=True,
    record=RECORD,
    record_id="B-0001/thaw",
    meaning=Meaning.PERFORMED,
    role="hub",
    signer_roles=None,
):
    with make_uow(role) as uow:
        signature = sign_phase(
            uow,
            ctx,
            password=password,
            username=username,
            first=first,
            record=record,
            record_id=record_id,
            meaning=meaning,
            signer_roles=signer_roles,
        )
        uow.commit()
        return signature


def signature_entries(make_uow) -> list[AuditEntry]:
    return [
        e for e in audit_entries(make_uow) if e.kind == "signature" and e.record_type == "phase"
    ]


@pytest.fixture
def carol(make_uow, create_user) -> str:
    """An operator who has acknowledged the accountability statement."""
    user_id = create_user("carol", full_name="Carol Ann Tester")
    attest(make_uow, user_id, "carol")
    return user_id


def test_a_signature_records_printed_name_user_id_utc_time_and_meaning(make_uow, carol):
    signature = sign(make_uow, user_ctx(carol, at=NOW + timedelta(minutes=5)))
    m = signature.manifestation
    assert m.printed_name == "Carol Ann Tester"
    assert m.username == "carol"
    assert m.signer_id == carol
    assert m.at == "2026-11-21T09:05:00.000000Z"
    assert m.meaning == "performed"
    assert m.terminal == "Bench 1"
    assert m.site == "TEST"
    assert m.record_type == "phase"
    assert m.record_id == "B-0001/thaw"
    assert m.record_hash == content_hash(RECORD)
    [entry] = signature_entries(make_uow)
    assert entry.seq == signature.entry_seq
    assert entry.hash == signature.entry_hash
    assert entry.action == "signed: performed"
    assert entry.actor_id == carol
    assert entry.new == m.as_dict()


def test_signatures_of_a_record_list_its_manifestations_in_order(make_uow, carol, create_user):
    verifier = create_user("victor", roles=["supervisor"])
    attest(make_uow, verifier, "victor")
    sign(make_uow, user_ctx(carol))
    sign(
        make_uow,
        user_ctx(verifier, at=NOW + timedelta(minutes=1)),
        username="victor",
        meaning=Meaning.VERIFIED,
    )
    sign(make_uow, user_ctx(carol), record_id="B-0001/wash", record={"other": 1})
    with make_uow() as uow:
        listed = signatures_of(uow, "phase", "B-0001/thaw")
    assert [(m.username, m.meaning) for m in listed] == [
        ("carol", "performed"),
        ("victor", "verified"),
    ]


def test_the_audit_chain_still_verifies_after_signing(make_uow, carol):
    sign(make_uow, user_ctx(carol))
    entries = count_rows(make_uow, AuditEntry)
    with make_uow() as uow:
        assert verify_audit_trail(uow) == entries


def test_valid_signatures_are_those_over_exactly_this_content(make_uow, carol):
    sign(make_uow, user_ctx(carol))
    with make_uow() as uow:
        assert [m.username for m in valid_signatures(uow, "phase", "B-0001/thaw", RECORD)] == [
            "carol"
        ]
        reordered = dict(reversed(list(RECORD.items())))
        assert len(valid_signatures(uow, "phase", "B-0001/thaw", reordered)) == 1


def test_a_signature_is_not_valid_for_altered_record_content(make_uow, carol):
    sign(make_uow, user_ctx(carol))
    altered = [
        {**RECORD, "value": 38.0},
        {**RECORD, "value": "37.0"},
        {**RECORD, "note": "added later"},
        {"batch": "B-0001"},
    ]
    with make_uow() as uow:
        for content in altered:
            assert valid_signatures(uow, "phase", "B-0001/thaw", content) == [], content
        assert len(signatures_of(uow, "phase", "B-0001/thaw")) == 1


def test_a_signature_does_not_carry_over_to_another_record_with_the_same_content(make_uow, carol):
    sign(make_uow, user_ctx(carol))
    with make_uow() as uow:
        assert valid_signatures(uow, "phase", "B-0002/thaw", RECORD) == []


def test_the_first_signing_of_a_session_without_the_user_id_is_refused(make_uow, carol):
    with pytest.raises(InvalidInput):
        sign(make_uow, user_ctx(carol), username=None, first=True)
    assert signature_entries(make_uow) == []


def test_a_later_signing_of_the_session_needs_only_the_password(make_uow, carol):
    signature = sign(make_uow, user_ctx(carol), username=None, first=False)
    assert signature.manifestation.username == "carol"


def test_nobody_can_sign_with_another_users_id(make_uow, carol, create_user):
    create_user("dave")
    tried = outcomes(
        lambda first: sign(make_uow, user_ctx(carol), username="dave", first=first), [True, False]
    )
    assert tried == {True: "SignerMismatch", False: "SignerMismatch"}
    assert signature_entries(make_uow) == []


def test_a_wrong_password_signs_nothing_and_the_failure_is_committed(make_uow, carol):
    with pytest.raises(AuthenticationFailed):
        sign(make_uow, user_ctx(carol), password=WRONG)
    assert signature_entries(make_uow) == []
    with make_uow() as uow:
        assert find_user(uow, "carol").failed_attempts == 1
    last = audit_entries(make_uow)[-1]
    assert last.action == "signature failed"
    assert last.kind == "security"
    assert last.new == {"consecutive_failures": 1}


def test_a_successful_signature_resets_the_count_of_failures(make_uow, carol):
    with pytest.raises(AuthenticationFailed):
        sign(make_uow, user_ctx(carol), password=WRONG)
    sign(make_uow, user_ctx(carol))
    with make_uow() as uow:
        assert find_user(uow, "carol").failed_attempts == 0


def test_no_signature_before_the_accountability_statement_is_acknowledged(make_uow, create_user):
    user_id = create_user("carol")
    with pytest.raises(AttestationRequired):
        sign(make_uow, user_ctx(user_id))
    assert signature_entries(make_uow) == []
    attest(make_uow, user_id, "carol")
    assert sign(make_uow, user_ctx(user_id)).manifestation.username == "carol"


def test_acknowledging_accountability_is_itself_a_signed_and_audited_statement(
    make_uow, create_user
):
    user_id = create_user("carol")
    at = NOW + timedelta(minutes=3)
    with make_uow() as uow:
        assert find_user(uow, "carol").attested_at is None
    attest(make_uow, user_id, "carol", at=at)
    with make_uow() as uow:
        user = find_user(uow, "carol")
        assert user.attested_at is not None
        assert user.attested_at == at
        [m] = signatures_of(uow, ATTESTATION_RECORD_TYPE, user_id)
    assert m.meaning == "acknowledged"
    assert m.username == "carol"
    entry = audit_entries(make_uow)[-1]
    assert entry.kind == "signature"
    assert entry.record_type == ATTESTATION_RECORD_TYPE
    assert entry.new["record_hash"] == content_hash(
        {
            "type": ATTESTATION_RECORD_TYPE,
            "user_id": user_id,
            "username": "carol",
            "statement": ACCOUNTABILITY_STATEMENT,
        }
    )


def test_acknowledging_accountability_with_a_wrong_password_records_nothing(make_uow, create_user):
    user_id = create_user("carol")
    with make_uow() as uow, pytest.raises(AuthenticationFailed):
        acknowledge_accountability(
            uow, user_ctx(user_id), Credentials(password=WRONG, username="carol"), True
        )
    with make_uow() as uow:
        assert find_user(uow, "carol").attested_at is None
        assert signatures_of(uow, ATTESTATION_RECORD_TYPE, user_id) == []


def test_a_deactivated_user_cannot_sign(make_uow, carol, cli_ctx):
    with make_uow() as uow:
        deactivate_user(uow, cli_ctx, "carol", "left the company")
    with pytest.raises(AccountDeactivated):
        sign(make_uow, user_ctx(carol))
    assert signature_entries(make_uow) == []


# --- terminals at a spoke (11.10(h)) -------------------------------------------------------


@pytest.fixture
def spoke_terminal(make_uow, cli_ctx) -> str:
    with make_uow("spoke") as uow:
        return register_terminal(uow, cli_ctx, "Suite A tablet 1", "Suite A")


@pytest.fixture
def spoke_operator(make_uow, create_user, spoke_terminal) -> str:
    user_id = create_user("carol", role="spoke")
    attest(make_uow, user_id, "carol", role="spoke", terminal_id=spoke_terminal)
    return user_id


def test_at_a_spoke_a_browser_that_is_not_a_registered_terminal_cannot_sign(
    make_uow, spoke_operator
):
    for terminal_id in (None, "no-such-terminal"):
        with pytest.raises(TerminalNotRegistered):
            sign(make_uow, user_ctx(spoke_operator, terminal_id=terminal_id), role="spoke")
    assert signature_entries(make_uow) == []


def test_at_a_spoke_a_registered_active_terminal_can_sign(make_uow, spoke_operator, spoke_terminal):
    signature = sign(make_uow, user_ctx(spoke_operator, terminal_id=spoke_terminal), role="spoke")
    assert signature.manifestation.site == "SPK1"
    assert len(signature_entries(make_uow)) == 1


def test_at_a_spoke_a_deactivated_terminal_cannot_sign(
    make_uow, spoke_operator, spoke_terminal, cli_ctx
):
    with make_uow("spoke") as uow:
        deactivate_terminal(uow, cli_ctx, spoke_terminal, "lost")
    with pytest.raises(TerminalNotRegistered):
        sign(make_uow, user_ctx(spoke_operator, terminal_id=spoke_terminal), role="spoke")
    assert signature_entries(make_uow) == []


def test_at_a_spoke_a_terminal_registered_at_another_site_cannot_sign(
    make_uow, spoke_operator, cli_ctx
):
    with make_uow("hub") as uow:
        hub_terminal = register_terminal(uow, cli_ctx, "Hub desk", "QA office")
    with pytest.raises(TerminalNotRegistered):
        sign(make_uow, user_ctx(spoke_operator, terminal_id=hub_terminal), role="spoke")


def test_at_the_hub_no_registered_terminal_is_needed_to_sign(make_uow, carol):
    assert sign(make_uow, user_ctx(carol, terminal_id=None)).manifestation.site == "TEST"


# --- a refused signature never commits the change it was meant to sign --------------------


def stage_terminal(uow, name: str = "Staged tablet") -> None:
    uow.session.add(
        Terminal(
            id=new_id(),
            site=uow.site.code,
            name=name,
            location="",
            active=True,
            registered_at=NOW,
            registered_by=None,
        )
    )
    uow.session.flush()


def test_a_wrong_password_rolls_back_the_change_staged_in_the_same_unit_of_work(make_uow, carol):
    with make_uow() as uow:
        stage_terminal(uow)
        with pytest.raises(AuthenticationFailed):
            sign_phase(
                uow,
                user_ctx(carol),
                password=WRONG,
                username="carol",
                first=True,
            )
    assert count_rows(make_uow, Terminal) == 0
    assert signature_entries(make_uow) == []
    with make_uow() as uow:
        assert find_user(uow, "carol").failed_attempts == 1


def test_a_signature_refused_for_missing_authority_leaves_the_staged_change_uncommitted(
    make_uow, carol
):
    with make_uow() as uow:
        stage_terminal(uow)
        with pytest.raises(NotAuthorised):
            sign_phase(
                uow,
                user_ctx(carol),
                username="carol",
                first=True,
                signer_roles=["qa"],
            )
    assert count_rows(make_uow, Terminal) == 0


def test_a_signature_and_the_change_it_signs_are_committed_together(make_uow, carol):
    with make_uow() as uow:
        stage_terminal(uow)
        sign_phase(
            uow,
            user_ctx(carol),
            username="carol",
            first=True,
        )
        uow.commit()
    assert count_rows(make_uow, Terminal) == 1
    assert len(signature_entries(make_uow)) == 1


def test_a_signature_whose_caller_does_not_commit_is_not_kept(make_uow, carol):
    with make_uow() as uow:
        sign_phase(
            uow,
            user_ctx(carol),
            username="carol",
            first=True,
        )
    assert signature_entries(make_uow) == []
    entries = count_rows(make_uow, AuditEntry)
    with make_uow() as uow:
        assert verify_audit_trail(uow) == entries


def test_a_signature_needs_one_of_the_roles_the_record_asks_for(make_uow, carol, create_user):
    with pytest.raises(NotAuthorised, match="needs the supervisor role"):
        sign(make_uow, user_ctx(carol), meaning=Meaning.VERIFIED, signer_roles={"supervisor"})
    assert signature_entries(make_uow) == []
    admin = create_user("ada", roles=["admin"])
    attest(make_uow, admin, "ada")
    with pytest.raises(NotAuthorised, match="needs the qa role"):
        sign(
            make_uow,
            user_ctx(admin),
            username="ada",
            meaning=Meaning.RELEASED,
            signer_roles={"admin", "qa"},
        )
    assert signature_entries(make_uow) == []
    sign(make_uow, user_ctx(carol), signer_roles={"operator"})
    assert len(signature_entries(make_uow)) == 1
