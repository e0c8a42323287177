"""Segregation of duties: nobody grants themself access, and administrators do not sign GMP records.

21 CFR 11.10(g); Annex 11 §12.3; PIC/S PI 041 §9.3. Issue 13, finding 4: an administrator added
QA to her own roles, signed the attestation and released a quarantined lot. Now nobody changes
their own roles or training; administration and a signing role (operator, supervisor, QA, author)
go together only where the site's setting allows it — a setting kept in the audit trail, changed
by an administrator with a reason — and an account that holds both from before cannot sign while
the setting forbids it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from support import NOW, PASSWORD, user_ctx

from mes.core import errors
from mes.core.errors import InvalidInput
from mes.services import configuration, materials
from mes.services.esign import Credentials, acknowledge_accountability
from mes.services.training import record_training, withdraw_training
from mes.services.users import add_user, find_user, set_roles
from mes.store.models import AuditEntry, TrainingRecord


def roles_of(make_uow, username: str) -> set[str]:
    with make_uow() as uow:
        return set(find_user(uow, username).role_names)


def allow(make_uow, ctx, allowed: bool, reason: str = "two-person site") -> None:
    with make_uow() as uow:
        configuration.set_administrators_may_sign(uow, ctx, allowed, reason)


def test_an_administrator_cannot_change_their_own_roles(make_uow, create_user):
    ada = create_user("ada", roles=["admin"])
    create_user("root", roles=["admin"])
    with make_uow() as uow, pytest.raises(errors.SelfAdministrationForbidden) as caught:
        set_roles(uow, user_ctx(ada), "ada", ["admin", "qa"], "I need to release a lot")
    assert str(caught.value) == (
        "You cannot change your own roles. Ask another person with the authority to do it."
    )
    with make_uow() as uow, pytest.raises(errors.SelfAdministrationForbidden):
        set_roles(uow, user_ctx(ada), "ada", ["qa"], "moving to QA")  # not even to give it up
    assert roles_of(make_uow, "ada") == {"admin"}


@pytest.mark.parametrize("role", ["admin", "supervisor", "qa"])
def test_nobody_records_or_withdraws_their_own_training(make_uow, create_user, cli_ctx, role):
    me = create_user("pat", roles=[role])
    create_user("olivia")
    with make_uow() as uow, pytest.raises(errors.SelfAdministrationForbidden) as caught:
        record_training(
            uow, user_ctx(me), username="pat", procedure="SOP-1", qualified_on=date(2026, 1, 1),
            expires_on=None,
        )  # fmt: skip
    assert "your own training records" in str(caught.value)
    # Someone else's training is still theirs to record; one's own stays as another recorded it.
    with make_uow() as uow:
        record_training(
            uow, user_ctx(me), username="olivia", procedure="SOP-1",
            qualified_on=date(2026, 1, 1), expires_on=None,
        )  # fmt: skip
    with make_uow() as uow:
        record_training(
            uow, cli_ctx, username="pat", procedure="SOP-1", qualified_on=date(2026, 1, 1),
            expires_on=None,
        )  # fmt: skip
    with make_uow() as uow, pytest.raises(errors.SelfAdministrationForbidden):
        withdraw_training(uow, user_ctx(me), username="pat", procedure="SOP-1", reason="x")
    with make_uow() as uow:
        rows = uow.session.execute(select(TrainingRecord.withdrawn)).scalars().all()
    assert rows == [False, False]


def test_administration_and_a_signing_role_are_refused_together_unless_the_site_allows_it(
    make_uow, create_user, cli_ctx
):
    root = create_user("root", roles=["admin"])
    create_user("ada", roles=["admin"])
    create_user("quinn", roles=["qa"])
    for role in ("operator", "supervisor", "qa", "author"):
        with make_uow() as uow, pytest.raises(errors.AdministratorSigningForbidden) as caught:
            set_roles(uow, user_ctx(root), "ada", ["admin", role], "small team")
        assert f"ada would hold administration and {role} at once" in str(caught.value)
    with make_uow() as uow, pytest.raises(errors.AdministratorSigningForbidden):
        set_roles(uow, user_ctx(root), "quinn", ["qa", "admin"], "covering for IT")
    with make_uow() as uow, pytest.raises(errors.AdministratorSigningForbidden):
        add_user(
            uow, user_ctx(root), username="bea", full_name="Bea Both", roles=["admin", "qa"],
            password=PASSWORD,
        )  # fmt: skip
    # The command line (the server's own administration) keeps the same rule.
    with make_uow() as uow, pytest.raises(errors.AdministratorSigningForbidden):
        set_roles(uow, cli_ctx, "ada", ["admin", "qa"], "small team")
    assert roles_of(make_uow, "ada") == {"admin"} and roles_of(make_uow, "quinn") == {"qa"}

    allow(make_uow, user_ctx(root), True, "two-person site: the administrator also does QA")
    with make_uow() as uow:
        set_roles(uow, user_ctx(root), "ada", ["admin", "qa"], "small team")
    assert roles_of(make_uow, "ada") == {"admin", "qa"}


def test_the_setting_is_off_by_default_needs_a_reason_and_every_change_is_audited(
    make_uow, create_user, cli_ctx
):
    root = create_user("root", roles=["admin"])
    quinn = create_user("quinn", roles=["qa"])
    with make_uow() as uow:
        assert configuration.administrators_may_sign(uow).allowed is False
    with make_uow() as uow, pytest.raises(InvalidInput, match="reason is required"):
        configuration.set_administrators_may_sign(uow, user_ctx(root), True, "  ")
    with make_uow() as uow, pytest.raises(Exception, match="not allowed to manage users"):
        configuration.set_administrators_may_sign(uow, user_ctx(quinn), True, "I'd like to")
    allow(make_uow, user_ctx(root), True, "two-person site")
    with make_uow() as uow, pytest.raises(InvalidInput, match="already allowed"):
        configuration.set_administrators_may_sign(uow, user_ctx(root), True, "again")
    allow(make_uow, cli_ctx, False, "second person hired")
    with make_uow() as uow:
        setting = configuration.administrators_may_sign(uow)
        entries = (
            uow.session.execute(
                select(AuditEntry)
                .where(AuditEntry.record_id == configuration.ADMINISTRATORS_MAY_SIGN)
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
    assert setting.allowed is False and setting.reason == "second person hired"
    assert [(e.action, e.actor_username, e.old, e.new, e.reason) for e in entries] == [
        ("site setting changed", "root", {"allowed": False}, {"allowed": True}, "two-person site"),
        (
            "site setting changed",
            "system",
            {"allowed": True},
            {"allowed": False},
            "second person hired",
        ),
    ]


def test_an_administrator_who_already_holds_qa_cannot_sign_while_the_setting_forbids_it(
    make_uow, create_user
):
    root = create_user("root", roles=["admin"])
    sam = create_user("sam", roles=["supervisor"])
    ada = create_user("ada", roles=["admin"])
    bea = create_user("bea", roles=["admin"])
    # Both came to hold administration and QA while the site allowed it; Ada signed then.
    allow(make_uow, user_ctx(root), True, "two-person site")
    for who in ("ada", "bea"):
        with make_uow() as uow:
            set_roles(uow, user_ctx(root), who, ["admin", "qa"], "small team")
    with make_uow() as uow:
        acknowledge_accountability(uow, user_ctx(ada), Credentials(PASSWORD, "ada"), True)
    with make_uow() as uow:
        materials.add_material(uow, user_ctx(sam), code="MAT-SYRINGE", name="Syringe", unit="each")
    with make_uow() as uow:
        materials.add_lot(
            uow, user_ctx(sam), material_code="MAT-SYRINGE", lot_number="LOT-1",
            expiry=NOW.date() + timedelta(days=90),
        )  # fmt: skip
    allow(make_uow, user_ctx(root), False, "QA hired: administration kept apart again")

    with make_uow() as uow, pytest.raises(errors.AdministratorSigningForbidden) as caught:
        materials.change_lot_status(
            uow, user_ctx(ada), "LOT-1", "released", "QC passed", Credentials(PASSWORD, "ada"),
            first_signing_in_session=True,
        )  # fmt: skip
    assert str(caught.value) == (
        "ada holds administration and qa: at this site an administrator cannot sign GMP "
        "records. Ask an administrator to remove one of the roles (or to allow the combination "
        "in the site's settings, for a small site)."
    )
    with make_uow() as uow, pytest.raises(errors.AdministratorSigningForbidden):
        acknowledge_accountability(uow, user_ctx(bea), Credentials(PASSWORD, "bea"), True)
    with make_uow() as uow:
        assert materials.find_lot(uow, "LOT-1").status == "quarantine"
        signatures = uow.session.execute(
            select(AuditEntry.actor_username).where(AuditEntry.kind == "signature")
        ).scalars()
        assert list(signatures) == ["ada"]  # only the attestation signed while it was allowed
        assert find_user(uow, "bea").attested_at is None
