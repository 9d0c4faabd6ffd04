"""The supervisor's lifecycle as an operator sees it: ``roomd run`` on the real server.

SIGTERM drains (the running call ends on its own, then the daemon exits 0), a second
SIGTERM stops at once with the job reported FAILED (the server's own record is read), and
a server that cannot be reached ends the daemon with exit code 1 and a line naming the cause.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from livekit import rtc

from daemon_process import AGENT as PROBE
from daemon_process import DaemonProcess
from faults.server_record import ServerRecord
from room_client import dispatch, join, wait_for_agent, wait_for_attribute

pytestmark = pytest.mark.livekit_server


def job_ended(event: dict) -> bool:
    return event.get("event") == "job ended"


@contextlib.asynccontextmanager
async def a_held_call(server, prefix: str) -> AsyncIterator[tuple[rtc.Room, rtc.RemoteParticipant, str]]:
    """A caller in a new room with the probe dispatched to hold the call, once the agent is
    in the room (the caller, the agent as the caller sees it, the room's name)."""
    room_name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    caller = await join(server, room_name, "caller")
    try:
        await dispatch(server, PROBE, room_name, {"action": "hold"})
        agent = await wait_for_agent(caller)
        await wait_for_attribute(caller, agent, "job_pid")
        yield caller, agent, room_name
    finally:
        if caller.isconnected():
            await caller.disconnect()


def server_record(livekit_dev_server) -> ServerRecord:
    return ServerRecord(livekit_dev_server.log_path)


async def test_sigterm_drains_the_running_job_then_exits_0(livekit_server, livekit_dev_server,
                                                          tmp_path: Path) -> None:
    record = server_record(livekit_dev_server)
    daemon = DaemonProcess(livekit_server, tmp_path)
    try:
        await daemon.start()
        async with a_held_call(livekit_server, "drain") as (caller, agent, _room):
            daemon.signal(signal.SIGTERM)
            await daemon.wait_state("draining")
            # Draining waits for the call: the agent is still in the room, no job has ended.
            assert agent.identity in {p.identity for p in caller.remote_participants.values()}
            assert not any(job_ended(e) for e in daemon.events)
            assert daemon.returncode is None
            await caller.disconnect()  # the probe ends its job when everyone else has left
        ended = await daemon.wait_event(job_ended)
        assert ended["status"] == "SUCCESS", ended
        at_server = await record.wait_for_rooms([ended["room"]])
        assert at_server[ended["room"]].status == "JS_SUCCESS", at_server
        assert await daemon.wait() == 0
        await daemon.wait_state("stopped", timeout=1)
        assert daemon.errors() == [], daemon.errors()
    finally:
        await daemon.stop()


async def test_a_second_sigterm_stops_now_and_reports_the_job_failed(livekit_server, livekit_dev_server,
                                                                     tmp_path: Path) -> None:
    record = server_record(livekit_dev_server)
    daemon = DaemonProcess(livekit_server, tmp_path)
    try:
        await daemon.start()
        async with a_held_call(livekit_server, "stop-now") as (_caller, _agent, room_name):
            daemon.signal(signal.SIGTERM)
            await daemon.wait_state("draining")
            daemon.signal(signal.SIGTERM)
            await daemon.wait_event(lambda e: e.get("event") == "second stop signal: stopping now")
            ended = await daemon.wait_event(job_ended, timeout=30)
            assert ended["room"] == room_name
            # roomd cut the call short: the server must not record it as a success.
            at_server = (await record.wait_for_rooms([room_name]))[room_name]
            assert at_server.status == "JS_FAILED" and "second signal" in at_server.error, at_server
            assert await daemon.wait(timeout=30) == 0
    finally:
        await daemon.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_server_exits_1_naming_the_cause(livekit_server, tmp_path: Path) -> None:
    port = closed_port()
    daemon = DaemonProcess(livekit_server, tmp_path, env={"LIVEKIT_URL": f"ws://127.0.0.1:{port}"},
                           config={"link": {"max_retry": 2, "reconnect_backoff_max": 0.2}})
    try:
        await daemon.start(ready=False)
        assert await daemon.wait(timeout=60) == 1
        gave_up = [e for e in daemon.errors() if e.get("event") == "server link gave up; stopping"]
        assert gave_up, daemon.tail()
        assert str(port) in gave_up[0]["error"], gave_up[0]
    finally:
        await daemon.stop()
