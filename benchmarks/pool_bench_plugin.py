"""The plugin benchmarks/pool.py runs: "model weights" loaded at import (so in the zygote,
shared by every child), numpy and livekit.rtc imported like a real voice agent."""

from __future__ import annotations

import asyncio

import numpy as np
from livekit import rtc  # noqa: F401  (what real agents import; its native runtime starts on use)

from roomd.agents import JobContext, WorkerOptions

MODEL_MB = 64
# Written at import: real pages, in the zygote, shared copy-on-write by every child it forks.
WEIGHTS = np.full(MODEL_MB * 1024 * 1024 // 8, 1.0, dtype=np.float64)


async def entrypoint(ctx: JobContext) -> None:
    if ctx.job.metadata == "hold":
        await asyncio.Event().wait()


options = WorkerOptions(entrypoint_fnc=entrypoint, agent_name="pool-bench")
