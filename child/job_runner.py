"""Run one job in the child: start the entrypoint, watch it, decide how it ended.

The job ends when the entrypoint has returned and the room is not (or no longer) connected,
when ``ctx.shutdown()`` is called, when the supervisor sends Shutdown, or when the room
disconnects. An exception from the entrypoint makes the job FAILED with its message.

The result is handed to ``on_result`` while the agent is still in the room, and the room is
left only after it returns: livekit-server marks a job whose agent leaves first as FAILED.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import structlog

from roomd.agents.job import JobContext, _set_current

log = structlog.get_logger("roomd.child.job")


@dataclasses.dataclass(frozen=True)
class JobResult:
    status: str  # "SUCCESS" | "FAILED"
    error: str
    reason: str


@dataclasses.dataclass(frozen=True)
class StartedJob:
    """A job whose entrypoint task exists: what ``run_job`` watches until the job ends."""

    ctx: JobContext
    entry: asyncio.Task[None]
    disconnected: asyncio.Event


def start_entrypoint(ctx: JobContext, entrypoint: Callable[[JobContext], Awaitable[None]]) -> StartedJob:
    """Create the entrypoint's task; it runs at the loop's next turn, ahead of anything the
    caller starts after this (the task that watches it included), which is why this is not
    a coroutine: the assignment's critical path takes no extra turn of the loop."""
    room = ctx.room
    disconnected = asyncio.Event()
    room.on("disconnected", lambda *_: disconnected.set())  # before the entrypoint can connect
    context = contextvars.copy_context()
    context.run(_set_current, ctx)  # get_job_context() inside the entrypoint and its tasks
    # An async def entrypoint (WorkerOptions.validate): its call is a coroutine.
    entry = asyncio.get_running_loop().create_task(
        cast(Coroutine[Any, Any, None], entrypoint(ctx)), name=f"entrypoint {ctx.job.id}", context=context)
    return StartedJob(ctx=ctx, entry=entry, disconnected=disconnected)


async def run_job(
    started: StartedJob,
    *,
    shutdown_timeout: float,
    on_result: Callable[[JobResult], Awaitable[None]] | None = None,
) -> JobResult:
    """Watch a started job to its end: shutdown callbacks, the result, then leave the room."""
    ctx, entry, disconnected = started.ctx, started.entry, started.disconnected
    _set_current(ctx)  # shutdown callbacks run in this task
    room = ctx.room

    status, error = "SUCCESS", ""
    shutdown_wait = asyncio.create_task(ctx._shutdown_requested.wait())
    disconnect_wait = asyncio.create_task(disconnected.wait())
    try:
        await asyncio.wait({entry, shutdown_wait, disconnect_wait}, return_when=asyncio.FIRST_COMPLETED)
        if entry.done() and not entry.cancelled() and entry.exception() is not None:
            exc = entry.exception()
            assert exc is not None
            status, error = "FAILED", f"{type(exc).__name__}: {exc}"
            log.error("entrypoint raised", exc_info=exc)
            reason = "entrypoint raised"
        elif entry.done() and room.isconnected() and not ctx._shutdown_requested.is_set():
            # Returning from the entrypoint does not end a job that is still in its room.
            await asyncio.wait({shutdown_wait, disconnect_wait}, return_when=asyncio.FIRST_COMPLETED)
            reason = ctx.shutdown_reason or "room disconnected"
        elif entry.done():
            reason = ctx.shutdown_reason or "entrypoint returned"
        else:
            reason = ctx.shutdown_reason or "room disconnected"
    finally:
        shutdown_wait.cancel()
        disconnect_wait.cancel()
    ctx.shutdown(reason)

    bound = max(0.1, min(10.0, shutdown_timeout / 3))
    problems = await ctx._run_shutdown_callbacks(bound)
    if not entry.done():
        entry.cancel()
        try:
            async with asyncio.timeout(bound):
                await asyncio.wait({entry})
        except TimeoutError:
            problems.append(f"entrypoint did not stop within {bound}s of being cancelled")
        if entry.done() and not entry.cancelled() and entry.exception() is not None and status == "SUCCESS":
            exc = entry.exception()
            status, error = "FAILED", f"{type(exc).__name__}: {exc}"
    result = JobResult(status=status, error=error, reason=reason)
    if on_result is not None:
        await on_result(result)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(bound):
            if room.isconnected():
                await room.disconnect()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(bound):
            await ctx._close_api()
    for problem in problems:
        log.warning("job shutdown problem", problem=problem)
    return result
