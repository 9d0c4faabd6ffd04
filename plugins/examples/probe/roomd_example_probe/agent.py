"""The probe agent: joins the room and then does what the job's metadata says.

Metadata is JSON: ``{"action": "hold" | "leave" | "fail", "message": "..."}``.
- hold:  stay in the room until the job is shut down or every other participant left
- leave: end the job right after joining (a normal, successful end)
- fail:  raise with ``message`` after joining (the job must be reported FAILED)
"""

from __future__ import annotations

import asyncio
import json
import os

from livekit import rtc

from roomd.agents import JobContext, JobProcess, JobRequest, WorkerOptions

from . import VERSION


def prewarm(proc: JobProcess) -> None:
    proc.userdata["prewarmed_by"] = os.getpid()


async def request(req: JobRequest) -> None:
    metadata = _metadata(req.job.metadata)
    if metadata.get("action") == "refuse":
        await req.reject()
        return
    await req.accept(name="probe", attributes={"plugin_version": VERSION})


async def entrypoint(ctx: JobContext) -> None:
    metadata = _metadata(ctx.job.metadata)
    await ctx.connect()
    # Watch from the moment we are in: a caller may leave while the attributes are sent.
    everyone_left = _watch_for_everyone_leaving(ctx.room)
    await ctx.room.local_participant.set_attributes({
        "plugin_version": VERSION,
        "prewarmed_by": str(ctx.proc.userdata.get("prewarmed_by", "")),
        "job_pid": str(os.getpid()),
    })
    action = metadata.get("action", "hold")
    if action == "fail":
        raise RuntimeError(metadata.get("message", "probe was asked to fail"))
    if action == "leave":
        ctx.shutdown("probe was asked to leave")
        return
    await everyone_left.wait()
    ctx.shutdown("every other participant left")


def _watch_for_everyone_leaving(room: rtc.Room) -> asyncio.Event:
    """Set once a participant has been in the room and then everyone else has left."""
    everyone_left = asyncio.Event()
    seen_someone = bool(room.remote_participants)

    def on_connected(_participant: rtc.RemoteParticipant) -> None:
        nonlocal seen_someone
        seen_someone = True

    def on_disconnected(_participant: rtc.RemoteParticipant) -> None:
        if seen_someone and not room.remote_participants:
            everyone_left.set()

    room.on("participant_connected", on_connected)
    room.on("participant_disconnected", on_disconnected)
    return everyone_left


def _metadata(raw: str) -> dict[str, str]:
    try:
        value = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


options = WorkerOptions(
    entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, request_fnc=request, agent_name="roomd-probe"
)
