"""Fixtures shared by every test area."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from livekit import api

from roomd.daemon.devserver import DevServer, DevServerAddress, DevServerError, ensure_binary


@pytest.fixture(scope="session")
def livekit_server(livekit_dev_server: DevServer) -> DevServerAddress:
    """The shared server's address (see ``livekit_dev_server``)."""
    assert livekit_dev_server.address is not None
    return livekit_dev_server.address


@pytest.fixture(scope="session")
def livekit_dev_server() -> Iterator[DevServer]:
    """A real ``livekit-server --dev`` on 127.0.0.1, shared by the whole test session; its
    ``log_path`` holds what the server itself records (tests/faults/server_record.py).

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
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def lkapi(livekit_server: DevServerAddress) -> AsyncIterator[api.LiveKitAPI]:
    """A server API client for the shared test server, closed after the test."""
    client = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                            livekit_server.api_secret)
    yield client
    await client.aclose()
