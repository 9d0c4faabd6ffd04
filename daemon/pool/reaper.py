"""Watching and reaping child processes without a SIGCHLD handler or a thread.

The supervisor makes itself a child subreaper, so children double-forked by a zygote
become its own children when their intermediate parent exits. Each is watched through a
pidfd (readable once the process has exited) and reaped with ``waitpid(pid, WNOHANG)``:
only that pid, so nobody else's children (asyncio subprocesses, test servers) are stolen.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import os
import signal
from collections.abc import Collection

from roomd.ipc.procs import zombie_children

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def enable_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (Linux ≥ 3.4)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(err)}")


@dataclasses.dataclass(frozen=True)
class ExitStatus:
    pid: int
    exit_code: int | None  # None when killed by a signal, or when the status is unknown
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, pid: int, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(pid, None, os.WTERMSIG(status))
        return cls(pid, os.waitstatus_to_exitcode(status))

    def describe(self) -> str:
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        if self.exit_code is None:
            return "exit status unknown (not our child)"
        return f"exit code {self.exit_code}"


def wake(future: asyncio.Future[None]) -> None:
    """A reader/writer callback: resolve ``future`` once (the loop may call it again first)."""
    if not future.done():
        future.set_result(None)


async def wait_exit(pid: int) -> ExitStatus:
    """Wait until ``pid`` (our child) exits and reap it. Cancel-safe: the pidfd is closed."""
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return _reap(pid) or ExitStatus(pid, None)
    try:
        while True:
            status = _reap(pid)
            if status is not None:
                return status
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(pidfd, wake, readable)
            try:
                await readable
            finally:
                loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)


def _reap(pid: int) -> ExitStatus | None:
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        # Not our child (subreaper unavailable): the pidfd still tells us when it is gone.
        return ExitStatus(pid, None) if not _alive(pid) else None
    if waited == 0:
        return None
    return ExitStatus.from_wait_status(pid, status)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(watched: Collection[int]) -> list[ExitStatus]:
    """Reap our exited children that no ``wait_exit`` watches: orphans we inherit as child
    subreaper (a job's helper whose child ended first). Watched pids are left to their watcher,
    and so are processes in our own process group (what this process started itself: asyncio
    subprocesses, a dev server), so no exit status anyone waits for is stolen. Orphans from
    below are in a job child's group (or a session of their own)."""
    reaped = []
    for pid in zombie_children(os.getpid(), outside_group=os.getpgid(0)):
        if pid in watched:
            continue
        try:
            waited, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if waited:
            reaped.append(ExitStatus.from_wait_status(pid, status))
    return reaped


def end_leftovers() -> list[int]:
    """SIGKILL and reap every process still descended from this one; their pids.

    Called as the daemon exits, after every pool closed: nothing it started may outlive it.
    A zygote cut off mid-import by a stop (its plugin hangs on import) is the case seen:
    its pool's close was itself cancelled as the event loop ended, and the zygote, stuck
    before it reads its control socket, never noticed the daemon was gone.
    """
    import psutil

    try:
        leftovers = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(leftovers, timeout=5.0)
    return [process.pid for process in leftovers]
