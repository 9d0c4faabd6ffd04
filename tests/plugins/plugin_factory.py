"""Throwaway plugin distributions, built and installed with real pip into a target folder.

Each plugin is a pyproject plus one module, written to ``tmp_path`` and installed with
``pip install --target`` (no index, no build isolation: the test extra's setuptools
builds them, and nothing leaves the machine). The
daemon finds them the way it finds any plugin: entry points on the Python path.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

from roomd.daemon.devserver import DevServerAddress

# A working agent: joins, announces which plugin and version runs it in its participant
# attributes, then stays until told "bye" on a data topic or every other participant has
# left (both a normal end; "bye" keeps the room alive so the server's record can be read).
GOOD_AGENT = '''
import asyncio

from roomd.agents import JobContext, JobProcess, WorkerOptions

VERSION = {version!r}
PLUGIN = {plugin!r}
BYE = "roomd-test-bye"


def prewarm(proc: JobProcess) -> None:
    proc.userdata["prewarmed"] = "yes"


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    room = ctx.room
    everyone_left = asyncio.Event()  # or asked to leave

    def check(*_args: object) -> None:
        if not room.remote_participants or not room.isconnected():
            everyone_left.set()

    room.on("participant_disconnected", check)
    room.on("disconnected", check)
    room.on("data_received", lambda packet: everyone_left.set() if packet.topic == BYE else None)
    await room.local_participant.set_attributes(
        {{"plugin": PLUGIN, "plugin_version": VERSION, "prewarmed": ctx.proc.userdata["prewarmed"]}})
    check()
    await everyone_left.wait()
    ctx.shutdown("done")


options = WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, agent_name={agent_name!r}
                        {extra})
'''

IMPORT_FAILS = '''
import roomd_test_dependency_that_is_not_installed  # noqa: F401
'''

RAISES_AT_IMPORT = '''
raise RuntimeError("no API key in the environment: refusing to load")
'''

NOT_WORKER_OPTIONS = '''
async def entrypoint(ctx) -> None:
    pass


options = {"entrypoint_fnc": entrypoint, "agent_name": "not-options"}
'''

PREWARM_RAISES = '''
from roomd.agents import JobContext, JobProcess, WorkerOptions


def prewarm(proc: JobProcess) -> None:
    raise FileNotFoundError("model weights /nonexistent/model.bin are missing")


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()


options = WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, agent_name="prewarm-fails")
'''


def good_agent(plugin: str, agent_name: str, version: str = "1.0.0", extra: str = "") -> str:
    return GOOD_AGENT.format(plugin=plugin, agent_name=agent_name, version=version,
                             extra=f", {extra}" if extra else "")


class PluginInstaller:
    """Writes plugin sources under ``work`` and installs them into ``target``."""

    def __init__(self, work: Path, target: Path) -> None:
        self.work = work
        self.target = target
        target.mkdir(parents=True, exist_ok=True)

    def install(self, name: str, source: str, *, version: str = "1.0.0",
                entry_point: str | None = None, modules: Mapping[str, str] | None = None) -> None:
        """Build (setuptools) and install distribution ``roomd-test-<name>``, entry point ``name``;
        ``modules`` are more modules of the package (name -> source)."""
        module = f"roomd_test_{name.replace('-', '_')}"
        src = self.work / f"{name}-{version}"
        (src / module).mkdir(parents=True)
        (src / module / "__init__.py").write_text("")
        (src / module / "agent.py").write_text(textwrap.dedent(source))
        for extra, text in (modules or {}).items():
            (src / module / f"{extra}.py").write_text(text)
        value = entry_point or f"{module}.agent:options"
        (src / "pyproject.toml").write_text(textwrap.dedent(f'''
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "roomd-test-{name}"
            version = "{version}"

            [project.entry-points."roomd.agents"]
            {name} = "{value}"

            [tool.setuptools]
            packages = ["{module}"]
        '''))
        # --upgrade: a second version replaces the first one's code in the target folder.
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
             "--no-build-isolation", "--disable-pip-version-check", "--upgrade",
             "--target", str(self.target), str(src)],
            capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def config_toml(address: DevServerAddress, enabled: list[str], *, max_jobs: int = 0,
                extra: str = "", http_port: int = 0) -> str:
    """A daemon configuration with short deadlines, serving only ``enabled``."""
    names = ", ".join(f'"{name}"' for name in enabled)
    return f'''
[livekit]
url = "{address.url}"
api_key = "{address.api_key}"
api_secret = "{address.api_secret}"

[daemon]
drain_timeout = 15.0
log_level = "info"
http_port = {http_port}  # 0: any free port, as several daemons may run at once

[link]
assignment_timeout = 5.0
status_interval = 0.5

[admission]
max_jobs = {max_jobs}
load_threshold = 2.0  # the daemon never refuses for load; these tests are not about it

[pool]
num_idle_processes = 1
initialize_timeout = 10.0
shutdown_timeout = 5.0
max_start_failures = 2
start_backoff_max = 0.5

[plugins]
enabled = [{names}]
{extra}
'''
