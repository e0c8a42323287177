"""Batch execution at a spoke: start a batch, work its phases, sign, correct, hold, complete.

Each function is one use case: an authority check, the batch row locked (so two terminals on
one batch are served one after the other), the ledger replayed into the core's
:class:`~mes.core.batch.Batch`, the core's rules applied, and the new ledger entries and
projections written in one transaction. Signed actions re-authenticate the signer at the
moment of signing (21 CFR 11.200) after every rule of the action has passed, so an untrained
or wrong person is refused before being asked for a password.

Refusals that must leave a trace — a lot or instrument refused at the scan, a label that does
not match the chain of identity — are committed with the entries that record them, then
reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from mes.core.access import Permission
from mes.core.audit import Actor
from mes.core.batch import (
    ACTION_MEANINGS,
    BATCH_ACTIONS,
    Action,
    Batch,
    BatchStatus,
    DeviationStatus,
    EntryKind,
    NextStep,
    Operator,
    Procedure,
    next_steps,
)
from mes.core.bundle import open_bundle
from mes.core.clock import utc_text
from mes.core.errors import (
    BatchRefused,
    BundleRefused,
    ConfigurationError,
    InvalidInput,
    MesError,
    NotAuthorised,
    NotFound,
    TerminalNotRegistered,
)
from mes.core.heads import AnchoredVerification, verify_anchored
from mes.core.keys import SitePublicKey
from mes.services.anchors import batch_anchors
from mes.services.context import Context, acting_user, actor_of, authorise
from mes.services.equipment import log
from mes.services.esign import (
    Credentials,
    PasswordCheck,
    authenticate_signer,
    check_password_first,
)
from mes.services.ids import new_id
from mes.services.phase_data import PhaseData, PhaseResult, ScansRefused, record_data
from mes.services.recipes import site_today, usable_version
from mes.services.terminals import active_terminal
from mes.services.training import is_qualified
from mes.store import batches as store
from mes.store import recipes as recipe_store
from mes.store import spokes as spoke_store
from mes.store import users
from mes.store.board import BoardRow, board_rows
from mes.store.models import Batch as BatchRow
from mes.store.models import InstalledRecipe
from mes.store.review import review_ledger, set_after_release
from mes.store.sync import touch_outbox
from mes.store.uow import UnitOfWork

ACTIVE = (BatchStatus.CREATED.value, BatchStatus.IN_PROGRESS.value, BatchStatus.ON_HOLD.value)


@lru_cache(maxsize=32)
def procedure_for(content_hash: str, compiled: str) -> Procedure:
    """The procedure of an installed recipe version (cached by its content identity)."""
    return Procedure(json.loads(compiled))


def _require_spoke(uow: UnitOfWork) -> None:
    if not uow.site.is_spoke:
        raise ConfigurationError(
            f"Batches are executed at a spoke; this site ({uow.site.code}) is the hub.",
            what_to_do="Run batches at the manufacturing site.",
        )


def _operator(uow: UnitOfWork, ctx: Context, procedure: Procedure) -> Operator:
    """Who acts on a batch: authorised, at a registered terminal (11.10(h)), with their training."""
    authorise(uow, ctx, Permission.EXECUTE_BATCHES)
    if active_terminal(uow, ctx.terminal_id) is None:
        raise TerminalNotRegistered(
            "This browser is not a registered terminal of the site: batch data is entered and "
            "signed only at one.",
            what_to_do="Use a registered terminal, or ask an administrator to register this one.",
        )
    return _person(uow, ctx, procedure)


def _person(uow: UnitOfWork, ctx: Context, procedure: Procedure) -> Operator:
    """The person acting as the batch rules see them: roles, and training on the recipe.

    The logged-in user; or a witness signing in place, with the logged-in user at whose session
    they sign (``ctx.in_session_of``): the core's rules then apply to the witness.
    """
    user = acting_user(uow, ctx)
    host = None
    if ctx.in_session_of is not None:
        host = users.user(uow.session, ctx.in_session_of)
        if host is None:
            raise NotAuthorised("Your session names an unknown user.", what_to_do="Log in again.")
    return Operator(
        actor=actor_of(user),
        roles=user.role_names,
        qualified=is_qualified(uow, user, procedure.training, ctx),
        in_session_of=actor_of(host) if host is not None else None,
    )


@dataclass
class Loaded:
    """A batch as a service works on it: its row, the aggregate, its recipe version."""

    row: BatchRow
    batch: Batch
    installed: InstalledRecipe
    stored: dict[str, Any] | None  # the projection as stored (see store.save)


def _load(uow: UnitOfWork, batch_id: str, *, lock: bool = True) -> Loaded:
    row = store.lock_batch(uow.session, batch_id) if lock else store.batch(uow.session, batch_id)
    if row is None:
        raise NotFound(f"There is no batch {batch_id!r}.", what_to_do="Pick it from the board.")
    installed = recipe_store.installed(uow.session, row.installed_recipe_id)
    if installed is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound(f"The recipe version of batch {row.number} is not installed here.")
    procedure = procedure_for(installed.content_hash, installed.compiled)
    batch = Batch.replay(
        procedure,
        store.ledger(uow.session, row.id),
        key=uow.site.key,
        time_zone=uow.site.time_zone,
    )
    if batch.state.status is BatchStatus.COMPLETE:  # the hub's review, as far as it has arrived
        batch.review_bodies = [e.body for e in review_ledger(uow.session, row.id)]
    return Loaded(row, batch, installed, store.saved_state(batch) if lock else None)


def _acting_on(uow: UnitOfWork, ctx: Context, batch_id: str) -> tuple[Loaded, Operator]:
    """The batch locked and loaded, and the operator acting on it (see :func:`_operator`)."""
    loaded = _load(uow, batch_id)
    return loaded, _operator(uow, ctx, loaded.batch.procedure)


def _committed(uow: UnitOfWork, ctx: Context, loaded: Loaded) -> Batch:
    """Save what the batch recorded and commit it; the batch as it now stands."""
    _save(uow, ctx, loaded)
    uow.commit()
    return loaded.batch


def _sign(
    uow: UnitOfWork,
    ctx: Context,
    batch: Batch,
    who: Operator,
    action: Action,
    record: Mapping[str, Any],
    credentials: Credentials,
    first_signing_in_session: bool,
    checked: PasswordCheck | None = None,
    *,
    keep_staged: bool = False,
) -> None:
    """Re-authenticate the signer and append the signature entry (rules already passed).

    ``checked``: the password checked before the locks were taken; ``keep_staged``: on a wrong
    password, keep what was recorded before signing (it stands without the signature).
    """
    _user, manifestation = authenticate_signer(
        uow,
        ctx,
        record_type=str(record["type"]),
        record_id=batch.state.id,
        record=record,
        meaning=ACTION_MEANINGS[action],
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
        checked=checked,
        keep_staged=keep_staged,
        witnessable=BATCH_ACTIONS[action].witness,
    )
    batch.signed(record, manifestation, who, ctx.at, ctx.terminal)


def _save(uow: UnitOfWork, ctx: Context, loaded: Loaded | Batch) -> None:
    """Write the new entries, the changed projection rows and the logbook lines of their uses."""
    batch = loaded.batch if isinstance(loaded, Loaded) else loaded
    for entry in batch.new_entries:
        if entry.body["kind"] == EntryKind.EQUIPMENT_USED:
            payload = entry.body["payload"]
            log(
                uow,
                ctx,
                Actor.from_dict(entry.body["actor"]),
                payload["equipment"],
                "used",
                f"{batch.procedure.phases[payload['phase']].name} "
                f"({batch.procedure.recipe_code} v{batch.procedure.version})",
                batch_number=batch.state.number,
                phase_id=payload["phase"],
            )
    new_entries = list(batch.new_entries)  # save() clears them
    if isinstance(loaded, Loaded):
        loaded.stored = store.save(uow.session, batch, loaded.stored, key=uow.site.key)
    else:
        store.save(uow.session, batch, None, key=uow.site.key)
    if new_entries:
        # The outbox pattern: queued for the hub in the same transaction (deviations first).
        touch_outbox(
            uow.session,
            batch.state.id,
            batch.state.last_seq,
            priority=any(e.body["kind"] == EntryKind.DEVIATION_RAISED for e in new_entries),
        )


# --- starting a batch --------------------------------------------------------------------


@dataclass(frozen=True)
class StartableRecipe:
    """A recipe a new batch can be started from: its newest installed, effective version."""

    installed: InstalledRecipe
    procedure: Procedure


def startable_recipes(uow: UnitOfWork, ctx: Context) -> list[StartableRecipe]:
    """For the start page: each recipe's version that new batches take today."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    today = site_today(uow, ctx)
    codes = recipe_store.installed_recipe_codes(uow.session)
    result = []
    for code in codes:
        installed = usable_version(uow, code, today)
        if installed is not None:
            result.append(
                StartableRecipe(
                    installed, procedure_for(installed.content_hash, installed.compiled)
                )
            )
    return result


def start_batch(
    uow: UnitOfWork,
    ctx: Context,
    recipe_code: str,
    identifiers: Mapping[str, str],
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
) -> Batch:
    """Start a batch of the newest effective installed version of ``recipe_code``.

    The chain of identity is checked (a DIN's check character, each identifier's form); the
    hub's signature on the installed bundle is checked again; a DIN already used by another
    batch that is not aborted is refused. The batch number is the site code, the year and a
    sequence (unique across the network because site codes are). Starting is an e-signature.
    """
    _require_spoke(uow)
    checked = check_password_first(uow, ctx, credentials)  # argon2 before any lock
    authorise(uow, ctx, Permission.EXECUTE_BATCHES)
    code = (recipe_code or "").strip().upper()
    installed = usable_version(uow, code, site_today(uow, ctx))
    if installed is None:
        raise NotFound(
            f"No effective version of {code or 'that recipe'} is installed at this site.",
            what_to_do="Install the hub's bundle of the recipe, or pick another recipe.",
        )
    _check_bundle(uow, installed)
    procedure = procedure_for(installed.content_hash, installed.compiled)
    who = _operator(uow, ctx, procedure)
    year = ctx.at.astimezone(ZoneInfo(uow.site.time_zone)).year
    sequence = store.next_number(uow.session, f"batch:{uow.site.code}:{year}")
    batch = Batch.create(
        procedure,
        batch_id=new_id(),
        number=f"{uow.site.code}-{year}-{sequence:04d}",
        site=uow.site.code,
        recipe={
            "code": installed.recipe_code,
            "version": installed.version,
            "content_hash": installed.content_hash,
            "installed_id": installed.id,
            "bundle_hash": installed.bundle_hash,
        },
        identifiers=identifiers,
        who=who,
        at=ctx.at,
        terminal=ctx.terminal,
        key=uow.site.key,
        time_zone=uow.site.time_zone,
    )
    _refuse_reused_donation(uow, batch, procedure)
    record = batch.prepare(Action.START, who, ctx.at)
    _sign(
        uow, ctx, batch, who, Action.START, record, credentials, first_signing_in_session, checked
    )
    _save(uow, ctx, batch)
    uow.commit()
    return batch


def _check_bundle(uow: UnitOfWork, installed: InstalledRecipe) -> None:
    """Verify the hub's signature on the installed bundle again before it governs a batch."""
    if uow.site.hub_key is None:
        raise ConfigurationError(
            "This spoke has no pinned hub key, so no recipe can be trusted.",
            what_to_do="Pin the hub's public key (mes init --role spoke --hub-key FILE).",
        )
    try:
        bundle = open_bundle(installed.bundle, uow.site.hub_key, uow.site.code)
    except BundleRefused as refusal:
        raise BundleRefused(
            f"The installed bundle of {installed.recipe_code} v{installed.version} no longer "
            f"verifies: {refusal.message}",
            what_to_do="Do not start batches from it; reinstall the bundle from the hub.",
        ) from None
    if bundle.content_hash != installed.content_hash:
        raise BundleRefused(
            f"The stored recipe of {installed.recipe_code} v{installed.version} differs from "
            "its signed bundle.",
            what_to_do="Do not start batches from it; reinstall the bundle from the hub.",
        )


def _refuse_reused_donation(uow: UnitOfWork, batch: Batch, procedure: Procedure) -> None:
    dins = {
        value["din"]
        for key, value in batch.state.chain_of_identity.items()
        if procedure.coi_spec(key)["kind"] == "isbt128_din"
    }
    if not dins:
        return
    for number, coi in store.donations_in_use(uow.session):
        used = {v["din"] for v in coi.values() if isinstance(v, dict) and "din" in v}
        if used & dins:
            din = sorted(used & dins)[0]
            raise BatchRefused(
                f"The donation {din} is already the starting material of batch {number}.",
                what_to_do="Check the DIN on the bag; one donation feeds one batch.",
            )


# --- working on phases -------------------------------------------------------------------


def start_phase(
    uow: UnitOfWork, ctx: Context, batch_id: str, phase_id: str, *, seen_seq: int | None = None
) -> Batch:
    """Start a ready phase (order, timers, role and training checked).

    A start after a timer's maximum raises a deviation.
    """
    _require_spoke(uow)
    loaded, who = _acting_on(uow, ctx, batch_id)
    loaded.batch.check_current(phase_id, seen_seq)
    loaded.batch.start_phase(phase_id, who, ctx.at, ctx.terminal)
    return _committed(uow, ctx, loaded)


def record_phase(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    phase_id: str,
    *,
    seen_seq: int | None = None,
    **entries: Mapping[Any, Any],
) -> PhaseResult:
    """Record what was entered and scanned in a phase, in one transaction.

    A ready phase starts with its first entry (the core's ``start_with_entry``: the start's
    rules, written before the entry, by the same person at the same time).

    ``entries``: each phase kind's entries by its argument name (``values``, ``comments``,
    ``lots``, ``equipment``, ``identity``…; :func:`mes.core.phases.parse_form` reads them from a
    form). Values are all checked first: if any is malformed, nothing at all is recorded and
    :class:`~mes.core.limits.InvalidValue` names each field. Each scan is then recorded or refused; a refused
    scan is kept in the record and its message returned for its field (``lot:CODE``…).
    """
    _require_spoke(uow)
    loaded, who = _acting_on(uow, ctx, batch_id)
    batch = loaded.batch
    batch.check_current(phase_id, seen_seq)
    result = record_data(uow, ctx, batch, who, phase_id, PhaseData(entries))
    _save(uow, ctx, loaded)
    uow.commit()
    return result


def sign_phase(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    phase_id: str,
    action: Action,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    seen_seq: int | None = None,
    data: PhaseData | None = None,
) -> Batch:
    """Sign a phase as performed, or as verified by a second person (11.50, 11.70, 11.200).

    ``data``: what the form carried with a *performed* signature (values and scans), recorded
    first in the same transaction — one tap records and signs. A phase not yet started starts
    with it (the start's rules; the same signer and time), and is kept started only if
    something was entered or the signature is given. Every rule is checked before the
    password counts: ordering, completeness, comments on its deviations, role, training, and
    for verification that the verifier did not record or sign anything in the phase. When a
    rule refuses, or the password is wrong, what was recorded stays (committed) and nothing is
    signed; refused scans raise :class:`ScansRefused` with a message for each field.
    """
    if action not in (Action.PERFORM, Action.VERIFY):
        raise InvalidInput(f"'{action.value}' is not a phase signature.")
    _require_spoke(uow)
    checked = check_password_first(uow, ctx, credentials)  # argon2 before any lock is taken
    loaded, who = _acting_on(uow, ctx, batch_id)
    batch = loaded.batch
    batch.check_current(phase_id, seen_seq)
    if data and action is Action.PERFORM:
        result = record_data(uow, ctx, batch, who, phase_id, data)
        if result.field_errors:
            _keep(uow, ctx, loaded)
            raise ScansRefused(result)
    recorded = bool(batch.new_entries)  # what was entered stands even if signing is refused
    try:
        if action is Action.PERFORM:  # a phase not yet started starts with its performance
            batch.start_with_entry(phase_id, who, ctx.at, ctx.terminal)
        record = batch.prepare(action, who, ctx.at, phase_id=phase_id)
    except MesError:
        if recorded:
            _keep(uow, ctx, loaded)
        raise
    if recorded:
        _save(uow, ctx, loaded)
    try:
        _sign(
            uow, ctx, batch, who, action, record, credentials, first_signing_in_session, checked,
            keep_staged=recorded,
        )  # fmt: skip
    except MesError:
        if recorded:
            uow.commit()  # the values and scans stand; only the signature was refused
        raise
    return _committed(uow, ctx, loaded)


def _keep(uow: UnitOfWork, ctx: Context, loaded: Loaded) -> None:
    """Commit what was recorded before a refusal (it stands without the signature)."""
    if loaded.batch.new_entries:
        _save(uow, ctx, loaded)
        uow.commit()


def correct_value(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    phase_id: str,
    value_id: str,
    new_value: Any,
    reason: str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
) -> Batch:
    """Correct a value of a signed phase, with a reason, re-signed.

    The correction is a new entry naming the one it corrects; the original stays in the record.
    Where the recipe asks for a second person, the phase is verified again.
    """
    _require_spoke(uow)
    checked = check_password_first(uow, ctx, credentials)  # argon2 before any lock
    loaded, who = _acting_on(uow, ctx, batch_id)
    batch = loaded.batch
    record = batch.prepare(
        Action.CORRECT,
        who,
        ctx.at,
        phase_id=phase_id,
        terminal=ctx.terminal,
        correction={"value": value_id, "new": new_value, "reason": reason},
    )
    _sign(
        uow, ctx, batch, who, Action.CORRECT, record, credentials, first_signing_in_session, checked
    )
    return _committed(uow, ctx, loaded)


# --- deviations --------------------------------------------------------------------------


def comment_deviation(
    uow: UnitOfWork, ctx: Context, batch_id: str, deviation_id: str, comment: str
) -> Batch:
    """Say what happened in a deviation (needed before its phase is signed)."""
    _require_spoke(uow)
    loaded, who = _acting_on(uow, ctx, batch_id)
    loaded.batch.comment_deviation(deviation_id, comment, who, ctx.at, ctx.terminal)
    return _committed(uow, ctx, loaded)


def report_deviation(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    description: str,
    phase_id: str | None = None,
) -> Batch:
    """Report a deviation by hand (anything unplanned), optionally against a phase."""
    _require_spoke(uow)
    loaded, who = _acting_on(uow, ctx, batch_id)
    loaded.batch.report_deviation(description, who, ctx.at, ctx.terminal, phase_id)
    return _committed(uow, ctx, loaded)


def acknowledge_deviation(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    deviation_id: str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
) -> Batch:
    """A supervisor or QA (not the person who raised it) acknowledges a deviation, signed."""
    return _signed_batch_action(
        uow, ctx, batch_id, Action.ACKNOWLEDGE, credentials, first_signing_in_session,
        deviation_id=deviation_id,
    )  # fmt: skip


# --- the batch as a whole ----------------------------------------------------------------


def hold_batch(uow: UnitOfWork, ctx: Context, batch_id: str, reason: str) -> Batch:
    """Put a batch on hold, with the reason (anyone working on it may stop the line)."""
    _require_spoke(uow)
    loaded, who = _acting_on(uow, ctx, batch_id)
    loaded.batch.hold(reason, who, ctx.at, ctx.terminal)
    return _committed(uow, ctx, loaded)


def resume_batch(uow: UnitOfWork, ctx: Context, batch_id: str, reason: str) -> Batch:
    """A supervisor resumes a batch on hold, with the reason it may continue."""
    _require_spoke(uow)
    loaded, who = _acting_on(uow, ctx, batch_id)
    loaded.batch.resume(reason, who, ctx.at, ctx.terminal)
    return _committed(uow, ctx, loaded)


def complete_batch(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
) -> Batch:
    """A supervisor signs the batch complete: every phase done, every deviation acknowledged."""
    return _signed_batch_action(
        uow, ctx, batch_id, Action.COMPLETE, credentials, first_signing_in_session
    )


def abort_batch(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    reason: str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
) -> Batch:
    """A supervisor aborts a batch, with the reason and a signature; its record stays."""
    return _signed_batch_action(
        uow, ctx, batch_id, Action.ABORT, credentials, first_signing_in_session, reason=reason
    )


def _signed_batch_action(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    action: Action,
    credentials: Credentials,
    first_signing_in_session: bool,
    **subject: str,
) -> Batch:
    """One signed action on a batch: its rules (the core's ``prepare``), then the signature."""
    _require_spoke(uow)
    checked = check_password_first(uow, ctx, credentials)  # argon2 before any lock
    loaded, who = _acting_on(uow, ctx, batch_id)
    batch = loaded.batch
    record = batch.prepare(action, who, ctx.at, **subject)  # type: ignore[arg-type]
    _sign(uow, ctx, batch, who, action, record, credentials, first_signing_in_session, checked)
    return _committed(uow, ctx, loaded)


# --- after release (mes.core.after_release) ----------------------------------------------


def record_result(uow: UnitOfWork, ctx: Context, batch_id: str, fields: Mapping[str, Any]) -> Batch:
    """The spoke's QC enters a result the recipe declared pending at release (batch ledger).

    ``fields``: result, value, reference, within_specification (where the recipe gives no rule),
    method; for a correction also corrects and reason. Out of specification, a deviation
    (``result_after_release``) is raised in the same transaction and pushed to the hub first;
    nothing else is signed on the batch until the physician's notification is recorded.
    """
    _require_spoke(uow)
    authorise(uow, ctx, Permission.RECORD_RESULTS)
    loaded = _load(uow, batch_id)
    _at_terminal(uow, ctx)
    who = _person(uow, ctx, loaded.batch.procedure)
    loaded.batch.record_result(fields, who, ctx.at, ctx.terminal)
    set_after_release(uow.session, batch_id, loaded.batch.after_release().awaiting)
    return _committed(uow, ctx, loaded)


def notify_physician(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    fields: Mapping[str, str],
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
) -> Batch:
    """Record, signed, that the treating physician was told of a result out of specification.

    ``fields``: result, physician (who was told), how, told_at (UTC text). By whom is the
    signer ("notified"). Supervisors, QA and QC at the spoke may record it.
    """
    _require_spoke(uow)
    checked = check_password_first(uow, ctx, credentials)  # argon2 before any lock
    authorise(uow, ctx, Permission.READ_BATCHES)
    loaded = _load(uow, batch_id)
    _at_terminal(uow, ctx)
    who = _person(uow, ctx, loaded.batch.procedure)
    record = loaded.batch.notification_record(who, ctx.at, **fields)
    _user, manifestation = authenticate_signer(
        uow,
        ctx,
        record_type=str(record["type"]),
        record_id=loaded.batch.state.id,
        record=record,
        meaning=ACTION_MEANINGS[Action.NOTIFY_PHYSICIAN],
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
        checked=checked,
    )
    loaded.batch.notify_physician(record, manifestation, who, ctx.at, ctx.terminal)
    set_after_release(uow.session, batch_id, loaded.batch.after_release().awaiting)
    return _committed(uow, ctx, loaded)


def _at_terminal(uow: UnitOfWork, ctx: Context) -> None:
    if active_terminal(uow, ctx.terminal_id) is None:
        raise TerminalNotRegistered(
            "This browser is not a registered terminal of the site: batch data is entered and "
            "signed only at one.",
            what_to_do="Use a registered terminal, or ask an administrator to register this one.",
        )


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchView:
    """A batch for pages: the aggregate (state, procedure, rules) and who looks at it."""

    batch: Batch
    row: BatchRow
    installed: InstalledRecipe
    viewer: Operator | None


def get_batch(uow: UnitOfWork, ctx: Context, batch_id: str) -> BatchView:
    """One batch as its ledger says it is now, with the viewer's roles and training."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    loaded = _load(uow, batch_id, lock=False)
    viewer = None
    if ctx.user_id is not None:
        viewer = _person(uow, ctx, loaded.batch.procedure)
    return BatchView(loaded.batch, loaded.row, loaded.installed, viewer)


def find_batch_id(uow: UnitOfWork, ctx: Context, reference: str) -> str:
    """A batch's ID from its number (e.g. SPK1-2026-0001) or its ID."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    text = (reference or "").strip()
    row = store.batch_id_of(uow.session, text)
    if row is None:
        raise NotFound(f"There is no batch {reference!r}.", what_to_do="Check the batch number.")
    return row


def verify_batch(uow: UnitOfWork, ctx: Context, batch_id: str) -> int:
    """Verify a batch's ledger (hashes, links, the site's signatures); the count of entries."""
    return verify_batch_anchored(uow, ctx, batch_id).count


def verify_batch_anchored(uow: UnitOfWork, ctx: Context, batch_id: str) -> AnchoredVerification:
    """Verify a batch's ledger, its signed head and the hub's acknowledgements kept here."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    return verify_ledger_anchored(uow, batch_id)


def verify_ledger(uow: UnitOfWork, batch_id: str) -> int:
    """Verify a batch's ledger against the key of the site that made it (the hub: the spoke's)."""
    return verify_ledger_anchored(uow, batch_id).count


def verify_ledger_anchored(uow: UnitOfWork, batch_id: str) -> AnchoredVerification:
    """Verify a batch's ledger, its head and its anchors; raise ChainBroken naming what is wrong.

    Rule (21 CFR 11.10(a)): every entry verifies with the key of the site that made it; the
    batch's recorded head carries the signature of this site (which wrote the row) and the
    ledger ends there; at a spoke, the ledger reaches the furthest head the hub acknowledged
    (a shorter ledger names the missing entries and the hub's acknowledgement).
    """
    row = store.batch(uow.session, batch_id)
    if row is None:
        raise NotFound(f"There is no batch {batch_id!r}.")
    return verify_anchored(
        store.ledger(uow.session, batch_id),
        signing_key(uow, row.site),
        store.batch_head(row),
        uow.site.key.public,
        uow.site.code,
        batch_anchors(uow, row),
    )


def signing_key(uow: UnitOfWork, site: str) -> SitePublicKey:
    """The key that signed a batch's entries: this site's, or (at the hub) the spoke's."""
    if site == uow.site.code:
        return uow.site.key.public
    spoke = spoke_store.spoke(uow.session, site)
    key = spoke.public_key if spoke is not None else None
    if key is None:
        raise NotFound(f"The batch was made at {site}, whose key this site does not hold.")
    return key


def board(uow: UnitOfWork, ctx: Context, *, include_closed: bool = False) -> list[BoardRow]:
    """The board of the site: every batch in progress (and if asked, closed ones).

    For each: the phases in progress, ready or awaiting verification, the next timer due, any
    timer overdue, the number of open deviations, and QA's release or rejection at the hub.
    The read model is the store's (:mod:`mes.store.board`); who may read it is checked here.
    """
    authorise(uow, ctx, Permission.READ_BATCHES)
    statuses: Iterable[str] = ACTIVE if not include_closed else (*ACTIVE, "complete", "aborted")
    return board_rows(uow.session, statuses, ACTIVE, utc_text(ctx.at))


@dataclass(frozen=True)
class BoardGuidance:
    """What one batch on the board waits for, and its first open deviation (to link to)."""

    steps: list[NextStep]
    first_open_deviation: int | None


def board_guidance(
    uow: UnitOfWork, ctx: Context, batch_ids: Iterable[str]
) -> dict[str, BoardGuidance]:
    """For the board: what each batch in progress or on hold waits for (the core's words).

    Each batch is replayed from its ledger, as its own page does; closed batches wait for
    nothing here and are not loaded.
    """
    authorise(uow, ctx, Permission.READ_BATCHES)
    guidance = {}
    for batch_id in batch_ids:
        batch = _load(uow, batch_id, lock=False).batch
        if batch.state.status.value not in ACTIVE:
            continue
        open_numbers = [
            d.number for d in batch.state.deviations.values() if d.status is DeviationStatus.OPEN
        ]
        guidance[batch_id] = BoardGuidance(
            next_steps(batch, ctx.at), min(open_numbers) if open_numbers else None
        )
    return guidance


def ledger_entries(uow: UnitOfWork, ctx: Context, batch_id: str) -> list[Any]:
    """Every entry of a batch's ledger, oldest first (for the record page and exports)."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    return store.ledger(uow.session, batch_id)
