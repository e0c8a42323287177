"""What the hub's QA pages show, worked out from the review services: plain dicts for templates.

Nothing here decides a rule. The exceptions, what blocks release and where a batch stands for QA
are the core's (:mod:`mes.core.review`); the words of values and signatures are the record's
(:mod:`mes.core.record`). Times are shown in the zone of the site that made the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mes.core.after_release import AWAITING_WORDS, RESULT_AFTER_RELEASE
from mes.core.batch import (
    BATCH_STATUS_TITLES,
    DEVIATION_CATEGORY_TITLES,
    Batch,
    BatchStatus,
    EntryKind,
)
from mes.core.clock import local_text, parse_utc_text
from mes.core.identity import identity_text
from mes.core.ledger import SealedEntry
from mes.core.limits import has_limits, limits_text
from mes.core.record import SignatureLine, entries_in_words
from mes.core.review import (
    ASSESSMENT_FIELDS,
    ASSESSMENT_TITLES,
    CATEGORY_TITLES,
    QA_STATE_TITLES,
    Classification,
    Finding,
    QaState,
)
from mes.services.read_models import other_settings_words
from mes.services.review import Queue, QueueRow, ReviewView
from mes.web.rendering import after_release_items

# The pill of each QA state: what needs QA's attention stands out.
STATE_CLASSES = {
    QaState.AT_SPOKE: "muted",
    QaState.AWAITING_REVIEW: "warn",
    QaState.UNDER_REVIEW: "ready",
    QaState.RELEASED: "ok",
    QaState.REJECTED: "bad",
}
# The filter chips at the top of the queue, in the order QA works through them.
CHIPS = (
    QaState.AWAITING_REVIEW,
    QaState.UNDER_REVIEW,
    QaState.AT_SPOKE,
    QaState.RELEASED,
    QaState.REJECTED,
)
CLASSIFICATION_CHOICES = [("", "— not classified —")] + [
    (c.value, c.value.capitalize()) for c in Classification
]


def _local(at: str | None, time_zone: str) -> str:
    return local_text(parse_utc_text(at), time_zone) if at else ""


def _days(days: int) -> str:
    return "today" if days == 0 else f"{days} day{'s' if days != 1 else ''}"


# --- the queue ----------------------------------------------------------------------------------


def queue_row(row: QueueRow, time_zone: str) -> dict[str, Any]:
    """One batch of the queue, in words."""
    return {
        "id": row.id,
        "number": row.number,
        "site": row.site,
        "product": row.product,
        "recipe": row.recipe,
        "status": BATCH_STATUS_TITLES[row.status].lower(),
        "qa_state": row.qa_state.value,
        "qa_state_title": QA_STATE_TITLES[row.qa_state],
        "css": STATE_CLASSES[row.qa_state],
        "age": _days(row.age_days),
        "since": "completed" if row.completed_at else "started",
        "since_at": _local(row.completed_at or row.created_at, time_zone),
        "open_deviations": row.open_deviations,
        "unreviewed": row.unreviewed,
        "blocked": row.blocked,
        "decision_by": row.decision_by,
        "after_release": row.after_release,
        "after_release_words": AWAITING_WORDS.get(row.after_release or ""),
    }


def queue_page(queue: Queue, time_zone: str, chosen: Mapping[str, Any]) -> dict[str, Any]:
    """The QA queue: the chips with their counts, the filters and the rows."""
    chips = [
        {
            "state": state.value,
            "title": QA_STATE_TITLES[state],
            "count": queue.counts.get(state.value, 0),
            "css": STATE_CLASSES[state],
            "chosen": chosen.get("state") == state.value,
        }
        for state in CHIPS
    ]
    return {
        "chips": chips,
        "needs_attention": queue.counts.get("needs_attention", 0),
        "rows": [queue_row(r, time_zone) for r in queue.rows],
        "matching": queue.matching,
        "other_settings": other_settings_words(queue.other_settings)
        if queue.other_settings
        else None,
        "sites": queue.sites,
        "products": queue.products,
        "states": [(s.value, QA_STATE_TITLES[s]) for s in QaState],
        "chosen": chosen,
        "filtered": any(v not in (None, "") for v in chosen.values()),
    }


# --- one batch ----------------------------------------------------------------------------------


def review_header(view: ReviewView) -> dict[str, Any]:
    """The batch at the top of its QA pages: number, site, product, recipe, identity, state."""
    batch: Batch = view.batch
    state = batch.state
    return {
        "id": state.id,
        "number": state.number,
        "site": state.site,
        "product": batch.procedure.compiled["product"]["name"],
        "recipe": f"{batch.procedure.recipe_code} v{batch.procedure.version}",
        "status": state.status.value,
        "status_title": BATCH_STATUS_TITLES[state.status],
        "status_reason": state.status_reason,
        "qa_state": view.qa_state.value,
        "qa_state_title": QA_STATE_TITLES[view.qa_state],
        "css": STATE_CLASSES[view.qa_state],
        "identity": [
            {"label": spec["label"], "value": identity_text(state.chain_of_identity[spec["id"]])}
            for spec in batch.procedure.chain_of_identity
            if spec["id"] in state.chain_of_identity
        ],
        "time_zone": view.time_zone,
    }


def signature(manifestation: Mapping[str, Any] | None, time_zone: str) -> SignatureLine | None:
    """A stored manifestation (11.50) in words, or None."""
    return SignatureLine.of(manifestation, time_zone) if manifestation else None


def finding_anchor(key: str) -> str:
    """The HTML id of an exception's card (a fragment a redirect scrolls back to)."""
    return "finding-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in key)


def category_anchor(category: str) -> str:
    """The HTML id of a category's group of exceptions."""
    return f"category-{category}"


def after_review(view: ReviewView, keys: Iterable[str]) -> str:
    """Where the page returns after exceptions were reviewed: the next one still to review.

    The first exception after the last one just signed that still waits for a signature (or
    the first one before it); when none is left, the category's group; the list as a last resort.
    """
    order = [f.key for f in view.findings]
    done = [order.index(k) for k in keys if k in order]
    waiting = {f.key for f in view.unreviewed}
    if done:
        last = max(done)
        for key in order[last + 1 :] + order[:last]:
            if key in waiting:
                return finding_anchor(key)
        return category_anchor(view.findings[last].category.value)
    return "findings"


_VALUE_KINDS = frozenset(
    {EntryKind.VALUE_RECORDED, EntryKind.CALCULATED, EntryKind.VALUE_CORRECTED}
)


def evidence(
    view: ReviewView, finding: Finding, by_seq: Mapping[int, SealedEntry]
) -> list[dict[str, Any]]:
    """The entries an exception is judged by, in words: what, value and limits, who, when, where.

    ``by_seq``: the record's entries by seq.
    """
    entries = [by_seq[seq] for seq in finding.evidence if seq in by_seq]
    lines = entries_in_words(view.batch, entries, view.time_zone)
    for entry, line in zip(entries, lines, strict=True):
        p = entry.body["payload"]
        line["limits"] = ""
        if entry.body["kind"] in _VALUE_KINDS:
            plan = view.batch.procedure.phases.get(p.get("phase"))
            spec = (plan.value_spec(p["value"]) if plan else None) or {}
            line["limits"] = limits_text(spec) if has_limits(spec) else "no limits"
    return lines


def _finding(
    view: ReviewView, finding: Finding, by_seq: Mapping[int, SealedEntry]
) -> dict[str, Any]:
    plan = view.batch.procedure.phases.get(finding.phase) if finding.phase else None
    done = view.state.reviewed.get(finding.key)
    deviation = finding.deviation
    return {
        "anchor": finding_anchor(finding.key),
        "digest": finding.digest,
        "evidence": evidence(view, finding, by_seq),
        "together": done.together if done else 0,
        "key": finding.key,
        "title": finding.title,
        "detail": finding.detail,
        "phase": plan.name if plan else None,
        "seq": finding.seq,
        "blocking": finding.blocking,
        "by_closure": finding.by_closure,
        "deviation": deviation,
        "deviation_closed": deviation is not None and view.state.deviation(deviation).closed,
        "reviewed": signature(done.signature, view.time_zone) if done else None,
        "note": done.note if done else None,
    }


def finding_groups(view: ReviewView) -> list[dict[str, Any]]:
    """The exceptions grouped by category, in the core's order (most serious first)."""
    groups: list[dict[str, Any]] = []
    by_seq = {e.seq: e for e in view.record}
    for finding in view.findings:
        if not groups or groups[-1]["category"] != finding.category.value:
            groups.append(
                {
                    "category": finding.category.value,
                    "title": CATEGORY_TITLES[finding.category],
                    "findings": [],
                }
            )
        groups[-1]["findings"].append(_finding(view, finding, by_seq))
    for group in groups:
        group["anchor"] = category_anchor(group["category"])
        group["open"] = [
            f
            for f in group["findings"]
            if not f["reviewed"] and not f["by_closure"] and not f["blocking"]
        ]
    return groups


def _changes(changes: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"field": ASSESSMENT_TITLES.get(name, name), "before": old or "—", "after": new or "—"}
        for name, (old, new) in changes.items()
    ]


def deviation_cards(view: ReviewView) -> list[dict[str, Any]]:
    """Each deviation: what the spoke recorded, and QA's investigation of it at the hub."""
    zone = view.time_zone
    cards = []
    for d in view.batch.state.deviations.values():
        plan = view.batch.procedure.phases.get(d.phase) if d.phase else None
        work = view.state.deviation(d.id)
        cards.append(
            {
                "id": d.id,
                "number": d.number,
                "category": DEVIATION_CATEGORY_TITLES.get(d.category, d.category),  # type: ignore[call-overload]
                # worked after release (mes.core.after_release): its forms stay open
                "after_release": d.category == RESULT_AFTER_RELEASE,
                "phase": plan.name if plan else None,
                "description": d.description,
                "raised": f"{d.raised_by.name} ({d.raised_by.username}), {_local(d.raised_at, zone)}",
                "seq": d.seq,
                "comment": d.comment,
                "commented": f"{d.commented_by.name} ({d.commented_by.username}), "
                f"{_local(d.commented_at, zone)}"
                if d.commented_by
                else "",
                "acknowledgement": signature(d.signature, zone),
                "spoke_status": d.status.value,
                "assessment": {name: getattr(work, name) or "" for name in ASSESSMENT_FIELDS},
                "assessed": f"{work.assessed_by.name} ({work.assessed_by.username}), "
                f"{_local(work.assessed_at, zone)}"
                if work.assessed_by
                else "",
                "history": [
                    {
                        "at": _local(item["at"], zone),
                        "by": f"{item['by'].name} ({item['by'].username})",
                        "changes": _changes(item.get("changes", {})),
                    }
                    for item in work.history
                ],
                "closed": work.closed,
                "closure": signature(work.signature, zone),
            }
        )
    return cards


def decision(view: ReviewView) -> dict[str, Any] | None:
    """QA's release or rejection, with its manifestation, once signed."""
    state = view.state
    if state.decision is None:
        return None
    return {
        "decision": state.decision.value,
        "title": state.decision.value.capitalize(),
        "reason": state.reason,
        "signature": signature(state.decision_signature, view.time_zone),
    }


def review_page(view: ReviewView) -> dict[str, Any]:
    """Everything the review page shows: the verdict first, then what needs judgement."""
    groups = finding_groups(view)
    return {
        "header": review_header(view),
        "blockers": view.blockers,
        "decision": decision(view),
        "groups": groups,
        "finding_count": len(view.findings),
        "unreviewed": len(view.unreviewed),
        "open_deviations": view.open_deviations,
        "deviations": deviation_cards(view),
        "seen_review_seq": f"{view.state.last_seq}.{view.batch.state.last_seq}",
        "aborted": view.batch.state.status is BatchStatus.ABORTED,
        "chain_problem": view.chain_problem,
        "after_release": after_release_card(view),
    }


def after_release_card(view: ReviewView) -> dict[str, Any]:
    """Results after release: certification level, pending and entered results, open events."""
    return after_release_items(view.review.after_release(), view.time_zone)
