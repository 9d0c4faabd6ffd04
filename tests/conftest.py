"""Fixtures shared by every test area."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from livekit import api

from roomd.daemon.devserver import DevServer, DevServerAddress, DevServerError, ensure_binary
from roomd.ipc.exits import exit_now


_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Once pytest has reported and every fixture is torn down, leave without the
    interpreter's teardown when tests started the livekit rtc runtime: its native threads
    may call into Python while the interpreter finalizes and abort the process, turning a
    finished run into exit -6 (seen once from `roomd console`, which now exits the same way)."""
    ffi = sys.modules.get("livekit.rtc._ffi_client")
    if ffi is None or getattr(ffi.FfiClient, "_instance", None) is None or _EXIT_STATUS not in config.stash:
        return
    exit_now(config.stash[_EXIT_STATUS])


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
