"""Training records and the qualification check used at the moment of signing (11.10(i))."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from mes.core import training as rules
from mes.core.access import Permission, check_not_own_access
from mes.core.audit import require_reason
from mes.core.clock import as_utc
from mes.core.errors import InvalidInput
from mes.core.text import one_line
from mes.services.audit import record_entry
from mes.services.context import Context, authorise
from mes.services.ids import new_id
from mes.services.users import find_user
from mes.store.models import TrainingRecord, User
from mes.store.training import training_history
from mes.store.uow import UnitOfWork


def _check_procedure(procedure: str) -> str:
    procedure = one_line(procedure, "The procedure name")
    if not 1 <= len(procedure) <= 200:
        raise InvalidInput(
            "A procedure name is required (up to 200 characters).",
            what_to_do="Name the SOP or recipe, e.g. 'SOP-CT-014 Aseptic gowning'.",
        )
    return procedure


def record_training(
    uow: UnitOfWork,
    ctx: Context,
    *,
    username: str,
    procedure: str,
    qualified_on: date,
    expires_on: date | None,
) -> str:
    """Record that a user is qualified for a procedure from a date, optionally until a date.

    21 CFR 11.10(i); nobody records their own training (another person attests to it).
    """
    actor = authorise(uow, ctx, Permission.MANAGE_TRAINING)
    procedure = _check_procedure(procedure)
    rules.check_training_dates(qualified_on, expires_on)
    user = find_user(uow, username)
    check_not_own_access(ctx.user_id, user.id, "training records")
    record = TrainingRecord(
        id=new_id(),
        user_id=user.id,
        procedure=procedure,
        qualified_on=qualified_on,
        expires_on=expires_on,
        withdrawn=False,
        recorded_at=ctx.at,
        recorded_by=ctx.user_id,
    )
    uow.add(record)
    uow.flush()
    record_entry(
        uow,
        ctx,
        actor,
        "training recorded",
        "training",
        f"{user.username}/{procedure}",
        new={
            "qualified_on": qualified_on.isoformat(),
            "expires_on": expires_on.isoformat() if expires_on else None,
        },
    )
    uow.commit()
    return record.id


def withdraw_training(
    uow: UnitOfWork, ctx: Context, *, username: str, procedure: str, reason: str
) -> None:
    """Withdraw a qualification (a new record; the earlier ones stay); not one's own."""
    actor = authorise(uow, ctx, Permission.MANAGE_TRAINING)
    reason = require_reason(reason, "withdraw a qualification")
    procedure = _check_procedure(procedure)
    user = find_user(uow, username)
    check_not_own_access(ctx.user_id, user.id, "training records")
    if not is_qualified(uow, user, procedure, ctx):
        raise InvalidInput(f"{user.username} is not currently qualified for '{procedure}'.")
    uow.add(
        TrainingRecord(
            id=new_id(),
            user_id=user.id,
            procedure=procedure,
            qualified_on=as_utc(ctx.at).astimezone(ZoneInfo(uow.site.time_zone)).date(),
            expires_on=None,
            withdrawn=True,
            recorded_at=ctx.at,
            recorded_by=ctx.user_id,
        )
    )
    record_entry(
        uow,
        ctx,
        actor,
        "training withdrawn",
        "training",
        f"{user.username}/{procedure}",
        old={"qualified": True},
        new={"qualified": False},
        reason=reason,
    )
    uow.commit()


def training_records(uow: UnitOfWork, user: User) -> list[rules.TrainingRecord]:
    """A user's training history, oldest first, as the core reads it."""
    return training_history(uow.session, user.id)


def is_qualified(uow: UnitOfWork, user: User, procedure: str, ctx: Context) -> bool:
    """``is_qualified(user, procedure, at)``: current training on the site's date at ``ctx.at``."""
    return rules.is_qualified(training_records(uow, user), procedure, ctx.at, uow.site.time_zone)
