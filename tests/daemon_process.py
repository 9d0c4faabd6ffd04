"""``roomd run`` as a real subprocess, with its JSON log lines readable by the test.

The daemon's stdout is read all the time (a full pipe would stall it); tests wait for
log events by predicate instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Event = dict[str, Any]


class DaemonProcess:
    def __init__(self, config: Path, env: Mapping[str, str]) -> None:
        self._config = config
        self._env = dict(env)
        self.events: list[Event] = []
        self.raw: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._arrived = asyncio.Condition()

    @classmethod
    def for_server(cls, config: Path, server: Any, **extra_env: str) -> DaemonProcess:
        env = dict(os.environ, LIVEKIT_URL=server.url, LIVEKIT_API_KEY=server.api_key,
                   LIVEKIT_API_SECRET=server.api_secret, **extra_env)
        return cls(config, env)

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "roomd.daemon.cli", "run", "--config", str(self._config),
            "--log-format", "json", env=self._env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while raw := await self._proc.stdout.readline():
            line = raw.decode(errors="replace")
            self.raw.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            async with self._arrived:
                self.events.append(event)
                self._arrived.notify_all()
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 60) -> Event:
        """The first logged event (already seen or still to come) that matches."""
        async with asyncio.timeout(timeout):
            async with self._arrived:
                seen = 0
                while True:
                    for event in self.events[seen:]:
                        if predicate(event):
                            return event
                    seen = len(self.events)
                    if self._reader is not None and self._reader.done():
                        raise AssertionError("roomd exited before the awaited event:\n" + self.tail())
                    await self._arrived.wait()

    async def wait_state(self, state: str, timeout: float = 60) -> Event:
        return await self.wait_for(
            lambda e: e.get("event") == "supervisor state" and e.get("new") == state, timeout)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self._proc is not None
        self._proc.send_signal(signum)

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def wait_exit(self, timeout: float = 60) -> int:
        assert self._proc is not None
        code = await asyncio.wait_for(self._proc.wait(), timeout)
        if self._reader is not None:
            await self._reader
        return code

    async def stop(self) -> None:
        """End the daemon whatever its state: SIGTERM, then SIGKILL if it does not go."""
        if self._proc is None:
            return
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), 30)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            await self._reader

    def errors(self) -> list[Event]:
        return [e for e in self.events if e.get("level") in ("error", "critical")]

    def tail(self, lines: int = 40) -> str:
        return "".join(self.raw[-lines:])
