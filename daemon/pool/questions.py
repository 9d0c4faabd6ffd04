"""The questions a pool asks its plugin's own code, in a child: what the plugin is (its
description, from the zygote) and whether it takes a job (its ``request_fnc``, in a
plugin-host child that runs no jobs). Mixed into ``Pool``."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from livekit.protocol import agent as agent_pb

from roomd.daemon.jobs import LaunchError
from roomd.ipc import PluginDescription
from roomd.ipc.worker import AcceptArguments, RequestDecision, accept_by_default

from .child import ChildProcess, ChildStartError
from .ending import ChildGone
from .states import ChildState, PoolState
from .zygote import Zygote, ZygoteError


class RequestEvaluationError(RuntimeError):
    """The plugin's request_fnc could not give an answer (raised, timed out, its host died)."""


class PluginQuestions:
    """The plugin-questions half of ``Pool`` (a mixin: the state is the pool's)."""

    plugin: str
    _state: PoolState
    _last_error: str
    _described: asyncio.Event
    _state_changed: asyncio.Event
    _description: PluginDescription | None
    _zygote: Zygote | None
    _host: ChildProcess | None
    _host_lock: asyncio.Lock
    _request_ids: itertools.count[int]

    if TYPE_CHECKING:
        def _fatal_message(self) -> str: ...
        def _check_launchable(self) -> None: ...
        def _new_child(self, pid: int, sock: socket.socket, *,
                       on_idle: Callable[[ChildProcess], None]) -> ChildProcess: ...

    async def describe(self, timeout: float = 30.0) -> PluginDescription:
        """The plugin's agent name, worker type, permissions and limit overrides (from the zygote)."""
        try:
            async with asyncio.timeout(timeout):
                while not self._described.is_set():
                    if self._state is PoolState.FATAL:
                        raise LaunchError(self._fatal_message())
                    waits = [asyncio.ensure_future(self._described.wait()),
                             asyncio.ensure_future(self._state_changed.wait())]
                    try:
                        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for wait in waits:  # the loser would stay pending forever
                            wait.cancel()
        except TimeoutError:
            raise LaunchError(f"plugin {self.plugin!r} was not described within {timeout}s "
                              f"(pool {self._state.value}: {self._last_error})") from None
        assert self._description is not None
        return self._description

    async def evaluate_request(self, job: agent_pb.Job, timeout: float = 10.0) -> RequestDecision:
        """Run the plugin's request_fnc for ``job`` in a plugin-host child; the decision it took."""
        # Described once per zygote: later offers skip the wait (describe() says why it fails).
        description = self._description
        if description is None or self._state is PoolState.FATAL:
            description = await self.describe(timeout)
        if not description.custom_request_fnc:
            # The default request_fnc accepts with the default identity: no need to ask a child.
            return accept_by_default(job.id)
        host = await self._plugin_host(timeout)
        try:
            answer = await host.evaluate(next(self._request_ids), job.SerializeToString(), timeout)
        except (ChildGone, TimeoutError) as exc:
            raise RequestEvaluationError(f"request_fnc of plugin {self.plugin!r} gave no answer: "
                                         f"{exc or 'timeout'}") from None
        if answer.error:
            raise RequestEvaluationError(answer.error)
        if answer.accept is None:
            return RequestDecision(None)
        a = answer.accept
        return RequestDecision(AcceptArguments(name=a.name, identity=a.identity, metadata=a.metadata,
                                               attributes=dict(a.attributes)))

    async def _plugin_host(self, timeout: float) -> ChildProcess:
        async with self._host_lock:
            host = self._host
            if host is not None and host.state is ChildState.IDLE:
                return host
            self._check_launchable()
            if self._zygote is None or not self._zygote.alive:
                raise RequestEvaluationError(f"plugin {self.plugin!r} has no running zygote "
                                             f"(pool {self._state.value})")
            try:
                pid, sock = await self._zygote.fork()
            except ZygoteError as exc:
                raise RequestEvaluationError(f"cannot start a plugin host: {exc}") from None
            host = self._new_child(pid, sock, on_idle=lambda _c: None)
            try:
                await host.start(run_prewarm=False)
            except ChildStartError as exc:
                raise RequestEvaluationError(f"plugin host did not start: {exc}") from None
            self._host = host
            return host
