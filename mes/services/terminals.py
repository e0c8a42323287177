"""Registered workstations (21 CFR 11.10(h) device checks).

An administrator registers a browser as a named terminal of the site; the web adapter binds the
browser to it with a signed, long-lived cookie. Every audit and ledger entry records the
terminal; at a spoke, only a registered, active terminal may sign.
"""

from __future__ import annotations

from mes.core.access import Permission
from mes.core.audit import EntryKind, require_reason
from mes.core.errors import InvalidInput, NotFound, TerminalNameTaken
from mes.core.text import one_line
from mes.services.audit import record_entry
from mes.services.context import Context, authorise
from mes.services.ids import new_id
from mes.store import terminals as store
from mes.store.models import Terminal
from mes.store.uow import UnitOfWork

RECORD_TYPE = "terminal"


def register_terminal(uow: UnitOfWork, ctx: Context, name: str, location: str = "") -> str:
    """Register a workstation by a unique name; returns its id."""
    actor = authorise(uow, ctx, Permission.MANAGE_TERMINALS)
    name = " ".join(one_line(name, "The terminal name").split())
    if not 2 <= len(name) <= 64:
        raise InvalidInput(
            "A terminal name is 2 to 64 characters.",
            what_to_do="Name it as it is labelled, e.g. 'Suite A tablet 1'.",
        )
    if store.terminal_name_taken(uow.session, uow.site.code, name):
        raise TerminalNameTaken(
            f"A terminal named '{name}' is already registered at this site.",
            what_to_do="Choose another name.",
        )
    terminal = Terminal(
        id=new_id(),
        site=uow.site.code,
        name=name,
        location=one_line(location, "The location", max_length=200),
        active=True,
        registered_at=ctx.at,
        registered_by=ctx.user_id,
    )
    uow.add(terminal)
    uow.flush()
    record_entry(
        uow,
        ctx,
        actor,
        "terminal registered",
        RECORD_TYPE,
        terminal.id,
        kind=EntryKind.SECURITY,
        new={"name": name, "location": terminal.location, "active": True},
    )
    uow.commit()
    return terminal.id


def deactivate_terminal(uow: UnitOfWork, ctx: Context, terminal_id: str, reason: str) -> None:
    """Withdraw a terminal (lost, replaced): browsers bound to it can no longer sign."""
    actor = authorise(uow, ctx, Permission.MANAGE_TERMINALS)
    reason = require_reason(reason, "deactivate a terminal")
    terminal = store.terminal(uow.session, terminal_id)
    if terminal is None or terminal.site != uow.site.code:
        raise NotFound("There is no such terminal at this site.")
    if not terminal.active:
        raise InvalidInput(f"The terminal '{terminal.name}' is already deactivated.")
    terminal.active = False
    record_entry(
        uow,
        ctx,
        actor,
        "terminal deactivated",
        RECORD_TYPE,
        terminal.id,
        kind=EntryKind.SECURITY,
        old={"name": terminal.name, "active": True},
        new={"name": terminal.name, "active": False},
        reason=reason,
    )
    uow.commit()


def active_terminal(uow: UnitOfWork, terminal_id: str | None) -> Terminal | None:
    """The registered, active terminal of this site with this id, if any."""
    if not terminal_id:
        return None
    terminal = store.terminal(uow.session, terminal_id)
    if terminal is None or not terminal.active or terminal.site != uow.site.code:
        return None
    return terminal


def list_terminals(uow: UnitOfWork) -> list[Terminal]:
    """The site's terminals, active first."""
    return store.terminals_of(uow.session, uow.site.code)
