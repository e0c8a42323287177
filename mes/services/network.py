"""The hub's network overview: its spokes, the open deviations they raised, recent refusals.

The read model is in the store (:mod:`mes.store.network`); this service checks who may read it.
"""

from __future__ import annotations

from mes.core.access import Permission
from mes.services.context import Context, authorise
from mes.store.models import SyncEvent
from mes.store.network import DeviationAlert, NetworkView, SpokeSummary, network_overview
from mes.store.uow import UnitOfWork

__all__ = ["DeviationAlert", "NetworkView", "SpokeSummary", "SyncEvent", "network"]


def network(uow: UnitOfWork, ctx: Context, *, alerts_limit: int = 50) -> NetworkView:
    """Spokes with their batches and open deviations, the newest deviations, recent refusals.

    Only those who watch the network (Permission.WATCH_NETWORK) may read it.
    """
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    return network_overview(
        uow.session,
        clock_skew_seconds=uow.site.review.clock_skew_seconds,
        alerts_limit=alerts_limit,
    )
