"""``roomd reload`` finds the daemon that runs, not the one the edited config describes.

The daemon writes ``$RUNTIME_DIRECTORY/daemon.json`` (bound URL, pid, version); the client
reads it first. A reload never moves the HTTP endpoint (it says a restart is needed) and
never turns one installed version into another (a package upgrade restarts instead).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version
from pathlib import Path

import pytest
import tomli_w

from roomd.daemon.config import Config, DaemonConfig
from roomd.daemon.devserver import free_tcp_port
from roomd.daemon.ops.runtime_file import (
    FILE_NAME,
    RuntimeInfo,
    read_runtime_file,
    remove_runtime_file,
    write_runtime_file,
)
from roomd.daemon.supervisor import Supervisor
from roomd.daemon.plugins.discovery import Discovery

INSTALLED = version("roomd")


def _no_plugins() -> Discovery:
    return Discovery(plugins=(), problems=())


def _write_config(path: Path, port: int) -> None:
    path.write_text(tomli_w.dumps({"daemon": {"http_port": port, "drain_timeout": 5.0},
                                   "livekit": {"url": "ws://127.0.0.1:9", "api_key": "k",
                                               "api_secret": "s"}}))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Callable[..., asyncio.Future[Supervisor]]]:
    """Start an in-process supervisor (no plugins) with its runtime directory in tmp_path."""
    runs: list[tuple[Supervisor, asyncio.Task[int]]] = []

    async def start(*, port: int = 0, installed: str = INSTALLED) -> Supervisor:
        versions = iter([INSTALLED])  # at start; then ``installed`` (what a reload finds)
        config_path = tmp_path / "roomd.toml"
        _write_config(config_path, port)
        config = Config(daemon=DaemonConfig(http_port=port, drain_timeout=5.0))
        supervisor = Supervisor(config, config_path=str(config_path), discover=_no_plugins,
                                version=INSTALLED,
                                installed_version=lambda: next(versions, installed),
                                environ={"RUNTIME_DIRECTORY": str(tmp_path)})
        task = asyncio.create_task(supervisor.run())
        runs.append((supervisor, task))
        await asyncio.wait_for(supervisor.ready.wait(), 10)
        return supervisor

    yield start  # type: ignore[misc]
    for supervisor, task in runs:
        supervisor.request_signal(signal.SIGTERM)
        assert await asyncio.wait_for(task, 10) == 0


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return int(response.status)


async def _roomd(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "roomd.daemon.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "RUNTIME_DIRECTORY"})
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_the_runtime_file_names_the_bound_url_pid_and_version(tmp_path: Path) -> None:
    supervisor = Supervisor(Config(daemon=DaemonConfig(http_port=0, drain_timeout=5.0)),
                            discover=_no_plugins, version=INSTALLED,
                            environ={"RUNTIME_DIRECTORY": str(tmp_path)})
    task = asyncio.create_task(supervisor.run())
    await asyncio.wait_for(supervisor.ready.wait(), 10)
    info = read_runtime_file(tmp_path)
    assert info is not None
    assert (info.pid, info.version) == (os.getpid(), INSTALLED)
    assert info.url.startswith("http://127.0.0.1:") and not info.url.endswith(":0")
    assert await asyncio.to_thread(_get, info.url + "/healthz") == 200
    supervisor.request_signal(signal.SIGTERM)
    assert await asyncio.wait_for(task, 10) == 0
    assert not (tmp_path / FILE_NAME).exists()  # gone with the daemon


async def test_roomd_reload_reaches_the_daemon_after_its_port_was_edited(running, tmp_path: Path) -> None:
    bound = free_tcp_port()
    await running(port=bound)
    edited = free_tcp_port()
    _write_config(tmp_path / "roomd.toml", edited)  # the operator changed the port
    code, out = await _roomd("reload", "--config", str(tmp_path / "roomd.toml"),
                             "--runtime-dir", str(tmp_path))
    assert code == 0, out
    # One generation in the message, and the port change reported, not silently applied.
    assert out.count("generation") == 1, out
    assert out.startswith("reload ok: generation 2: 0 plugin(s) serving"), out
    assert f"changed to 127.0.0.1:{edited}: needs a restart" in out, out
    assert await asyncio.to_thread(_get, f"http://127.0.0.1:{bound}/healthz") == 200
    info = read_runtime_file(tmp_path)
    assert info is not None and info.url == f"http://127.0.0.1:{bound}"


async def test_a_reload_across_versions_is_refused_by_the_daemon(running) -> None:
    supervisor = await running(installed="99.0")
    result = await supervisor.request_reload()
    assert not result.ok and result.generation == 1
    assert f"roomd 99.0 is installed but {INSTALLED} is running" in result.detail
    assert "restart" in result.detail


async def test_roomd_reload_refuses_a_daemon_of_another_version(tmp_path: Path) -> None:
    # A daemon left running by a package upgrade that did not restart it.
    write_runtime_file(tmp_path, RuntimeInfo(pid=os.getpid(), version="0.0.1",
                                             url=f"http://127.0.0.1:{free_tcp_port()}"))
    code, out = await _roomd("reload", "--runtime-dir", str(tmp_path))
    assert code == 1, out
    assert f"is roomd 0.0.1 but {INSTALLED} is installed" in out and "restart" in out, out


def test_a_stale_runtime_file_is_ignored_and_only_its_owner_removes_it(tmp_path: Path) -> None:
    dead = RuntimeInfo(pid=2**22 + 7, version="1", url="http://127.0.0.1:1")  # above pid_max
    write_runtime_file(tmp_path, dead)
    assert read_runtime_file(tmp_path) is None
    assert read_runtime_file(tmp_path, check_alive=False) == dead
    remove_runtime_file(tmp_path, os.getpid())  # not ours: kept
    assert json.loads((tmp_path / FILE_NAME).read_text())["pid"] == dead.pid
    remove_runtime_file(tmp_path, dead.pid)
    assert not (tmp_path / FILE_NAME).exists()
