"""Small readers and actions shared by the service tests (not fixtures: plain functions).

Kept out of a ``conftest.py`` on purpose: a second ``conftest`` module would shadow the
top-level one for ``from conftest import …``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from support import NOW, PASSWORD, user_ctx

from mes.core.errors import MesError
from mes.core.esign import Meaning
from mes.services.context import Context
from mes.services.esign import (
    AppliedSignature,
    Credentials,
    acknowledge_accountability,
    sign_record,
)
from mes.store.models import AuditEntry, Base
from mes.store.uow import UnitOfWork

MakeUow = Callable[..., UnitOfWork]


def count_rows(make_uow: MakeUow, model: type[Base]) -> int:
    """How many rows the table of ``model`` holds."""
    with make_uow() as uow:
        return uow.session.execute(select(func.count()).select_from(model)).scalar_one()


def audit_entries(make_uow: MakeUow) -> list[AuditEntry]:
    """Every audit entry, oldest first (detached, readable after the unit of work)."""
    with make_uow() as uow:
        return list(uow.session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())


def last_audit_entry(make_uow: MakeUow) -> AuditEntry:
    """The newest audit entry."""
    return audit_entries(make_uow)[-1]


def attest(
    make_uow: MakeUow,
    user_id: str,
    username: str,
    *,
    role: str = "hub",
    terminal_id: str | None = None,
    at: datetime = NOW,
) -> None:
    """The user acknowledges the e-signature accountability statement (11.10(j))."""
    with make_uow(role) as uow:
        acknowledge_accountability(
            uow,
            user_ctx(user_id, at=at, terminal_id=terminal_id),
            Credentials(password=PASSWORD, username=username),
            first_signing_in_session=True,
        )


def outcomes(attempt: Callable[[Any], object], cases: Iterable[Any]) -> dict[Any, str]:
    """Try ``attempt`` on each case; name what happened: the refusal's error class, or 'accepted'.

    For checking many refusals on one fresh database (cloning one per case is slow). Only the
    project's own refusals (:class:`MesError`) are recorded; anything else fails the test.
    """
    result: dict[Any, str] = {}
    for case in cases:
        try:
            attempt(case)
        except MesError as refusal:
            result[case] = type(refusal).__name__
        else:
            result[case] = "accepted"
    return result


PHASE_RECORD = {"batch": "B-0001", "phase": "thaw", "value": 37.0, "unit": "°C"}


def sign_phase(
    uow: UnitOfWork,
    ctx: Context,
    *,
    password: str = PASSWORD,
    username: str | None = None,
    first: bool = False,
    record: dict[str, Any] = PHASE_RECORD,
    record_id: str = "B-0001/thaw",
    meaning: Meaning = Meaning.PERFORMED,
    **checks: Any,
) -> AppliedSignature:
    """Sign a phase record in the caller's unit of work (``checks``: signer_roles)."""
    return sign_record(
        uow,
        ctx,
        record_type="phase",
        record_id=record_id,
        record=record,
        meaning=meaning,
        credentials=Credentials(password=password, username=username),
        first_signing_in_session=first,
        **checks,
    )


def genuine_audit_trail(
    make_uow: Callable[..., Any], create_user: Callable[..., str], ctx: Context
) -> int:
    """Five genuine audit entries (three users added, a role change, a deactivation); the count
    the trail verifies with."""
    from mes.services.audit import verify_audit_trail
    from mes.services.users import deactivate_user, set_roles

    for name in ("carol", "dave", "erin"):
        create_user(name)
    with make_uow() as uow:
        set_roles(uow, ctx, "carol", ["qa"], "moved to QA")
    with make_uow() as uow:
        deactivate_user(uow, ctx, "dave", "left the company")
    with make_uow() as uow:
        return verify_audit_trail(uow)
