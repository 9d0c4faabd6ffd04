"""roomd under a real systemd 252 (a booted Debian 12), installed from its .deb.

One container per module (see conftest.py); the tests run in file order and each brings
the service to the state it needs first, so a failure leaves the next test meaningful.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from container import PIP_OFFLINE, Installed
from livekit import api, rtc
from room_client import join, wait_for_agent, wait_for_attribute
from roomd.daemon.devserver import free_tcp_port

# The first test's setup builds the root when its recipe changed (debootstrap: minutes on a
# cold cache), so the per-test limit has room for it.
pytestmark = [pytest.mark.livekit_server, pytest.mark.timeout(1500)]

AGENT = "roomd-probe"
# A shorter watchdog than the packaged 30 s keeps the restart test quick; set by a drop-in,
# the way an operator changes the unit.
WATCHDOG_SECONDS = 8
DROP_IN = "/etc/systemd/system/roomd.service.d/50-test.conf"
PRIORITY = {"critical": 3, "error": 3, "warning": 4, "info": 6, "debug": 7}


# -- helpers --------------------------------------------------------------------------------
def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def status(inst: Installed) -> dict[str, Any]:
    code, body = _get(inst.http + "/status")
    assert code == 200, body
    return json.loads(body)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.2)


def unit(inst: Installed) -> dict[str, str]:
    return inst.box.show("roomd", "ActiveState", "SubState", "MainPID", "StatusText", "Result",
                         "ExecMainStatus", "ExecMainCode", "NRestarts", "ControlGroup")


def ensure_started(inst: Installed) -> dict[str, str]:
    if unit(inst)["ActiveState"] != "active":
        inst.box.run(["systemctl", "start", "roomd"], timeout=300).check()
    return unit(inst)


def cursor(inst: Installed) -> str:
    """Where the journal ends now: read only what comes after it."""
    out = inst.box.run(["journalctl", "-n", "1", "-o", "json", "--no-pager"]).check().stdout
    return str(json.loads(out.strip().splitlines()[-1])["__CURSOR"])


def messages(inst: Installed, after: str | None = None) -> list[dict[str, str]]:
    return inst.box.journal("roomd", *([f"--after-cursor={after}"] if after else []))


def records(entries: list[dict[str, str]]) -> list[dict[str, Any]]:
    """roomd's own JSON log records among the unit's journal entries."""
    found = []
    for entry in entries:
        if entry["MESSAGE"].startswith("{"):
            with contextlib.suppress(ValueError):
                found.append({**json.loads(entry["MESSAGE"]), "_PRIORITY": entry.get("PRIORITY")})
    return found


@contextlib.asynccontextmanager
async def held_call(inst: Installed, lkapi: api.LiveKitAPI) -> AsyncIterator[tuple[rtc.Room, str]]:
    """A caller in a new room with the probe holding the call (ends when the caller leaves)."""
    room = f"sysd-{uuid.uuid4().hex[:6]}"
    caller = await join(inst.server, room, "caller")
    try:
        await lkapi.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            agent_name=AGENT, room=room, metadata=json.dumps({"action": "hold"})))
        agent = await wait_for_agent(caller, timeout=60)
        await wait_for_attribute(caller, agent, "job_pid", timeout=30)
        yield caller, room
    finally:
        if caller.isconnected():
            await caller.disconnect()


# -- the tests, in the order an operator meets them ------------------------------------------
def test_start_returns_once_ready_and_registered(installed: Installed) -> None:
    installed.box.write(DROP_IN, f"[Service]\nWatchdogSec={WATCHDOG_SECONDS}\n")
    installed.box.run(["systemctl", "daemon-reload"]).check()
    started = time.monotonic()
    installed.box.run(["systemctl", "start", "roomd"], timeout=300).check()
    took = time.monotonic() - started
    state = unit(installed)
    assert (state["ActiveState"], state["SubState"]) == ("active", "running"), state
    assert state["StatusText"].startswith("ready: 0 jobs,"), state
    # Type=notify: `systemctl start` came back after READY=1, so the daemon is serving now,
    # registered with the real server, with a prewarmed child per plugin.
    assert _get(installed.http + "/readyz") == (200, "ready\n")
    now = status(installed)
    assert now["version"] == installed.version and now["state"] == "ready"
    assert [(link["agent"], link["state"]) for link in now["links"]] == [(AGENT, "registered")]
    assert sum(pool["idle"] for pool in now["pools"]) >= 1, now["pools"]
    ready = [r for r in records(messages(installed)) if r.get("event") == "supervisor state"
             and r.get("new") == "ready"]
    assert len(ready) == 1, ready
    print(f"systemctl start took {took:.2f}s")


async def test_a_dispatched_job_runs_in_the_service(installed: Installed, lkapi: api.LiveKitAPI) -> None:
    ensure_started(installed)
    async with held_call(installed, lkapi) as (_caller, room):
        jobs = status(installed)["jobs"]
        assert [(j["room"], j["state"]) for j in jobs] == [(room, "running")], jobs
    await asyncio.to_thread(wait_until, lambda: not status(installed)["jobs"], 30, "job ended")
    ended = [r for r in records(messages(installed)) if r.get("event") == "job ended"
             and r.get("room") == room]
    assert ended and ended[-1]["status"] == "SUCCESS", ended

    # num_idle_processes = 2 (the default): two prewarmed children once the pool has refilled,
    # plus the child answering the probe's request_fnc, which is not one of them.
    def refilled() -> dict[str, Any] | None:
        now = status(installed)
        pool = now["pools"][0]
        return now if (pool["idle"], pool["spawning"], len(now["children"])) == (2, 0, 3) else None

    now = await asyncio.to_thread(wait_until, refilled, 30, "pool refilled")
    states = sorted(c["state"] for c in now["children"])
    assert states == ["idle", "idle", "request_host"], now["children"]


def test_memory_limits_are_held_by_what_the_kernel_offers_the_unit(installed: Installed) -> None:
    state = ensure_started(installed)
    cgroup = f"/sys/fs/cgroup{state['ControlGroup']}"
    # Delegate=memory: the unit's cgroup is the service user's to divide.
    owner = installed.box.run(["stat", "-c", "%u", f"{cgroup}/cgroup.procs", f"/proc/{state['MainPID']}"])
    service_uid, process_uid = owner.check().stdout.split()
    assert service_uid == process_uid != "0", owner.stdout
    said = [r["held_by"] for r in records(messages(installed)) if r.get("event") == "memory limits"]
    assert said, "no 'memory limits' line in the journal"
    controllers = installed.box.run(["cat", f"{cgroup}/cgroup.controllers"]).check().stdout.split()
    if "memory" in controllers:
        assert said[-1].startswith("cgroup v2 (kernel-enforced)"), said
    else:
        # A host that binds the memory controller to cgroup v1 (this project's machines) cannot
        # give a container's cgroup v2 one: the daemon says so and samples.
        assert said[-1].startswith("sampling every ") and "memory controller is not available" in said[-1], said
    print(f"memory limits in the unit: {said[-1]}")


def test_reload_starts_a_new_generation_in_the_same_process(installed: Installed) -> None:
    before = ensure_started(installed)
    generation = status(installed)["generation"]
    reload = installed.box.run(["systemctl", "reload", "roomd"], timeout=700)
    assert reload.returncode == 0, reload.stderr
    after = unit(installed)
    assert after["MainPID"] == before["MainPID"] and after["ActiveState"] == "active"
    assert status(installed)["generation"] == generation + 1
    assert after["StatusText"].endswith(f"generation {generation + 1}"), after

    # A configuration the daemon rejects: the reload fails, the old generation serves on.
    box = installed.box
    box.run(["cp", "/etc/roomd/roomd.toml", "/root/roomd.toml.good"]).check()
    box.sh("echo '[nonsense]' >> /etc/roomd/roomd.toml").check()
    try:
        bad = box.run(["systemctl", "reload", "roomd"], timeout=700)
    finally:
        box.run(["cp", "/root/roomd.toml.good", "/etc/roomd/roomd.toml"]).check()
    assert bad.returncode != 0
    assert unit(installed)["MainPID"] == before["MainPID"]
    assert status(installed)["generation"] == generation + 1
    said = [e["MESSAGE"] for e in messages(installed) if "reload failed" in e["MESSAGE"]]
    assert said and "configuration rejected" in said[-1], said


def test_reload_after_the_http_port_was_edited_reaches_the_daemon(installed: Installed) -> None:
    ensure_started(installed)
    generation = status(installed)["generation"]
    mark = cursor(installed)
    installed.set_http_port(free_tcp_port())
    try:
        result = installed.box.run(["systemctl", "reload", "roomd"], timeout=700)
    finally:
        installed.set_http_port(installed.http_port)
    assert result.returncode == 0, result.stderr
    said = [e["MESSAGE"] for e in messages(installed, mark) if e["MESSAGE"].startswith("reload ok")]
    assert len(said) == 1 and said[0].count("generation") == 1, said
    assert "needs a restart" in said[0], said
    assert status(installed)["generation"] == generation + 1  # still on the old, bound port


def test_the_journal_keeps_each_records_priority(installed: Installed) -> None:
    ensure_started(installed)
    entries = messages(installed)
    mine = records(entries)
    assert mine, "no JSON records from roomd in the journal"
    for record in mine:
        assert record["_PRIORITY"] == str(PRIORITY[record["level"]]), record
    # The reload above warned that the port change needs a restart: -p warning finds it.
    warnings = installed.box.run(["journalctl", "-u", "roomd", "-p", "warning", "-o", "cat",
                                  "--no-pager"]).check().stdout
    assert "a change needs a restart" in warnings, warnings[-2000:]
    # Python warnings (PyJWT's short-key warning) arrive as one record, not raw stderr.
    assert not [e for e in entries if e["MESSAGE"].lstrip().startswith("warnings.warn(")]


def test_watchdog_restarts_a_stuck_daemon_and_its_stack_is_in_the_journal(installed: Installed) -> None:
    before = ensure_started(installed)
    mark = cursor(installed)
    installed.box.run(["kill", "-STOP", before["MainPID"]]).check()

    def restarted() -> dict[str, str] | None:
        now = unit(installed)
        return now if now["MainPID"] not in ("0", before["MainPID"]) and \
            now["ActiveState"] == "active" and now["SubState"] == "running" else None

    after = wait_until(restarted, WATCHDOG_SECONDS + 5 + 120, "restart after the watchdog fired")
    assert int(after["NRestarts"]) >= 1
    text = "\n".join(e["MESSAGE"] for e in messages(installed, mark))
    assert f"Watchdog timeout (limit {WATCHDOG_SECONDS}s)!" in text, text[-3000:]
    assert "status=6/ABRT" in text, text[-3000:]
    # faulthandler: the aborted supervisor's stack, with the frame it was stuck in.
    assert "Fatal Python error: Aborted" in text, text[-3000:]
    assert "most recent call first" in text, text[-3000:]
    assert _get(installed.http + "/readyz") == (200, "ready\n")


async def test_stop_drains_a_held_call_then_exits_0_with_an_empty_cgroup(
        installed: Installed, lkapi: api.LiveKitAPI) -> None:
    before = ensure_started(installed)
    cgroup = before["ControlGroup"]
    mark = cursor(installed)
    async with held_call(installed, lkapi) as (caller, _room):
        installed.box.run(["systemctl", "stop", "--no-block", "roomd"]).check()

        def draining() -> dict[str, str] | None:
            now = unit(installed)
            return now if now["StatusText"].startswith("draining: 1 job") else None

        now = await asyncio.to_thread(wait_until, draining, 30, "draining: 1 job")
        assert now["ActiveState"] == "deactivating", now
        assert any(p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
                   for p in caller.remote_participants.values())
        await caller.disconnect()  # the probe ends its job once the caller has left

    after = await asyncio.to_thread(
        wait_until, lambda: (s := unit(installed))["ActiveState"] == "inactive" and s, 120,
        "service inactive")
    assert (after["Result"], after["ExecMainStatus"]) == ("success", "0"), after
    leftover = installed.box.run(["cat", f"/sys/fs/cgroup{cgroup}/cgroup.procs"])
    assert leftover.returncode != 0 or leftover.stdout.strip() == "", leftover.stdout
    text = "\n".join(e["MESSAGE"] for e in messages(installed, mark))
    # systemd says "Main process exited, code=..." only for a failure; 0 is "Deactivated".
    assert "Deactivated successfully" in text and "Main process exited" not in text, text[-3000:]
    assert "SIGKILL" not in text and "left-over process" not in text, text[-3000:]


def test_security_exposure_is_low(installed: Installed) -> None:
    out = installed.box.run(["systemd-analyze", "security", "roomd", "--no-pager"]).check().stdout
    match = re.search(r"Overall exposure level for roomd\.service: (\d+\.\d+)", out)
    assert match, out[-2000:]
    assert float(match.group(1)) <= 1.5, match.group(0)
    print(match.group(0))


def test_a_reload_cannot_change_versions(installed: Installed) -> None:
    # What a careless upgrade leaves: new code in the venv, the old supervisor running.
    before = ensure_started(installed)
    box = installed.box
    box.run(["/opt/roomd/venv/bin/pip", "install", "--quiet", "--no-deps",
             f"roomd=={installed.upgrade_version}"], env=PIP_OFFLINE, timeout=300).check()
    try:
        result = box.run(["systemctl", "reload", "roomd"], timeout=700)
        assert result.returncode != 0
        text = "\n".join(e["MESSAGE"] for e in messages(installed))
        assert f"is roomd {installed.version} but {installed.upgrade_version} is installed" in text
        assert unit(installed)["MainPID"] == before["MainPID"]
        assert status(installed)["version"] == installed.version
    finally:
        box.run(["/opt/roomd/venv/bin/pip", "install", "--quiet", "--no-deps",
                 f"roomd=={installed.version}"], env=PIP_OFFLINE, timeout=300).check()


def test_a_package_upgrade_restarts_the_daemon_on_the_new_version(installed: Installed) -> None:
    before = ensure_started(installed)
    installed.box.run(["apt-get", "install", "-y", "-q", "-o", "Dpkg::Options::=--force-confold",
                       installed.upgrade_deb],
                      env=PIP_OFFLINE, timeout=600).check()
    after = unit(installed)
    assert after["ActiveState"] == "active" and after["MainPID"] != before["MainPID"], after
    assert status(installed)["version"] == installed.upgrade_version
    version = installed.box.run(["/opt/roomd/venv/bin/roomd", "version"]).check().stdout
    assert version.splitlines()[0] == f"roomd {installed.upgrade_version}"
    assert _get(installed.http + "/readyz") == (200, "ready\n")

