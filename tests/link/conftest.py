"""Fixtures of the server-link tests: a fake agent server and a link runner."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_server import FakeAgentServer  # noqa: E402
from launchers import SteeredLauncher  # noqa: E402
from link_runner import LinkRunner  # noqa: E402


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeAgentServer]:
    server = FakeAgentServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def links() -> AsyncIterator[LinkRunner]:
    runner = LinkRunner()
    yield runner
    await runner.close()


@pytest.fixture
def steered() -> Callable[..., SteeredLauncher]:
    return SteeredLauncher
