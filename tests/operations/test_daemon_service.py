"""``roomd run`` against the real LiveKit server, seen the way operators see it: HTTP
endpoints, Prometheus metrics while jobs run, sd_notify, drain and ``roomd reload``."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from pathlib import Path

import pytest
from livekit import api, rtc

from roomd.daemon.devserver import DevServerAddress, free_tcp_port

from daemon_process import AGENT, DaemonProcess, value
from room_client import join, wait_for_agent, wait_for_attribute
from notify_listener import NotifyListener, significant

pytestmark = pytest.mark.livekit_server


async def dispatch(daemon: DaemonProcess, lkapi: api.LiveKitAPI, action: str) -> tuple[str, rtc.Room]:
    """A caller in a new room, and the probe agent dispatched there to do ``action``.

    The probe's "hold" job ends (successfully) when the caller leaves.
    """
    server = daemon.server
    room = f"ops-{action}-{uuid.uuid4().hex[:6]}"
    caller = await join(server, room, "caller")  # dispatches run in started rooms
    await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
        agent_name=AGENT, room=room, metadata=json.dumps({"action": action, "message": "asked to"})))
    await daemon.until(lambda: _job_seen(daemon, room), timeout=30)
    return room, caller


async def _job_seen(daemon: DaemonProcess, room: str) -> bool:
    """The job is (or was) here: listed now, or already ended."""
    if any(job["room"] == room for job in (await daemon.status())["jobs"]):
        return True
    return any(e.get("event") == "job ended" and e.get("room") == room for e in daemon.events)


def _moved(samples: dict, machine: str, old: str, new: str) -> float:
    return value(samples, "roomd_state_transitions_total", machine=machine, **{"from": old, "to": new})


async def test_metrics_and_status_follow_real_jobs(
        livekit_server: DevServerAddress, lkapi: api.LiveKitAPI, daemons: list[DaemonProcess],
        tmp_path: Path) -> None:
    with NotifyListener() as listener:
        daemon = DaemonProcess(livekit_server, tmp_path, env={"NOTIFY_SOCKET": listener.address})
        daemons.append(daemon)
        await daemon.start()
        before = await daemon.metrics()
        assert value(before, "roomd_server_link_up", agent=AGENT) == 1
        assert value(before, "roomd_daemon_state", state="ready") == 1
        assert value(before, "roomd_plugin_state", plugin="probe", state="serving") == 1
        # Each state machine counted its way to serving.
        assert _moved(before, "supervisor", "registering", "ready") == 1
        assert _moved(before, "plugin", "starting", "serving") == 1
        assert _moved(before, "pool", "starting", "ready") == 1
        assert _moved(before, "link", "registering", "registered") >= 1
        assert _moved(before, "child", "spawning", "idle") >= 1

        room, caller = await dispatch(daemon, lkapi, "hold")

        async def running_job() -> dict | None:
            status = await daemon.status()
            return next((j for j in status["jobs"] if j["room"] == room and j["state"] == "running"),
                        None)

        job = await daemon.until(running_job)
        during = await daemon.metrics()
        assert value(during, "roomd_jobs_active", agent=AGENT) == 1
        assert value(during, "roomd_availability_decisions_total", agent=AGENT,
                     reason="accepted") == 1
        assert value(during, "roomd_dispatch_latency_seconds_count", agent=AGENT) == 1
        assert value(during, "roomd_children", agent=AGENT, state="running") == 1

        # /status: the child running the job, its memory, and nothing secret.
        code, body = await daemon.get("/status")
        assert code == 200
        status = json.loads(body)
        child = await daemon.until(lambda: _child_with_rss(daemon, job["id"]))
        assert child["agent"] == AGENT and child["room"] == room
        assert livekit_server.api_secret not in body
        assert "eyJ" not in body  # no JWT (job tokens) anywhere
        assert status["state"] == "ready" and status["ready"]["ready"] is True
        assert [link["state"] for link in status["links"]] == ["registered"]
        # Children never see the service manager's socket (they could claim READY for us).
        for entry in status["children"]:
            environ = Path(f"/proc/{entry['pid']}/environ").read_bytes().split(b"\0")
            assert not any(v.startswith((b"NOTIFY_SOCKET=", b"WATCHDOG_")) for v in environ)

        # "running" is the entrypoint started, not yet in the room: the probe must have seen
        # the caller before the caller leaves, or it holds until the server closes the room.
        await wait_for_attribute(caller, await wait_for_agent(caller), "job_pid")
        await caller.disconnect()

        async def ended() -> dict | None:
            samples = await daemon.metrics()
            done = sum(value(samples, "roomd_jobs_total", agent=AGENT, status=s)
                       for s in ("success", "failed"))
            return samples if done == 1 and value(samples, "roomd_jobs_active", agent=AGENT) == 0 \
                else None

        after = await daemon.until(ended)
        assert value(after, "roomd_jobs_total", agent=AGENT, status="success") == 1
        assert value(after, "roomd_job_duration_seconds_count", agent=AGENT) == 1
        assert _moved(after, "job", "offered", "launching") == 1
        assert _moved(after, "job", "running", "ended") == 1
        assert _moved(after, "child", "idle", "assigned") >= 1

        _failing, caller = await dispatch(daemon, lkapi, "fail")

        async def failed() -> dict | None:
            samples = await daemon.metrics()
            return samples if value(samples, "roomd_jobs_total", agent=AGENT,
                                    status="failed") >= 1 + value(after, "roomd_jobs_total",
                                                                  agent=AGENT, status="failed") \
                else None

        final = await daemon.until(failed)
        await caller.disconnect()
        assert value(final, "roomd_dispatch_latency_seconds_count", agent=AGENT) == 2
        # Each job's child retired after it (max_jobs_per_process = 1) and was replaced.
        retired = await daemon.until(lambda: _restarts(daemon, "retired", 2))
        assert retired >= 2
        assert value(final, "roomd_child_ipc_rtt_seconds_count", agent=AGENT) > 0
        assert value(final, "process_resident_memory_bytes") > 0
        assert await daemon.stop() == 0
        listener.pending()
        assert significant(listener.received) == ["READY", "STOPPING"]


async def _child_with_rss(daemon: DaemonProcess, job_id: str) -> dict | None:
    status = await daemon.status()
    return next((c for c in status["children"]
                 if c["job_id"] == job_id and (c["rss_bytes"] or 0) > 0), None)


async def _restarts(daemon: DaemonProcess, reason: str, at_least: int) -> float | None:
    count = value(await daemon.metrics(), "roomd_child_restarts_total", agent=AGENT, reason=reason)
    return count if count >= at_least else None


async def test_readyz_turns_unready_while_draining_a_running_job(
        livekit_server: DevServerAddress, lkapi: api.LiveKitAPI, daemons: list[DaemonProcess],
        tmp_path: Path) -> None:
    daemon = DaemonProcess(livekit_server, tmp_path)
    daemons.append(daemon)
    await daemon.start()
    assert await daemon.get("/readyz") == (200, "ready\n")
    _room, caller = await dispatch(daemon, lkapi, "hold")
    await daemon.until(lambda: _has_running_job(daemon))
    await wait_for_attribute(caller, await wait_for_agent(caller), "job_pid")  # the agent is in
    daemon.signal(signal.SIGTERM)

    async def unready() -> tuple[int, str] | None:
        answer = await daemon.get("/readyz")
        return answer if answer[0] == 503 else None

    code, body = await daemon.until(unready)
    assert "daemon is draining" in body
    assert await daemon.get("/healthz") == (200, "ok\n")  # alive, just not taking work
    status = await daemon.status()
    assert status["state"] == "draining" and len(status["jobs"]) == 1  # the call goes on
    await caller.disconnect()  # the call ends; the drain is over
    assert await daemon.wait(60) == 0


async def _has_running_job(daemon: DaemonProcess) -> bool:
    return any(job["state"] == "running" for job in (await daemon.status())["jobs"])


async def _roomd(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "roomd.daemon.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_roomd_reload_waits_for_the_reload_and_reports_it(
        livekit_server: DevServerAddress, daemons: list[DaemonProcess], tmp_path: Path) -> None:
    with NotifyListener(abstract=True) as listener:
        daemon = DaemonProcess(livekit_server, tmp_path, http_port=free_tcp_port(),
                               env={"NOTIFY_SOCKET": listener.address})
        daemons.append(daemon)
        await daemon.start()
        code, out = await _roomd("reload", "--config", str(daemon.config_path))
        assert code == 0, out
        assert out.startswith("reload ok: generation 2:"), out
        # By the time `roomd reload` returned, systemd had heard the whole reload.
        listener.pending()
        assert significant(listener.received) == ["READY", "RELOADING", "READY"]
        reloading = next(m for m in listener.received if "RELOADING" in m)
        assert int(reloading["MONOTONIC_USEC"]) > 0
        status = await daemon.status()
        assert status["generation"] == 2
        assert [(p["name"], p["generation"], p["state"]) for p in status["plugins"]
                if p["state"] != "disabled"] == [("probe", 2, "serving")]

        # A configuration the daemon rejects: exit 1 with its reason; it keeps serving.
        good = daemon.config_path.read_text()
        daemon.config_path.write_text(good + "\n[nonsense]\nkey = 1\n")
        code, out = await _roomd("reload", "--url", daemon.http + "/reload")
        daemon.config_path.write_text(good)
        assert code == 1, out
        assert out.startswith("reload failed:") and "configuration rejected" in out, out
        samples = await daemon.metrics()
        assert value(samples, "roomd_reloads_total", result="ok") == 1
        assert value(samples, "roomd_reloads_total", result="failed") == 1
        assert await daemon.get("/readyz") == (200, "ready\n")
        assert await daemon.stop() == 0

    code, out = await _roomd("reload", "--url", f"http://127.0.0.1:{free_tcp_port()}/reload")
    assert code == 2 and "cannot reach the daemon" in out, out
