"""Fixtures shared by every test area."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from livekit import api

from roomd.daemon.devserver import DevServer, DevServerAddress, DevServerError, ensure_binary


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[DevServerAddress]:
    """A real ``livekit-server --dev`` on 127.0.0.1, shared by the whole test session.

    Under CI (CI=true) a missing server fails loudly instead of silently skipping every
    test that matters.
    """
    try:
        binary = ensure_binary()
    except DevServerError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"livekit-server is required but unavailable: {exc}")
        pytest.skip(f"livekit-server unavailable: {exc}")
    server = DevServer(binary)
    address = server.start()
    try:
        yield address
    finally:
        server.stop()


@pytest.fixture
async def lkapi(livekit_server: DevServerAddress) -> AsyncIterator[api.LiveKitAPI]:
    """A server API client for the shared test server, closed after the test."""
    client = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                            livekit_server.api_secret)
    yield client
    await client.aclose()
