"""``roomd run`` as a real subprocess, the way systemd runs it: JSON logs on stdout,
signals, and the HTTP endpoints on a loopback port.

The daemon's stdout is read all the time (a full pipe would stall it); tests wait for
log events by predicate instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tomli_w
from prometheus_client.parser import text_string_to_metric_families

from roomd.daemon.devserver import DevServerAddress

AGENT = "roomd-probe"  # the probe example plugin's agent name (plugins/examples/probe)
STATUS_INTERVAL = 0.5

Event = dict[str, Any]


def probe_config(http_port: int, changes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A daemon serving only the probe plugin, quick to report, with ``changes`` merged in."""
    config: dict[str, dict[str, Any]] = {
        "daemon": {"http_host": "127.0.0.1", "http_port": http_port, "drain_timeout": 60.0},
        "link": {"status_interval": STATUS_INTERVAL},
        "pool": {"num_idle_processes": 1, "memory_sample_interval": 0.5, "shutdown_timeout": 10.0},
        "plugins": {"enabled": ["probe"]},
    }
    for section, values in changes.items():
        config.setdefault(section, {}).update(values)
    return config


class DaemonProcess:
    def __init__(self, server: DevServerAddress, directory: Path, *, http_port: int = 0,
                 env: Mapping[str, str] | None = None,
                 config: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.server = server
        self.config_path = directory / "roomd.toml"
        self.config_path.write_text(tomli_w.dumps(probe_config(http_port, config or {})))
        self._env = {**os.environ, "LIVEKIT_URL": server.url, "LIVEKIT_API_KEY": server.api_key,
                     "LIVEKIT_API_SECRET": server.api_secret, **(env or {})}
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[Event] = []
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.http = ""

    async def start(self, timeout: float = 60, *, ready: bool = True) -> DaemonProcess:
        """Start it; unless ``ready`` is False, return once it serves (HTTP up, state ready)."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "roomd.daemon.cli", "run", "--config", str(self.config_path),
            "--log-format", "json", env=self._env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._reader = asyncio.create_task(self._read())
        if ready:
            listening = await self.wait_event(lambda e: e.get("event") == "http listening", timeout)
            self.http = f"http://127.0.0.1:{listening['port']}"
            await self.wait_state("ready", timeout)
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            line = raw.decode(errors="replace")
            self.lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.events.append(event)
                self._changed.set()
        self._changed.set()

    async def wait_event(self, predicate: Callable[[Event], bool], timeout: float = 60) -> Event:
        """The first logged event (already seen or still to come) that matches."""
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                if self._reader is not None and self._reader.done():
                    raise AssertionError("roomd run exited before the awaited event:\n" + self.tail())
                self._changed.clear()
                await self._changed.wait()

    async def wait_state(self, state: str, timeout: float = 60) -> Event:
        return await self.wait_event(
            lambda e: e.get("event") == "supervisor state" and e.get("new") == state, timeout)

    def errors(self) -> list[Event]:
        return [e for e in self.events if e.get("level") in ("error", "critical")]

    def tail(self, lines: int = 30) -> str:
        return "".join(self.lines[-lines:])

    # -- http ----------------------------------------------------------------------------
    async def get(self, path: str) -> tuple[int, str]:
        return await asyncio.to_thread(_get, self.http + path)

    async def status(self) -> dict[str, Any]:
        code, body = await self.get("/status")
        assert code == 200, body
        return json.loads(body)

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        code, body = await self.get("/metrics")
        assert code == 200, body
        return parse_metrics(body)

    async def until(self, check: Callable[[], Any], timeout: float = 20) -> Any:
        """Poll an endpoint-reading coroutine factory until it returns something truthy.

        The daemon's HTTP state has no push channel; a short poll is how a scraper sees it.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    value = await check()
                    if value:
                        return value
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"{check} not met in {timeout}s; the daemon's log ends:\n"
                                 + self.tail(25)) from None

    # -- stopping ------------------------------------------------------------------------
    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    async def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader is not None:
            await self._reader
        return code

    async def stop(self) -> int:
        """SIGTERM (a drain) and its exit code; SIGKILL and an error if it does not go."""
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.signal(signal.SIGTERM)
            try:
                return await self.wait(60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                raise
        if self._reader is not None:
            await self._reader
        return self.proc.returncode


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)
