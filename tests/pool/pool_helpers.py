"""Helpers for the pool tests: short deadlines, the test plugins' environment, job launches."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest
from livekit.protocol import agent as agent_pb

from roomd.agents.job_request import AcceptArguments
from roomd.daemon.config import PoolConfig
from roomd.daemon.jobs import Job, JobLaunch
from roomd.daemon.pool import Pool

HERE = Path(__file__).parent

FAST = PoolConfig(
    num_idle_processes=1, max_jobs_per_process=1, max_concurrent_spawns=2, initialize_timeout=5.0,
    shutdown_timeout=2.0, ping_interval=0.2, ping_timeout=1.5, memory_sample_interval=0.2,
    job_memory_warn_mb=0.0, job_memory_limit_mb=0.0, max_start_failures=3, start_backoff_max=0.2,
)


def fast_config(**changes: Any) -> PoolConfig:
    return msgspec.structs.replace(FAST, **changes)


def plugin_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}






def zombies() -> list[str]:
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {p.name()}")
        except psutil.NoSuchProcess:
            pass
    return out


def make_launch(action: str = "ok", *, job_id: str = "", room: str = "test-room", url: str = "ws://127.0.0.1:1",
                token: str = "not-a-token", identity: str = "agent-test", **meta: Any) -> JobLaunch:
    job = agent_pb.Job(id=job_id or f"AJ_{action}_{os.urandom(4).hex()}",
                       metadata=json.dumps({"action": action, **meta}), type=agent_pb.JT_ROOM)
    job.room.name = room
    return JobLaunch(job=job, url=url, token=token, accept=AcceptArguments(identity=identity),
                     worker_id="W_test", plugin="tests")


async def launched(pool: Pool, launch: JobLaunch) -> Job:
    """``launch`` handed straight to ``pool`` (no link, no admission): the job, now in a child."""
    job = Job.direct(launch)
    await pool.launch(job)
    return job
