"""When a session locks and when it ends (mes.core.sessions), and its settings (mes.settings)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mes.core.errors import ConfigurationError
from mes.core.sessions import (
    SessionPolicy,
    SessionState,
    needs_touch,
    new_session_token,
    session_state,
    token_digest,
)
from mes.settings import load_settings, render_config

OPENED = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
POLICY = SessionPolicy(idle_timeout=timedelta(minutes=5), lifetime=timedelta(hours=12))


def state(now: datetime, last_seen: datetime = OPENED, locked: bool = False) -> SessionState:
    return session_state(
        created_at=OPENED, last_seen_at=last_seen, locked=locked, now=now, policy=POLICY
    )


def test_a_session_used_within_the_timeout_is_open():
    assert state(OPENED + timedelta(minutes=5)) is SessionState.OPEN
    later = OPENED + timedelta(hours=11)
    assert state(later, last_seen=later - timedelta(minutes=2)) is SessionState.OPEN


def test_a_session_idle_past_the_timeout_is_locked_without_any_request_to_lock_it():
    assert state(OPENED + timedelta(minutes=5, seconds=1)) is SessionState.LOCKED


def test_a_locked_session_stays_locked_however_recently_it_was_seen():
    assert state(OPENED + timedelta(seconds=1), locked=True) is SessionState.LOCKED


def test_a_session_past_its_lifetime_has_expired_however_active_it_is():
    now = OPENED + timedelta(hours=12, seconds=1)
    assert state(now, last_seen=now - timedelta(seconds=1)) is SessionState.EXPIRED
    assert state(now, locked=True) is SessionState.EXPIRED


def test_last_seen_is_written_at_most_once_per_sixtieth_of_the_timeout():
    assert POLICY.touch_interval == timedelta(seconds=5)
    assert not needs_touch(OPENED, OPENED + timedelta(seconds=4.9), POLICY)
    assert needs_touch(OPENED, OPENED + timedelta(seconds=5), POLICY)


def test_session_ids_are_random_256_bit_secrets_stored_as_their_sha256():
    tokens = {new_session_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) == 43  # 32 bytes, URL-safe base64 without padding
    assert token_digest(token) == hashlib.sha256(token.encode()).hexdigest()


def _instance(tmp_path: Path, extra: str = "") -> Path:
    config = render_config(
        role="spoke", site_code="SPK1", site_name="Spoke", time_zone="UTC", database_url=None
    )
    (tmp_path / "mes.toml").write_text(config + extra, encoding="utf-8")
    (tmp_path / "secret_key").write_text("x" * 64, encoding="ascii")
    for path in (tmp_path / "mes.toml", tmp_path / "secret_key"):
        path.chmod(0o600)  # as mes init makes them: an instance open to others is refused
    tmp_path.chmod(0o700)
    return tmp_path


def test_the_session_lifetime_is_12_hours_unless_configured(tmp_path):
    settings = load_settings(_instance(tmp_path), env={})
    assert settings.session_lifetime_hours == 12
    assert settings.session_policy == POLICY
    changed = load_settings(tmp_path, env={"MES_SESSION_LIFETIME_HOURS": "8"})
    assert changed.session_policy.lifetime == timedelta(hours=8)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MES_SESSION_LIFETIME_HOURS": "0"}, "session_lifetime_hours must be at least 1"),
        ({"MES_SESSION_LIFETIME_HOURS": "25"}, "must be at most 24"),
        ({"MES_SESSION_LIFETIME_HOURS": "twelve"}, "must be a whole number"),
        (
            {"MES_SESSION_LIFETIME_HOURS": "1", "MES_SESSION_TIMEOUT_SECONDS": "3600"},
            "longer than the inactivity timeout (3600 s)",
        ),
    ],
)
def test_a_bad_session_lifetime_refuses_to_start(tmp_path, env, words):
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_instance(tmp_path), env=env)
    assert words in str(refused.value)
