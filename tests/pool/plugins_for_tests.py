"""Small plugins for the pool tests; the job's metadata (JSON ``{"action": ...}``) picks the behaviour.

Actions: ok (return at once), hold (wait for shutdown), raise (entrypoint raises),
hang (block the event loop), hog (allocate ``mb`` MiB and hold), garbage (write bytes that
are no frame to the IPC socket), flood (log ``count`` events as fast as possible),
join (connect to the room and hold until shutdown), api (find the job's room through
ctx.api), context (report get_job_context, userdata and whether the room was used before
in a log event).
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import structlog

from roomd.agents import JobContext, JobProcess, JobRequest, WorkerOptions, get_job_context

log = structlog.get_logger("plugins_for_tests")


def _prewarm(proc: JobProcess) -> None:
    proc.userdata["prewarmed_by"] = proc.pid


async def _entrypoint(ctx: JobContext) -> None:
    meta = json.loads(ctx.job.metadata or "{}")
    action = meta.get("action", "ok")
    if action == "ok":
        return
    if action == "context":
        log.info("context", same=get_job_context() is ctx, prewarmed_by=ctx.proc.userdata.get("prewarmed_by"),
                 pid=os.getpid(), room_used_by=getattr(ctx.room, "used_by_test_job", ""),
                 room_connected=ctx.room.isconnected())
        ctx.room.used_by_test_job = ctx.job.id  # type: ignore[attr-defined]
        return
    if action == "hold":
        await asyncio.Event().wait()
    if action == "raise":
        raise RuntimeError(meta.get("message", "entrypoint was asked to fail"))
    if action == "hang":
        time.sleep(3600)  # blocks the loop: no more pongs
    if action == "hog":
        block = bytearray(int(meta.get("mb", 200)) * 1024 * 1024)
        for i in range(0, len(block), 4096):  # touch every page so it counts
            block[i] = 1
        ctx.proc.userdata["hog"] = block
        await asyncio.Event().wait()
    if action == "garbage":
        os.write(ctx.proc._ipc_fileno, b"\x00\x00\x00\x08notmsgpk")
        await asyncio.Event().wait()
    if action == "flood":
        for i in range(int(meta.get("count", 10000))):
            log.info("flood", i=i)
        await asyncio.sleep(0.5)
        return
    if action == "api":
        from livekit import api

        rooms = await ctx.api.room.list_rooms(api.ListRoomsRequest(names=[ctx.job.room.name]))
        if [r.name for r in rooms.rooms] != [ctx.job.room.name]:
            raise RuntimeError(f"room {ctx.job.room.name!r} not found through ctx.api")
        return
    if action == "join":
        await ctx.connect()
        ctx.add_shutdown_callback(_said_goodbye)
        await asyncio.Event().wait()
    raise ValueError(f"unknown action {action!r}")


async def _said_goodbye(reason: str) -> None:
    log.info("shutdown callback ran", reason=reason)


async def _request(req: JobRequest) -> None:
    meta = json.loads(req.job.metadata or "{}")
    if meta.get("action") == "refuse":
        await req.reject()
    elif meta.get("action") == "request_raise":
        raise RuntimeError("request_fnc exploded")
    else:
        await req.accept(name="tester", identity=f"tester-{req.id}", attributes={"k": "v"})


def _prewarm_raises(proc: JobProcess) -> None:
    raise RuntimeError("prewarm exploded on purpose")


def _prewarm_hangs(proc: JobProcess) -> None:
    time.sleep(3600)


normal = WorkerOptions(entrypoint_fnc=_entrypoint, prewarm_fnc=_prewarm, agent_name="pool-tests")
with_request = WorkerOptions(entrypoint_fnc=_entrypoint, prewarm_fnc=_prewarm, request_fnc=_request,
                             agent_name="pool-tests", num_idle_processes=1, job_memory_warn_mb=1000)
prewarm_raises = WorkerOptions(entrypoint_fnc=_entrypoint, prewarm_fnc=_prewarm_raises)
prewarm_hangs = WorkerOptions(entrypoint_fnc=_entrypoint, prewarm_fnc=_prewarm_hangs)
not_options = object()
