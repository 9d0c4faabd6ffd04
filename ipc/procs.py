"""A job child's process group: the helpers a job starts, and how they are ended.

Each child leads its own process group (the zygote calls ``setpgid`` after forking it), so
every process a job starts (``subprocess.Popen``, a shell, a helper that double-forks) is
in that group unless it calls ``setsid``. Both sides of the pipe use this: the child ends
its job's helpers when the job ends, and the supervisor ends what is left of a child's
group when the child itself dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Collection
from pathlib import Path

POLL_INTERVAL = 0.05


def _processes() -> list[tuple[int, bytes, int, int]]:
    """(pid, state, ppid, pgrp) of every process, read from /proc/<pid>/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) >= 3:
            found.append((int(entry.name), fields[0], int(fields[1]), int(fields[2])))
    return found


def group_members(pgid: int, *, exclude: Collection[int] = ()) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    return [pid for pid, state, _ppid, pgrp in _processes()
            if pgrp == pgid and state not in (b"Z", b"X") and pid not in exclude]


def zombie_children(ppid: int, *, outside_group: int | None = None) -> list[int]:
    """Exited, unreaped children of ``ppid`` (only those not in process group ``outside_group``)."""
    return [pid for pid, state, parent, pgrp in _processes()
            if parent == ppid and state == b"Z" and pgrp != outside_group]


def reap_children(pids: Collection[int]) -> None:
    """Reap those of ``pids`` that are our own exited children (others are left alone)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _signal_all(pids: Collection[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def end_group(pgid: int, grace: float, *, exclude: Collection[int] = ()) -> list[int]:
    """SIGTERM every member of ``pgid`` (but ``exclude``), SIGKILL those left after ``grace``.

    Returns the pids that were ended. Members that are our own children are reaped; the
    others are reaped by whoever inherits them (the supervisor, as child subreaper).
    """
    first = group_members(pgid, exclude=exclude)
    if not first:
        return []
    _signal_all(first, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    left = first
    while left and loop.time() < deadline:
        await asyncio.sleep(POLL_INTERVAL)
        reap_children(first)
        left = group_members(pgid, exclude=exclude)
    if left:
        _signal_all(left, signal.SIGKILL)
        for _ in range(20):  # SIGKILL is not instant; a second at most
            await asyncio.sleep(POLL_INTERVAL)
            reap_children(left)
            if not group_members(pgid, exclude=exclude):
                break
    reap_children(first)
    return first
