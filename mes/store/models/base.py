"""The declarative base of every table: naming convention, UTC timestamps, CHECKs from enums."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from mes.core.clock import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def known(column: str, values: type[StrEnum], *, nullable: bool = False) -> CheckConstraint:
    """``CHECK (column IN (…))`` over the core enum's values, in its order, named ``known_<column>``.

    The invariant's words are the core's (a rule lives in one place); the SQL is exactly the one
    the migrations wrote, so the migrated schema stays equal to the models.
    """
    listed = f"{column} IN (" + ", ".join(f"'{member.value}'" for member in values) + ")"
    sql = f"{column} IS NULL OR {listed}" if nullable else listed
    return CheckConstraint(sql, name=f"known_{column}")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always stored and returned as UTC (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store UTC."""
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Return UTC-aware datetimes."""
        return None if value is None else as_utc(value)


class SealedColumns:
    """The columns every hash-chained entry has: where it stands, when, where, who, its seal.

    (mes.core.ledger; the audit chain, a batch's ledger and its review chain.)
    """

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(27))  # UTC text exactly as hashed
    site: Mapped[str] = mapped_column(String(12))
    terminal: Mapped[str | None] = mapped_column(String(200), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor_username: Mapped[str] = mapped_column(String(32))
    actor_name: Mapped[str] = mapped_column(String(200))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    signature: Mapped[str] = mapped_column(String(100))


class Base(DeclarativeBase):
    """Declarative base with a global naming convention for constraints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
