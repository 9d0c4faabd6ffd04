"""Reloads under fault: a broken upgrade, a stop signal in the middle, a plugin that hangs,
and the reload endpoint itself."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fault_plugin import lazy_module, source
from plugin_factory import PluginInstaller
from room_client import join, wait_for_agent, wait_for_attribute
from server_record import ServerRecord
from test_server_status import dispatch, rooms

pytestmark = pytest.mark.livekit_server


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_a_kept_generation_runs_its_own_code_after_a_broken_upgrade(
        fault_daemon, server_record: ServerRecord, livekit_server, lkapi, tmp_path: Path) -> None:
    installer = PluginInstaller(tmp_path / "src", tmp_path / "site")
    installer.install("faults", source("1.0.0"), version="1.0.0", modules={"lazy": lazy_module("1.0.0")})
    daemon = await fault_daemon({"pool": {"max_start_failures": 1}}, site=installer.target)
    # A broken upgrade: its prewarm raises, so the reload keeps generation 1 serving...
    installer.install("faults", source("2.0.0", prewarm="raise"), version="2.0.0",
                      modules={"lazy": lazy_module("2.0.0")})
    code, answer = await asyncio.to_thread(post, daemon.http + "/reload", b"{}",
                                           {"Content-Type": "application/json"})
    assert code == 409 and "previous generation" in answer["detail"], answer
    # ...and a call on it imports its lazy module from generation 1, not from the new files.
    room = rooms("kept", 1)[0]
    caller = await join(livekit_server, room, "caller")
    try:
        await dispatch(lkapi, room, "lazy")
        agent = await wait_for_agent(caller)
        assert await wait_for_attribute(caller, agent, "lazy_version") == "1.0.0"
        assert agent.attributes["plugin_version"] == "1.0.0"
    finally:
        await caller.disconnect()
    assert (await server_record.wait_for_rooms([room]))[room].status == "JS_SUCCESS"


async def test_sigterm_during_a_slow_reload_starts_the_drain_at_once(fault_daemon, tmp_path: Path) -> None:
    installer = PluginInstaller(tmp_path / "src", tmp_path / "site")
    installer.install("faults", source(), modules={"lazy": lazy_module("1.0.0")})
    daemon = await fault_daemon(site=installer.target)
    # The next generation takes long to import.
    installer.install("faults", "import time\ntime.sleep(8)\n" + source("2.0.0"), version="2.0.0",
                      modules={"lazy": lazy_module("2.0.0")})
    daemon.signal(signal.SIGHUP)
    await daemon.wait_state("reloading")
    await asyncio.sleep(1.0)
    sent = time.monotonic()
    daemon.signal(signal.SIGTERM)
    await daemon.wait_state("draining", timeout=10)
    took = time.monotonic() - sent
    # Not queued behind the reload (8 s of import, then the zygote's prewarm).
    assert took < 3.0, f"the drain started {took:.1f}s after SIGTERM"
    assert await daemon.wait(timeout=30) == 0


async def test_a_plugin_whose_prewarm_hangs_does_not_hold_readiness(fault_daemon) -> None:
    started = time.monotonic()
    daemon = await fault_daemon({"plugins": {"enabled": ["faults", "hangs"]},
                                 "pool": {"initialize_timeout": 5.0, "max_start_failures": 8,
                                          "start_backoff_max": 0.2}})
    took = time.monotonic() - started
    # Ready once the healthy plugin serves and the hanging one failed its first start, not
    # after max_start_failures x initialize_timeout (40 s and more).
    assert took < 20.0, f"ready after {took:.1f}s:\n" + "".join(
        line for line in daemon.lines if "state" in line or "start" in line)
    assert await daemon.get("/readyz") == (200, "ready\n")
    plugins = {p["name"]: p for p in (await daemon.status())["plugins"]}
    assert plugins["faults"]["ready"] is True and plugins["hangs"]["ready"] is False, plugins


@pytest.mark.parametrize("require_all", [False, True])
async def test_whether_a_failed_plugin_makes_the_daemon_unready_is_the_operators_choice(
        fault_daemon, require_all: bool) -> None:
    daemon = await fault_daemon({"plugins": {"enabled": ["faults", "hangs"]},
                                 "daemon": {"require_all_plugins": require_all},
                                 "pool": {"initialize_timeout": 5.0, "max_start_failures": 1}})
    await daemon.until(lambda: _plugin_state(daemon, "hangs", "failed"), timeout=30)
    code, body = await daemon.get("/readyz")
    if require_all:
        assert code == 503 and "'hangs' failed" in body, body
    else:
        assert (code, body) == (200, "ready\n"), body  # the default: ready while one plugin serves
    # The failed plugin's start failures are counted, though its pool never served.
    metrics = await daemon.metrics()
    failures = sum(v for (name, labels), v in metrics.items()
                   if name == "roomd_child_start_failures_total" and dict(labels)["agent"] in ("hangs", "roomd-hangs"))
    assert failures >= 1, {k: v for k, v in metrics.items() if k[0].startswith("roomd_child_start")}


async def test_reload_refuses_a_simple_request_and_coalesces_concurrent_ones(fault_daemon) -> None:
    daemon = await fault_daemon()
    url = daemon.http + "/reload"
    # What a web page may send cross-origin without a preflight.
    code, answer = await asyncio.to_thread(post, url, b"reload", {"Content-Type": "text/plain"})
    assert code == 415, answer
    generation = (await daemon.status())["generation"]
    answers = await asyncio.gather(*(asyncio.to_thread(post, url, b"{}", {"Content-Type": "application/json"})
                                     for _ in range(10)))
    assert all(code == 200 for code, _ in answers), answers
    after = (await daemon.status())["generation"]
    assert after - generation <= 2, f"{after - generation} generations for 10 concurrent reloads"
    assert len({a["generation"] for _, a in answers}) == after - generation


async def _plugin_state(daemon, name: str, state: str) -> bool:
    plugins = {p["name"]: p for p in (await daemon.status())["plugins"]}
    return name in plugins and plugins[name]["state"] == state
