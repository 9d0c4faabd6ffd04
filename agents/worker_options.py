"""``WorkerOptions``: the description of one agent, as in the reference API.

A plugin's entry point resolves to one of these. Fields left as ``None`` take the
daemon's configured value (``etc/roomd.toml``), so one file sets sane limits for
every agent and a plugin overrides only what it must.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from roomd.ipc.worker import WorkerPermissions, WorkerType

from .job import JobExecutorType
from .types import NOT_GIVEN, NotGivenOr

if TYPE_CHECKING:
    from .job import JobContext, JobProcess
    from .job_request import JobRequest

__all__ = ["WorkerOptions", "WorkerPermissions", "WorkerType"]


async def _accept_every_job(request: JobRequest) -> None:
    await request.accept()


UNUSED_FIELDS: dict[str, str] = {
    "job_executor_type": "every job runs in its own prewarmed child process",
    "multiprocessing_context": "children are forked from a zygote that imported the agent once",
    "http_proxy": "the server link connects directly",
    "prometheus_port": "metrics are served at /metrics on the worker's status port (port/host)",
    "_worker_token": "roomd registers with the API key and secret",
}


@dataclasses.dataclass
class WorkerOptions:
    entrypoint_fnc: Callable[[JobContext], Awaitable[None]] | None = None
    prewarm_fnc: Callable[[JobProcess], Any] | None = None
    request_fnc: Callable[[JobRequest], Awaitable[None]] = _accept_every_job
    initialize_process_fnc: Callable[[JobProcess], Any] | None = None
    worker_type: WorkerType = WorkerType.ROOM
    permissions: WorkerPermissions | None = None
    max_retry: int = 3
    ws_url: str | None = None
    api_key: str | None = None
    api_secret: str | None = None
    port: int | None = None
    host: str | None = None
    agent_name: str = ""
    # The load/limit overrides below default to the daemon's configuration.
    load_fnc: Callable[[], float] | None = None
    load_threshold: float | None = None
    max_jobs: int | None = None
    num_idle_processes: int | None = None
    max_jobs_per_process: int | None = None
    initialize_process_timeout: float | None = None
    shutdown_process_timeout: float | None = None
    job_memory_warn_mb: float | None = None
    job_memory_limit_mb: float | None = None
    drain_timeout: float | None = None
    # The reference's fields that roomd's runtime makes moot (docs/sdk.md says why): accepted
    # so an agent file ports unchanged, logged once by the worker when set, otherwise unused.
    job_executor_type: JobExecutorType = JobExecutorType.PROCESS
    multiprocessing_context: Literal["spawn", "forkserver"] = "forkserver"
    http_proxy: NotGivenOr[str | None] = NOT_GIVEN
    prometheus_port: NotGivenOr[int] = NOT_GIVEN
    _worker_token: str | None = None

    def unused_settings(self) -> dict[str, Any]:
        """The fields set away from their defaults that roomd does not apply, by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name in UNUSED_FIELDS and getattr(self, f.name) != f.default}

    def log_unused_settings(self, logger: logging.Logger) -> None:
        """Say once which of the reference's settings roomd ignores here, and why."""
        for name, value in self.unused_settings().items():
            logger.warning("WorkerOptions.%s=%r is accepted but has no effect on roomd: %s",
                           name, value, UNUSED_FIELDS[name])

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that cannot work."""
        if self.entrypoint_fnc is None or not callable(self.entrypoint_fnc):
            raise ValueError("WorkerOptions.entrypoint_fnc must be an async function")
        for name in ("prewarm_fnc", "initialize_process_fnc", "load_fnc"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ValueError(f"WorkerOptions.{name} must be callable, got {type(value).__name__}")
        if not callable(self.request_fnc):
            raise ValueError("WorkerOptions.request_fnc must be an async function")
        if not isinstance(self.worker_type, WorkerType):
            raise ValueError(f"WorkerOptions.worker_type must be a WorkerType, got {self.worker_type!r}")
        for name in ("load_threshold", "initialize_process_timeout", "shutdown_process_timeout",
                     "job_memory_warn_mb", "job_memory_limit_mb", "drain_timeout"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"WorkerOptions.{name} must be a number >= 0, got {value!r}")
        for name in ("max_jobs", "num_idle_processes", "max_jobs_per_process", "max_retry"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"WorkerOptions.{name} must be an integer >= 0, got {value!r}")
