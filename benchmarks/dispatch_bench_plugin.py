"""The roomd plugin benchmarks/dispatch.py serves: stamp, join the room, leave.

benchmarks/peer_dispatch_agent.py is the same logic written for livekit-agents.
"""

from __future__ import annotations

from livekit import rtc  # noqa: F401  (imported in the zygote, as every real agent's imports do)
from stamps import stamp

from roomd.agents import JobContext, JobProcess, WorkerOptions


def prewarm(_proc: JobProcess) -> None:
    stamp("prewarmed")


async def entrypoint(ctx: JobContext) -> None:
    stamp("entry", job_id=ctx.job.id)
    await ctx.connect()
    stamp("connected", job_id=ctx.job.id)
    ctx.shutdown("dispatch benchmark: job done")


options = WorkerOptions(
    entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, agent_name="dispatch-bench-roomd"
)
