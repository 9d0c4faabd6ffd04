"""Reloading (SIGHUP, ``roomd reload``): re-read the configuration, re-discover the plugins and
start a new generation beside the running one; running jobs keep their old code.

One reload runs at a time, beside the supervisor's loop so a stop signal is handled at once
(and wins: it cancels the reload). ``ReloadCoordinator`` is mixed into ``Supervisor``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from roomd.ipc.tasks import TaskOwner

from .admission import Admission
from .config import Config, ConfigError, DaemonConfig, LiveKitConfig, load_config
from .ops import DaemonMetrics
from .supervisor_state import SupervisorState

log = structlog.get_logger("roomd.supervisor")


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    ok: bool
    generation: int
    detail: str


def installed_roomd_version() -> str:
    """The roomd version on disk now (a package upgrade may have replaced it)."""
    import importlib
    from importlib.metadata import PackageNotFoundError, version

    importlib.invalidate_caches()
    try:
        return version("roomd")
    except PackageNotFoundError:
        return ""


class ReloadCoordinator:
    """The reload half of ``Supervisor``."""

    config: Config
    admission: Admission
    metrics: DaemonMetrics
    _config_path: str | None
    _flag_overrides: dict[str, Any]
    _installed_version: Callable[[], str]
    _running_version: str
    _generation: int
    _state: SupervisorState
    _served: Mapping[str, object]
    _tasks: TaskOwner
    _reload_task: asyncio.Task[None] | None
    _reload_replies: list[asyncio.Future[ReloadResult]]

    if TYPE_CHECKING:
        def _transition(self, new: SupervisorState, why: str = "") -> None: ...
        def _transition_from(self, old: SupervisorState, new: SupervisorState,
                             why: str = "") -> bool: ...
        async def _apply_discovery(self) -> list[str]: ...

    def _start_reload(self, reply: asyncio.Future[ReloadResult] | None) -> None:
        """Run a reload beside the loop, so a stop signal is handled at once. Requests that
        arrive while one runs share its result instead of starting generation after generation."""
        if reply is not None:
            self._reload_replies.append(reply)
        if self._reload_task is not None and not self._reload_task.done():
            log.info("reload already running; this request shares its result")
            return
        self._reload_task = self._tasks.spawn(self.handle_hup(), "reload")

    async def _interrupt_reload(self) -> None:
        """A stop signal wins over a reload: cancel it (its half-started pool is closed)."""
        task = self._reload_task
        if task is None or task.done():
            return
        log.warning("stop requested during a reload; abandoning the reload")
        task.cancel()
        # Bounded: the drain must start within a second whatever the reload was doing.
        await asyncio.wait({task}, timeout=1.0)

    async def handle_hup(self) -> None:
        result = ReloadResult(False, self._generation, "reload interrupted by a stop request")
        try:
            result = await self.reload()
            self.metrics.reloaded(result.ok)
            log.info("reload finished", ok=result.ok, generation=result.generation, detail=result.detail)
        finally:
            replies, self._reload_replies = self._reload_replies, []
            for reply in replies:
                if not reply.done():  # the asker may have given up
                    reply.set_result(result)

    async def reload(self) -> ReloadResult:
        """Re-read config, re-discover plugins, start a new generation; old jobs keep running."""
        if self._state is not SupervisorState.READY:
            return ReloadResult(False, self._generation, f"cannot reload while {self._state.value}")
        installed = self._installed_version()
        if installed != self._running_version:
            # The code on disk is another release: children forked from it would run code the
            # supervisor does not match. Only a restart may change versions.
            log.error("reload refused: another version is installed",
                      running=self._running_version, installed=installed)
            return ReloadResult(False, self._generation,
                                f"roomd {installed} is installed but {self._running_version} is "
                                "running; a reload cannot change versions: restart the service")
        self._transition(SupervisorState.RELOADING)
        try:
            notes: list[str] = []
            if self._config_path is not None or self._flag_overrides:
                try:
                    new_config = load_config(self._config_path, overrides=self._flag_overrides)
                except ConfigError as exc:
                    return ReloadResult(False, self._generation, f"configuration rejected: {exc}")
                new_config, notes = keep_bound_address(new_config, self.config.daemon)
                self.config = keep_server(new_config, self.config.livekit)
                self.admission.reconfigure(max_jobs=self.config.admission.max_jobs,
                                           load_threshold=self.config.load_threshold)
            problems = await self._apply_discovery()
            detail = f"{len(self._served)} plugin(s) serving"
            if problems:
                detail += f"; problems: {'; '.join(problems)}"
            for note in notes:
                log.warning("reload: a change needs a restart", detail=note)
                detail += f"; {note}"
            return ReloadResult(not problems, self._generation, detail)
        finally:
            # A stop that interrupted the reload has moved the state on (to DRAINING): the
            # reload must not turn it back to READY.
            self._transition_from(SupervisorState.RELOADING, SupervisorState.READY)


def keep_bound_address(config: Config, running: DaemonConfig) -> tuple[Config, list[str]]:
    """The HTTP endpoint stays where it is bound until a restart; say so when the file moved it.

    Rebinding in a reload would pull the socket from under the very ``roomd reload`` that
    asked for it (and from Prometheus); the runtime file keeps naming the bound address.
    """
    new = config.daemon
    if (new.http_host, new.http_port) == (running.http_host, running.http_port):
        return config, []
    note = (f"daemon.http_host/http_port changed to {new.http_host}:{new.http_port}: needs a "
            f"restart (systemctl restart roomd); still serving on "
            f"{running.http_host}:{running.http_port}")
    kept = msgspec.structs.replace(new, http_host=running.http_host, http_port=running.http_port)
    return msgspec.structs.replace(config, daemon=kept), [note]


def keep_server(config: Config, livekit: LiveKitConfig) -> Config:
    """A reload keeps the server we registered with when the new file names none (dev mode)."""
    return config if config.livekit.url else msgspec.structs.replace(config, livekit=livekit)
