"""Fixtures of the fault suite: the fault plugin installed once, daemons that serve it, and
the server's own record of how jobs ended."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "plugins"))

from daemon_process import DaemonProcess
from fault_plugin import lazy_module, source
from plugin_factory import PluginInstaller
from roomd.daemon.devserver import DevServer
from server_record import ServerRecord

pytestmark = pytest.mark.livekit_server


@pytest.fixture(scope="session")
def fault_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the fault plugin (``faults``) and one whose prewarm hangs (``hangs``)."""
    work = tmp_path_factory.mktemp("fault-plugins")
    installer = PluginInstaller(work / "src", work / "site")
    installer.install("faults", source(), modules={"lazy": lazy_module("1.0.0")})
    installer.install("hangs", source(prewarm="hang", agent="roomd-hangs"))
    return installer.target


@pytest.fixture
def server_record(livekit_dev_server: DevServer) -> ServerRecord:
    assert livekit_dev_server.log_path is not None
    return ServerRecord(livekit_dev_server.log_path)


def site_env(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}


@pytest.fixture
async def fault_daemon(livekit_server: Any, fault_site: Path, tmp_path: Path
                       ) -> AsyncIterator[Callable[..., Awaitable[DaemonProcess]]]:
    """Starts ``roomd run`` serving the fault plugin (with ``config`` changes) against the shared
    server (or ``server``); stops them all."""
    started: list[DaemonProcess] = []

    async def start(config: Mapping[str, Mapping[str, Any]] | None = None, *, site: Path | None = None,
                    ready: bool = True, env: Mapping[str, str] | None = None,
                    server: Any = None) -> DaemonProcess:
        changes: dict[str, dict[str, Any]] = {"plugins": {"enabled": ["faults"]}}
        for section, values in (config or {}).items():
            changes.setdefault(section, {}).update(values)
        directory = tmp_path / f"daemon{len(started)}"
        directory.mkdir()
        daemon = DaemonProcess(server or livekit_server, directory, config=changes,
                               env={**site_env(site or fault_site), **(env or {})})
        started.append(daemon)
        return await daemon.start(ready=ready)

    yield start
    for daemon in started:
        await daemon.stop()
