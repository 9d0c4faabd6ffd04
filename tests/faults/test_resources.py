"""Resources under pressure: file descriptors, half-open HTTP, a job's helper processes, memory.

Real ``roomd run`` processes, real limits (``prlimit``), real sockets and signals.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from pathlib import Path

import psutil
import pytest
from room_client import join, wait_for_agent, wait_for_attribute
from server_record import ServerRecord
from test_server_status import dispatch, rooms

pytestmark = pytest.mark.livekit_server


def set_nofile(pid: int, soft: int) -> None:
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={soft}:"], check=True)


def soft_nofile(pid: int) -> int:
    return int(subprocess.run(["prlimit", f"--pid={pid}", "--nofile", "--output=SOFT", "--noheadings"],
                              capture_output=True, text=True, check=True).stdout)


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def zombie_children(pid: int) -> list[int]:
    zombies = []
    for child in psutil.Process(pid).children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                zombies.append(child.pid)
        except psutil.NoSuchProcess:
            pass  # reaped between listing and reading its state: not a zombie
    return zombies


def alive(pid: int) -> bool:
    """Running (a zombie counts as gone: it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


async def test_the_load_monitor_survives_running_out_of_file_descriptors(fault_daemon) -> None:
    daemon = await fault_daemon()
    assert daemon.proc is not None
    pid = daemon.proc.pid
    soft = soft_nofile(pid)
    set_nofile(pid, open_fds(pid))  # not one more: every open() in the daemon fails with EMFILE
    try:
        await daemon.wait_event(lambda e: e.get("event") == "load sample failed; keeping the last value",
                                timeout=15)
    finally:
        set_nofile(pid, soft)
    # The monitor went on sampling: no task died, the daemon is ready and still reports.
    assert await daemon.get("/readyz") == (200, "ready\n")
    died = ("task failed", "essential task ended; the daemon is not ready")
    assert not [e for e in daemon.events if e.get("event") in died]
    status = await daemon.status()
    assert status["ready"]["ready"] is True


async def test_half_open_requests_cannot_hold_the_http_endpoint(fault_daemon) -> None:
    daemon = await fault_daemon()
    assert daemon.proc is not None
    set_nofile(daemon.proc.pid, 256)
    port = int(daemon.http.rsplit(":", 1)[1])
    held: list[socket.socket] = []
    try:
        for _ in range(300):  # more than the daemon has descriptors for
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # never finished
            held.append(sock)
        # The admin endpoints answer while the junk is held.
        for path in ("/healthz", "/readyz", "/status", "/metrics"):
            code, _body = await daemon.get(path)
            assert code == 200, path
        # And the junk does not stay: every held connection is closed by the daemon.
        async with asyncio.timeout(20):
            while held:
                await asyncio.sleep(0.5)
                held = [s for s in held if not _closed_by_peer(s)]
    finally:
        for sock in held:
            sock.close()
    assert not [e for e in daemon.events if e.get("event") == "task failed"]
    assert await daemon.get("/readyz") == (200, "ready\n")


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


async def test_helpers_end_with_their_job_and_no_zombie_is_left(
        fault_daemon, server_record: ServerRecord, lkapi) -> None:
    daemon = await fault_daemon({"pool": {"max_jobs_per_process": 1}})
    assert daemon.proc is not None
    names = rooms("helpers", 3)
    helper_pids: list[int] = []
    for room in names:
        await dispatch(lkapi, room, "helpers")
        started = await daemon.wait_event(lambda e, r=room: e.get("event") == "ended the job's helper processes"
                                          and e.get("room") == r, timeout=30)
        helper_pids.extend(started["pids"])
    recorded = await server_record.wait_for_rooms(names)
    assert {job.status for job in recorded.values()} == {"JS_SUCCESS"}
    assert len(helper_pids) >= 6  # the sleep it never waited for and the one a shell left, per job
    async with asyncio.timeout(10):
        while [pid for pid in helper_pids if alive(pid)] or zombie_children(daemon.proc.pid):
            await asyncio.sleep(0.2)


async def test_a_job_over_its_memory_limit_is_stopped_with_its_helpers(
        fault_daemon, server_record: ServerRecord, livekit_server, lkapi) -> None:
    limit = 200
    # Sampling alone (the kernel's limit where it applies: test_memory_cgroups.py).
    daemon = await fault_daemon({"pool": {"job_memory_limit_mb": limit, "memory_sample_interval": 5.0,
                                          "memory_cgroups": "off"}})
    room = rooms("memory", 1)[0]
    caller = await join(livekit_server, room, "caller")
    try:
        await dispatch(lkapi, room, "grow")
        agent = await wait_for_agent(caller)
        helper = int(await wait_for_attribute(caller, agent, "helper_pids"))
        job = (await server_record.wait_for_rooms([room], timeout=60))[room]
    finally:
        await caller.disconnect()
    assert job.status == "JS_FAILED" and "memory limit" in job.error, job
    killed = await daemon.wait_event(lambda e: e.get("event") == "child over memory limit; killing it")
    overshoot = killed["memory_mb"] - limit
    print(f"sampling: memory limit {limit} MB, measured at the kill {killed['memory_mb']} MB: "
          f"overshoot {overshoot:.0f} MB (helper growing about 320 MB/s)")
    # Sampled every 0.1 s near the limit: a fifth of a second of growth at most, not seconds.
    assert overshoot < 100, killed
    async with asyncio.timeout(10):
        while alive(helper):
            await asyncio.sleep(0.1)
    assert re.search(r"memory limit exceeded", job.error)
