"""Configuration under change control (Annex 11 §10, 21 CFR 11.10(e)).

The configuration lives in ``mes.toml`` and ``MES_*`` variables, outside the application, so the
instance records the effective configuration in the audit trail each time it starts and it
differs from the last one recorded: old → new, by the system, with the reason that it was
changed outside the application.

Site settings that an administrator changes in the application (with a reason) live in the audit
trail itself: the setting's value is its newest entry, signed and chained like every other, so
the setting, every change of it and who made it why are one record that nobody can bend unseen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mes.core.access import Permission
from mes.core.audit import Actor, require_reason
from mes.core.errors import InvalidInput
from mes.core.esign import SigningMethod, parse_signing_methods
from mes.services.audit import record_entry
from mes.services.context import Context, authorise, system_actor
from mes.services.runtime import safe_url
from mes.settings import Settings
from mes.store.audit import latest_change, lock_audit_chain
from mes.store.uow import UnitOfWork

RECORD_TYPE = "configuration"


def effective_configuration(settings: Settings) -> dict[str, Any]:
    """The settings that matter for GMP, as recorded (no secrets)."""
    return {
        "role": settings.role,
        "site_code": settings.site_code,
        "site_name": settings.site_name,
        "time_zone": settings.time_zone,
        "database": safe_url(settings.database_url),
        "session_timeout_seconds": settings.session_timeout_seconds,
        "session_lifetime_hours": settings.session_lifetime_hours,
        "password_expiry_days": settings.password_expiry_days,
        "proxy_hops": settings.proxy_hops,
        "sync_interval_seconds": settings.sync_interval_seconds,
        "sync_clock_skew_seconds": settings.sync_clock_skew_seconds,
        "sync_chunk_entries": settings.sync_chunk_entries,
        "review_late_signature_minutes": settings.review_late_signature_minutes,
        "review_rubber_stamp_seconds": settings.review_rubber_stamp_seconds,
        "review_clock_tolerance_seconds": settings.review_clock_tolerance_seconds,
    }


def record_configuration(uow: UnitOfWork, ctx: Context, settings: Settings) -> bool:
    """Record the configuration if it differs from the last one recorded; True if it did.

    The audit chain is locked first, so two workers starting together record it once.
    """
    current = effective_configuration(settings)
    lock_audit_chain(uow.session)
    recorded = latest_change(uow.session, RECORD_TYPE, settings.site_code)
    last = recorded.new if recorded is not None else None
    if last == current:
        return False
    record_entry(
        uow,
        ctx,
        system_actor(ctx),
        "configuration recorded" if last is None else "configuration changed",
        RECORD_TYPE,
        settings.site_code,
        old=last,
        new=current,
        reason=None
        if last is None
        else "changed outside the application (mes.toml or MES_* variables)",
    )
    uow.commit()
    return True


# --- site settings changed in the application ------------------------------------------------

SETTING_RECORD_TYPE = "site setting"
ADMINISTRATORS_MAY_SIGN = "administrators may hold signing roles"


@dataclass(frozen=True)
class SiteSetting:
    """A site setting as the administration pages show it: its value and its last change."""

    name: str
    allowed: bool
    changed_at: str | None = None
    changed_by: str | None = None
    reason: str | None = None


def administrators_may_sign(uow: UnitOfWork) -> SiteSetting:
    """Whether one person may hold administration and a GMP signing role (default: no).

    PIC/S PI 041 §9.3 segregates administrators from the people who generate GMP data; a small
    site where that is impossible allows the combination here, on the record.
    """
    row = latest_change(uow.session, SETTING_RECORD_TYPE, ADMINISTRATORS_MAY_SIGN)
    if row is None:
        return SiteSetting(ADMINISTRATORS_MAY_SIGN, False)
    return SiteSetting(
        ADMINISTRATORS_MAY_SIGN,
        bool((row.new or {}).get("allowed")),
        changed_at=row.at,
        changed_by=row.actor_name,
        reason=row.reason,
    )


def set_administrators_may_sign(uow: UnitOfWork, ctx: Context, allowed: bool, reason: str) -> None:
    """Allow or forbid administration together with a GMP signing role (reason required).

    Annex 11 §10, §12.3: the change is an audit entry (old → new, who, why), and the entry is
    the setting. Forbidding it again stops every account that holds both from signing.
    """
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    reason = require_reason(reason, "change who may sign")
    lock_audit_chain(uow.session)
    current = administrators_may_sign(uow).allowed
    if current == allowed:
        state = "allowed" if allowed else "forbidden"
        raise InvalidInput(
            f"Administration together with a signing role is already {state} at this site.",
            what_to_do="Nothing to change.",
        )
    _change_setting(
        uow, ctx, actor, ADMINISTRATORS_MAY_SIGN,
        old={"allowed": current}, new={"allowed": allowed}, reason=reason,
    )  # fmt: skip


SIGNING_METHODS = "signing methods"


@dataclass(frozen=True)
class SigningMethodsSetting:
    """Which ways to identify and authenticate the site allows, and the setting's last change."""

    methods: frozenset[SigningMethod]
    changed_at: str | None = None
    changed_by: str | None = None
    reason: str | None = None

    @property
    def values(self) -> list[str]:
        """The allowed methods' values, in the order of :class:`SigningMethod`."""
        return [m.value for m in SigningMethod if m in self.methods]


def signing_methods(uow: UnitOfWork) -> SigningMethodsSetting:
    """The ways to sign (and log in) the site allows: user ID + password, badge + PIN.

    Default: both (21 CFR 11.200(a)(1) allows either as the two distinct components).
    """
    row = latest_change(uow.session, SETTING_RECORD_TYPE, SIGNING_METHODS)
    if row is None:
        return SigningMethodsSetting(frozenset(SigningMethod))
    return SigningMethodsSetting(
        parse_signing_methods((row.new or {}).get("methods") or []),
        changed_at=row.at,
        changed_by=row.actor_name,
        reason=row.reason,
    )


def set_signing_methods(uow: UnitOfWork, ctx: Context, methods: Iterable[str], reason: str) -> None:
    """Choose the ways to sign the site allows (at least one; reason required; audited).

    Annex 11 §10: the change is an audit entry (old → new, who, why), and the entry is the
    setting. A method no longer allowed is refused at the next signing or login.
    """
    actor = authorise(uow, ctx, Permission.MANAGE_USERS)
    reason = require_reason(reason, "change the ways to sign")
    chosen = parse_signing_methods(methods)
    lock_audit_chain(uow.session)
    current = signing_methods(uow)
    if current.methods == chosen:
        raise InvalidInput(
            "These are already the ways to sign at this site.", what_to_do="Nothing to change."
        )
    _change_setting(
        uow, ctx, actor, SIGNING_METHODS,
        old={"methods": current.values},
        new={"methods": [m.value for m in SigningMethod if m in chosen]},
        reason=reason,
    )  # fmt: skip


def _change_setting(
    uow: UnitOfWork,
    ctx: Context,
    actor: Actor,
    setting: str,
    *,
    old: dict[str, Any],
    new: dict[str, Any],
    reason: str,
) -> None:
    """Keep a site setting's change: the audit entry (old → new, who, why) is the setting."""
    record_entry(
        uow, ctx, actor, "site setting changed", SETTING_RECORD_TYPE, setting,
        old=old, new=new, reason=reason,
    )  # fmt: skip
    uow.commit()
