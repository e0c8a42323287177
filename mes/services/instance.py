"""Creating an instance: folder, configuration, site key pair, schema and first administrator.

Everything is validated before anything is written, and an instance that exists is never
touched: ``mes init`` twice refuses instead of destroying keys or records.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from mes.core.access import check_username
from mes.core.audit import EntryKind
from mes.core.certificate import DocumentSigningKey, fingerprint
from mes.core.errors import ConfigurationError, InstanceExists
from mes.core.keys import SiteKey, SitePublicKey
from mes.core.passwords import check_new_password
from mes.services.audit import record_entry
from mes.services.configuration import record_configuration
from mes.services.context import Context, system_actor
from mes.services.document_certificate import write_document_key
from mes.services.runtime import Runtime, open_runtime, safe_url
from mes.services.users import add_user
from mes.settings import (
    CONFIG_FILE,
    HUB_PUBLIC_KEY_FILE,
    ROLES,
    SECRET_KEY_FILE,
    SITE_KEY_FILE,
    SITE_PUBLIC_KEY_FILE,
    check_site_code,
    load_settings,
    render_config,
    sqlite_url,
)
from mes.store.engine import make_engine
from mes.store.files import make_private_folder, sqlite_files, write_private
from mes.store.migrate import upgrade


@dataclass(frozen=True)
class InstanceRequest:
    """What ``mes init`` was asked for."""

    path: Path
    role: str
    site_code: str
    site_name: str
    time_zone: str
    database_url: str | None
    admin_username: str
    admin_name: str
    admin_password: str
    hub_key_pem: bytes | None = None  # a spoke: the hub's public key to trust for bundles


def _validate(req: InstanceRequest) -> None:
    if req.role not in ROLES:
        raise ConfigurationError(f"The role must be 'hub' or 'spoke', not '{req.role}'.")
    check_site_code(req.site_code)
    try:
        ZoneInfo(req.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"'{req.time_zone}' is not a known time zone.", what_to_do="Use e.g. Europe/London."
        ) from None
    check_new_password(check_username(req.admin_username), req.admin_password)
    _hub_key(req)
    for name in (CONFIG_FILE, SECRET_KEY_FILE, SITE_KEY_FILE):
        if (req.path / name).exists():
            raise InstanceExists(
                f"An instance already exists at {req.path} ({name} is there); nothing was changed.",
                what_to_do="Use it as it is, or choose another folder with --instance.",
            )


def _hub_key(req: InstanceRequest) -> SitePublicKey | None:
    """The hub key a spoke pins (a hub trusts its own key; it is given none)."""
    if req.hub_key_pem is None:
        return None
    if req.role != "spoke":
        raise ConfigurationError(
            "--hub-key is for spokes: a hub signs with its own key.",
            what_to_do="Leave --hub-key out for a hub.",
        )
    try:
        return SitePublicKey.from_pem(req.hub_key_pem)
    except ValueError:
        raise ConfigurationError(
            "The hub key file is not an Ed25519 public key in PEM form.",
            what_to_do="Use the hub's keys/site_ed25519.pub.pem (see 'mes site key' at the hub).",
        ) from None


def _database_is_empty(url: str) -> bool:
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return True  # a SQLite file that does not exist yet is empty (and must not be created here)
    engine = make_engine(url)
    try:
        return not inspect(engine).get_table_names()
    except SQLAlchemyError as err:
        raise ConfigurationError(
            f"Cannot use the database {safe_url(url)}: {str(err.orig or err).strip().splitlines()[0]}.",
            what_to_do="Check that the database is running and the URL is right.",
        ) from None
    finally:
        engine.dispose()


def init_instance(req: InstanceRequest, ctx_at: datetime, os_user: str, host: str) -> Runtime:
    """Create the instance and its first administrator; returns the opened runtime."""
    _validate(req)
    url = req.database_url or sqlite_url(req.path.resolve())
    if not _database_is_empty(url):
        raise InstanceExists(
            f"The database {safe_url(url)} already holds tables; nothing was changed.",
            what_to_do="Give an empty database, or use the instance that owns it.",
        )
    created_folder = not req.path.exists()
    written: list[Path] = []
    try:
        # The instance is its owner's alone: folders 0700, every file 0600 (mes.store.files).
        make_private_folder(req.path)
        make_private_folder(req.path / "keys")
        key = SiteKey.generate()
        hub_key = _hub_key(req)
        files = [
            (SECRET_KEY_FILE, secrets.token_urlsafe(48).encode() + b"\n"),
            (SITE_KEY_FILE, key.private_pem()),
            (SITE_PUBLIC_KEY_FILE, key.public.pem()),
        ]
        if hub_key is not None:
            files.append((HUB_PUBLIC_KEY_FILE, hub_key.pem()))
        for name, data in files:
            target = req.path / name
            write_private(target, data, exclusive=True)
            written.append(target)
        # The hub signs PDF records with its own certificate (mes.core.certificate).
        document_key = None
        if req.role == "hub":
            document_key = DocumentSigningKey.generate(req.site_code, req.site_name, ctx_at)
            written.extend(write_document_key(req.path, document_key))
        config = req.path / CONFIG_FILE
        text = render_config(
            role=req.role,
            site_code=req.site_code,
            site_name=req.site_name,
            time_zone=req.time_zone,
            database_url=req.database_url,
        )
        write_private(config, text.encode("utf-8"), exclusive=True)
        written.append(config)
        # SQLite creates a database file, and then its WAL and shared memory with the same
        # mode, as the umask lets it (0644 by default): an empty file is an empty database.
        database_files = sqlite_files(url)
        if database_files and not database_files[0].exists():
            write_private(database_files[0], b"", exclusive=True)
            written.extend(database_files)
        settings = load_settings(req.path, env={})
        engine = make_engine(settings.database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        runtime = open_runtime(settings)
        ctx = Context.command_line(ctx_at, os_user, host)
        with runtime.uow() as uow:
            record_entry(
                uow,
                ctx,
                system_actor(ctx),
                "instance initialised",
                "site",
                req.site_code,
                kind=EntryKind.SECURITY,
                new={
                    "site_key_id": key.public.key_id,
                    "pinned_hub_key_id": hub_key.key_id if hub_key else None,
                    "document_certificate_sha256": (
                        fingerprint(document_key.certificate) if document_key else None
                    ),
                },
            )
            uow.commit()
        with runtime.uow() as uow:
            record_configuration(uow, ctx, settings)
        with runtime.uow() as uow:
            add_user(
                uow,
                ctx,
                username=req.admin_username,
                full_name=req.admin_name,
                roles=["admin"],
                password=req.admin_password,
            )
        return runtime
    except BaseException:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        if created_folder:
            shutil.rmtree(req.path, ignore_errors=True)
        raise


def pin_hub_key(path: Path, key: SitePublicKey) -> None:
    """Keep the hub's public key in the instance (its folder 0700, the file 0600).

    Written once: an existing file is never replaced (a hub key is re-pinned only by hand,
    under change control).
    """
    make_private_folder(path.parent)
    write_private(path, key.pem(), exclusive=True)
