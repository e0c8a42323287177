"""The hub's decision at the spoke: what the batch page shows of QA's review, and the final label.

QA reviews a batch at the hub and records its work as the batch's review chain, each entry
sealed with the hub's key (:mod:`mes.core.review`); the chain travels back to the spoke
(:func:`mes.services.review.receive_review_entries`). Here the spoke reads it: the decision
(released or rejected, by whom, when, why) and the hub's closure of each deviation
(classification, root cause, who closed it). The chain is verified again with the hub's key
each time it is read, so nothing is shown as the hub's decision that the hub did not sign.

The **final label** is issued only for a batch the hub released: product, batch number, the chain
of identity (the DIN in its ISBT 128 eye-readable form), who released it and when, a Code 128
bar code of the DIN as ISBT 128 carries it (``=`` + the 13 characters + the 2 flags) and a QR
code of batch number, DIN and patient. Printing it is recorded in the site's audit trail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mes.core.access import Permission
from mes.core.after_release import Certification, follows_release
from mes.core.errors import ChainBroken, MesError
from mes.core.identity import Din, identity_text
from mes.core.ledger import verify_chain
from mes.core.review import Decision, replay_review
from mes.services.audit import record_entry
from mes.services.batches import get_batch, verify_ledger
from mes.services.context import Context, authorise
from mes.store import batches as batch_store
from mes.store.review import review_ledger
from mes.store.uow import UnitOfWork

LABEL_RECORD_TYPE = "batch"
LABEL_PRINTED = "final label printed"


class LabelRefused(MesError):
    """The final label is issued only for a batch the hub released."""

    http_status = 409


@dataclass(frozen=True)
class DeviationClosure:
    """The hub's workflow of one deviation, as its review chain says."""

    deviation: str
    classification: str | None
    description: str | None
    impact: str | None
    root_cause: str | None
    capa: str | None
    assessed_by: str | None
    closed: bool
    closed_by: str | None
    closed_at: str | None


@dataclass(frozen=True)
class HubReview:
    """What the hub's review chain of a batch says, for the spoke's batch page."""

    entries: int
    problem: str | None  # why the chain fails verification (then nothing of it is trusted)
    decision: str | None = None  # released / rejected
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    deviations: list[DeviationClosure] = field(default_factory=list)
    decided_head: tuple[int, str] | None = None  # the record (last seq, hash) QA decided on


def _who(actor: Any) -> str | None:
    return f"{actor.name} ({actor.username})" if actor is not None else None


def read_hub_review(uow: UnitOfWork, batch_id: str) -> HubReview | None:
    """The batch's review chain, verified with the hub's key and replayed (None if empty).

    At a spoke the key is the pinned hub key; at the hub, its own.
    """
    entries = review_ledger(uow.session, batch_id)
    if not entries:
        return None
    key = uow.site.hub_key if uow.site.role == "spoke" else uow.site.key.public
    if key is None:
        return HubReview(
            entries=len(entries),
            problem="The hub's review record cannot be verified: this spoke holds no hub key",
        )
    try:
        verify_chain(entries, key)
        state = replay_review(batch_id, entries)
    except (ChainBroken, KeyError, ValueError, TypeError) as err:
        return HubReview(entries=len(entries), problem=f"The hub's review record fails: {err}")
    return HubReview(
        entries=len(entries),
        problem=None,
        decision=state.decision.value if state.decision else None,
        decided_by=_who(state.decided_by),
        decided_at=state.decided_at,
        reason=state.reason,
        decided_head=state.decided_head,
        deviations=[
            DeviationClosure(
                deviation=d.deviation,
                classification=d.classification,
                description=d.description,
                impact=d.impact,
                root_cause=d.root_cause,
                capa=d.capa,
                assessed_by=_who(d.assessed_by),
                closed=d.closed,
                closed_by=_who(d.closed_by),
                closed_at=d.closed_at,
            )
            for d in state.deviations.values()
        ],
    )


def hub_review(uow: UnitOfWork, ctx: Context, batch_id: str) -> HubReview | None:
    """The hub's review of a batch as the batch page shows it (None if QA recorded nothing)."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    return read_hub_review(uow, batch_id)


# --- the final label ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FinalLabel:
    """Everything printed on the final label of a released batch."""

    batch_id: str
    number: str
    product: str
    recipe: str
    identity: list[tuple[str, str]]  # (label, value as people read it)
    patient_id: str | None
    din_text: str | None  # eye-readable, with the keyboard check character
    din_data: str | None  # the ISBT 128 bar-code data: = + 13 characters + 2 flags
    released_by: str
    released_at: str
    barcode_svg: str | None  # Code 128 of din_data, inline SVG
    matrix_data: str
    matrix_svg: str  # QR code of batch number, DIN and patient, inline SVG
    # "Provisional — results pending: …" while the release awaits results (after_release)
    provisional: str | None = None


_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
_STYLE_FILL = re.compile(r'style="fill:\s*([#a-zA-Z0-9]+);?"')


def code128_svg(data: str) -> str:
    """A Code 128 bar code of ``data`` as inline SVG (no XML prologue, no style attributes).

    The site's Content-Security-Policy refuses inline styles, so fills are SVG attributes.
    """
    import barcode
    from barcode.writer import SVGWriter

    rendered = barcode.Code128(data, writer=SVGWriter()).render(
        {
            "module_width": 0.3,
            "module_height": 11.0,
            "quiet_zone": 2.5,
            "write_text": False,
            "compress": False,
        }
    )
    svg = _XML_PROLOGUE.sub("", rendered.decode("utf-8"), count=1)
    svg = _STYLE_FILL.sub(r'fill="\1"', svg)
    return svg.replace("<svg ", '<svg class="code128" role="img" ', 1)


def matrix_svg(data: str) -> str:
    """A QR code of ``data`` as inline SVG."""
    import segno

    return segno.make(data, error="m", micro=False).svg_inline(
        scale=2, border=2, svgclass="matrix", lineclass=None, omitsize=True
    )


def final_label(uow: UnitOfWork, ctx: Context, batch_id: str) -> FinalLabel:
    """The final label of a batch the hub released; :class:`LabelRefused` for any other."""
    view = get_batch(uow, ctx, batch_id)  # authorises reading batch records
    batch = view.batch
    state = batch.state
    review = read_hub_review(uow, state.id)
    if review is None or review.decision is None:
        raise LabelRefused(
            f"Batch {state.number} has not been released by QA at the hub: no final label is "
            "issued for it.",
            what_to_do="Wait for the hub's release; it reaches this spoke with the next sync.",
        )
    if review.problem is not None:
        raise LabelRefused(
            f"Batch {state.number}: {review.problem}. No final label is issued.",
            what_to_do="Call QA: the hub's decision cannot be trusted as it is stored here.",
        )
    if review.decision != Decision.RELEASED:
        raise LabelRefused(
            f"Batch {state.number} was rejected by QA at the hub"
            + (f" ({review.reason})" if review.reason else "")
            + ": it must not be labelled for use.",
            what_to_do="Follow the procedure for rejected batches.",
        )
    # The label is printed from this site's record: it must verify, and be the very record QA
    # released (a copy restored from an old backup, or altered, is not what was released).
    try:
        verify_ledger(uow, state.id)
    except ChainBroken as broken:
        raise LabelRefused(
            f"Batch {state.number}'s record here fails verification: {broken.message} "
            "No final label is issued.",
            what_to_do="Call QA: the record must be investigated before anything is labelled.",
        ) from None
    if review.decided_head != (state.last_seq, state.last_hash) and not _continues(
        uow, state.id, review.decided_head
    ):
        raise LabelRefused(
            f"Batch {state.number}'s record here is not the record QA released (QA released "
            f"entries 1–{review.decided_head[0] if review.decided_head else '?'}; this site "
            f"holds 1–{state.last_seq}, ending differently). No final label is issued.",
            what_to_do="Call QA: the records of the spoke and the hub must be reconciled first.",
        )
    coi = state.chain_of_identity
    specs = [s for s in batch.procedure.chain_of_identity if s["id"] in coi]
    identity = [(s["label"], identity_text(coi[s["id"]])) for s in specs]
    din_spec = next((s for s in specs if s.get("kind") == "isbt128_din"), None)
    din_text = din_data = None
    if din_spec is not None:
        value = coi[din_spec["id"]]
        din_text = identity_text(value)
        din = Din(value["din"], value.get("flags"))
        din_data = f"={din.din}{din.flags or '00'}"
    patient_spec = next(
        (s for s in specs if "patient" in s["id"] and s.get("kind") == "identifier"), None
    )
    patient_id = str(coi[patient_spec["id"]]) if patient_spec is not None else None
    matrix_data = "\n".join(
        [f"BATCH:{state.number}"]
        + ([f"DIN:{din_data}"] if din_data else [])
        + ([f"PATIENT:{patient_id}"] if patient_id else [])
    )
    return FinalLabel(
        batch_id=state.id,
        number=state.number,
        product=batch.procedure.compiled["product"]["name"],
        recipe=f"{batch.procedure.recipe_code} v{batch.procedure.version}",
        identity=identity,
        patient_id=patient_id,
        din_text=din_text,
        din_data=din_data,
        released_by=review.decided_by or "",
        released_at=review.decided_at or "",
        barcode_svg=code128_svg(din_data) if din_data else None,
        matrix_data=matrix_data,
        matrix_svg=matrix_svg(matrix_data),
        provisional=_provisional(batch),
    )


def _continues(uow: UnitOfWork, batch_id: str, head: tuple[int, str] | None) -> bool:
    """The record as released, followed only by what continues it after release.

    Results, their deviation, the physician's notification (mes.core.after_release).
    """
    if head is None:
        return False
    entries = batch_store.ledger(uow.session, batch_id)
    seq, hash_ = head
    return (
        len(entries) > seq
        and entries[seq - 1].hash == hash_
        and all(follows_release(e.body) for e in entries[seq:])
    )


def _provisional(batch: Any) -> str | None:
    """The label's words while the certification is provisional (mes.core.after_release)."""
    state = batch.after_release()
    if state.certification is not Certification.PROVISIONAL:
        return None
    pending = ", ".join(p.label for p in state.pending)
    return "PROVISIONAL" + (f" — results pending: {pending}" if pending else "")


def record_label_printed(uow: UnitOfWork, ctx: Context, batch_id: str) -> FinalLabel:
    """Issue the final label for printing and record that in the site's audit trail."""
    actor = authorise(uow, ctx, Permission.EXECUTE_BATCHES)
    label = final_label(uow, ctx, batch_id)
    record_entry(
        uow, ctx, actor, LABEL_PRINTED, LABEL_RECORD_TYPE, label.batch_id,
        new={
            "batch": label.number,
            "din": label.din_text,
            "patient": label.patient_id,
            "released_by": label.released_by,
            "released_at": label.released_at,
        },
    )  # fmt: skip
    uow.commit()
    return label


__all__ = [
    "DeviationClosure",
    "FinalLabel",
    "HubReview",
    "LabelRefused",
    "final_label",
    "hub_review",
    "read_hub_review",
    "record_label_printed",
]
