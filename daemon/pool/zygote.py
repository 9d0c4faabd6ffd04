"""The supervisor's handle on one zygote: start it, ask it for children, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping

import msgspec
import structlog

from roomd.ipc.control import MAX_CONTROL_PACKET, ControlMessage, Fork, Forked, ForkFailed, ZygoteReady
from roomd.ipc.messages import PluginDescription
from roomd.ipc.tasks import TaskOwner

from .reaper import ExitStatus, wait_exit, wake

log = structlog.get_logger("roomd.pool")

# systemd hands these to the main process only; a child that inherits them could ping the
# watchdog or claim readiness for the whole service.
_SERVICE_ONLY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
                     "LISTEN_FDNAMES")
FORK_TIMEOUT = 10.0


class ZygoteError(Exception):
    """The zygote could not start (e.g. the plugin failed to import) or stopped serving forks."""


# Native thread pools that start on import (numpy's OpenBLAS starts one per core). One job per
# process on a shared machine wants one BLAS thread anyway, and a zygote must fork with no
# threads: a lock held by a thread that does not exist in the child stays held forever.
_SINGLE_THREADED_DEFAULTS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for name in _SERVICE_ONLY_ENV:
        env.pop(name, None)
    for name, value in _SINGLE_THREADED_DEFAULTS.items():
        env.setdefault(name, value)
    return env


class Zygote:
    _ids = itertools.count(1)

    def __init__(
        self,
        *,
        target: str,
        plugin: str,
        generation: int,
        ready_timeout: float,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._target = target
        self._plugin = plugin
        self._generation = generation
        self._ready_timeout = ready_timeout
        self._python = python
        self._env = child_environment(env)
        self._control: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._exit: asyncio.Task[ExitStatus] | None = None
        self._lock = asyncio.Lock()
        self._decoder = msgspec.msgpack.Decoder(ControlMessage)
        self._encoder = msgspec.msgpack.Encoder()
        self.description: PluginDescription | None = None
        # Forks run shielded from their caller; a failed one is the caller's error, not a log line.
        self._forks = TaskOwner(f"zygote {plugin} forks", on_error=lambda _name, _exc: None)
        # Reapers of children whose spawner was cancelled mid-fork (awaited by aclose).
        self._reapers = TaskOwner(f"zygote {plugin} reapers")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._exit is not None and not self._exit.done() and self._control is not None

    async def start(self) -> PluginDescription:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [self._python, "-m", "roomd.child.zygote", "--control-fd", str(theirs.fileno()),
                 "--target", self._target, "--plugin", self._plugin, "--generation", str(self._generation)],
                pass_fds=[theirs.fileno()], env=self._env, stdin=subprocess.DEVNULL, close_fds=True,
            )
        except OSError as exc:
            ours.close()
            raise ZygoteError(f"cannot start the zygote: {exc}") from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        self._control = ours
        self._exit = asyncio.get_running_loop().create_task(self._watch(), name=f"zygote {self._proc.pid} exit")
        try:
            async with asyncio.timeout(self._ready_timeout):
                ready = await self._recv()
        except TimeoutError:
            await self.aclose(timeout=1.0)
            raise ZygoteError(f"plugin {self._plugin!r} did not finish importing within {self._ready_timeout}s") from None
        except ZygoteError:
            await self.aclose(timeout=1.0)
            raise
        if not isinstance(ready, ZygoteReady):
            await self.aclose(timeout=1.0)
            raise ZygoteError(f"zygote sent {type(ready).__name__} before ZygoteReady")
        if ready.error or ready.description is None:
            await self.aclose(timeout=1.0)
            raise ZygoteError(f"plugin {self._plugin!r} cannot be loaded: {ready.error or 'no description'}")
        if ready.threads > 1:
            log.warning("zygote has threads after importing the plugin; forking it is unsafe",
                        plugin=self._plugin, threads=ready.threads, zygote_pid=ready.pid)
        self.description = ready.description
        log.info("zygote ready", plugin=self._plugin, generation=self._generation, zygote_pid=ready.pid)
        return ready.description

    async def _watch(self) -> ExitStatus:
        assert self._proc is not None
        status = await wait_exit(self._proc.pid)
        # Popen did not reap it; tell it the outcome so it does not try again.
        self._proc.returncode = status.exit_code if status.exit_code is not None else -(status.signal or 0)
        return status

    async def _recv(self) -> ControlMessage:
        assert self._control is not None
        loop = asyncio.get_running_loop()
        recv = loop.create_task(loop.sock_recv(self._control, MAX_CONTROL_PACKET))
        assert self._exit is not None
        try:
            await asyncio.wait({recv, self._exit}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # our caller gave up (start timeout, cancel): the read ends with us
            recv.cancel()
            raise
        if not recv.done():
            # The zygote exited; anything it sent is already queued on the socket.
            await asyncio.sleep(0)
            if not recv.done():
                recv.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recv
                raise ZygoteError(f"zygote exited ({self._exit.result().describe()})")
        data = recv.result()
        if not data:
            status = await asyncio.shield(self._exit)
            raise ZygoteError(f"zygote exited ({status.describe()})")
        try:
            message: ControlMessage = self._decoder.decode(data)
        except msgspec.MsgspecError as exc:
            raise ZygoteError(f"bad control packet from zygote: {exc}") from None
        return message

    async def fork(self) -> tuple[int, socket.socket]:
        """A new child: its pid and the supervisor's end of its socketpair."""
        if not self.alive:
            raise ZygoteError("zygote is not running")
        # Shielded: a forked child must never be abandoned half-way by a cancelled caller.
        task = self._forks.spawn(self._fork(), "fork")
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._kill_abandoned)
            raise

    async def _fork(self) -> tuple[int, socket.socket]:
        assert self._control is not None
        async with self._lock:
            child_id = next(self._ids)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                await self._send_fds(self._encoder.encode(Fork(child_id=child_id)), theirs.fileno())
            except OSError as exc:
                ours.close()
                raise ZygoteError(f"cannot reach the zygote: {exc}") from exc
            finally:
                theirs.close()
            try:
                async with asyncio.timeout(FORK_TIMEOUT):
                    reply = await self._recv()
                    # A reply to an earlier fork that timed out: that child has no owner.
                    while isinstance(reply, Forked | ForkFailed) and reply.child_id < child_id:
                        if isinstance(reply, Forked):
                            log.warning("late fork reply; killing the unowned child",
                                        plugin=self._plugin, pid=reply.pid)
                            self._discard_child(reply.pid)
                        reply = await self._recv()
            except (TimeoutError, ZygoteError) as exc:
                ours.close()
                raise ZygoteError(f"zygote did not fork: {exc or 'timeout'}") from None
            if isinstance(reply, Forked) and reply.child_id == child_id:
                return reply.pid, ours
            ours.close()
            if isinstance(reply, ForkFailed):
                raise ZygoteError(reply.error)
            raise ZygoteError(f"unexpected zygote reply {reply!r}")

    async def _send_fds(self, data: bytes, fd: int) -> None:
        assert self._control is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                socket.send_fds(self._control, [data], [fd])
                return
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(self._control, wake, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(self._control)

    def _kill_abandoned(self, task: asyncio.Task[tuple[int, socket.socket]]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        pid, sock = task.result()
        sock.close()
        self._discard_child(pid)

    def _discard_child(self, pid: int) -> None:
        """Kill a child nobody will use, and reap it (we are its subreaper: no zombie)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._reapers.spawn(wait_exit(pid), f"reap {pid}")

    async def aclose(self, timeout: float = 5.0) -> None:
        """Close the control socket (the zygote exits on end of stream); escalate if it lingers."""
        if self._reapers.tasks:
            await asyncio.wait(self._reapers.tasks, timeout=timeout)
        if self._control is not None:
            self._control.close()
            self._control = None
        await self._forks.aclose(timeout=1.0)  # a fork in flight cannot finish without the socket
        if self._exit is None or self._proc is None:
            return
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and not self._exit.done():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._proc.pid, sig)
            try:
                async with asyncio.timeout(timeout if sig is None else 2.0):
                    await asyncio.shield(self._exit)
                return
            except TimeoutError:
                continue
