"""Typed, frozen settings: ``<instance>/mes.toml`` overridden by ``MES_*`` environment variables.

Nothing is read at import time. :func:`load_settings` refuses a bad or missing key with a
message that says which and what to do, so an instance never starts half-configured.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mes.core.errors import ConfigurationError
from mes.core.sessions import SessionPolicy
from mes.store.files import check_private_instance

CONFIG_FILE = "mes.toml"
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
SITE_KEY_FILE = "keys/site_ed25519.pem"
SITE_PUBLIC_KEY_FILE = "keys/site_ed25519.pub.pem"
HUB_PUBLIC_KEY_FILE = "keys/hub_ed25519.pub.pem"  # at a spoke: the pinned hub key
CHECKPOINT_FILE = "audit-checkpoints.jsonl"  # at the hub: its signed audit heads, append-only
RECORDS_FOLDER = "records"  # issued PDF records and the layout of their parts (a hub)
# What an instance holds that no other user of the host may read or change (besides keys/*
# and the SQLite files): checked each time the instance is opened.
PRIVATE = {
    CONFIG_FILE: "the configuration, with the database URL",
    SECRET_KEY_FILE: "the secret that signs sessions",
    "keys": "the site's keys",
    RECORDS_FOLDER: "the issued batch records",
    CHECKPOINT_FILE: "the hub's signed audit heads",
}
ROLES = ("hub", "spoke")
SITE_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,11}$")
MAX_SESSION_LIFETIME_HOURS = 24


@dataclass(frozen=True)
class Settings:
    """One instance's configuration (one process runs one role)."""

    instance_path: Path
    role: str
    site_code: str
    site_name: str
    time_zone: str
    database_url: str
    secret_key: str
    session_timeout_seconds: int = 300
    # The absolute lifetime of a logged-in session, however active it is (log in again after it).
    session_lifetime_hours: int = 12
    password_expiry_days: int | None = None
    # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0: none).
    proxy_hops: int = 0
    # Sync (see docs/sync.md): at a spoke, seconds between background rounds (0: only by hand);
    # at the hub, how far a request's timestamp may be from the hub's clock.
    sync_interval_seconds: int = 2
    sync_clock_skew_seconds: int = 300
    sync_chunk_entries: int = 500
    # QA review by exception (see mes.core.review): a performer's signature this long after the
    # phase's last data is "signed late"; a verification this soon after it, a rubber stamp.
    review_late_signature_minutes: int = 30
    review_rubber_stamp_seconds: int = 30
    # How far an entry's time may be ahead of the hub's receipt, or of a release, before QA's
    # review blocks it (see mes.core.chronology); None: the sync clock skew.
    review_clock_tolerance_seconds: int | None = None

    @property
    def session_policy(self) -> SessionPolicy:
        """When a logged-in session locks (inactivity) and when it ends (absolute lifetime)."""
        return SessionPolicy(
            idle_timeout=timedelta(seconds=self.session_timeout_seconds),
            lifetime=timedelta(hours=self.session_lifetime_hours),
        )

    @property
    def site_key_path(self) -> Path:
        """The site's private Ed25519 key (mode 0600)."""
        return self.instance_path / SITE_KEY_FILE

    @property
    def site_public_key_path(self) -> Path:
        """The site's public key, safe to share."""
        return self.instance_path / SITE_PUBLIC_KEY_FILE

    @property
    def checkpoint_path(self) -> Path:
        """The hub's append-only checkpoint file of its audit head (copy it off the machine)."""
        return self.instance_path / CHECKPOINT_FILE

    @property
    def hub_key_path(self) -> Path:
        """At a spoke: the hub's public key it trusts for recipe bundles (pinned at init)."""
        return self.instance_path / HUB_PUBLIC_KEY_FILE


def default_instance_path(env: Mapping[str, str] | None = None) -> Path:
    """``MES_INSTANCE`` or ``./instance``."""
    env = os.environ if env is None else env
    return Path(env.get("MES_INSTANCE") or "instance").resolve()


def sqlite_url(instance_path: Path) -> str:
    """The embedded default database: a SQLite file in the instance folder."""
    return f"sqlite:///{instance_path / 'mes.sqlite3'}"


def check_site_code(code: str) -> str:
    """Site codes are 2-12 capital letters and digits, starting with a letter (e.g. ``HUB``, ``LDN1``)."""
    if not SITE_CODE.match(code):
        raise ConfigurationError(
            f"'{code}' is not a valid site code.",
            what_to_do="Use 2 to 12 capital letters or digits, starting with a letter (e.g. LDN1).",
        )
    return code


def check_time_zone(name: str) -> str:
    """An IANA time zone name this host knows (e.g. ``Europe/London``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"'{name}' is not a known time zone.",
            what_to_do="Use an IANA name such as Europe/London.",
        ) from None
    return name


def _setting(
    env: Mapping[str, str], table: Mapping[str, Any], name: str, default: Any = None
) -> Any:
    """Setting ``name`` (``section.key`` for a key of a ``[section]`` table).

    Its ``MES_*`` variable (``MES_SECTION_KEY``) where set and not empty, else the key in
    mes.toml, else ``default``.
    """
    variable = "MES_" + name.replace(".", "_").upper()
    return env.get(variable) or table.get(name.rpartition(".")[2], default)


def _number(
    env: Mapping[str, str], table: Mapping[str, Any], name: str, *, default: int, minimum: int
) -> int:
    """Setting ``name`` as a whole number of at least ``minimum``."""
    return _int(_setting(env, table, name, default), name, minimum)


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The ``[name]`` table of mes.toml (empty where there is none)."""
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigurationError(
            f"[{name}] in mes.toml must be a table.", what_to_do="Fix mes.toml."
        )
    return table


def _int(value: object, key: str, minimum: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigurationError(
            f"{key} must be a whole number, not '{value}'.",
            what_to_do="Fix mes.toml or the variable.",
        ) from None
    if number < minimum:
        raise ConfigurationError(
            f"{key} must be at least {minimum} (it is {number}).",
            what_to_do="Fix mes.toml or the variable.",
        )
    return number


def load_settings(
    instance_path: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate the instance's settings; refuse to start on anything wrong.

    Anything wrong includes an instance folder or secret open to other users of the host
    (:func:`mes.store.files.check_private_instance`).
    """
    env = os.environ if env is None else env
    path = (instance_path or default_instance_path(env)).resolve()
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise ConfigurationError(
            f"No instance at {path} (no {CONFIG_FILE}).",
            what_to_do="Run 'mes init --role hub|spoke' first, or point MES_INSTANCE at an instance.",
        )
    try:
        raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigurationError(
            f"{config_file} is not valid TOML: {err}.", what_to_do="Correct the file."
        ) from None

    role = _setting(env, raw, "role")
    if role not in ROLES:
        raise ConfigurationError(
            f"The role must be 'hub' or 'spoke', not {role!r}.",
            what_to_do="Set role in mes.toml or MES_ROLE.",
        )
    site_code = check_site_code(str(_setting(env, raw, "site_code", "")))
    time_zone = check_time_zone(str(_setting(env, raw, "time_zone") or "UTC"))
    secret_file = path / SECRET_KEY_FILE
    if not secret_file.is_file():
        raise ConfigurationError(
            f"The instance's secret key file {secret_file} is missing.",
            what_to_do="Restore it from backup; without it sessions and terminal bindings are invalid.",
        )
    timeout = _number(env, raw, "session_timeout_seconds", default=300, minimum=1)
    lifetime = _number(env, raw, "session_lifetime_hours", default=12, minimum=1)
    if lifetime > MAX_SESSION_LIFETIME_HOURS or lifetime * 3600 <= timeout:
        raise ConfigurationError(
            f"session_lifetime_hours must be at most {MAX_SESSION_LIFETIME_HOURS} and longer than "
            f"the inactivity timeout ({timeout} s); it is {lifetime}.",
            what_to_do="Fix mes.toml or MES_SESSION_LIFETIME_HOURS (12 is the default).",
        )
    expiry = _number(env, raw, "password_expiry_days", default=0, minimum=0)
    proxy_hops = _number(env, raw, "proxy_hops", default=0, minimum=0)
    sync = _table(raw, "sync")
    interval = _number(env, sync, "sync.interval_seconds", default=2, minimum=0)
    skew = _number(env, sync, "sync.clock_skew_seconds", default=300, minimum=1)
    chunk_entries = _number(env, sync, "sync.chunk_entries", default=500, minimum=1)
    review = _table(raw, "review")
    late = _number(env, review, "review.late_signature_minutes", default=30, minimum=1)
    stamp = _number(env, review, "review.rubber_stamp_seconds", default=30, minimum=0)
    tolerance_text = _setting(env, review, "review.clock_tolerance_seconds")
    tolerance = (
        None
        if tolerance_text is None
        else _int(tolerance_text, "review.clock_tolerance_seconds", 0)
    )
    database = raw.get("database", {})
    database_url = _setting(env, database, "database.url") or sqlite_url(path)
    check_private_instance(path, database_url, PRIVATE)
    return Settings(
        instance_path=path,
        role=role,
        site_code=site_code,
        site_name=str(raw.get("site_name") or site_code),
        time_zone=time_zone,
        database_url=database_url,
        secret_key=secret_file.read_text(encoding="ascii").strip(),
        session_timeout_seconds=timeout,
        session_lifetime_hours=lifetime,
        password_expiry_days=expiry or None,
        proxy_hops=proxy_hops,
        sync_interval_seconds=interval,
        sync_clock_skew_seconds=skew,
        sync_chunk_entries=chunk_entries,
        review_late_signature_minutes=late,
        review_rubber_stamp_seconds=stamp,
        review_clock_tolerance_seconds=tolerance,
    )


def render_config(
    *, role: str, site_code: str, site_name: str, time_zone: str, database_url: str | None
) -> str:
    """The text of a new ``mes.toml``."""
    lines = [
        "# GMP-in-a-box MES instance configuration. Changes are made under change control.",
        f'role = "{role}"',
        f'site_code = "{site_code}"',
        f"site_name = {_toml_string(site_name)}",
        f'time_zone = "{time_zone}"',
        "# Inactivity timeout: the session locks and asks for the password again.",
        "session_timeout_seconds = 300",
        "# Absolute lifetime of a session in hours (1 to 24): then the user logs in again.",
        "session_lifetime_hours = 12",
        "# Password expiry in days; 0 = off.",
        "password_expiry_days = 0",
        "# Reverse proxies (TLS terminators) in front of the app whose X-Forwarded-* headers",
        "# are trusted; set to 1 behind one proxy so that cookies are marked Secure.",
        "proxy_hops = 0",
        "",
        "[sync]",
        "# Spoke: seconds between background sync rounds with the hub (0 = only 'mes sync').",
        "interval_seconds = 2",
        "# Hub: a sync request whose timestamp is further than this from the hub's clock is",
        "# refused (replays and stale requests).",
        "clock_skew_seconds = 300",
        "# Entries per signed chunk.",
        "chunk_entries = 500",
    ]
    if database_url:
        lines += ["", "[database]", f"url = {_toml_string(database_url)}"]
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
