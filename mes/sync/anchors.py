"""The spoke's side of anchoring its audit head at the hub (21 CFR 11.10(e)).

Each sync round, the spoke's signed audit head goes to the hub, which countersigns it; the
countersignature and the hub's own signed audit head come back and are kept (see
:mod:`mes.services.anchors`).
"""

from __future__ import annotations

import json
from typing import Any

from mes.services import anchors, outbox
from mes.services.runtime import Runtime
from mes.sync.answers import QUEUED, NotTheHubsAnswer, verdict_of


def exchange_audit_heads(runtime: Runtime, client: Any) -> str | None:
    """Send this spoke's signed audit head; keep the hub's countersignature and head.

    Returns a problem in words, or None. A refusal by the hub (e.g. the spoke's audit chain went
    backwards) is logged by the hub; the spoke logs what it could not keep.
    """
    with runtime.uow(read_only=True) as uow:
        head = anchors.own_audit_head(uow)
        seen = anchors.last_hub_head(uow)
    if head is None:
        return None
    body = {"head": head.as_dict(), "hub_head_seen": seen.as_dict() if seen else None}
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    response = client.request("POST", "/sync/audit-head", data, "application/json")
    if response.status_code != 200:
        verdict = verdict_of(response)  # an outage (5xx, a proxy's page) raises: retried soon
        if verdict.status == 404:
            return None  # a hub of an earlier version: nothing to anchor with
        problem = f"The hub did not countersign this spoke's audit head: {verdict.message}"
        if client.anchor_problem != problem:  # logged once while it lasts
            with runtime.uow() as uow:
                outbox.note(
                    uow, client.clock(), "anchor", "refused", code=verdict.code, reason=problem
                )
            client.anchor_problem = problem
        return problem
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise NotTheHubsAnswer(
            "The hub's answer to the audit head is not its JSON.", what_to_do=QUEUED
        )
    client.anchor_problem = None
    with runtime.uow() as uow:
        return anchors.keep_countersigned(uow, client.clock(), head, answer)
