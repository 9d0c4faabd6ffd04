"""The pool with real processes: jobs, crashes, hangs, memory, bad prewarm, bad bytes, churn, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import structlog

from roomd.daemon.jobs import JobEndedEarly, JobStatus, LaunchError
from roomd.daemon.pool import ChildState, PoolState, RequestEvaluationError
from roomd.ipc import EXIT_RETIRED

from pool_helpers import fast_config, launched, make_launch, zombies

WAIT = 20.0  # generous bound on every wait; nothing here should come near it


async def test_prewarmed_child_runs_a_job_with_its_context_and_userdata(make_pool) -> None:
    with structlog.testing.capture_logs() as logs:
        pool = await make_pool()
        assert await pool.wait_ready(WAIT) is PoolState.READY
        handle = await launched(pool, make_launch("context", room="ctx-room"))
        await asyncio.wait_for(handle.wait_running(), WAIT)
        outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    assert outcome.status is JobStatus.SUCCESS
    event = next(e for e in logs if e["event"] == "context")
    # get_job_context() is the entrypoint's ctx, prewarm ran in the same process, and the
    # supervisor bound pid, job and room to the child's event.
    assert event["same"] is True
    assert event["prewarmed_by"] == event["pid"] == handle.runner.pid
    assert event["job_id"] == handle.id and event["room"] == "ctx-room"
    assert event["plugin"] == "tests"


async def test_entrypoint_exception_is_a_failed_job_with_its_message(make_pool) -> None:
    pool = await make_pool()
    handle = await launched(pool, make_launch("raise", message="the model is gone"))
    outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error == "RuntimeError: the model is gone"


async def test_child_retires_after_one_job_with_the_retired_exit_code(make_pool) -> None:
    pool = await make_pool()
    handle = await launched(pool, make_launch("ok"))
    await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    async with asyncio.timeout(WAIT):
        while pool.stats().restarts.get("retired", 0) < 1:
            await asyncio.sleep(0.02)
    assert "crashed" not in pool.stats().restarts
    assert EXIT_RETIRED == 75


async def test_the_idle_set_is_refilled_once_the_job_has_started(make_pool) -> None:
    # Forking and prewarming the next child would take the CPU the job's own start needs.
    pool = await make_pool(config=fast_config(num_idle_processes=1, ping_timeout=30.0))
    await _settled(pool)
    (idle,) = [c.pid for c in pool.snapshot().children]
    os.kill(idle, signal.SIGSTOP)  # it gets the job but cannot say it started
    try:
        handle = await launched(pool, make_launch("hold"))
        await asyncio.sleep(0.3)  # the manager had every chance to start a spawn
        assert pool.stats().spawning == 0
        assert len(pool.snapshot().children) == 1
    finally:
        os.kill(idle, signal.SIGCONT)
    await asyncio.wait_for(handle.wait_running(), WAIT)
    async with asyncio.timeout(WAIT):  # and then back to its idle target
        while pool.stats().idle < 1:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(handle.terminate("test over"), WAIT)


async def test_a_reused_child_serves_max_jobs_per_process_jobs(make_pool) -> None:
    # No idle target: the first launch spawns on demand, and the only child to come back idle is ours.
    with structlog.testing.capture_logs() as logs:
        pool = await make_pool(config=fast_config(max_jobs_per_process=2, num_idle_processes=0))
        first = await launched(pool, make_launch("context"))
        await asyncio.wait_for(first.wait_run_ended(), WAIT)
        async with asyncio.timeout(WAIT):  # the same child comes back to the idle set
            while not any(c.pid == first.runner.pid and c.state == "idle" for c in pool.snapshot().children):
                await asyncio.sleep(0.02)
        second = await launched(pool, make_launch("context"))
        await asyncio.wait_for(second.wait_run_ended(), WAIT)
    assert second.runner.pid == first.runner.pid
    # Each job gets a room of its own, never connected before (the child makes the next
    # job's room while idle): the second job does not see the first one's.
    seen = [(e["job_id"], e["room_used_by"], e["room_connected"]) for e in logs if e["event"] == "context"]
    assert seen == [(first.id, "", False), (second.id, "", False)]
    async with asyncio.timeout(WAIT):  # and after its second job it retires
        while pool.stats().restarts.get("retired", 0) < 1:
            await asyncio.sleep(0.02)


async def test_sigkill_mid_job_fails_the_job_with_the_signal(make_pool) -> None:
    pool = await make_pool()
    handle = await launched(pool, make_launch("hold"))
    await asyncio.wait_for(handle.wait_running(), WAIT)
    os.kill(handle.runner.pid, signal.SIGKILL)
    outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    assert outcome.status is JobStatus.FAILED
    assert "killed by SIGKILL" in outcome.error
    # The pool lives on and runs the next job.
    nxt = await launched(pool, make_launch("ok"))
    assert (await asyncio.wait_for(nxt.wait_run_ended(), WAIT)).status is JobStatus.SUCCESS


async def test_hung_child_is_killed_and_its_job_fails_unresponsive(make_pool) -> None:
    with structlog.testing.capture_logs() as logs:
        pool = await make_pool()
        handle = await launched(pool, make_launch("hang"))
        await asyncio.wait_for(handle.wait_running(), WAIT)
        outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error.startswith("unresponsive")
    assert any(e["event"] == "dumping child stacks before killing it" for e in logs)
    assert pool.stats().restarts.get("unresponsive") == 1


async def test_memory_hog_past_the_limit_fails_memory_limit(make_pool) -> None:
    with structlog.testing.capture_logs() as logs:
        pool = await make_pool(config=fast_config(job_memory_warn_mb=100, job_memory_limit_mb=150))
        handle = await launched(pool, make_launch("hog", mb=300))
        outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error.startswith("memory limit exceeded (")
    assert "MB > 150 MB)" in outcome.error
    assert pool.stats().restarts.get("memory_limit") == 1
    warnings = [e for e in logs if e["event"] == "child memory above warning level"]
    assert all(e["warn_mb"] == 100 for e in warnings)


async def test_prewarm_raising_backs_off_and_ends_fatal_until_reset(make_pool) -> None:
    pool = await make_pool("plugins_for_tests:prewarm_raises", config=fast_config(max_start_failures=3))
    assert await pool.wait_ready(WAIT) is PoolState.FATAL
    stats = pool.stats()
    assert stats.consecutive_start_failures == 3
    assert "prewarm_fnc raised RuntimeError: prewarm exploded on purpose" in stats.last_error
    with pytest.raises(LaunchError, match="FATAL after 3 consecutive start failures"):
        await launched(pool, make_launch("ok"))
    pool.reset()
    assert pool.state is PoolState.STARTING
    assert await pool.wait_ready(WAIT) is PoolState.FATAL  # the code is still broken
    assert pool.stats().start_failures_total == 6


async def test_prewarm_timing_out_is_a_start_failure(make_pool) -> None:
    # The same timeout bounds the zygote's import of the plugin: 3 s, not less, so that on a
    # loaded machine it is the hanging prewarm that times out, not the import.
    pool = await make_pool("plugins_for_tests:prewarm_hangs",
                           config=fast_config(initialize_timeout=3.0, max_start_failures=2))
    assert await pool.wait_ready(WAIT) is PoolState.FATAL
    assert "did not initialize within 3.0s" in pool.last_error
    assert pool.stats().restarts.get("init_timeout") == 2


async def test_a_plugin_that_does_not_import_makes_the_pool_fatal_with_the_reason(make_pool) -> None:
    pool = await make_pool("no_such_module_here:options", config=fast_config(max_start_failures=2))
    assert await pool.wait_ready(WAIT) is PoolState.FATAL
    assert "importing 'no_such_module_here' failed: ModuleNotFoundError" in pool.last_error
    bad = await make_pool("plugins_for_tests:not_options", config=fast_config(max_start_failures=1))
    assert await bad.wait_ready(WAIT) is PoolState.FATAL
    assert "not a roomd.agents.WorkerOptions" in bad.last_error


async def test_garbage_from_a_child_ends_it_and_fails_its_job_but_not_the_pool(make_pool) -> None:
    with structlog.testing.capture_logs() as logs:
        pool = await make_pool()
        handle = await launched(pool, make_launch("garbage"))
        outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error.startswith("protocol error:")
    assert any(e["event"] == "protocol error from child; ending it" for e in logs)
    nxt = await launched(pool, make_launch("ok"))
    assert (await asyncio.wait_for(nxt.wait_run_ended(), WAIT)).status is JobStatus.SUCCESS


async def test_garbage_to_a_child_ends_it_with_the_protocol_exit_code(make_pool) -> None:
    pool = await make_pool()
    handle = await launched(pool, make_launch("hold"))
    await asyncio.wait_for(handle.wait_running(), WAIT)
    child = pool._children[handle.runner.pid]
    child._channel.write_raw(b"\x00\x00\x00\x03abc")  # as a corrupted supervisor would
    outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    assert outcome.status is JobStatus.FAILED
    assert "exit code 76" in outcome.error
    assert pool.stats().restarts.get("protocol_error") == 1


async def test_terminate_ends_a_job_and_escalates_for_a_stuck_one(make_pool) -> None:
    pool = await make_pool(config=fast_config(num_idle_processes=2, ping_timeout=30.0))
    polite = await launched(pool, make_launch("hold"))
    stuck = await launched(pool, make_launch("hang"))
    await asyncio.wait_for(asyncio.gather(polite.wait_running(), stuck.wait_running()), WAIT)
    async with asyncio.timeout(WAIT):
        await asyncio.gather(polite.terminate("server asked"), stuck.terminate("server asked"))
    assert (await polite.wait_run_ended()).status is JobStatus.SUCCESS
    stuck_outcome = await stuck.wait_run_ended()
    assert stuck_outcome.status is JobStatus.FAILED
    assert "did not stop within 2.0s" in stuck_outcome.error


async def test_shutdown_with_jobs_running_is_bounded(make_pool) -> None:
    pool = await make_pool(config=fast_config(num_idle_processes=3))
    handles = [await launched(pool, make_launch("hold")) for _ in range(3)]
    await asyncio.wait_for(asyncio.gather(*(h.wait_running() for h in handles)), WAIT)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(pool.aclose(timeout=2.0), WAIT)
    outcomes = [h.run_outcome.done() for h in handles]
    assert all(outcomes)
    assert pool.state is PoolState.CLOSED
    assert pool.stats().children == 0
    assert loop.time() - started < WAIT
    assert zombies() == []


async def test_a_log_flood_is_throttled_and_counted(make_pool) -> None:
    with structlog.testing.capture_logs() as logs:
        pool = await make_pool()
        handle = await launched(pool, make_launch("flood", count=20000))
        outcome = await asyncio.wait_for(handle.wait_run_ended(), WAIT)

        async def drops_reported() -> None:
            # The child reports what it dropped as it leaves, after the job's final status.
            while not any(e["event"] == "child log events dropped" for e in logs):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(drops_reported(), WAIT)
    assert outcome.status is JobStatus.SUCCESS
    floods = [e for e in logs if e["event"] == "flood"]
    drops = [e for e in logs if e["event"] == "child log events dropped"]
    # The child's token bucket (burst 1000, 200/s) let through far fewer than were logged, and
    # said how many it dropped, bound to the job like any other child event.
    assert 0 < len(floods) < 5000
    assert drops and drops[0]["job_id"] == handle.id
    assert len(floods) + sum(e["dropped"] for e in drops) <= 20000


async def test_wait_running_raises_when_the_job_ends_before_it_ran(make_pool) -> None:
    pool = await make_pool()
    assert await pool.wait_ready(WAIT) is PoolState.READY
    idle = next(c.pid for c in pool.snapshot().children if c.state == "idle")
    os.kill(idle, signal.SIGSTOP)  # it cannot read its StartJob: the entrypoint never runs
    handle = await launched(pool, make_launch("hold"))
    assert handle.runner.pid == idle
    os.kill(idle, signal.SIGKILL)
    assert (await asyncio.wait_for(handle.wait_run_ended(), WAIT)).status is JobStatus.FAILED
    with pytest.raises(JobEndedEarly):
        await handle.wait_running()


async def test_wait_running_returns_for_a_job_that_ran_however_soon_it_ended(make_pool) -> None:
    pool = await make_pool()
    handle = await launched(pool, make_launch("hold"))
    await asyncio.wait_for(handle.wait_running(), WAIT)
    os.kill(handle.runner.pid, signal.SIGKILL)
    await asyncio.wait_for(handle.wait_run_ended(), WAIT)
    await handle.wait_running()  # it did run: the link reports RUNNING, then the end


async def test_describe_and_request_evaluation_run_plugin_code_in_children(make_pool) -> None:
    pool = await make_pool("plugins_for_tests:with_request")
    description = await pool.describe(WAIT)
    assert description.agent_name == "pool-tests"
    assert description.custom_request_fnc is True
    assert description.overrides == {"num_idle_processes": 1.0, "job_memory_warn_mb": 1000.0}
    assert pool.limits.job_memory_warn_mb == 1000.0
    accepted = await pool.evaluate_request(make_launch("accept", job_id="AJ_1").job)
    assert accepted.accept is not None
    assert accepted.accept.identity == "tester-AJ_1" and accepted.accept.attributes == {"k": "v"}
    refused = await pool.evaluate_request(make_launch("refuse").job)
    assert refused.accept is None
    with pytest.raises(RequestEvaluationError, match="request_fnc raised RuntimeError: request_fnc exploded"):
        await pool.evaluate_request(make_launch("request_raise").job)
    # The child answering request_fnc is not one of the prewarmed idle children.
    states = sorted(c.state for c in pool.snapshot().children)
    assert states.count("request_host") == 1
    assert states.count("idle") == pool.snapshot().stats.idle == pool.limits.num_idle_processes
    # The default request_fnc is answered without a child.
    plain = await make_pool()
    decision = await plain.evaluate_request(make_launch("ok", job_id="AJ_2").job)
    assert decision.accept is not None and decision.accept.identity == "agent-AJ_2"


async def test_launch_for_another_plugin_is_refused(make_pool) -> None:
    pool = await make_pool(start=False)
    launch = make_launch("ok")
    other = type(launch)(**{**launch.__dict__, "plugin": "someone-else"})
    with pytest.raises(LaunchError, match="for plugin 'someone-else'"):
        await launched(pool, other)


async def test_300_jobs_keep_open_fds_flat_and_leave_no_zombies(make_pool) -> None:
    pool = await make_pool(config=fast_config(num_idle_processes=4, max_concurrent_spawns=4))
    assert await pool.wait_ready(WAIT) is PoolState.READY

    async def run(n: int) -> None:
        for _ in range(n):
            handle = await launched(pool, make_launch("ok"))
            assert (await asyncio.wait_for(handle.wait_run_ended(), WAIT)).status is JobStatus.SUCCESS

    await asyncio.gather(*(run(25) for _ in range(2)))  # warm up: 50 jobs
    await _settled(pool)
    fds_before = len(os.listdir("/proc/self/fd"))
    await asyncio.gather(*(run(125) for _ in range(2)))  # 250 more
    await _settled(pool)
    # A retired child leaves the pool's books before its sockets are closed (ending.py closes
    # them after ending its process group): wait for those, a leak would never get there.
    async with asyncio.timeout(WAIT):
        while len(os.listdir("/proc/self/fd")) > fds_before:
            await asyncio.sleep(0.05)
    assert zombies() == []
    stats = pool.stats()
    assert stats.jobs_ended == {"SUCCESS": 300}
    assert stats.restarts.get("retired", 0) >= 295
    assert not set(stats.restarts) - {"retired"}


async def _settled(pool) -> None:
    """Wait until the pool is back to its idle target with nothing starting or exiting."""
    async with asyncio.timeout(WAIT):
        while True:
            snap = pool.snapshot()
            if (snap.stats.spawning == 0 and snap.stats.idle == pool.limits.num_idle_processes
                    and all(c.state == ChildState.IDLE.value for c in snap.children)):
                return
            await asyncio.sleep(0.05)
