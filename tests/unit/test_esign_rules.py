"""Electronic signatures (21 CFR 11.50, 11.70, 11.200): components, signer identity,
manifestation, and the binding of a signature to the exact content it signs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mes.core.canonical import content_hash
from mes.core.errors import InvalidInput, SignerMismatch, UnknownMeaning
from mes.core.esign import (
    MEANING_STATEMENTS,
    Manifestation,
    Meaning,
    attestation_record,
    check_signer_identity,
    parse_meaning,
    required_components,
    signature_binds,
)

RECORD = {"batch": "B-0001", "phase": "thaw", "value": 37.0, "unit": "°C"}
AT = datetime(2026, 11, 21, 10, 30, tzinfo=timezone(timedelta(hours=1)))  # 09:30 UTC


def manifestation(record=RECORD, meaning=Meaning.PERFORMED) -> Manifestation:
    return Manifestation.for_record(
        record_type="phase",
        record_id="B-0001/thaw",
        record=record,
        signer_id="u-alice",
        username="alice",
        printed_name="Alice Tester",
        meaning=meaning,
        at=AT,
        terminal="Bench 1",
        site="SPK1",
    )


def test_the_first_signing_of_a_session_needs_user_id_and_password():
    assert required_components(first_signing_in_session=True) == ("username", "password")


def test_later_signings_of_a_session_need_the_password_only():
    assert required_components(first_signing_in_session=False) == ("password",)


@pytest.mark.parametrize("given", [None, ""])
def test_the_first_signing_without_the_user_id_is_refused(given):
    with pytest.raises(InvalidInput) as caught:
        check_signer_identity("alice", given, first_signing_in_session=True)
    assert "user ID" in str(caught.value)


def test_the_first_signing_with_a_blank_user_id_is_refused():
    with pytest.raises((InvalidInput, SignerMismatch)):
        check_signer_identity("alice", "   ", first_signing_in_session=True)


def test_the_first_signing_with_ones_own_user_id_is_accepted_in_any_case():
    check_signer_identity("alice", " Alice ", first_signing_in_session=True)


def test_a_later_signing_needs_no_user_id():
    check_signer_identity("alice", None, first_signing_in_session=False)


@pytest.mark.parametrize("first", [True, False])
def test_signing_with_another_users_id_is_refused(first):
    with pytest.raises(SignerMismatch):
        check_signer_identity("alice", "bob", first_signing_in_session=first)


def test_the_manifestation_carries_name_user_id_utc_time_meaning_and_place():
    m = manifestation()
    assert m.printed_name == "Alice Tester"
    assert m.username == "alice"
    assert m.signer_id == "u-alice"
    assert m.meaning == "performed"
    assert m.at == "2026-11-21T09:30:00.000000Z"
    assert m.terminal == "Bench 1"
    assert m.site == "SPK1"
    assert m.record_type == "phase"
    assert m.record_id == "B-0001/thaw"


def test_the_manifestation_is_bound_to_the_content_hash_of_the_record():
    assert manifestation().record_hash == content_hash(RECORD)
    reordered = dict(reversed(list(RECORD.items())))
    assert manifestation(reordered).record_hash == manifestation().record_hash


def test_the_manifestation_reads_as_name_user_id_meaning_and_local_time():
    text = manifestation().text(AT, "Europe/Paris")
    assert text == "Alice Tester (alice) — Performed — 2026-11-21 10:30:00 CET"


def test_a_signature_binds_to_the_record_it_signed():
    assert signature_binds(manifestation().as_dict(), dict(RECORD))


def test_a_signature_copied_to_another_record_does_not_bind():
    other = {**RECORD, "batch": "B-0002"}
    assert not signature_binds(manifestation().as_dict(), other)


@pytest.mark.parametrize(
    "changed",
    [
        {**RECORD, "value": 37.5},
        {**RECORD, "value": "37.0"},
        {**RECORD, "comment": "added after signing"},
        {k: v for k, v in RECORD.items() if k != "unit"},
    ],
)
def test_a_signature_does_not_bind_to_changed_content(changed):
    assert not signature_binds(manifestation().as_dict(), changed)


def test_a_manifestation_without_a_record_hash_binds_to_nothing():
    assert not signature_binds({"meaning": "performed"}, RECORD)


def test_every_meaning_has_a_statement_and_parses_from_its_name():
    assert set(MEANING_STATEMENTS) == set(Meaning)
    for meaning in Meaning:
        assert parse_meaning(meaning.value) is meaning


def test_an_unknown_meaning_is_refused_with_the_valid_meanings():
    with pytest.raises(UnknownMeaning) as caught:
        parse_meaning("witnessed")
    for meaning in Meaning:
        assert meaning.value in caught.value.what_to_do


def test_the_attestation_record_names_the_user_and_the_statement():
    record = attestation_record("u-alice", "alice")
    assert record["user_id"] == "u-alice"
    assert record["username"] == "alice"
    assert "legally binding" in record["statement"]
