"""Badge + PIN through the services (21 CFR 11.200(a)(1), 11.300(a)-(d)): enrolling and revoking
badges, setting PINs, logging in and signing by badge, and the site's choice of ways to sign."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from integration_helpers import attest, audit_entries, sign_phase
from support import NOW, PASSWORD, user_ctx

from mes.core.errors import (
    AccountLocked,
    AuthenticationFailed,
    InvalidInput,
    LoginRefused,
    PasswordChangeRequired,
    SelfAdministrationForbidden,
    SignerMismatch,
    SigningMethodNotAllowed,
    UnknownBadge,
    WeakPassword,
)
from mes.core.esign import Meaning
from mes.core.sessions import SessionPolicy
from mes.services.badges import (
    BadgeTaken,
    badge_of,
    enroll_badge,
    revoke_badge,
    set_pin,
    set_pin_for,
    user_by_badge,
)
from mes.services.configuration import set_signing_methods, signing_methods
from mes.services.esign import Credentials, check_password_first, sign_record
from mes.services.sessions import find_session, mark_signed, open_session
from mes.services.users import authenticate, authenticate_by_badge, find_user
from mes.store.models import AuditEntry, Badge, PinHistory

BADGE, PIN = "BADGE-10005", "851427"
OTHER_BADGE, OTHER_PIN = "BADGE-10006", "962538"
WRONG_PIN = "739146"
WRONG = "not-the-Password-9"


@pytest.fixture
def carol(make_uow, create_user, cli_ctx) -> str:
    """An operator who attested, with badge BADGE and PIN PIN (enrolled by the command line)."""
    user_id = create_user("carol", full_name="Carol Ann Tester")
    attest(make_uow, user_id, "carol")
    with make_uow() as uow:
        enroll_badge(uow, cli_ctx, "carol", BADGE)
    with make_uow() as uow:
        set_pin_for(uow, cli_ctx, "carol", PIN)
    return user_id


@pytest.fixture
def dave(make_uow, create_user, cli_ctx) -> str:
    """A second operator with his own badge and PIN."""
    user_id = create_user("dave")
    attest(make_uow, user_id, "dave")
    with make_uow() as uow:
        enroll_badge(uow, cli_ctx, "dave", OTHER_BADGE)
    with make_uow() as uow:
        set_pin_for(uow, cli_ctx, "dave", OTHER_PIN)
    return user_id


def sign(make_uow, ctx, *, secret=PIN, badge=None, username=None, first=True):
    with make_uow() as uow:
        signature = sign_record(
            uow,
            ctx,
            record_type="phase",
            record_id="B-0001/thaw",
            record={"batch": "B-0001", "phase": "thaw"},
            meaning=Meaning.PERFORMED,
            credentials=Credentials(password=secret, username=username, badge=badge),
            first_signing_in_session=first,
        )
        uow.commit()
        return signature


def state_of(make_uow, username="carol") -> tuple[int, bool]:
    with make_uow() as uow:
        user = find_user(uow, username)
        return user.failed_attempts, user.locked


def security_entries(make_uow, action: str) -> list[AuditEntry]:
    return [e for e in audit_entries(make_uow) if e.action == action]


# --- enrolling and revoking ----------------------------------------------------------------


def test_an_enrolled_badge_identifies_its_holder_and_only_its_hash_is_kept(make_uow, carol):
    with make_uow() as uow:
        assert user_by_badge(uow, BADGE).id == carol
        assert user_by_badge(uow, f" {BADGE}\r\n").id == carol  # the scanner's line end
        assert user_by_badge(uow, "BADGE-99999") is None
        assert user_by_badge(uow, "") is None
        [row] = uow.session.query(Badge).all()
        assert BADGE not in (row.code_hash, row.hint)
        assert row.hint == "…0005"
        assert badge_of(uow, find_user(uow, "carol")).hint == "…0005"
    [entry] = security_entries(make_uow, "badge enrolled")
    assert entry.kind == "security"
    assert entry.new == {"badge": "…0005"}
    assert BADGE not in str(entry.new)


def test_nobody_enrolls_their_own_badge(make_uow, create_user):
    ada = create_user("ada", roles=["admin"])
    with make_uow() as uow, pytest.raises(SelfAdministrationForbidden, match="your own badge"):
        enroll_badge(uow, user_ctx(ada), "ada", BADGE)
    other = create_user("adam", roles=["admin"])
    with make_uow() as uow:
        assert enroll_badge(uow, user_ctx(other), "ada", BADGE) == "…0005"


def test_a_badge_enrolled_to_anyone_cannot_be_enrolled_again(make_uow, carol, create_user, cli_ctx):
    create_user("dave")
    with make_uow() as uow, pytest.raises(BadgeTaken, match="already enrolled"):
        enroll_badge(uow, cli_ctx, "dave", BADGE)
    with make_uow() as uow, pytest.raises(InvalidInput, match="carol already has badge …0005"):
        enroll_badge(uow, cli_ctx, "carol", OTHER_BADGE)


def test_a_revoked_badge_stops_identifying_at_once_and_the_revocation_is_audited(
    make_uow, carol, create_user, cli_ctx
):
    with make_uow() as uow:
        token = open_session(
            uow, user_ctx(carol), SessionPolicy(timedelta(minutes=5), timedelta(hours=12))
        )
    with make_uow() as uow:
        mark_signed(uow, token, "badge_pin")
    with make_uow() as uow, pytest.raises(InvalidInput, match="reason"):
        revoke_badge(uow, cli_ctx, "carol", "  ")
    with make_uow() as uow:
        assert revoke_badge(uow, cli_ctx, "carol", "lost in the changing room") == "…0005"
    with make_uow() as uow:
        assert user_by_badge(uow, BADGE) is None
        assert badge_of(uow, find_user(uow, "carol")) is None
    [entry] = security_entries(make_uow, "badge revoked")
    assert (entry.kind, entry.reason, entry.new) == (
        "security",
        "lost in the changing room",
        {"badge": "…0005"},
    )
    with make_uow() as uow, pytest.raises(LoginRefused):
        authenticate_by_badge(uow, user_ctx(carol), BADGE, PIN)
    with make_uow() as uow:  # a session that signed by this badge signs in full again
        assert find_session(uow, token).signed_with is None
        assert not find_session(uow, token).signed
    with pytest.raises(UnknownBadge):
        sign(make_uow, user_ctx(carol), badge=BADGE)
    # The card found again may be given to someone else; nothing was deleted.
    create_user("dave")
    with make_uow() as uow:
        enroll_badge(uow, cli_ctx, "dave", BADGE)
    with make_uow() as uow:
        assert user_by_badge(uow, BADGE).username == "dave"
        assert uow.session.query(Badge).count() == 2


# --- PINs ---------------------------------------------------------------------------------


def test_the_user_sets_a_pin_after_their_password_with_the_rules_and_history(make_uow, carol):
    ctx = user_ctx(carol)
    with make_uow() as uow, pytest.raises(WeakPassword, match="common or easily guessed"):
        set_pin(uow, ctx, PASSWORD, "123456")
    with make_uow() as uow:
        set_pin(uow, ctx, PASSWORD, "528419")
    with make_uow() as uow, pytest.raises(WeakPassword, match="one of your last 5 PINs"):
        set_pin(uow, ctx, PASSWORD, PIN)
    with make_uow() as uow:
        assert uow.session.query(PinHistory).count() == 2
    assert [e.action for e in audit_entries(make_uow) if "PIN" in e.action] == [
        "PIN set",
        "PIN changed",
    ]
    with make_uow() as uow:
        assert authenticate_by_badge(uow, ctx, BADGE, "528419").id == carol


def test_a_wrong_password_when_setting_a_pin_counts_toward_lockout(make_uow, carol):
    with make_uow() as uow, pytest.raises(AuthenticationFailed):
        set_pin(uow, user_ctx(carol), WRONG, "528419")
    assert state_of(make_uow) == (1, False)


# --- logging in by badge ------------------------------------------------------------------


def test_a_badge_scan_and_its_pin_log_in_and_the_login_is_recorded(make_uow, carol):
    with make_uow() as uow:
        assert authenticate_by_badge(uow, user_ctx(carol), BADGE, PIN).id == carol
    assert security_entries(make_uow, "logged in")[-1].new == {"by": "badge"}


def test_a_wrong_pin_and_an_unknown_badge_get_the_same_words_at_login(make_uow, carol):
    with make_uow() as uow, pytest.raises(LoginRefused) as wrong_pin:
        authenticate_by_badge(uow, user_ctx(carol), BADGE, WRONG_PIN)
    with make_uow() as uow, pytest.raises(LoginRefused) as unknown:
        authenticate_by_badge(uow, user_ctx(carol), "BADGE-99999", PIN)
    assert str(wrong_pin.value) == str(unknown.value)
    assert "Badge or PIN not accepted" in str(unknown.value)
    assert state_of(make_uow) == (1, False)


def test_wrong_pins_and_wrong_passwords_count_toward_the_same_lockout(make_uow, carol):
    for _ in range(2):
        with make_uow() as uow, pytest.raises(LoginRefused):
            authenticate(uow, user_ctx(carol), "carol", WRONG)
    for _ in range(2):
        with make_uow() as uow, pytest.raises(LoginRefused):
            authenticate_by_badge(uow, user_ctx(carol), BADGE, WRONG_PIN)
    assert state_of(make_uow) == (4, False)
    with pytest.raises(AccountLocked):  # the fifth: a wrong PIN in a signature
        sign(make_uow, user_ctx(carol), badge=BADGE, secret=WRONG_PIN)
    assert state_of(make_uow) == (5, True)
    with make_uow() as uow, pytest.raises(LoginRefused):  # the right PIN no longer opens it
        authenticate_by_badge(uow, user_ctx(carol), BADGE, PIN)


def test_an_expired_pin_does_not_log_in_and_says_to_set_a_new_one(make_uow, carol):
    later = user_ctx(carol, at=NOW.replace(year=NOW.year + 1))
    with make_uow(expiry_days=90) as uow, pytest.raises(PasswordChangeRequired) as refused:
        authenticate_by_badge(uow, later, BADGE, PIN)
    assert "Your PIN has expired" in str(refused.value)


# --- signing by badge ---------------------------------------------------------------------


def test_the_first_signing_by_badge_and_pin_then_later_ones_by_the_pin_alone(make_uow, carol):
    first = sign(make_uow, user_ctx(carol), badge=BADGE)
    assert first.manifestation.username == "carol"
    later = replace(user_ctx(carol), signed_with="badge_pin")
    assert sign(make_uow, later, first=False).manifestation.signer_id == carol
    # After a badge the secret is the PIN: the password is a wrong PIN.
    with pytest.raises(AuthenticationFailed, match="The PIN is wrong"):
        sign(make_uow, later, secret=PASSWORD, first=False)
    assert state_of(make_uow) == (1, False)


def test_the_pin_checked_before_the_locks_is_the_one_used(make_uow, carol):
    ctx = replace(user_ctx(carol), signed_with="badge_pin")
    with make_uow() as uow:
        checked = check_password_first(uow, ctx, Credentials(password=PIN))
    assert checked is not None and checked.matches
    with make_uow() as uow:
        checked = check_password_first(uow, user_ctx(carol), Credentials(PIN, badge=BADGE))
    assert checked is not None and checked.matches


def test_a_badge_of_someone_else_signs_nothing_and_counts_nothing(make_uow, carol, dave):
    with pytest.raises(SignerMismatch, match="badge scanned is not the logged-in user's"):
        sign(make_uow, user_ctx(carol), badge=OTHER_BADGE, secret=OTHER_PIN)
    assert state_of(make_uow) == (0, False)
    assert state_of(make_uow, "dave") == (0, False)
    assert [e for e in audit_entries(make_uow) if e.record_type == "phase"] == []


def test_a_badge_signing_without_a_pin_set_is_refused_without_counting(
    make_uow, create_user, cli_ctx
):
    erin = create_user("erin")
    attest(make_uow, erin, "erin")
    with make_uow() as uow:
        enroll_badge(uow, cli_ctx, "erin", BADGE)
    with pytest.raises(InvalidInput, match="no PIN yet"):
        sign(make_uow, user_ctx(erin), badge=BADGE, secret="")
    assert state_of(make_uow, "erin") == (0, False)


def test_user_id_and_password_still_sign_beside_badges(make_uow, carol):
    assert sign(make_uow, user_ctx(carol), username="carol", secret=PASSWORD).manifestation
    with make_uow() as uow:
        signature = sign_phase(uow, user_ctx(carol), password=PASSWORD, first=False)
        uow.commit()
    assert signature.manifestation.username == "carol"


# --- the site's setting -------------------------------------------------------------------


def test_a_way_to_sign_the_site_disabled_is_refused_and_the_change_is_audited(
    make_uow, carol, cli_ctx
):
    with make_uow() as uow:
        assert signing_methods(uow).values == ["password", "badge_pin"]
    with make_uow() as uow, pytest.raises(InvalidInput, match="reason"):
        set_signing_methods(uow, cli_ctx, ["password"], "")
    with make_uow() as uow:
        set_signing_methods(uow, cli_ctx, ["password"], "badge readers not installed yet")
    with pytest.raises(SigningMethodNotAllowed, match="does not allow signing with badge and PIN"):
        sign(make_uow, user_ctx(carol), badge=BADGE)
    with make_uow() as uow, pytest.raises(SigningMethodNotAllowed):
        authenticate_by_badge(uow, user_ctx(carol), BADGE, PIN)
    assert state_of(make_uow) == (0, False)
    [entry] = [e for e in audit_entries(make_uow) if e.record_id == "signing methods"]
    assert (entry.old, entry.new, entry.reason) == (
        {"methods": ["password", "badge_pin"]},
        {"methods": ["password"]},
        "badge readers not installed yet",
    )
    with make_uow() as uow:
        set_signing_methods(uow, cli_ctx, ["badge_pin"], "badges everywhere now")
    with pytest.raises(SigningMethodNotAllowed, match="user ID and password"):
        sign(make_uow, user_ctx(carol), username="carol", secret=PASSWORD)
    assert sign(make_uow, user_ctx(carol), badge=BADGE).manifestation
    with make_uow() as uow, pytest.raises(InvalidInput, match="At least one way"):
        set_signing_methods(uow, cli_ctx, [], "none")
