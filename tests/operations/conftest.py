from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from livekit import api

sys.path.insert(0, str(Path(__file__).parent))

from daemon_process import DaemonProcess  # noqa: E402

from roomd.daemon.devserver import DevServerAddress  # noqa: E402


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[list[DaemonProcess]]:
    """Daemons a test starts; any still running at the end is stopped (and must exit 0)."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        await daemon.stop()
