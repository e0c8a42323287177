"""Opening an instance: settings → database → site identity, checked before anything runs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mes.core.errors import ConfigurationError
from mes.core.keys import SiteKey, SitePublicKey
from mes.core.passwords import PasswordPolicy
from mes.core.review import ReviewSettings
from mes.core.site import Site
from mes.settings import Settings
from mes.store.engine import make_engine, session_factory
from mes.store.migrate import current_revision, head_revision
from mes.store.uow import UnitOfWork


@dataclass
class Runtime:
    """A running instance's database and site; hands out units of work."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    site: Site

    def uow(self, *, read_only: bool = False) -> UnitOfWork:
        """A new unit of work (one transaction); ``read_only`` takes no write lock."""
        return UnitOfWork(self.sessions, self.site, read_only=read_only)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


def safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url


def load_site(settings: Settings) -> Site:
    """The site identity, with its signing key from the instance folder."""
    try:
        key = SiteKey.from_pem(settings.site_key_path.read_bytes())
    except FileNotFoundError:
        raise ConfigurationError(
            f"The site key {settings.site_key_path} is missing.",
            what_to_do="Restore the instance's keys folder from backup.",
        ) from None
    except ValueError as err:
        raise ConfigurationError(f"The site key is unreadable: {err}.") from None
    hub_key = None
    if settings.hub_key_path.exists():
        try:
            hub_key = SitePublicKey.from_pem(settings.hub_key_path.read_bytes())
        except ValueError as err:
            raise ConfigurationError(
                f"The pinned hub key {settings.hub_key_path} is unreadable: {err}."
            ) from None
    return Site(
        hub_key=hub_key,
        code=settings.site_code,
        name=settings.site_name,
        role=settings.role,
        time_zone=settings.time_zone,
        key=key,
        password_policy=PasswordPolicy(expiry_days=settings.password_expiry_days),
        review=ReviewSettings(
            late_signature_minutes=settings.review_late_signature_minutes,
            rubber_stamp_seconds=settings.review_rubber_stamp_seconds,
            clock_skew_seconds=(
                settings.sync_clock_skew_seconds
                if settings.review_clock_tolerance_seconds is None
                else settings.review_clock_tolerance_seconds
            ),
        ),
        checkpoint_path=settings.checkpoint_path if settings.role == "hub" else None,
    )


def open_runtime(settings: Settings, *, require_current_schema: bool = True) -> Runtime:
    """Connect and check the schema is at the code's migration head (fail fast otherwise)."""
    site = load_site(settings)
    engine = make_engine(settings.database_url)
    if require_current_schema:
        try:
            current, head = current_revision(engine), head_revision(engine)
        except SQLAlchemyError as err:
            engine.dispose()
            raise ConfigurationError(
                f"Cannot use the database {safe_url(settings.database_url)}: "
                f"{str(err.orig or err).strip().splitlines()[0]}.",
                what_to_do="Check that the database is running and the URL is right.",
            ) from None
        if current != head:
            engine.dispose()
            raise ConfigurationError(
                f"The database schema is at revision {current or 'none'}, this code needs {head}.",
                what_to_do="Run 'mes db upgrade' (after a backup).",
            )
    return Runtime(settings, engine, session_factory(engine), site)
