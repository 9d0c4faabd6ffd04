"""``Worker``: the daemon's supervisor serving one WorkerOptions (single-file mode).

The agent runs exactly as an installed plugin does: a zygote imports the script, prewarmed
children take the jobs, one server link registers the agent name. Only discovery differs:
instead of reading entry points, the supervisor is handed one plugin whose target
describes these options by reference (roomd.ipc.script), because the functions live in
a script the children must import again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .utils.events import EventEmitter
from .worker_options import WorkerOptions

if TYPE_CHECKING:
    # The daemon is reached lazily, through roomd.daemon.embed only: importing the SDK
    # must not import the daemon.
    from roomd.daemon.embed import (
        Config,
        Discovery,
        PluginSpec,
        ReloadResult,
        ScriptTarget,
        Supervisor,
        SupervisorState,
    )

EventTypes = Literal["worker_started", "worker_registered", "worker_draining", "job_ended"]


@dataclass(frozen=True, slots=True)
class JobEnded:
    """How one of the worker's jobs ended: ``status`` "success" or "failed", and the error."""

    status: str
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


class WorkerError(RuntimeError):
    """The worker stopped because its agent could not be served; the message is the cause."""


def worker_config(options: WorkerOptions, overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Config:
    """The daemon configuration for ``options``: flags > environment > the options > defaults.

    The options name a server the way the reference's do (``ws_url``, ``api_key``...), but a
    deployment's ``LIVEKIT_*`` variables and command-line flags must win over what the code says.
    """
    from roomd.daemon.embed import load_config

    environ = os.environ if environ is None else environ
    layer: dict[str, Any] = {}
    for key, variable, value in (("livekit.url", "LIVEKIT_URL", options.ws_url),
                                 ("livekit.api_key", "LIVEKIT_API_KEY", options.api_key),
                                 ("livekit.api_secret", "LIVEKIT_API_SECRET", options.api_secret)):
        if value and not environ.get(variable):
            layer[key] = value
    # The reference's own retry and drain settings, where the deployment did not set them.
    for key, variable, value in (("link.max_retry", "ROOMD_LINK_MAX_RETRY", options.max_retry),
                                 ("daemon.drain_timeout", "ROOMD_DAEMON_DRAIN_TIMEOUT",
                                  options.drain_timeout)):
        if value is not None and not environ.get(variable):
            layer[key] = value
    if options.port is not None:
        layer["daemon.http_port"] = options.port
    if options.host:
        layer["daemon.http_host"] = options.host
    layer.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return load_config(None, environ=environ, overrides=layer)


def plugin_spec(options: WorkerOptions, target: ScriptTarget | None = None) -> PluginSpec:
    """The one plugin a Worker serves; ``ScriptTargetError`` if the options cannot travel."""
    from roomd.daemon.embed import describe_options, script_plugin

    return script_plugin(target or describe_options(options), options.agent_name)


class Worker(EventEmitter[EventTypes]):
    """Serve ``opts`` until stopped: ``await worker.run()``; ``drain()`` or ``aclose()`` to stop.

    Events: ``worker_started`` (registering with the server), ``worker_registered``
    (``worker_id``; the agent is serving), ``worker_draining``, and roomd's own
    ``job_ended`` (``JobEnded``: a job's final status and error, as sent to the server).
    """

    def __init__(self, opts: WorkerOptions, *, config: Config | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        # ``loop`` is accepted for the reference's signature; the worker runs on the loop
        # that awaits run(), where asyncio puts it anyway.
        from roomd.daemon.embed import describe_options

        super().__init__()
        self._options = opts
        target = describe_options(opts)  # fails here, in the worker, if a function cannot travel
        opts.log_unused_settings(logging.getLogger("roomd.agents.worker"))
        self._script = Path(target.script) if target.script else None
        self._spec = plugin_spec(opts, target)
        self._config = config if config is not None else worker_config(opts)
        self._supervisor: Supervisor | None = None
        self._failure = ""
        self._registered = False
        self._stopped = asyncio.Event()

    @property
    def options(self) -> WorkerOptions:
        return self._options

    @property
    def config(self) -> Config:
        return self._config

    @property
    def plugin(self) -> PluginSpec:
        return self._spec

    @property
    def script(self) -> Path | None:
        """The file run as ``__main__`` that the children import, if the agent lives there."""
        return self._script

    @property
    def id(self) -> str:
        """The worker id the server gave at registration ("" before)."""
        links = self._supervisor.links if self._supervisor is not None else []
        return links[0].worker_id if links else ""

    @property
    def draining(self) -> bool:
        from roomd.daemon.embed import SupervisorState

        return self._supervisor is not None and self._supervisor.state in (
            SupervisorState.DRAINING, SupervisorState.STOPPED)

    @property
    def supervisor(self) -> Supervisor | None:
        return self._supervisor

    def _discover(self) -> Discovery:
        from roomd.daemon.embed import Discovery

        return Discovery(plugins=(self._spec,), problems=())

    async def run(self) -> None:
        """Serve until drained or closed (SIGTERM/SIGINT drain, SIGHUP reloads the script's code).

        Raises ``WorkerError`` if the agent could not be served (its cause in the message).
        """
        if self._supervisor is not None:
            raise RuntimeError("Worker.run() can only be called once")
        from importlib.metadata import version

        from roomd.daemon.embed import Supervisor

        supervisor = Supervisor(self._config, discover=self._discover, version=version("roomd"))
        supervisor.add_state_listener(self._on_state)
        supervisor.add_job_listener(
            lambda _agent, outcome: self.emit("job_ended", JobEnded(outcome.status.name.lower(), outcome.error)))
        self._supervisor = supervisor
        try:
            code = await supervisor.run()
        finally:
            self._stopped.set()
        if self._failure:
            raise WorkerError(self._failure)
        if code != 0:
            raise WorkerError("the link to the LiveKit server failed; see the log for the cause")

    def _on_state(self, state: SupervisorState) -> None:
        from roomd.daemon.embed import PluginState, SupervisorState

        assert self._supervisor is not None
        if state is SupervisorState.REGISTERING:
            self.emit("worker_started")
        elif state is SupervisorState.READY and not self._registered:
            record = self._supervisor.plugins.get(self._spec.name)
            if record is None or record.state is not PluginState.SERVING:
                # One agent and it cannot be served: a worker that stays up would hide that.
                self._failure = (record.last_error if record is not None and record.last_error
                                 else "the agent did not start")
                self._supervisor.request_signal(signal.SIGTERM)
                return
            self._registered = True
            self.emit("worker_registered", self.id)
        elif state is SupervisorState.DRAINING:
            self.emit("worker_draining")

    async def reload(self) -> ReloadResult:
        """Import the script again into a new generation of children, as SIGHUP does; running
        jobs finish on the code they started with. Options stay those given to the Worker."""
        if self._supervisor is None:
            raise RuntimeError("the worker is not running")
        return await self._supervisor.request_reload()

    async def drain(self) -> None:
        """Refuse new jobs, let running ones end (``drain_timeout``), stop; wait for run() to end."""
        if self._supervisor is None:
            return
        if not self.draining:
            self._supervisor.request_signal(signal.SIGTERM)
        await self._stopped.wait()

    async def aclose(self) -> None:
        """Stop now: running jobs are ended (their status still reported); wait for run() to end."""
        if self._supervisor is None or self._stopped.is_set():
            return
        if not self.draining:
            self._supervisor.request_signal(signal.SIGTERM)
        self._supervisor.request_signal(signal.SIGTERM)  # the second stop request: stop now
        await self._stopped.wait()
