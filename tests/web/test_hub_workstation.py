"""QA's workstation at the hub is a registered terminal too (issue 15, item 12).

The hub lets QA sign at any browser, but a release signed at one that is not registered names
no workstation ("terminal unregistered browser (127.0.0.1)" in the printed record). QA's home
page at an unregistered browser says so; a browser an administrator registered as a terminal
of the hub has its name written into QA's decision signature.
"""

from __future__ import annotations

from datetime import timedelta

from batch_helpers import NOW
from itsdangerous import URLSafeSerializer
from support import PASSWORD
from test_network_pages import hub_app, people, received  # the hub, its people, the batch
from test_qa_pages import completed, fresh  # the QA pages' batch, finished and received whole
from web_helpers import client_of, login, post_form, text

from mes.services.context import Context
from mes.services.terminals import register_terminal
from mes.store.models import BatchReviewEntry

# The fixtures this module uses from the network and QA page tests (named so they count as used).
__all__ = ["completed", "hub_app", "people", "received"]

NOTICE = "This browser is not a registered QA workstation"


def _hub_terminal(make_uow, name: str) -> str:
    with make_uow() as uow:
        return register_terminal(
            uow, Context.command_line(NOW - timedelta(days=1), "ada", "server"), name, "QA office"
        )


def _at_terminal(app, terminal_id: str):
    client = client_of(app)
    cookie = URLSafeSerializer("test-secret-hub", salt="mes-terminal").dumps(terminal_id)
    client.set_cookie("mes_terminal", cookie)
    return client


def test_qa_at_an_unregistered_browser_of_the_hub_is_told_its_signatures_name_no_workstation(
    hub_app, make_uow
):
    anywhere = client_of(hub_app)
    login(anywhere, "quinn")
    assert NOTICE in text(anywhere.get("/"))
    desk = _at_terminal(hub_app, _hub_terminal(make_uow, "QA desk 1"))
    login(desk, "quinn")
    home = text(desk.get("/"))
    assert NOTICE not in home
    assert "QA desk 1" in home  # the top bar names the workstation


def test_a_decision_signed_at_a_registered_hub_workstation_names_it(hub_app, completed, make_uow):
    batch_id, _number, _deviation = completed
    desk = _at_terminal(hub_app, _hub_terminal(make_uow, "QA desk 1"))
    login(desk, "quinn")
    page = f"/qa/batches/{batch_id}"
    rejected = post_form(
        desk, f"{page}/rejected",
        fresh(desk, page, {"esign_password": PASSWORD, "esign_username": "quinn",
                           "reason": "Viability too low for the dose."}), page=page,
    )  # fmt: skip
    assert rejected.status_code == 303
    with make_uow() as uow:
        entry = uow.session.query(BatchReviewEntry).order_by(BatchReviewEntry.seq.desc()).first()
        assert entry.terminal == "QA desk 1"
        assert entry.payload["manifestation"]["terminal"] == "QA desk 1"
