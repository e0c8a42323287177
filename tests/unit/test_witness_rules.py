"""A witness who signs in place, as the core sees it (issue 15): which actions allow one (a
property of the action in the table), the page's question "could another person sign this
here now?", and the signature entry that names the session it was given in. No database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from batch_fixtures import OLIVIA, OSCAR, SAM, T0, TERMINAL, new_batch, sign
from test_batch_rules import performed_check_bag

from mes.core.batch import BATCH_ACTIONS, Action
from mes.core.errors import NotAuthorised, SelfVerificationForbidden


def as_witness(who, host=OLIVIA):
    return replace(who, in_session_of=host.actor)


def test_the_table_lets_a_witness_sign_only_verify_acknowledge_complete_and_custody():
    assert {action for action, rule in BATCH_ACTIONS.items() if rule.witness} == {
        Action.VERIFY,
        Action.ACKNOWLEDGE,
        Action.COMPLETE,
        Action.TRANSFER_CUSTODY,  # the other side of a hand-over signs at the same panel
    }


def test_a_witness_verifies_and_the_entry_names_the_session_it_was_given_in():
    batch = performed_check_bag()
    entry = sign(batch, Action.VERIFY, as_witness(SAM), phase_id="check_bag")
    assert entry.body["actor"]["username"] == "sam"
    assert entry.body["payload"]["in_session_of"] == OLIVIA.actor.as_dict()
    assert entry.body["payload"]["manifestation"]["username"] == "sam"
    assert batch.state.phases["check_bag"].verified_by == SAM.actor


def test_a_signature_without_a_witness_keeps_its_entry_as_before():
    batch = performed_check_bag()
    entry = sign(batch, Action.VERIFY, SAM, phase_id="check_bag")
    assert set(entry.body["payload"]) == {"record", "manifestation"}


def test_every_rule_applies_to_the_witness():
    batch = performed_check_bag()
    with pytest.raises(SelfVerificationForbidden):
        sign(batch, Action.VERIFY, as_witness(OLIVIA, host=OSCAR), phase_id="check_bag")
    with pytest.raises(NotAuthorised, match="you need the supervisor role"):
        sign(batch, Action.VERIFY, as_witness(OSCAR), phase_id="check_bag")


def test_an_action_the_table_does_not_mark_is_refused_to_a_witness():
    batch = new_batch()
    batch.start_phase("check_bag", OLIVIA, T0, TERMINAL)
    refusal = batch.refusal(Action.PERFORM, as_witness(OSCAR), T0, phase_id="check_bag")
    assert isinstance(refusal, NotAuthorised)
    assert str(refusal).startswith("'Sign performed' cannot be signed by a witness in place")


def test_the_page_offers_a_witness_only_when_someone_else_could_sign_now():
    assert not new_batch().witness_may_take(Action.VERIFY, OLIVIA, T0, phase_id="check_bag")
    batch = performed_check_bag()
    assert batch.refusal(Action.VERIFY, OLIVIA, T0, phase_id="check_bag") is not None
    assert batch.witness_may_take(Action.VERIFY, OLIVIA, T0, phase_id="check_bag")
    assert not batch.witness_may_take(Action.PERFORM, OLIVIA, T0, phase_id="check_bag")
    sign(batch, Action.VERIFY, as_witness(SAM), T0 + timedelta(minutes=1), phase_id="check_bag")
    assert not batch.witness_may_take(Action.VERIFY, OLIVIA, T0, phase_id="check_bag")
