"""Master recipes: versions at the hub, publications, versions installed at a spoke."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CheckConstraint, ForeignKey, Index, UniqueConstraint
from sqlalchemy.types import JSON, Date, Integer, String, Text

from mes.core.lifecycle import VersionState
from mes.store.models.base import Base, UTCDateTime, known


class RecipeVersion(Base):
    """A master-recipe version at the hub: its content (immutable once in review) and state.

    The state and who signed are projections; the signatures and every transition are entries
    of the audit chain. Never deleted; a trigger refuses content changes outside draft.
    """

    __tablename__ = "recipe_versions"
    __table_args__ = (
        UniqueConstraint("recipe_code", "version", name="uq_recipe_versions_code_version"),
        known("status", VersionState),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_recipe_versions_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipe_code: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    product_code: Mapped[str] = mapped_column(String(40))
    product_name: Mapped[str] = mapped_column(String(200))
    modality: Mapped[str] = mapped_column(String(40))
    change_reason: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    compiled: Mapped[str] = mapped_column(Text)  # RFC 8785 canonical JSON, exactly as hashed
    source_name: Mapped[str] = mapped_column(String(200))
    source_text: Mapped[str] = mapped_column(Text)  # the YAML as imported
    status: Mapped[str] = mapped_column(String(16), default=VersionState.DRAFT.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    authored_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    effective_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class RecipePublication(Base):
    """A signed bundle the hub published for some sites (append-only)."""

    __tablename__ = "recipe_publications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("recipe_versions.id"), index=True)
    sites: Mapped[list[str]] = mapped_column(JSON)
    bundle_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # The JWS exactly as signed, served to the spokes it targets (None: published before 0004).
    token: Mapped[str | None] = mapped_column(Text, nullable=True)


class InstalledRecipe(Base):
    """A hub-signed recipe version verified and installed at a spoke (append-only).

    Only installed versions can start batches; ``bundle`` keeps the JWS exactly as received,
    so the hub's signature can be checked again at any time.
    """

    __tablename__ = "installed_recipes"
    __table_args__ = (
        UniqueConstraint("recipe_code", "version", name="uq_installed_recipes_code_version"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipe_code: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    compiled: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[date] = mapped_column(Date)
    bundle: Mapped[str] = mapped_column(Text)
    bundle_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hub_key_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[str] = mapped_column(String(27))
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    installed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
