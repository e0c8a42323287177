"""People and workstations: users, roles, sessions, password and PIN history, badges, training."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.schema import CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlalchemy.types import Boolean, Date, Integer, String

from mes.core.access import Role
from mes.core.esign import SigningMethod
from mes.store.models.base import Base, UTCDateTime, known


class User(Base):
    """A person with a user ID. Never deleted, never renamed, never given to someone else."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("failed_attempts >= 0", name="failed_attempts_not_negative"),
        CheckConstraint("username = lower(username)", name="username_lower_case"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    attested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # 11.200(a)(1): the PIN that goes with the user's badge (argon2id, as the password); None
    # until the user sets one.
    pin_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pin_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_names(self) -> frozenset[str]:
        """The roles the user holds now."""
        return frozenset(r.role for r in self.roles)


class WebSession(Base):
    """A logged-in browser session, kept on the server (only its ID is in the browser's cookie).

    Session state, not GMP data: a row is deleted when the session ends (logout, lifetime, the
    user's password change, deactivation or lockout); logins and lockouts are in the audit trail.
    ``id_hash`` is the SHA-256 of the session ID, so a reader of the database cannot use it.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (
        CheckConstraint("last_seen_at >= created_at", name="seen_after_created"),
        known("signed_with", SigningMethod, nullable=True),
    )

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    terminal: Mapped[str] = mapped_column(String(200))
    terminal_id: Mapped[str | None] = mapped_column(ForeignKey("terminals.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    # 11.200(a)(1): the user has signed in this continuous session (later signings: password only).
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    # How the session's first signing identified the user: later ones take that method's secret.
    signed_with: Mapped[str | None] = mapped_column(String(10), nullable=True)


class UserRole(Base):
    """A role held by a user (current state; every grant and removal is in the audit trail)."""

    __tablename__ = "user_roles"
    __table_args__ = (known("role", Role),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    user: Mapped[User] = relationship(back_populates="roles")


class PasswordHistory(Base):
    """Every password hash a user has had (append-only), for the history rule."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PinHistory(Base):
    """Every PIN hash a user has had (append-only), for the history rule."""

    __tablename__ = "pin_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    pin_hash: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())


ACTIVE_BADGE = text("revoked_at IS NULL")


class Badge(Base):
    """A badge enrolled to a user: the identification code of badge + PIN (11.200(a)(1)).

    Only the SHA-256 of the code is kept, and a short hint. A badge is never deleted: a lost one
    is revoked (when and why kept here, who in the audit trail), and stops identifying anyone.
    At most one active badge per code (11.300(a): unique) and per user.
    """

    __tablename__ = "badges"
    __table_args__ = (
        Index(
            "uq_badges_active_code",
            "code_hash",
            unique=True,
            sqlite_where=ACTIVE_BADGE,
            postgresql_where=ACTIVE_BADGE,
        ),
        Index(
            "uq_badges_active_user",
            "user_id",
            unique=True,
            sqlite_where=ACTIVE_BADGE,
            postgresql_where=ACTIVE_BADGE,
        ),
        CheckConstraint(
            "revoked_at IS NULL OR revoked_at >= enrolled_at", name="revoked_after_enrolled"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    hint: Mapped[str] = mapped_column(String(8))
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enrolled_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class TrainingRecord(Base):
    """A qualification for a procedure, or its withdrawal (append-only)."""

    __tablename__ = "training_records"
    __table_args__ = (
        CheckConstraint(
            "expires_on IS NULL OR expires_on >= qualified_on", name="expiry_after_qualification"
        ),
        Index("ix_training_records_user_procedure", "user_id", "procedure"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    procedure: Mapped[str] = mapped_column(String(200))
    qualified_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class Terminal(Base):
    """A registered workstation of this site (21 CFR 11.10(h)). Never deleted."""

    __tablename__ = "terminals"
    __table_args__ = (UniqueConstraint("site", "name", name="uq_terminals_site_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    registered_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
