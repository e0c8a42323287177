"""The sync network of this folder's tests: built once per test process (xdist worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sync_network import Network, build_network, teardown


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """A hub (PostgreSQL, gunicorn with 2 workers) and spokes SPK1, SPK2 (served) and SPK3."""
    built = build_network(tmp_path_factory.mktemp("sync-network"))
    try:
        yield built
    finally:
        teardown(built)
