"""What the operator's pages show, worked out from a batch: plain dicts for the templates.

Nothing here decides a rule: what may be done is asked of the core (``Batch.refusal``), and
what is shown is the batch's state as its ledger says it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mes.core import phases
from mes.core.access import Permission, allowed
from mes.core.batch import (
    BATCH_STATUS_TITLES,
    DEVIATION_CATEGORY_TITLES,
    PHASE_STATUS_TITLES,
    Action,
    Batch,
    DeviationStatus,
    NextStep,
    Operator,
    PhaseStatus,
    format_duration,
)
from mes.core.clock import as_utc, local_text, parse_utc_text, utc_text
from mes.core.custody import MATERIAL_TITLES, SIDE_MEANINGS, Material, Party
from mes.core.identity import identity_text
from mes.core.ordering import ORDERING_WORDS
from mes.core.phases import PageForm
from mes.core.phases.temperature_log import excursion_import
from mes.core.record import manifestation_text, witness_words

STATUS_CLASSES = {
    PhaseStatus.LOCKED: "muted",
    PhaseStatus.READY: "ready",
    PhaseStatus.IN_PROGRESS: "warn",
    PhaseStatus.PERFORMED: "ok",
    PhaseStatus.VERIFIED: "ok",
    PhaseStatus.SKIPPED: "muted",
}


def batch_header(batch: Batch, time_zone: str) -> dict[str, Any]:
    """Number, recipe, status and the chain of identity, for the top of every batch page."""
    state = batch.state
    coi = [
        {"label": spec["label"], "value": identity_text(state.chain_of_identity[spec["id"]])}
        for spec in batch.procedure.chain_of_identity
        if spec["id"] in state.chain_of_identity
    ]
    return {
        "id": state.id,
        "number": state.number,
        "recipe": f"{batch.procedure.recipe_code} v{batch.procedure.version}",
        "product": batch.procedure.compiled["product"]["name"],
        "status": state.status.value,
        "status_title": BATCH_STATUS_TITLES[state.status],
        "status_reason": state.status_reason,
        "identity": coi,
        "open_deviations": sum(
            1 for d in state.deviations.values() if d.status is DeviationStatus.OPEN
        ),
        "signatures": [manifestation_text(s, time_zone) for s in state.signatures],
    }


def procedure_progress(batch: Batch, time_zone: str) -> list[dict[str, Any]]:
    """Unit procedures → operations → phases with their status, for the batch page."""
    units: list[dict[str, Any]] = []
    for plan in batch.procedure.phases.values():
        if not units or units[-1]["id"] != plan.unit_procedure["id"]:
            units.append(
                {"id": plan.unit_procedure["id"], "name": plan.unit_procedure["name"], "ops": []}
            )
        ops = units[-1]["ops"]
        if not ops or ops[-1]["id"] != plan.operation["id"]:
            ops.append(
                {
                    "id": plan.operation["id"],
                    "name": plan.operation["name"],
                    "ordering": ORDERING_WORDS[plan.ordering].running,
                    "phases": [],
                }
            )
        phase = batch.state.phases[plan.id]
        ops[-1]["phases"].append(
            {
                "id": plan.id,
                "number": plan.position + 1,
                "name": plan.name,
                "status": phase.status.value,
                "status_title": _phase_status_title(batch, plan.id),
                "css": STATUS_CLASSES[phase.status],
                "who": _who(phase),
            }
        )
    for unit in units:
        phases = [p for op in unit["ops"] for p in op["phases"]]
        unit["done"] = sum(1 for p in phases if batch.is_done(p["id"]))
        unit["total"] = len(phases)
    return units


def _phase_status_title(batch: Batch, phase_id: str) -> str:
    phase = batch.state.phases[phase_id]
    if (
        phase.status is PhaseStatus.PERFORMED
        and batch.procedure.phases[phase_id].needs_verification
    ):
        return "Performed — awaiting verification"
    return PHASE_STATUS_TITLES[phase.status]


def _who(phase: Any) -> str:
    parts = []
    if phase.performed_by:
        parts.append(f"performed by {phase.performed_by.name}")
    if phase.verified_by:
        parts.append(f"verified by {phase.verified_by.name}")
    return ", ".join(parts)


def timers(batch: Batch, phase_id: str, at: datetime, time_zone: str) -> list[dict[str, Any]]:
    """The phase's time windows: when it may start and until when, counting from ``at``."""
    result = []
    now = as_utc(at)
    for window in batch.timer_windows(phase_id):
        item: dict[str, Any] = {"after": window["after_name"]}
        for edge in ("earliest", "latest"):
            moment = window[edge]
            if moment is None:
                item[edge] = None
                continue
            item[edge] = {
                "iso": utc_text(moment),
                "local": local_text(moment, time_zone),
                "in": format_duration((moment - now).total_seconds()),
                "passed": moment <= now,
            }
        result.append(item)
    return result


def phase_page(
    batch: Batch,
    phase_id: str,
    viewer: Operator | None,
    at: datetime,
    time_zone: str,
    *,
    entered: Mapping[str, str] | None = None,
    field_errors: Mapping[str, str] | None = None,
    refusal: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the phase page shows, with what the viewer may do now and why not.

    ``refusal``: where a refused signature is shown (``perform``, ``verify``, or ``comments``:
    at the comment box under each value whose deviation still has no comment) and its words.
    """
    plan = batch.procedure.phase(phase_id)
    phase = batch.state.phases[phase_id]
    spec = plan.spec

    def refusal_of(action: Action, **kw: Any) -> str | None:
        if viewer is None:
            return "Log in to act."
        problem = batch.refusal(action, viewer, at, phase_id=phase_id, **kw)
        return None if problem is None else str(problem)

    # The entry form is shown on a phase in progress, and on a ready phase the viewer may
    # start now: its first entry starts it (the core's start_with_entry).
    entry = (
        refusal_of(Action.RECORD) is None
        if phase.status is PhaseStatus.IN_PROGRESS
        else phase.status is PhaseStatus.READY and refusal_of(Action.START_PHASE) is None
    )
    form = PageForm(entered or {}, field_errors or {}, time_zone)
    shown = {kind.key: kind.page(batch, plan, phase, form) for kind in phases.on_screen()}
    kinds = [
        {"kind": key, "title": phases.KINDS[key].title, "entries": entries}
        for key, entries in shown.items()
    ]
    deviations = [
        deviation_item(batch, d.id, viewer, at, time_zone)
        for d in batch.state.deviations.values()
        if d.phase == phase_id
    ]
    # One comment box per deviation: a value's deviation is commented in the box under the
    # value while the phase is in progress, so its card links there instead of a second form.
    if entry:
        boxes = {
            i["deviation"]: f"comment-{i['id']}" for i in shown["inputs"] if i.get("deviation")
        }
        for item in deviations:
            item["comment_at"] = boxes.get(item["id"]) if item["may_comment"] else None
        where = refusal[0] if refusal else None
        if refusal and where == "comments":
            needing = [
                i
                for i in shown["inputs"]
                if i.get("deviation")
                and batch.state.deviations[i["deviation"]].comment is None
                and i["deviation"] in boxes
            ]
            for i in needing:
                i["comment_error"] = refusal[1]
            if not needing:
                refusal = ("perform", refusal[1])
    elif refusal and refusal[0] == "comments":
        refusal = ("perform", refusal[1])
    # A refusal is shown at its button only where the page shows that button (a stale form's
    # refusal, when the phase has moved on, is shown at the top).
    shown_buttons = {
        "perform": entry,
        "verify": phase.status is PhaseStatus.PERFORMED
        and bool(spec.get("verify"))
        and refusal_of(Action.VERIFY) is None,
        "comments": True,
    }
    if refusal and not shown_buttons.get(refusal[0], False):
        refusal = None
    others = [p for p in batch.current_phases() if p != phase_id]
    return {
        "id": phase_id,
        "number": plan.position + 1,
        "count": len(batch.procedure.phases),
        "name": plan.name,
        "unit_procedure": plan.unit_procedure["name"],
        "operation": plan.operation["name"],
        "ordering": ORDERING_WORDS[plan.ordering].running,
        "status": phase.status.value,
        "status_title": _phase_status_title(batch, phase_id),
        "css": STATUS_CLASSES[phase.status],
        "perform_role": spec["perform"],
        "verify_role": spec.get("verify"),
        "instructions": spec["instructions"],
        "blocked": batch.blocking_reason(phase_id),
        "timers": timers(batch, phase_id, at, time_zone),
        "kinds": [part for part in kinds if part["entries"]],  # each kind's partial shows them
        "inputs": shown["inputs"],  # the values a correction may change
        "deviations": deviations,
        "entry": entry,
        "missing": batch.missing_for_performance(phase_id) if entry else [],
        "signatures": [manifestation_text(s, time_zone) for s in phase.signatures],
        "seen_seq": phase.last_seq,
        "refusal": None if refusal is None else {"at": refusal[0], "message": refusal[1]},
        "may": {
            action.value: refusal_of(action) is None
            for action in (Action.START_PHASE, Action.RECORD, Action.VERIFY, Action.CORRECT)
        },
        "why_not": {
            action.value: refusal_of(action)
            for action in (Action.START_PHASE, Action.RECORD, Action.VERIFY)
        },
        "witness": {"verify": witness_mode(batch, Action.VERIFY, viewer, at, phase_id=phase_id)},
        "next": [
            {
                "id": p,
                "name": batch.procedure.phases[p].name,
                "status_title": _phase_status_title(batch, p),
            }
            for p in others[:4]
        ],
    }


def deviation_item(
    batch: Batch, deviation_id: str, viewer: Operator | None, at: datetime, time_zone: str
) -> dict[str, Any]:
    """One deviation with its workflow, and whether the viewer may comment or acknowledge."""
    d = batch.state.deviations[deviation_id]
    phase_name = batch.procedure.phases[d.phase].name if d.phase else None
    may_comment = (
        viewer is not None
        and batch.refusal(Action.COMMENT, viewer, at, deviation_id=deviation_id) is None
    )
    ack_refusal = (
        batch.refusal(Action.ACKNOWLEDGE, viewer, at, deviation_id=deviation_id)
        if viewer is not None
        else None
    )
    return {
        "id": d.id,
        "number": d.number,
        "phase": d.phase,
        "phase_name": phase_name,
        "category": DEVIATION_CATEGORY_TITLES.get(d.category, d.category),  # type: ignore[call-overload]
        "description": d.description,
        "comment": d.comment,
        "commented_by": d.commented_by.name if d.commented_by else None,
        "status": d.status.value,
        "raised": local_text(parse_utc_text(d.raised_at), time_zone),
        "raised_by": d.raised_by.name,
        "acknowledgement": manifestation_text(d.signature, time_zone) if d.signature else None,
        "may_comment": may_comment,
        "comment_at": None,  # the comment box under its value, on a phase page that has one
        "may_acknowledge": viewer is not None and ack_refusal is None,
        "witness_acknowledge": witness_mode(
            batch, Action.ACKNOWLEDGE, viewer, at, deviation_id=deviation_id
        ),
        "curve": excursion_curve(batch, deviation_id),
    }


def excursion_curve(batch: Batch, deviation_id: str) -> dict[str, str] | None:
    """The logger import a temperature excursion was raised for: its phase and logger ids."""
    done = excursion_import(batch, deviation_id)
    if done is None:
        return None
    if "phase" not in done:  # a custody transfer's file: drawn from the entry's compact curve
        return {"deviation": deviation_id}
    return {"phase": done["phase"], "log": done["log"]}


def next_step_items(
    batch: Batch, steps: list[NextStep], viewer: Operator | None, at: datetime
) -> list[dict[str, Any]]:
    """What the batch waits for (:func:`mes.core.batch.next_steps`), as the pages show it.

    Each step's words, who can do it, the time left on a wait, whether the viewer may do it
    now (the core's refusal, asked), and where it is done (a phase, a deviation, the batch).
    """
    items = []
    for step in steps:
        yours = (
            viewer is not None
            and step.action is not None
            and batch.refusal(
                step.action, viewer, at, phase_id=step.phase_id, deviation_id=step.deviation_id
            )
            is None
        )
        deviation = batch.state.deviations[step.deviation_id].number if step.deviation_id else None
        items.append(
            {
                "text": step.text,
                "lead": step.lead,
                "who": step.who,
                "action": step.action.value if step.action else None,
                "phase_id": step.phase_id,
                "deviation_number": deviation,
                "due": utc_text(step.due) if step.due else None,
                "due_in": format_duration((step.due - as_utc(at)).total_seconds())
                if step.due
                else None,
                "yours": yours,
            }
        )
    return items


def witness_mode(
    batch: Batch, action: Action, viewer: Operator | None, at: datetime, **subject: str
) -> str:
    """How the signature dialog of ``action`` offers a witness who signs in place.

    "offer": the viewer may sign, or another person ("Sign as another person"); "only": only
    another person can (the viewer lacks the role, or performed the phase); "": no witness
    (the action table does not allow one, the action cannot be taken now by anyone, or the
    viewer does not work on batches, so the panel is not theirs to lend).
    """
    if viewer is None or not allowed(viewer.roles, Permission.EXECUTE_BATCHES):
        return ""
    if not batch.witness_may_take(action, viewer, at, **subject):
        return ""
    return "offer" if batch.refusal(action, viewer, at, **subject) is None else "only"


# The meaning of the logged-in user's signature on each side of a custody transfer.
CUSTODY_MEANINGS = {side.value: meaning for side, meaning in SIDE_MEANINGS.items()}


def custody_items(chain: Any, time_zone: str) -> dict[str, Any]:
    """The batch's chain of custody for its page: who holds each material now, each transfer.

    ``chain``: :class:`mes.services.custody.CustodyView`.
    """
    transfers = []
    for t in chain.transfers:
        signatures = []
        for s in t["signatures"]:
            text = manifestation_text(s["manifestation"], time_zone)
            host = s.get("in_session_of")
            signatures.append(f"{text} {witness_words(host)}" if host else text)
        transfers.append(
            {
                "seq": t["seq"],
                "material": MATERIAL_TITLES[Material(t["material"])],
                "from": Party.from_dict(t["handed_over_by"]).words,
                "to": Party.from_dict(t["received_by"]).words,
                "place": t["place"],
                "container": t["container"],
                "at": local_text(parse_utc_text(t["at"]), time_zone),
                "logger": t.get("logger"),
                "signatures": signatures,
            }
        )
    return {
        "site": chain.site_organisation,
        "holders": [
            {"material": MATERIAL_TITLES[m], "holder": h, "key": m.value}
            for m, h in chain.holders.items()
        ],
        "transfers": transfers,
        "materials": [(m.value, m.words) for m in Material],
        "window": chain.window,
    }
