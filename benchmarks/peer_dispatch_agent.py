"""The peer's side of benchmarks/dispatch.py: the roomd bench plugin's logic on livekit-agents.

Runs only in the peer venv (benchmarks/peer-env.sh), through the peer's own CLI in
production mode:  python peer_dispatch_agent.py start   (LIVEKIT_URL/KEY/SECRET from the
environment, BENCH_IDLE idle processes). Load shedding is off, as it is for roomd in the
benchmark, so a busy shared machine cannot turn offers away.
"""

from __future__ import annotations

import math
import os

from livekit.agents import AgentServer, JobContext, JobProcess, cli
from stamps import stamp


def prewarm(_proc: JobProcess) -> None:
    stamp("prewarmed")


server = AgentServer(
    num_idle_processes=int(os.environ.get("BENCH_IDLE", "2")),
    load_threshold=math.inf,
    setup_fnc=prewarm,
    host="127.0.0.1",
    port=0,
)


@server.rtc_session(agent_name="dispatch-bench-peer")
async def entrypoint(ctx: JobContext) -> None:
    stamp("entry", job_id=ctx.job.id)
    await ctx.connect()
    stamp("connected", job_id=ctx.job.id)
    ctx.shutdown(reason="dispatch benchmark: job done")


if __name__ == "__main__":
    cli.run_app(server)
