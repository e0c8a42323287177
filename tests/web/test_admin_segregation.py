"""The administration pages keep administrators apart from GMP signing (issue 13, finding 4).

An administrator's own roles cannot be changed from their page (the form is disabled, a post is
refused and the refusal shown); administration plus a signing role is refused unless the site's
setting allows it; the setting is shown on the users page with who set it, when and why, and
changing it there is audited. 21 CFR 11.10(g); Annex 11 §12.3; PIC/S PI 041 §9.3.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from web_helpers import alerts, client_of, login, post_form, sign_attestation, text

SETTING = "administrators may hold signing roles"  # the setting's record in the audit trail


@pytest.fixture
def ada(client, create_user):
    """The hub's browser, logged in as the administrator Ada."""
    create_user("ada", roles=["admin"], full_name="Ada Admin")
    login(client, "ada")
    return client


def words(response) -> str:
    """The page as a person reads it: tags removed, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split()).replace(" )", ")")


def change_roles(client, username: str, roles: list[str], reason: str = "needed"):
    return post_form(
        client,
        f"/admin/users/{username}/roles",
        {"roles": roles, "reason": reason},
        page=f"/admin/users/{username}",
    )


def change_setting(client, allowed: bool, reason: str):
    data = {"reason": reason, **({"allowed": ["yes"]} if allowed else {})}
    return post_form(client, "/admin/settings/administrators-may-sign", data, page="/admin/users")


def test_an_administrator_cannot_grant_themself_qa_from_the_admin_pages(
    ada, user_row, audit_entries
):
    own = text(ada.get("/admin/users/ada"))
    assert "You cannot change your own roles or training: ask another administrator." in own
    assert re.search(r'<fieldset class="bare" disabled>\s*<div class="field"><ul id="roles"', own)
    refused = change_roles(ada, "ada", ["admin", "qa"], "I need to release a lot")
    assert refused.status_code == 403
    assert alerts(refused) == [
        "You cannot change your own roles. Ask another person with the authority to do it."
    ]
    assert user_row("ada").role_names == {"admin"}
    assert audit_entries(action="roles changed") == []
    # Nor her own training, from the training page.
    training = post_form(
        ada,
        "/admin/training",
        {"username": "ada", "procedure": "SOP-QA-001", "qualified_on": date(2026, 1, 5)},
        page="/admin/training",
    )
    assert training.status_code == 400
    assert "You cannot change your own training records." in text(training)
    assert audit_entries(action="training recorded") == []


def test_administration_and_qa_together_are_refused_until_the_audited_setting_allows_it(
    ada, hub, create_user, user_row, audit_entries
):
    create_user("root", roles=["admin"], full_name="Root Admin")
    create_user("quinn", roles=["qa"], full_name="Quinn Quality")
    page = words(ada.get("/admin/users"))
    assert "Administrators may not hold a signing role, and an account that holds both cannot " \
        "sign." in page  # fmt: skip
    assert "The default; never changed." in page
    refused = change_roles(ada, "quinn", ["qa", "admin"], "covering for IT")
    assert refused.status_code == 403
    assert "quinn would hold administration and qa at once" in alerts(refused)[0]
    assert user_row("quinn").role_names == {"qa"}

    no_reason = change_setting(ada, True, " ")
    assert no_reason.status_code == 400
    allowed = change_setting(ada, True, "Two-person site: QA also administers")
    assert allowed.status_code == 303
    shown = words(ada.get("/admin/users"))
    assert "Administrators may now also hold a signing role." in shown
    assert "Administrators may also hold a signing role (operator, supervisor, QA, author)" in shown
    assert "by Ada Admin: Two-person site: QA also administers" in shown
    [entry] = audit_entries(record_id=SETTING)
    assert (entry.action, entry.actor_username, entry.old, entry.new, entry.reason) == (
        "site setting changed",
        "ada",
        {"allowed": False},
        {"allowed": True},
        "Two-person site: QA also administers",
    )
    assert change_roles(ada, "quinn", ["qa", "admin"], "covering for IT").status_code == 303
    assert user_row("quinn").role_names == {"admin", "qa"}

    # Withdrawn again: Quinn keeps both roles on the record but cannot sign, and the pages say so.
    root = client_of(hub)
    login(root, "root")
    assert change_setting(root, False, "Second QA hired").status_code == 303
    users_page = words(root.get("/admin/users"))
    assert "quinn (qa) — they cannot sign until one of the roles is removed." in users_page
    detail = words(root.get("/admin/users/quinn"))
    assert "Holds administration and qa: this person cannot sign GMP records" in detail
    quinn = client_of(hub)
    login(quinn, "quinn")
    signed = sign_attestation(quinn, username="quinn")
    assert signed.status_code == 403
    assert "quinn holds administration and qa: at this site an administrator cannot sign" in (
        words(signed)
    )
    assert user_row("quinn").attested_at is None
