"""The status livekit-server records for each job is how the job really ended.

Every test reads the server's own record (its "job ended" lines), not only roomd's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator

import pytest
from daemon_process import DaemonProcess
from fault_plugin import AGENT
from livekit import api, rtc
from room_client import join, wait_for_agent, wait_for_attribute
from roomd.daemon.devserver import DevServer, free_tcp_port
from server_record import ServerRecord

pytestmark = pytest.mark.livekit_server

JOBS = 30  # the soak (benchmarks/soak.py) runs 1,000


def rooms(prefix: str, count: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}-{tag}-{i}" for i in range(count)]


async def dispatch(lkapi: api.LiveKitAPI, room: str, action: str) -> None:
    await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
        agent_name=AGENT, room=room, metadata=json.dumps({"action": action})))


@contextlib.asynccontextmanager
async def held_call(server, lkapi: api.LiveKitAPI, room: str, action: str = "hold"
                    ) -> AsyncIterator[tuple[rtc.Room, int]]:
    """A caller in ``room`` and the fault agent holding the call: (the caller, the job's pid)."""
    caller = await join(server, room, "caller")
    try:
        await dispatch(lkapi, room, action)
        agent = await wait_for_agent(caller)
        yield caller, int(await wait_for_attribute(caller, agent, "job_pid"))
    finally:
        if caller.isconnected():
            await caller.disconnect()


def roomd_ended(daemon: DaemonProcess) -> list[dict]:
    return [e for e in daemon.events if e.get("event") == "job ended"]


async def test_short_jobs_are_all_recorded_success_by_the_server(
        fault_daemon, server_record: ServerRecord, lkapi) -> None:
    daemon = await fault_daemon({"pool": {"num_idle_processes": 2, "max_jobs_per_process": 10}})
    names = rooms("short", JOBS)
    for room in names:
        await dispatch(lkapi, room, "leave")
    recorded = await server_record.wait_for_rooms(names, timeout=120)
    failed = [job for job in recorded.values() if job.status != "JS_SUCCESS"]
    assert failed == [], f"{len(failed)} of {JOBS} recorded otherwise by the server: {failed[:3]}"
    await daemon.until(lambda: _async(len(roomd_ended(daemon)) >= JOBS))
    assert {e["status"] for e in roomd_ended(daemon)} == {"SUCCESS"}


async def test_a_job_cut_off_by_drain_timeout_is_failed_at_the_server(
        fault_daemon, server_record: ServerRecord, livekit_server, lkapi) -> None:
    daemon = await fault_daemon({"daemon": {"drain_timeout": 1.0}})
    room = rooms("drain-timeout", 1)[0]
    async with held_call(livekit_server, lkapi, room):
        daemon.signal(signal.SIGTERM)
        job = (await server_record.wait_for_rooms([room]))[room]
        assert job.status == "JS_FAILED", job
        assert "drain timeout" in job.error, job
    assert await daemon.wait(timeout=30) == 0


async def test_a_killed_child_is_failed_at_the_server_and_replaced(
        fault_daemon, server_record: ServerRecord, livekit_server, lkapi) -> None:
    daemon = await fault_daemon()
    first, second = rooms("sigkill", 2)
    async with held_call(livekit_server, lkapi, first) as (_caller, pid):
        os.kill(pid, signal.SIGKILL)
        job = (await server_record.wait_for_rooms([first]))[first]
    assert job.status == "JS_FAILED", job
    await dispatch(lkapi, second, "leave")  # the pool replaced the child: nothing is lost
    assert (await server_record.wait_for_rooms([second]))[second].status == "JS_SUCCESS"
    assert daemon.returncode is None


async def test_a_stopped_child_is_killed_as_unresponsive_and_failed_at_the_server(
        fault_daemon, server_record: ServerRecord, livekit_server, lkapi) -> None:
    daemon = await fault_daemon({"pool": {"ping_interval": 0.5, "ping_timeout": 2.0}})
    room = rooms("sigstop", 1)[0]
    async with held_call(livekit_server, lkapi, room) as (_caller, pid):
        os.kill(pid, signal.SIGSTOP)
        job = (await server_record.wait_for_rooms([room]))[room]
    assert job.status == "JS_FAILED", job
    await daemon.wait_event(lambda e: e.get("event") == "child exited" and e.get("reason") == "unresponsive")


async def _async(value: object) -> object:
    await asyncio.sleep(0)
    return value


async def test_garbage_from_a_child_fails_only_its_job(
        fault_daemon, server_record: ServerRecord, livekit_server, lkapi) -> None:
    daemon = await fault_daemon()
    first, second = rooms("garbage", 2)
    async with held_call(livekit_server, lkapi, first, action="garbage"):
        job = (await server_record.wait_for_rooms([first]))[first]
    assert job.status == "JS_FAILED" and "protocol error" in job.error, job
    await dispatch(lkapi, second, "leave")
    assert (await server_record.wait_for_rooms([second]))[second].status == "JS_SUCCESS"
    assert daemon.returncode is None


async def test_a_burst_past_max_jobs_loses_no_accepted_job(
        fault_daemon, server_record: ServerRecord, lkapi) -> None:
    daemon = await fault_daemon({"admission": {"max_jobs": 2}, "pool": {"num_idle_processes": 2}})
    names = rooms("burst", 6)
    await asyncio.gather(*(dispatch(lkapi, room, "linger") for room in names))

    def refused() -> set[str]:
        return {e["room"] for e in daemon.events if e.get("event") == "job refused" and e.get("reason") == "no_slot"}

    async def settled() -> bool:
        ended = {e["room"] for e in roomd_ended(daemon)}
        return set(names) <= ended | refused() | server_record.dropped() and not (await daemon.status())["jobs"]

    # A full daemon reports load 1 at once, so the server mostly drops the rest itself
    # ("no worker available"); an offer that still reaches it is refused. Either way every
    # job is accounted for, and none roomd took is lost.
    await daemon.until(settled, timeout=60)
    accepted = {e["room"] for e in roomd_ended(daemon)} & set(names)
    assert refused() | server_record.dropped() and len(accepted) >= 2, (refused(), accepted)
    # Every job roomd took ended SUCCESS at the server; the refused ones never ran here.
    recorded = await server_record.wait_for_rooms(accepted)
    assert {job.status for job in recorded.values()} == {"JS_SUCCESS"}, recorded


async def test_a_server_restart_is_survived_and_the_next_job_is_recorded(
        fault_daemon, tmp_path) -> None:
    """Its own server (the shared one cannot restart): the call on the old server ends, the
    daemon registers again, and the next job is recorded SUCCESS by the new server."""
    port = free_tcp_port()
    server = DevServer(port=port, log_path=tmp_path / "server-1.log")
    address = server.start()
    try:
        daemon = await fault_daemon({"link": {"reconnect_backoff_max": 0.5}}, server=address)
        async with api.LiveKitAPI(address.http_url, address.api_key, address.api_secret) as lk:
            before, after = rooms("restart", 2)
            record = ServerRecord(tmp_path / "server-1.log")
            await dispatch(lk, before, "leave")
            assert (await record.wait_for_rooms([before]))[before].status == "JS_SUCCESS"
            server.stop()
            await daemon.wait_event(lambda e: e.get("event") == "link state" and e.get("new") == "reconnecting",
                                    timeout=30)
            server = DevServer(port=port, log_path=tmp_path / "server-2.log")
            server.start()
            await daemon.wait_event(lambda e: e.get("event") == "link state" and e.get("new") == "registered"
                                    and e is not _first_registered(daemon), timeout=60)
            record = ServerRecord(tmp_path / "server-2.log")
            await dispatch(lk, after, "leave")
            assert (await record.wait_for_rooms([after]))[after].status == "JS_SUCCESS"
        assert daemon.returncode is None
    finally:
        server.stop()


def _first_registered(daemon: DaemonProcess) -> dict:
    return next(e for e in daemon.events if e.get("event") == "link state" and e.get("new") == "registered")
