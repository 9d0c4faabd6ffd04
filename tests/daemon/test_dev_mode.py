"""The README's first command: ``roomd run --dev`` starts its own LiveKit dev server and
serves the installed agents; ``roomd console`` in another terminal finds that server by
itself and talks to an agent."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.livekit_server

DEV_PORT_URL = "ws://127.0.0.1:7880"
ECHO_GREETING = "Hello! I'm the roomd echo agent."


def roomd(*args: str) -> list[str]:
    return [sys.executable, "-m", "roomd.daemon.cli", *args]


@pytest.fixture(params=["7880 free", "7880 taken"])
def usual_port(request: pytest.FixtureRequest) -> Iterator[None]:
    """Either leave LiveKit's usual port alone, or hold it as another program would."""
    if request.param == "7880 free":
        yield
        return
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", 7880))
        except OSError:
            pass  # already taken by someone else: the case under test all the same
        else:
            holder.listen()
        yield


async def test_roomd_run_dev_serves_and_roomd_console_finds_it(livekit_server, usual_port) -> None:
    # livekit_server: the binary is built (or CI fails loudly); the daemon starts its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    env["ROOMD_PLUGINS_ENABLED"] = "echo"  # the lightest example agent
    daemon = await asyncio.create_subprocess_exec(
        *roomd("run", "--dev", "--http-port", "0", "--log-format", "json"), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    console = None
    try:
        assert daemon.stdout is not None
        url = None
        async with asyncio.timeout(60):
            while True:
                line = await daemon.stdout.readline()
                assert line, "roomd run --dev exited before it was ready"
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "started local livekit-server --dev":
                    url = event["url"]
                if event.get("event") == "supervisor state" and event.get("new") == "ready":
                    break
        assert url is not None and url.startswith("ws://127.0.0.1:")
        # On LiveKit's usual port the console needs no address; elsewhere (7880 was taken) it
        # is told the URL the daemon logged, and takes the dev server's well-known keys.
        where = [] if url == DEV_PORT_URL else ["--url", url]
        console = await asyncio.create_subprocess_exec(
            *roomd("console", "--agent-name", "echo", "--timeout", "30", *where), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        assert console.stdout is not None and console.stdin is not None
        seen: list[str] = []
        async with asyncio.timeout(30):
            while ECHO_GREETING not in "".join(seen):
                line = await console.stdout.readline()
                assert line, "console ended before the greeting:\n" + "".join(seen)
                seen.append(line.decode(errors="replace"))
        if not where:
            assert f"using the dev server at {DEV_PORT_URL}" in "".join(seen)
        console.stdin.close()  # end of input: the console leaves
        assert await asyncio.wait_for(console.wait(), 15) == 0
        # The echo call lasts until its room closes; a second signal stops without waiting.
        daemon.terminate()
        async with asyncio.timeout(30):
            while b'"new": "draining"' not in (line := await daemon.stdout.readline()):
                assert line, "roomd run --dev exited before draining"
        daemon.terminate()
        assert await asyncio.wait_for(daemon.wait(), 30) == 0
    finally:
        if console is not None and console.returncode is None:
            console.kill()
            await console.wait()
        if daemon.returncode is None:
            daemon.terminate()
            try:
                assert await asyncio.wait_for(daemon.wait(), 30) == 0
            finally:
                if daemon.returncode is None:
                    daemon.kill()
                    await daemon.wait()
