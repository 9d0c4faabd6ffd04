"""``roomd run`` as a subprocess, the way systemd runs it: JSON logs on stdout, signals."""

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

from prometheus_client.parser import text_string_to_metric_families

from roomd.daemon.devserver import DevServerAddress

CONFIG = """\
[daemon]
http_host = "127.0.0.1"
http_port = {http_port}
drain_timeout = 60.0

[link]
status_interval = {status_interval}

[admission]
# Other work shares this machine: CPU load must not refuse the test's jobs.
load_threshold = 2.0

[pool]
num_idle_processes = 1
memory_sample_interval = 0.5
shutdown_timeout = 10.0

[plugins]
enabled = ["probe"]
"""

AGENT = "roomd-probe"
STATUS_INTERVAL = 0.5


class DaemonProcess:
    def __init__(self, server: DevServerAddress, directory: Path, *, http_port: int = 0,
                 env: Mapping[str, str] | None = None) -> None:
        self.server = server
        self.config_path = directory / "roomd.toml"
        self.config_path.write_text(CONFIG.format(http_port=http_port, status_interval=STATUS_INTERVAL))
        self._env = dict(os.environ, LIVEKIT_URL=server.url, LIVEKIT_API_KEY=server.api_key,
                         LIVEKIT_API_SECRET=server.api_secret, **(env or {}))
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.http = ""

    async def start(self, timeout: float = 60) -> DaemonProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "roomd.daemon.cli", "run", "--config", str(self.config_path),
            "--log-format", "json", env=self._env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._reader = asyncio.create_task(self._read())
        listening = await self.wait_event(lambda e: e.get("event") == "http listening", timeout)
        self.http = f"http://127.0.0.1:{listening['port']}"
        await self.wait_event(lambda e: e.get("event") == "supervisor state"
                              and e.get("new") == "ready", timeout)
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

    async def wait_event(self, predicate: Callable[[dict[str, Any]], bool],
                         timeout: float) -> dict[str, Any]:
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                if self._reader is not None and self._reader.done():
                    raise AssertionError("roomd run exited:\n" + "".join(self.lines[-30:]))
                self._changed.clear()
                await self._changed.wait()

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
                                 + "".join(self.lines[-25:])) from None

    async def wait_unloaded(self, timeout: float = 90) -> None:
        """Until the load the daemon reports to the server has been low for a status interval.

        livekit-server offers a job only to workers whose reported load is under its
        target (agents.target_load, 0.7 by default), and does not retry a dispatch that
        found none. The load is this machine's real CPU use, which other work and our own
        start-up raise, so a test dispatches only once the server has heard a low value.
        """
        low_since: float | None = None
        loop = asyncio.get_running_loop()

        async def settled() -> bool:
            nonlocal low_since
            load = value(await self.metrics(), "roomd_load_ratio")
            if load >= 0.5:
                low_since = None
                return False
            low_since = low_since or loop.time()
            return loop.time() - low_since > 2 * STATUS_INTERVAL

        await self.until(settled, timeout)

    # -- stopping ------------------------------------------------------------------------
    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader is not None:
            await self._reader
        return code

    async def stop(self) -> int:
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
        return self.proc.returncode


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
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
