"""After release, at the clinic: the bedside identity check and the infusion, at the spoke.

The clinic's tablet talks to the spoke that made the product, so the check works with the hub
(or the network beyond the hospital) down: every entry is appended to the batch's ledger here,
sealed by the spoke and synced to the hub like any other (a mismatch's deviation first, so the
hub's alerts show it within seconds). Each function is one use case: one authority check
(:attr:`Permission.CHECK_AT_BEDSIDE`), the batch row locked, the core's rules
(:mod:`mes.core.batch.bedside`), one transaction.

Whether QA released the batch is its certification, read by :mod:`mes.core.after_release`
from the hub's review chain as synced back here: a provisional or a final certification both
release it; not released or rejected, the product is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mes.core.access import Permission
from mes.core.after_release import CERTIFICATION_TITLES, INFUSIBLE, Certification
from mes.core.batch import ACTION_MEANINGS, Action, Batch, Operator
from mes.core.batch.bedside import (
    BEDSIDE_RECORD_TYPE,
    BedsideScan,
    bedside_scans,
    infusion_timer,
    read_din,
)
from mes.core.dates import DateNotUnderstood, parse_local_date_time
from mes.core.errors import BagFromAnotherSite, TerminalNotRegistered
from mes.core.identity import InvalidDin
from mes.core.limits import InvalidValue
from mes.services.batches import Loaded, _committed, _load, _person, _require_spoke
from mes.services.context import Context, authorise
from mes.services.esign import Credentials, authenticate_signer, check_password_first
from mes.services.terminals import active_terminal
from mes.store import batches as store
from mes.store.board import AfterReleaseAlert, after_release_alerts, board_rows
from mes.store.uow import UnitOfWork


@dataclass(frozen=True)
class BedsideView:
    """One product at the bedside: what to scan, the last check, the timer, the infusion."""

    batch: Batch
    scans: list[BedsideScan]
    certification: Certification  # provisional or final may be infused
    asks_thaw: bool
    refusals: dict[str, str | None]  # action → why not (None: allowed now)

    @property
    def may_be_infused(self) -> bool:
        """Released by QA, provisionally or finally."""
        return self.certification in INFUSIBLE

    @property
    def certification_text(self) -> str:
        """The certification in words: "Released by QA: Final", "Rejected", "Not released"."""
        words = CERTIFICATION_TITLES[self.certification]
        return f"Released by QA: {words}" if self.may_be_infused else words


def _clinician(uow: UnitOfWork, ctx: Context, loaded: Loaded) -> Operator:
    """Who acts at the bedside: authorised, at a registered terminal (11.10(h)).

    Whether QA released the batch is its certification, read from the review chain held
    here (:func:`mes.core.after_release.check_may_be_infused`, in the actions' guards).
    """
    authorise(uow, ctx, Permission.CHECK_AT_BEDSIDE)
    if active_terminal(uow, ctx.terminal_id) is None:
        raise TerminalNotRegistered(
            "This tablet is not a registered terminal of the site: the bedside check is "
            "recorded and signed only at one.",
            what_to_do="Use the ward's registered tablet, or ask an administrator to register "
            "this one.",
        )
    return _person(uow, ctx, loaded.batch.procedure)


def _labelled(uow: UnitOfWork, scans: Mapping[str, str]) -> str:
    """The batch of this site the bag's label names, or :class:`BagFromAnotherSite`."""
    din_text = (scans.get("bag_din") or "").strip()
    code_text = re.sub(r"\s+", "", scans.get("bag_coi") or "").upper()
    if not din_text and not code_text:
        raise InvalidValue(
            "Scan the bag's label first.", fields={"bag_din": "Scan the DIN on the bag label."}
        )
    din = None
    if din_text:
        try:
            din = read_din(din_text)
        except InvalidDin as err:
            raise InvalidValue(str(err), fields={"bag_din": str(err)}) from None
    # The DIN names the product; the code only when the DIN names none here. A bag whose DIN
    # and code name two products of the site is the product its DIN names, and the check's
    # comparison records the code that is not its own (the hard stop), not "another site".
    found = store.batches_labelled(uow.session, din, None) if din else []
    if not found and code_text:
        found = store.batches_labelled(uow.session, None, code_text[:100])
    if len(found) != 1:
        shown = din or code_text
        raise BagFromAnotherSite(
            f"This bag ({shown}) is not a product of {uow.site.code}: no batch made here "
            "carries its label.",
            what_to_do="Do not infuse it. Keep the bag sealed and call the site named on its "
            "label; this tablet checks only the products of this site.",
        )
    return found[0]


def bedside_view(uow: UnitOfWork, ctx: Context, batch_id: str) -> BedsideView:
    """For the page: the product, what to scan, and what the clinician may do now (and why not)."""
    _require_spoke(uow)
    loaded = _load(uow, batch_id, lock=False)
    who = _clinician(uow, ctx, loaded)
    batch = loaded.batch
    return BedsideView(
        batch=batch,
        scans=bedside_scans(batch.procedure),
        certification=batch.after_release().certification,
        asks_thaw=(infusion_timer(batch.procedure) or {}).get("starts_at") == "thaw",
        refusals={
            action.value: (
                None if (err := batch.refusal(action, who, ctx.at)) is None else str(err)
            )
            for action in (Action.CHECK_AT_BEDSIDE, Action.START_INFUSION, Action.END_INFUSION)
        },
    )


def find_labelled(uow: UnitOfWork, ctx: Context, scanned: str) -> tuple[str, dict[str, str]]:
    """The batch a bag's label names at this site, and the scan as the check's field.

    The first scan is the label's DIN (its bar code, or typed with its check character) or its
    chain-of-identity code: what reads as a DIN is a DIN, anything else a code. Refused,
    saying what to do, when no batch made here carries it.
    """
    _require_spoke(uow)
    authorise(uow, ctx, Permission.CHECK_AT_BEDSIDE)
    text = (scanned or "").strip()
    try:
        read_din(text)
        scans = {"bag_din": text}
    except InvalidDin as err:
        if text.startswith("="):  # a DIN bar code that does not read: refused as a DIN
            raise InvalidValue(str(err), fields={"bag": str(err)}) from None
        scans = {"bag_coi": text}
    return _labelled(uow, scans), scans


def check_at_bedside(
    uow: UnitOfWork,
    ctx: Context,
    scans: Mapping[str, str],
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
    thawed_at: str | None = None,
) -> Batch:
    """Compare the wristband and the bag's label with the chain of identity, and record it.

    A bag that names no batch of this site is refused (nothing written). A product not complete
    and released is refused. A mismatch is committed with its deviation (category identity)
    and then raised as :class:`BedsideMismatch` — the hard stop — without asking the signature.
    A match is signed (badge + PIN, or the session's secret) and starts the recipe's infusion
    timer (from the thaw entered here, the fill, or now).
    """
    _require_spoke(uow)
    checked = check_password_first(uow, ctx, credentials)  # argon2 before any lock
    batch_id = _labelled(uow, scans)
    loaded = _load(uow, batch_id)
    who = _clinician(uow, ctx, loaded)
    batch = loaded.batch
    compared = batch.compare_at_bedside(scans)
    if not all(c["matched"] for c in compared):
        refusal = batch.record_bedside_mismatch(compared, who, ctx.at, ctx.terminal)
        _committed(uow, ctx, loaded)  # the hard stop is recorded, then refused
        raise refusal
    thawed = None
    if thawed_at and (infusion_timer(batch.procedure) or {}).get("starts_at") == "thaw":
        try:
            thawed = parse_local_date_time(thawed_at, uow.site.time_zone, label="Thaw finished")
        except DateNotUnderstood as err:
            raise InvalidValue(str(err), fields={"thawed_at": str(err)}) from None
    record = batch.prepare_bedside(
        Action.CHECK_AT_BEDSIDE, who, ctx.at, compared=compared, thawed_at=thawed
    )
    _signed(uow, ctx, batch, who, Action.CHECK_AT_BEDSIDE, record, credentials,
            first_signing_in_session, checked)  # fmt: skip
    return _committed(uow, ctx, loaded)


def start_infusion(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
) -> Batch:
    """The infusion starts, signed, after a matching check (vein to vein ends here).

    Started after the timer's maximum, it is recorded and raises a timer deviation.
    """
    return _infusion(uow, ctx, batch_id, Action.START_INFUSION, credentials,
                     first_signing_in_session)  # fmt: skip


def end_infusion(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    credentials: Credentials,
    *,
    first_signing_in_session: bool,
) -> Batch:
    """The infusion ends, signed."""
    return _infusion(uow, ctx, batch_id, Action.END_INFUSION, credentials,
                     first_signing_in_session)  # fmt: skip


def _infusion(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    action: Action,
    credentials: Credentials,
    first_signing_in_session: bool,
) -> Batch:
    _require_spoke(uow)
    checked = check_password_first(uow, ctx, credentials)
    loaded = _load(uow, batch_id)
    who = _clinician(uow, ctx, loaded)
    record = loaded.batch.prepare_bedside(action, who, ctx.at)
    _signed(uow, ctx, loaded.batch, who, action, record, credentials,
            first_signing_in_session, checked)  # fmt: skip
    return _committed(uow, ctx, loaded)


def _signed(
    uow: UnitOfWork,
    ctx: Context,
    batch: Batch,
    who: Operator,
    action: Action,
    record: Mapping[str, Any],
    credentials: Credentials,
    first_signing_in_session: bool,
    checked: Any,
) -> None:
    """Re-authenticate the clinician (badge + PIN) and append the signed entry (11.50, 11.70)."""
    _user, manifestation = authenticate_signer(
        uow,
        ctx,
        record_type=BEDSIDE_RECORD_TYPE,
        record_id=batch.state.id,
        record=record,
        meaning=ACTION_MEANINGS[action],  # the action table's meaning
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
        checked=checked,
    )
    batch.bedside_signed(action, record, manifestation, who, ctx.at, ctx.terminal)


def board_alerts(uow: UnitOfWork, ctx: Context) -> list[AfterReleaseAlert]:
    """For the site's board: open deviations of complete batches, newest first.

    After release these are what the clinic recorded (a bedside mismatch): the board shows them
    at its top to everyone who reads it.
    """
    authorise(uow, ctx, Permission.READ_BATCHES)
    return after_release_alerts(uow.session)


def products_here(uow: UnitOfWork, ctx: Context) -> list[dict[str, Any]]:
    """The complete batches of this site, newest first, with QA's word at the hub.

    For the bedside page's list (a product is found by scanning its bag's label).
    """
    _require_spoke(uow)
    authorise(uow, ctx, Permission.CHECK_AT_BEDSIDE)
    return [
        {"id": row.id, "number": row.number, "recipe": row.recipe, "decision": row.decision}
        for row in board_rows(uow.session, ["complete"], [], "")
    ]
