"""The roomd plugin benchmarks/cluster.py serves: stamp, join the room, stay until it closes.

The job holds its slot until the benchmark deletes the room, so a round's burst meets
exactly the slots the daemons have.
"""

from __future__ import annotations

from livekit import rtc  # noqa: F401  (imported in the zygote, as every real agent's imports do)
from stamps import stamp

from roomd.agents import JobContext, JobProcess, WorkerOptions


def prewarm(_proc: JobProcess) -> None:
    stamp("prewarmed")


async def entrypoint(ctx: JobContext) -> None:
    stamp("entry", job_id=ctx.job.id, room=ctx.job.room.name)
    await ctx.connect()
    stamp("connected", job_id=ctx.job.id, room=ctx.job.room.name)
    # Returning while connected keeps the job (and its slot) until the room goes away.


options = WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, agent_name="cluster-bench")
