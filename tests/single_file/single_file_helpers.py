"""Running a single-file agent script as its user would, and watching it from a room."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from livekit import rtc

# An agent as a user writes it: it imports only roomd.agents. Its entrypoint shows, as a
# participant attribute, the pid of the process it runs in.
AGENT_SCRIPT = '''
import os

from roomd.agents import JobContext, WorkerOptions, cli


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    await ctx.room.local_participant.set_attributes({{"pid": str(os.getpid())}})


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, agent_name={agent_name!r}, num_idle_processes=1))
'''


def write_agent(folder: Path, agent_name: str, source: str = AGENT_SCRIPT) -> Path:
    path = folder / "agent.py"
    path.write_text(textwrap.dedent(source).format(agent_name=agent_name))
    return path


def script_env(server: Any | None, **extra: str) -> dict[str, str]:
    """The environment of a script run: the fixture server (if given) and no fixed HTTP port,
    so runs never collide with each other or with a daemon on 8081."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "ROOMD_"))}
    env["ROOMD_DAEMON_HTTP_PORT"] = "0"
    if server is not None:
        env.update(LIVEKIT_URL=server.url, LIVEKIT_API_KEY=server.api_key, LIVEKIT_API_SECRET=server.api_secret)
    env.update(extra)
    return env


class ScriptRun:
    """A running ``python agent.py ...``: its output lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._more = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            self.lines.append(raw.decode(errors="replace"))
            self._more.set()
        self._more.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def wait_for_line(self, predicate: Callable[[str], bool], timeout: float = 60) -> str:
        index = 0
        async with asyncio.timeout(timeout):
            while True:
                while index < len(self.lines):
                    if predicate(self.lines[index]):
                        return self.lines[index]
                    index += 1
                if self._reader.done():
                    raise AssertionError("the script ended without that line:\n" + self.output[-4000:])
                self._more.clear()
                await self._more.wait()

    async def wait(self, timeout: float = 60) -> int:
        async with asyncio.timeout(timeout):
            code = await self.proc.wait()
            await self._reader
        return code

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self._reader


@contextlib.asynccontextmanager
async def run_script(path: Path, *args: str, env: Mapping[str, str],
                     stdin: int | None = asyncio.subprocess.DEVNULL,
                     module: str | None = None) -> AsyncIterator[ScriptRun]:
    """``python path args...``, or with ``module``, ``python -m module args...`` in ``path``."""
    command = ["-m", module] if module else [str(path)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *command, *args, cwd=path if module else path.parent, env=dict(env), stdin=stdin,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    run = ScriptRun(proc)
    try:
        yield run
    finally:
        await run.stop()


def parent_pid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def children_named(pid: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name and parent_pid(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (OSError, AssertionError):
                continue  # gone meanwhile
    return found


async def agent_attribute(room: rtc.Room, key: str, timeout: float = 30) -> str:
    """``key`` of the first agent participant of ``room`` that sets it."""
    changed = asyncio.Event()
    room.on("participant_connected", lambda *_: changed.set())
    room.on("participant_attributes_changed", lambda *_: changed.set())
    async with asyncio.timeout(timeout):
        while True:
            for participant in room.remote_participants.values():
                if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and key in participant.attributes:
                    return participant.attributes[key]
            changed.clear()
            await changed.wait()


def terminate(run: ScriptRun, signum: int = signal.SIGTERM) -> None:
    run.proc.send_signal(signum)
