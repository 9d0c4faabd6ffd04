"""Fixtures for the cluster tests: Redis and two livekit-server nodes, roomd daemons on them.

The cluster is started once for the module's tests (a node takes seconds to start);
daemons are started per test, because the tests stop them. Everything is stopped by PID
afterwards, the daemons first.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cluster_rooms import Daemons
from livekit_cluster import ClusterError, LiveKitCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitCluster]:
    try:
        started = LiveKitCluster(tmp_path_factory.mktemp("cluster")).start()
    except ClusterError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the LiveKit cluster is required but could not start: {exc}")
        pytest.skip(f"LiveKit cluster unavailable: {exc}")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[Daemons]:
    started = Daemons(tmp_path)
    try:
        yield started
    finally:
        await started.stop_all()
