"""The kernel holds a job to its memory limit: each child in a memory cgroup of its own.

Real ``roomd run``, real livekit-server, the real kernel: on a machine whose memory cgroup
(v1 or delegated v2) the daemon may write to, a job that allocates past its limit is
stopped by the kernel at the limit, not by the sampler after it. The sampler's overshoot
for the same growth is in test_resources.py (``memory_cgroups = "off"``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from room_client import join, wait_for_agent, wait_for_attribute
from server_record import ServerRecord
from test_resources import alive
from test_server_status import dispatch, rooms

from roomd.daemon.pool.memory_cgroup import CHILD_PREFIX, MemoryCgroups

pytestmark = pytest.mark.livekit_server

LIMIT_MB = 200  # as the sampling test in test_resources.py, to compare
# The kernel counts in pages and charges per-CPU batches: the peak it records may pass the
# limit by that much at most, never by what a job allocates between two samples.
SLACK_MB = 2


@pytest.fixture(scope="module")
def kernel_limits() -> str:
    """The mechanism a daemon started from here uses (it inherits our cgroup)."""
    mechanism = MemoryCgroups.detect().mechanism
    if mechanism.base is None:
        pytest.skip(f"the kernel offers no memory cgroup here: {mechanism.why}")
    return mechanism.name


async def stopped_by_the_kernel(kernel: str, fault_daemon, server_record: ServerRecord, livekit_server, lkapi,
                                action: str, attribute: str, grower: str) -> tuple[dict, str]:
    """Run ``action`` under a LIMIT_MB limit and check the kernel stopped it at the limit: the
    server records the job FAILED for its memory limit, the peak is the limit, the cgroup is
    gone. (The event of the cgroup's removal, the job's ``attribute``.)"""
    daemon = await fault_daemon({"pool": {"job_memory_limit_mb": LIMIT_MB, "memory_sample_interval": 5.0}})
    said = await daemon.wait_event(lambda e: e.get("event") == "memory limits")
    assert said["held_by"].startswith(f"{kernel} (kernel-enforced)"), said
    room = rooms(action, 1)[0]
    caller = await join(livekit_server, room, "caller")
    try:
        await dispatch(lkapi, room, action)
        agent = await wait_for_agent(caller)
        value = await wait_for_attribute(caller, agent, attribute)
        job = (await server_record.wait_for_rooms([room], timeout=60))[room]
    finally:
        await caller.disconnect()
    removed = await daemon.wait_event(
        lambda e: e.get("event") == "memory cgroup removed after the kernel held its limit", timeout=30)
    # The kernel stopped it, not the sampler (which would have said so).
    assert not [e for e in daemon.events if e.get("event") == "child over memory limit; killing it"]
    assert job.status == "JS_FAILED", job
    assert f"the kernel ended the job at its {LIMIT_MB} MB limit ({kernel}" in job.error, job
    assert removed["oom_kills"] >= 1 and removed["limit_mb"] == LIMIT_MB, removed
    print(f"{kernel}: memory limit {LIMIT_MB} MB, peak {removed['peak_mb']} MB ({grower} growing about 320 MB/s)")
    assert removed["peak_mb"] <= LIMIT_MB + SLACK_MB, removed
    assert not Path(removed["cgroup"]).exists()
    return removed, value


async def test_a_job_allocating_past_its_limit_is_stopped_by_the_kernel_at_the_limit(
        kernel_limits: str, fault_daemon, server_record: ServerRecord, livekit_server, lkapi) -> None:
    removed, job_pid = await stopped_by_the_kernel(kernel_limits, fault_daemon, server_record, livekit_server,
                                                   lkapi, "burst", "job_pid", "the job's own process")
    assert removed["cgroup"].endswith(f"/{CHILD_PREFIX}{job_pid}"), removed


async def test_a_helper_allocating_past_the_limit_is_counted_and_its_job_ended(
        kernel_limits: str, fault_daemon, server_record: ServerRecord, livekit_server, lkapi) -> None:
    # v1 kills the helper alone; the daemon ends the rest of the job for the same cause.
    _removed, helper = await stopped_by_the_kernel(kernel_limits, fault_daemon, server_record, livekit_server,
                                                   lkapi, "grow", "helper_pids", "a helper process")
    async with asyncio.timeout(10):
        while alive(int(helper)):
            await asyncio.sleep(0.1)
