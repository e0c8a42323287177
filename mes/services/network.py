"""The hub's network overview (spokes, open deviations, refusals) and its live board of batches.

The read model is in the store (:mod:`mes.store.network`); this service checks who may read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mes.core.access import Permission
from mes.core.errors import InvalidInput
from mes.core.network_board import as_typed
from mes.services.context import Context, authorise
from mes.store.models import BatchSummary, Spoke, SyncEvent
from mes.store.network import DeviationAlert, NetworkView, SpokeSummary, network_overview
from mes.store.network_board import (
    SpokeOnBoard,
    board_batches,
    board_spokes,
    recipe_codes,
    spoke_codes,
)
from mes.store.uow import UnitOfWork

__all__ = [
    "BatchSummary",
    "DeviationAlert",
    "NetworkBoard",
    "NetworkView",
    "Spoke",
    "SpokeOnBoard",
    "SpokeSummary",
    "SyncEvent",
    "board",
    "network",
]


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


# --- the live board of batches in progress ---------------------------------------------------


@dataclass(frozen=True)
class NetworkBoard:
    """Every batch in progress at the spokes (as filtered), the spokes, and the filter's choices."""

    batches: list[BatchSummary]
    spokes: list[SpokeOnBoard]
    site: str | None
    product: str | None
    sites: list[str]
    products: list[str]
    clock_skew_seconds: int


def _chosen(value: str | None, known: list[str], what: str, example: str) -> str | None:
    """A filter's value: None for all, else one of ``known`` (refused in words otherwise)."""
    if value is None or value == "":
        return None
    if value not in known:
        shown = as_typed(value)
        listed = ", ".join(known[:60]) + (" …" if len(known) > 60 else "")
        raise InvalidInput(
            f"There is no {what} '{shown}' at this hub.",
            what_to_do=f"Choose one of: {listed}." if known else f"No {what} yet ({example}).",
        )
    return value


def board(
    uow: UnitOfWork, ctx: Context, *, site: str | None = None, product: str | None = None
) -> NetworkBoard:
    """Every batch in progress at every spoke, or at one site, or of one product (recipe code).

    Read from the batch summaries the hub keeps as it receives records, never the ledgers. A
    site or product the hub does not know is refused (InvalidInput) before anything is read.
    Only those who watch the network (Permission.WATCH_NETWORK) may read it.
    """
    authorise(uow, ctx, Permission.WATCH_NETWORK)
    sites = spoke_codes(uow.session)
    products = recipe_codes(uow.session)
    site = _chosen(site, sites, "spoke", "an administrator adds them on the Network page")
    product = _chosen(product, products, "product", "authors import master recipes")
    return NetworkBoard(
        batches=board_batches(uow.session, site=site, recipe_code=product),
        spokes=board_spokes(
            uow.session, site=site, clock_skew_seconds=uow.site.review.clock_skew_seconds
        ),
        site=site,
        product=product,
        sites=sites,
        products=products,
        clock_skew_seconds=uow.site.review.clock_skew_seconds,
    )
