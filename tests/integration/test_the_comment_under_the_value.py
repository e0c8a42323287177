"""One comment box per deviation, on both databases: the comment sent with a value already
recorded outside its action limits is its deviation's comment (issue 15, problem 4), whether
it comes with a save or with the performed signature, and survives a refused signature."""

from __future__ import annotations

import pytest
from batch_helpers import COUNTER, LOT, spoke
from support import PASSWORD

from mes.core.batch import Action, PhaseStatus
from mes.core.errors import MesError
from mes.services import batches
from mes.services.esign import Credentials

COUNT = {
    "values": {"volume": "200", "viability": "65.0", "viable_conc": "5.00"},
    "equipment": {0: COUNTER},
    "lots": {"MAT-SYRINGE": LOT},
}
COMMENT = "Bag arrived late; QA informed."


def _counting(make_uow):
    site = spoke(make_uow)
    batch_id = site.start().state.id
    site.do_check_bag(batch_id)
    site.start_phase(batch_id, "count_cells")
    site.record(batch_id, "count_cells", **COUNT)  # raises the deviation, without a comment
    return site, batch_id


def _commented(site, batch_id):
    return [
        e for e in site.view(batch_id).batch.state.deviations.values() if e.value_id == "viability"
    ]


def test_a_comment_saved_with_the_unchanged_value_is_its_deviations_comment(make_uow):
    site, batch_id = _counting(make_uow)
    (deviation,) = _commented(site, batch_id)
    assert deviation.comment is None
    site.record(batch_id, "count_cells", values=COUNT["values"], comments={"viability": COMMENT})
    (deviation,) = _commented(site, batch_id)
    assert deviation.comment == COMMENT
    assert deviation.commented_by is not None and deviation.commented_by.username == "olivia"
    # The same text sent again (the box keeps it) records nothing more.
    again = site.record(
        batch_id, "count_cells", values=COUNT["values"], comments={"viability": COMMENT}
    )
    assert again.recorded == 0


def test_the_comment_sent_with_the_signature_survives_a_refused_one_and_lets_it_sign(make_uow):
    site, batch_id = _counting(make_uow)
    data = {"values": COUNT["values"], "comments": {"viability": COMMENT}}
    with site.uow() as uow, pytest.raises(MesError):  # the wrong password: not signed
        batches.sign_phase(
            uow, site.ctx("olivia"), batch_id, "count_cells", Action.PERFORM,
            Credentials("not-the-password", "olivia"), first_signing_in_session=True,
            data=batches.PhaseData(data),
        )  # fmt: skip
    (deviation,) = _commented(site, batch_id)
    assert deviation.comment == COMMENT  # what was typed is recorded, not lost
    with site.uow() as uow:
        signed = batches.sign_phase(
            uow, site.ctx("olivia"), batch_id, "count_cells", Action.PERFORM,
            Credentials(PASSWORD, "olivia"), first_signing_in_session=True,
            data=batches.PhaseData(data),
        )  # fmt: skip
    assert signed.state.phases["count_cells"].status is PhaseStatus.PERFORMED
    kinds = [e.body["kind"] for e in signed.new_entries]
    assert "deviation_commented" not in kinds  # the same comment is not recorded twice
