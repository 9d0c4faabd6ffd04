"""The daemon as a system service: sd_notify, the watchdog and the HTTP endpoint together.

``ServiceOps`` follows the supervisor's state machine (it is a state listener) and tells
systemd what it needs to know:

  registering  STATUS=registering: ...
  ready        READY=1 (after start, and after each reload)
  reloading    RELOADING=1 with MONOTONIC_USEC (systemd matches the reload by this time)
  draining     STOPPING=1; then EXTEND_TIMEOUT_USEC= while the drain budget lasts
  stopped      STATUS=stopped

plus ``STATUS=`` whenever the short status line changes, and ``WATCHDOG=1`` pings.
"""

from __future__ import annotations

import asyncio
import enum
import os
import time
from collections.abc import Callable, Mapping, Sequence

import structlog
from aiohttp import web

from roomd.ipc.tasks import TaskOwner

from .http import OpsHttpServer
from .metrics import DaemonMetrics
from .notify import Notifier, WatchdogSettings, monotonic_usec, run_watchdog
from .runtime_file import (
    RuntimeInfo,
    loopback_url,
    remove_runtime_file,
    runtime_directory,
    write_runtime_file,
)
from .status import status_line
from .view import DaemonView

log = structlog.get_logger("roomd.service")

STATUS_INTERVAL = 2.0


class ServiceOps:
    def __init__(
        self,
        view: DaemonView,
        metrics: DaemonMetrics,
        *,
        http_host: str,
        http_port: int,
        stop_budget: float,
        environ: Mapping[str, str] | None = None,
        status_interval: float = STATUS_INTERVAL,
        routes: Sequence[Callable[[web.Application], None]] = (),
    ) -> None:
        """``stop_budget``: seconds a drain may take at most (drain + shutdown timeouts)."""
        self._view = view
        self.metrics = metrics
        self.notifier = Notifier.from_environment(environ)
        self._watchdog = WatchdogSettings.from_environment(environ)
        self.http = OpsHttpServer(view, metrics, host=http_host, port=http_port, routes=routes)
        self._http_host = http_host
        self._runtime_dir = runtime_directory(environ)
        self._stop_budget = stop_budget
        self._status_interval = status_interval
        self._tasks = TaskOwner("service ops")
        self._last_status = ""
        self._draining_since: float | None = None

    async def start(self) -> None:
        """Serve HTTP and start notifying; ``OSError`` if the HTTP address cannot be bound."""
        await self.http.start()
        self._write_runtime_file()
        if self.notifier.enabled:
            log.info("notifying the service manager", notify_socket=self.notifier.address,
                     watchdog_seconds=self._watchdog.interval_usec / 1e6 if self._watchdog else None)
        if self._watchdog is not None:
            self._tasks.spawn(run_watchdog(self.notifier, self._watchdog,
                                           healthy=lambda: not self._view.dead_tasks()),
                              "watchdog", essential=True)
        self._tasks.spawn(self._refresh_status(), "status line", essential=True)

    async def aclose(self) -> None:
        await self._tasks.aclose()
        await self.http.aclose()
        if self._runtime_dir is not None:
            remove_runtime_file(self._runtime_dir, os.getpid())
        self.notifier.close()

    @property
    def url(self) -> str:
        """The bound endpoint's base URL, as a local client reaches it."""
        port = self.http.addresses[0][1] if self.http.addresses else 0
        return loopback_url(self._http_host, port)

    def _write_runtime_file(self) -> None:
        if self._runtime_dir is None:
            return
        info = RuntimeInfo(pid=os.getpid(), version=self._view.version, url=self.url)
        try:
            path = write_runtime_file(self._runtime_dir, info)
        except OSError as exc:  # roomd reload falls back to the configuration
            log.warning("cannot write the runtime file", directory=str(self._runtime_dir),
                        error=str(exc))
            return
        log.info("runtime file written", path=str(path), url=info.url)

    # -- the supervisor's state ------------------------------------------------------------
    def on_state(self, state: enum.Enum) -> None:
        """A supervisor state listener: called on the loop at every transition."""
        name = str(state.value)
        line = self._status()
        if name == "ready":
            self.notifier.notify(ready=1, status=line)
        elif name == "reloading":
            self.notifier.notify(reloading=1, monotonic_usec=monotonic_usec(), status=line)
        elif name == "draining":
            self._draining_since = time.monotonic()
            self.notifier.notify(stopping=1, status=line)
        else:
            self.notifier.notify(status=line)

    def _status(self) -> str:
        self._last_status = status_line(self._view)
        return self._last_status

    async def _refresh_status(self) -> None:
        while True:
            await asyncio.sleep(self._status_interval)
            line = status_line(self._view)
            fields: dict[str, str | int] = {}
            if line != self._last_status:
                self._last_status = fields["status"] = line
            if self._draining_since is not None:
                remaining = self._draining_since + self._stop_budget - time.monotonic()
                if remaining > 0:
                    # Ask for time in short steps and only within our own drain budget, so a
                    # longer drain_timeout needs no unit edit, and a stuck stop (or a blocked
                    # loop) stops asking and systemd's TimeoutStopSec applies again.
                    fields["extend_timeout_usec"] = int(3 * self._status_interval * 1e6)
            if fields:
                self.notifier.notify(**fields)
