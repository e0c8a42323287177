"""Custody transfers of a batch's material at a spoke: both sides sign, in one transaction.

The logged-in user signs their side (handed over or received); the other side is either a user
of the site, who signs in place at the same panel with both components of their own signature
(the witness mechanism: :func:`mes.services.esign.witness_context`), or a person who is not a
user (a courier, collection-centre staff), typed by name and organisation. The transfer and its
signatures are one ledger entry, appended only once every signature passed: a transfer never
stands half-signed (21 CFR 11.50, 11.70, 11.200(a)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mes.core.access import Permission
from mes.core.batch import Batch, BatchStatus
from mes.core.batch.actions import CUSTODY_ROLES
from mes.core.batch.state import Operator
from mes.core.custody import (
    RECORD_TYPE,
    SIDE_MEANINGS,
    Material,
    Party,
    Side,
    external_party,
    holder,
    logger_evidence,
    logger_file_evidence,
    lot_receipt_record,
    typed_transfer,
)
from mes.core.errors import InvalidInput
from mes.core.esign import Meaning
from mes.core.logger import Window
from mes.core.text import one_line
from mes.services.audit import record_entry
from mes.services.batches import _acting_on, _committed, _person, _require_spoke
from mes.services.context import Context, acting_user, authorise
from mes.services.esign import (
    Credentials,
    authenticate_signer,
    check_password_first,
    sign_record,
    witness_context,
)
from mes.services.labels import read_hub_review
from mes.services.materials import LOT_RECORD_TYPE, find_lot
from mes.store import audit as audit_store
from mes.store import logger_files
from mes.store.uow import UnitOfWork


def transfer_custody(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    *,
    side: str,
    material: str,
    place: str,
    container: str,
    own_organisation: str,
    other_organisation: str,
    other_name: str = "",
    other: Credentials | None = None,
    logger_sha256: str | None = None,
    logger_summary: str | None = None,
    logger_file: tuple[str, bytes] | None = None,
    credentials: Credentials,
    first_signing_in_session: bool,
) -> Batch:
    """Record one custody transfer of the batch's material, signed by each side that is a user.

    ``side``: the logged-in user's ("handed_over" or "received"). ``other``: the other side's
    own credentials (badge + PIN, or user ID + password), given in place; without them the
    other side is the external person ``other_name`` of ``other_organisation``. The logger
    file's SHA-256 and summary, when given, are bound into the signed record.

    ``logger_file``: the shipment's logger file as uploaded (name, bytes). It is read and
    checked against the window the recipe declares for shipments
    (:func:`mes.core.custody.logger_file_evidence`; a refusal names the line and writes
    nothing), kept as received under its SHA-256 (``logger_files``), and its SHA-256, summary,
    findings and compact curve are bound into the signed record; beyond the window's allowance
    a TEMPERATURE_EXCURSION deviation is raised — all in this one transaction.
    """
    _require_spoke(uow)
    try:
        mine = Side(side)
    except ValueError:
        raise InvalidInput(
            f"'{side}' is not a side of a transfer.",
            what_to_do="Choose whether you hand over or receive.",
        ) from None
    theirs = Side.RECEIVED if mine is Side.HANDED_OVER else Side.HANDED_OVER
    given = other is not None and bool(other.badge or other.username)
    checked = check_password_first(uow, ctx, credentials)  # argon2 before any lock
    other_ctx = None
    if given:
        assert other is not None
        other = replace(other, witness=True)
        other_ctx = witness_context(uow, ctx, other)  # before the first statement of uow
    loaded, who = _acting_on(uow, ctx, batch_id)
    batch = loaded.batch
    if logger_file is not None:
        file_name, content = logger_file
        evidence = logger_file_evidence(content, file_name, batch.procedure.compiled.get("custody"))
    else:
        evidence = logger_evidence(logger_sha256, logger_summary)
    own_org = one_line(own_organisation, "Your organisation", max_length=120) or uow.site.name
    other_org = one_line(other_organisation, "The other side's organisation", max_length=120)
    signers: dict[Side, Operator] = {mine: who}
    me = Party(who.actor.name, own_org, who.user_id, who.actor.username)
    if other_ctx is not None:
        counterpart = _person(uow, other_ctx, batch.procedure)
        signers[theirs] = counterpart
        them = Party(
            counterpart.actor.name,
            other_org or uow.site.name,
            counterpart.user_id,
            counterpart.actor.username,
        )
    else:
        them = external_party(other_name, other_org, theirs.words)
    giver, taker = (me, them) if mine is Side.HANDED_OVER else (them, me)
    transfer = typed_transfer(material, giver, taker, place, container, evidence)
    review = read_hub_review(uow, batch_id)
    record = batch.prepare_custody(
        transfer,
        signers,
        ctx.at,
        site_organisation=uow.site.name,
        decision=review.decision if review is not None and review.problem is None else None,
    )
    signed = {}
    for signer_side, signer in signers.items():
        signer_ctx = ctx if signer is who else other_ctx
        assert signer_ctx is not None
        _user, manifestation = authenticate_signer(
            uow,
            signer_ctx,
            record_type=RECORD_TYPE,
            record_id=batch.state.id,
            record=record,
            meaning=SIDE_MEANINGS[signer_side],
            credentials=credentials if signer is who else other,  # type: ignore[arg-type]
            first_signing_in_session=first_signing_in_session if signer is who else True,
            checked=checked if signer is who else None,
            witnessable=True,
        )
        signed[signer_side] = (manifestation, signer)
    batch.custody_signed(record, signed, who, ctx.at, ctx.terminal, transfer)
    if logger_file is not None:
        logger_files.keep_file(uow.session, transfer.logger.sha256, logger_file[1], ctx.at)  # type: ignore[union-attr]
    return _committed(uow, ctx, loaded)


@dataclass(frozen=True)
class CustodyView:
    """A batch's chain of custody for its page: the transfers and who holds each material now."""

    site_organisation: str
    transfers: list[dict[str, Any]]
    holders: dict[Material, str | None]  # None: not received yet, or (the product) not made yet
    window: str | None = None  # the shipments' temperature window the recipe declares, in words


def custody_of(uow: UnitOfWork, ctx: Context, batch: Batch) -> CustodyView:
    """The chain of custody of ``batch`` (loaded by :func:`mes.services.batches.get_batch`)."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    site = uow.site.name
    holders = {m: holder(batch.state.custody, m, site) for m in Material}
    if batch.state.status is not BatchStatus.COMPLETE:  # the product exists once it is complete
        holders[Material.FINAL_PRODUCT] = None
    declared = batch.procedure.compiled.get("custody")
    window = Window.from_recipe(declared["window"]).in_words() if declared else None
    return CustodyView(site, list(batch.state.custody), holders, window)


def receive_lot(
    uow: UnitOfWork,
    ctx: Context,
    lot_number: str,
    *,
    from_name: str,
    from_organisation: str,
    place: str,
    container: str,
    credentials: Credentials,
    first_signing_in_session: bool,
) -> dict[str, Any]:
    """A lot (a vector lot the hub sent) enters custody here: received, signed, audited.

    The person who handed it over (a courier, hub staff: not users here) is typed; the
    receiving supervisor or QA signs "received" (11.50, 11.70). The signature and the change
    are entries of the site's audit trail on the lot's record, in one transaction. A lot is
    received once.
    """
    actor = authorise(uow, ctx, Permission.MANAGE_MATERIALS)
    lot = find_lot(uow, one_line(lot_number, "The lot number", max_length=64), lock=True)
    user = acting_user(uow, ctx)
    previous = [
        s
        for s in audit_store.signature_bodies(uow.session, LOT_RECORD_TYPE, lot.id)
        if s.get("meaning") == Meaning.RECEIVED.value
    ]
    record = lot_receipt_record(
        lot.lot_number,
        lot.material_code,
        external_party(from_name, from_organisation, "handed over"),
        Party(user.full_name, uow.site.name, user.id, user.username),
        place,
        container,
        previous=previous,
    )
    signature = sign_record(
        uow,
        ctx,
        record_type=LOT_RECORD_TYPE,
        record_id=lot.id,
        record=record,
        meaning=Meaning.RECEIVED,
        credentials=credentials,
        first_signing_in_session=first_signing_in_session,
        signer_roles=[role.value for role in CUSTODY_ROLES],
    )
    changed = {k: v for k, v in record.items() if k != "type"}
    record_entry(
        uow,
        ctx,
        actor,
        "material lot custody received",
        LOT_RECORD_TYPE,
        lot.id,
        new={**changed, "signature_entry": signature.entry_seq},
    )
    uow.commit()
    return record
