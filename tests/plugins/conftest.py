"""A supervisor serving throwaway plugins installed with pip, against the real livekit-server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from livekit import api

sys.path.insert(0, str(Path(__file__).parent))

from plugin_factory import PluginInstaller  # noqa: E402

from roomd.daemon.devserver import DevServerAddress  # noqa: E402
from roomd.daemon.supervisor import Supervisor  # noqa: E402
from roomd.daemon.plugins.discovery import discover_plugins  # noqa: E402

pytestmark = pytest.mark.livekit_server


@pytest.fixture
def installer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PluginInstaller:
    """Installs into a folder on this process's path (discovery) and on the children's."""
    target = tmp_path / "site"
    inst = PluginInstaller(tmp_path / "src", target)
    monkeypatch.syspath_prepend(str(target))
    return inst


class Daemon:
    """One in-process Supervisor (its own task), stopped and checked for leftovers at the end."""

    def __init__(self, config_path: Path, target: Path) -> None:
        from roomd.daemon.config import load_config

        self.config_path = config_path
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(target), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        self.supervisor = Supervisor(load_config(config_path), config_path=str(config_path),
                                     discover=discover_plugins, version="test", child_env=env)
        self.task: asyncio.Task[int] | None = None

    async def start(self, timeout: float = 60) -> Supervisor:
        self.task = asyncio.create_task(self.supervisor.run())
        ready = asyncio.ensure_future(self.supervisor.ready.wait())
        done, _ = await asyncio.wait({ready, self.task}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            raise AssertionError("the daemon did not become ready"
                                 + (f": run() returned {self.task.result()}" if self.task.done() else ""))
        return self.supervisor

    async def stop(self) -> int:
        assert self.task is not None
        if not self.task.done():
            self.supervisor.request_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    return await asyncio.shield(self.task)
            except TimeoutError:
                self.supervisor.request_signal(signal.SIGTERM)  # a second one stops now
        return await self.task


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[Callable[[str], Awaitable[Supervisor]]]:
    started: list[Daemon] = []

    async def start(config: str) -> Supervisor:
        path = tmp_path / "roomd.toml"
        path.write_text(config)
        daemon = Daemon(path, tmp_path / "site")
        started.append(daemon)
        return await daemon.start()

    yield start
    for daemon in started:
        assert await daemon.stop() == 0
    for daemon in started:
        for pool in daemon.supervisor.pools:
            assert pool.stats().children == 0, f"pool {pool.plugin} left children behind"
