"""Which components a signing takes (21 CFR 11.200(a)(1)-(2)): badge + PIN or user ID + password
for a session's first signing, then the secret of the session's method; always the logged-in user."""

from __future__ import annotations

import pytest

from mes.core.errors import InvalidInput, SignerMismatch, SigningMethodNotAllowed, UnknownBadge
from mes.core.esign import (
    SigningMethod,
    check_signer_identity,
    parse_signing_methods,
    required_components,
    signing_method,
)

BOTH = ("password", "badge_pin")


def test_the_first_signing_by_badge_takes_badge_and_pin_and_later_ones_the_pin():
    assert required_components(True, SigningMethod.BADGE_PIN) == ("badge", "pin")
    assert required_components(False, SigningMethod.BADGE_PIN) == ("pin",)
    assert required_components(True) == ("username", "password")
    assert required_components(False) == ("password",)


def test_a_later_signing_takes_the_secret_of_the_method_the_session_first_signed_with():
    assert signing_method(badge_given=False, first_signing_in_session=False,
                          session_method="badge_pin") is SigningMethod.BADGE_PIN  # fmt: skip
    assert signing_method(badge_given=False, first_signing_in_session=False,
                          session_method="password") is SigningMethod.PASSWORD  # fmt: skip
    assert signing_method(badge_given=True, first_signing_in_session=False,
                          session_method="password") is SigningMethod.BADGE_PIN  # fmt: skip
    assert signing_method(badge_given=False, first_signing_in_session=True,
                          session_method="badge_pin") is SigningMethod.PASSWORD  # fmt: skip


def test_a_badge_of_the_logged_in_user_signs_by_badge_and_pin():
    method = check_signer_identity("alice", None, True, badge_given=True, badge_holder="alice")
    assert method is SigningMethod.BADGE_PIN


def test_a_badge_of_someone_else_is_refused_as_not_the_signer():
    with pytest.raises(SignerMismatch, match="badge scanned is not the logged-in user's"):
        check_signer_identity("alice", None, True, badge_given=True, badge_holder="bob")


def test_an_unknown_or_revoked_badge_is_refused():
    with pytest.raises(UnknownBadge, match="not enrolled, or it was revoked"):
        check_signer_identity("alice", None, True, badge_given=True, badge_holder=None)


def test_the_first_signing_without_badge_or_user_id_names_both_ways():
    with pytest.raises(InvalidInput, match="or scan your badge and type your PIN"):
        check_signer_identity("alice", None, True)
    with pytest.raises(InvalidInput, match=r"your password\.$"):
        check_signer_identity("alice", None, True, allowed_methods=["password"])


@pytest.mark.parametrize(
    ("allowed", "badge", "refused"),
    [(["password"], True, "badge and PIN"), (["badge_pin"], False, "user ID and password")],
)
def test_a_method_the_site_does_not_allow_is_refused(allowed, badge, refused):
    with pytest.raises(SigningMethodNotAllowed, match=f"does not allow signing with {refused}"):
        check_signer_identity(
            "alice", "alice", True, badge_given=badge, badge_holder="alice",
            allowed_methods=allowed,
        )  # fmt: skip


def test_the_site_keeps_at_least_one_known_way_to_sign():
    assert parse_signing_methods(BOTH) == frozenset(SigningMethod)
    with pytest.raises(InvalidInput, match="At least one way to sign"):
        parse_signing_methods([])
    with pytest.raises(InvalidInput, match="not a signing method"):
        parse_signing_methods(["fingerprint"])


def test_a_later_signing_of_a_badge_session_needs_no_badge_again():
    method = check_signer_identity("alice", None, False, session_method="badge_pin")
    assert method is SigningMethod.BADGE_PIN
