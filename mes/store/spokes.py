"""Spokes as the hub stores them: the spoke rows, their pinned keys and their enrollment codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mes.store.models import Batch, EnrollmentCode, Spoke


def spoke(session: Session, code: str, *, lock: bool = False) -> Spoke | None:
    """The spoke with this site code (locked for the transaction when ``lock``), or None."""
    return session.get(Spoke, code, with_for_update=lock or None)


def spokes(session: Session) -> list[Spoke]:
    """Every spoke of the hub, by code."""
    return list(session.execute(select(Spoke).order_by(Spoke.code)).scalars())


def spoke_status(session: Session, code: str) -> tuple[str, str | None]:
    """The spoke's status and the reason given for it, as committed now."""
    status, reason = session.execute(
        select(Spoke.status, Spoke.status_reason).where(Spoke.code == code)
    ).one()
    return status, reason


def register_spoke(
    session: Session, *, code: str, name: str, time_zone: str, at: datetime, by: str | None
) -> Spoke:
    """A new spoke, awaiting its enrollment (written at once, so the audit entry can name it)."""
    row = Spoke(
        code=code,
        name=name,
        time_zone=time_zone,
        status="awaiting_enrollment",
        created_at=at,
        created_by=by,
        status_changed_at=at,
    )
    session.add(row)
    session.flush()
    return row


def key_holder(session: Session, key_id: str, other_than: str) -> str | None:
    """The code of another spoke that enrolled with this key, if any."""
    return session.execute(
        select(Spoke.code).where(Spoke.key_id == key_id, Spoke.code != other_than)
    ).scalar_one_or_none()


def holds_records_of(session: Session, site: str) -> bool:
    """Whether the hub holds any batch record of ``site``."""
    return session.execute(select(Batch.id).where(Batch.site == site).limit(1)).first() is not None


def add_enrollment_code(
    session: Session,
    *,
    code_id: str,
    spoke_code: str,
    code_hash: str,
    at: datetime,
    by: str | None,
    expires_at: datetime,
) -> None:
    """Keep a new one-time enrollment code (its hash only)."""
    session.add(
        EnrollmentCode(
            id=code_id,
            spoke_code=spoke_code,
            code_hash=code_hash,
            created_at=at,
            created_by=by,
            expires_at=expires_at,
        )
    )


def expire_unused_codes(
    session: Session, spoke_code: str, at: datetime, *, only_unexpired: bool = False
) -> None:
    """The spoke's unused enrollment codes stop working at ``at``.

    ``only_unexpired``: leave the codes that expired already as they are.
    """
    conditions = [EnrollmentCode.spoke_code == spoke_code, EnrollmentCode.used_at.is_(None)]
    if only_unexpired:
        conditions.append(EnrollmentCode.expires_at > at)
    session.execute(update(EnrollmentCode).where(*conditions).values(expires_at=at))


def enrollment_code(session: Session, code_hash: str) -> EnrollmentCode | None:
    """The enrollment code with this hash, locked (so it is spent once), or None."""
    return session.execute(
        select(EnrollmentCode).where(EnrollmentCode.code_hash == code_hash).with_for_update()
    ).scalar_one_or_none()
