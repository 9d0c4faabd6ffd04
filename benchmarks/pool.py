"""Pool benchmark: warm-up time, idle child memory (COW sharing), IPC round trip, burst to running.

    python benchmarks/pool.py [--children 8] [--burst 30] [--idle 4]

The pool has no event for "n children idle", so the benchmark polls its stats every 2 ms;
the children run in other processes and the poll costs the supervisor side microseconds.

Prints a table; docs/benchmarks.md ("pool") records a run with this command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import msgspec
import psutil
import uvloop
from livekit.protocol import agent as agent_pb

from roomd.agents.job_request import AcceptArguments
from roomd.daemon.config import PoolConfig
from roomd.daemon.jobs import Job, JobLaunch
from roomd.daemon.logging import configure_logging
from roomd.daemon.pool import Pool
from roomd.daemon.pool.zygote import child_environment

HERE = Path(__file__).parent
TARGET = "pool_bench_plugin:options"
ROWS: list[tuple[str, str]] = []


def row(name: str, value: str) -> None:
    ROWS.append((name, value))
    print(f"  {name:<58} {value}", flush=True)


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }


def config(**changes: object) -> PoolConfig:
    base = PoolConfig(
        num_idle_processes=0,
        max_concurrent_spawns=4,
        initialize_timeout=30.0,
        shutdown_timeout=5.0,
        ping_interval=1.0,
        ping_timeout=30.0,
        memory_sample_interval=60.0,
        job_memory_warn_mb=0.0,
    )
    return msgspec.structs.replace(base, **changes)


def launch(i: int, metadata: str) -> JobLaunch:
    job = agent_pb.Job(id=f"AJ_bench_{i}_{os.urandom(3).hex()}", metadata=metadata)
    job.room.name = f"bench-{i}"
    return JobLaunch(
        job=job,
        url="ws://127.0.0.1:1",
        token="x",
        accept=AcceptArguments(identity=f"a{i}"),
        worker_id="W_bench",
        plugin="bench",
    )


def mem_mb(pid: int) -> tuple[float, float, float]:
    info = psutil.Process(pid).memory_full_info()
    return info.pss / 2**20, info.uss / 2**20, info.rss / 2**20


async def wait_idle(pool: Pool, n: int, timeout: float = 120.0) -> None:
    async with asyncio.timeout(timeout):
        while pool.stats().idle < n:
            await asyncio.sleep(0.002)


async def bench_warm_and_memory(n: int) -> None:
    pool = Pool(plugin="bench", target=TARGET, config=config(num_idle_processes=n), env=env())
    started = time.perf_counter()
    await pool.start()
    await wait_idle(pool, 1)
    first = time.perf_counter() - started
    await wait_idle(pool, n)
    total = time.perf_counter() - started
    row("zygote start + first prewarmed child", f"{first * 1000:.0f} ms")
    row(f"{n} children prewarmed (max_concurrent_spawns=4)", f"{total * 1000:.0f} ms")
    await asyncio.sleep(1.0)  # let children settle
    pids = [c.pid for c in pool.snapshot().children]
    samples = [mem_mb(pid) for pid in pids]
    row(
        f"idle child PSS, mean of {n} (plugin holds {64} MB at import)",
        f"{statistics.mean(s[0] for s in samples):.1f} MB",
    )
    row("idle child USS (private), mean", f"{statistics.mean(s[1] for s in samples):.1f} MB")
    row("idle child RSS, mean", f"{statistics.mean(s[2] for s in samples):.1f} MB")
    await pool.aclose(timeout=5.0)

    # Baseline: a plain interpreter that imports the same plugin by itself (no sharing).
    code = (
        "import sys, time, pool_bench_plugin, roomd.child.runtime, uvloop; "
        "print('ready', flush=True); time.sleep(60)"
    )
    plain = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=child_environment(env()), stdout=asyncio.subprocess.PIPE
    )
    assert plain.stdout is not None
    await plain.stdout.readline()
    await asyncio.sleep(0.5)  # as for the children: let its start-up garbage settle
    pss, uss, rss = mem_mb(plain.pid)
    row("plain spawned interpreter, same imports: PSS", f"{pss:.1f} MB")
    row("plain spawned interpreter, same imports: USS", f"{uss:.1f} MB")
    row("plain spawned interpreter, same imports: RSS", f"{rss:.1f} MB")
    plain.kill()
    await plain.wait()


async def bench_ipc(samples: int) -> None:
    pool = Pool(
        plugin="bench",
        target=TARGET,
        config=config(num_idle_processes=1, ping_interval=0.002),
        env=env(),
    )
    await pool.start()
    await wait_idle(pool, 1)
    async with asyncio.timeout(60):
        while pool.stats().ipc_rtt_count < samples:
            await asyncio.sleep(0.05)
    rtts = sorted(pool.stats().ipc_rtt_recent_seconds)
    row(
        f"IPC Ping->Pong round trip (msgspec frames), median of {len(rtts)}",
        f"{statistics.median(rtts) * 1e6:.0f} µs",
    )
    row("IPC Ping->Pong round trip, p99", f"{rtts[int(len(rtts) * 0.99) - 1] * 1e6:.0f} µs")
    await pool.aclose(timeout=5.0)

    times = raw_pipe_round_trips(2000, gap=0.0)
    row(
        "raw pipe ping-pong (blocking, 8 bytes, back to back), median of 2000",
        f"{statistics.median(times) * 1e6:.0f} µs",
    )
    # The pool pings every 2 ms, so both sides are asleep when a ping comes; the same cadence
    # on the raw pipe shows what waking two processes costs by itself.
    times = raw_pipe_round_trips(500, gap=0.002)
    row(
        "raw pipe ping-pong, one every 2 ms like the pool's pings, median of 500",
        f"{statistics.median(times) * 1e6:.0f} µs",
    )


def raw_pipe_round_trips(count: int, gap: float) -> list[float]:
    """The floor under any IPC: 8 bytes to a forked echo process and back, blocking reads."""
    down_r, down_w = os.pipe()  # parent -> child
    up_r, up_w = os.pipe()  # child -> parent
    pid = os.fork()
    if pid == 0:
        # Only the child's own ends stay open here, so the parent closing its write end is
        # an EOF for this loop and the child exits.
        os.close(down_w)
        os.close(up_r)
        while data := os.read(down_r, 8):
            os.write(up_w, data)
        os._exit(0)
    os.close(down_r)
    os.close(up_w)
    times = []
    for _ in range(count):
        t = time.perf_counter()
        os.write(down_w, b"pingpong")
        os.read(up_r, 8)
        times.append(time.perf_counter() - t)
        if gap:
            time.sleep(gap)
    os.close(down_w)
    os.waitpid(pid, 0)
    os.close(up_r)
    return sorted(times)


async def bench_burst(n: int, idle: int) -> None:
    pool = Pool(
        plugin="bench",
        target=TARGET,
        config=config(num_idle_processes=idle, max_concurrent_spawns=4),
        env=env(),
    )
    await pool.start()
    await wait_idle(pool, idle)
    started = time.perf_counter()

    async def run_one(i: int) -> float:
        # Each job's own clock stops when its entrypoint runs: launch() itself waits for a
        # child, so timing after a gather of all launches would hide the early ones.
        job = Job.direct(launch(i, "hold"))
        await pool.launch(job)
        await job.wait_running()
        return time.perf_counter() - started

    firsts = sorted(await asyncio.gather(*(run_one(i) for i in range(n))))
    row(f"burst of {n} jobs, {idle} idle children: first job running", f"{firsts[0] * 1000:.0f} ms")
    row(
        f"burst of {n} jobs: job #{idle} running (last one on a prewarmed child)",
        f"{firsts[idle - 1] * 1000:.0f} ms",
    )
    row(f"burst of {n} jobs: all running", f"{firsts[-1] * 1000:.0f} ms")
    await pool.aclose(timeout=5.0)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=8)
    parser.add_argument("--burst", type=int, default=30)
    parser.add_argument("--idle", type=int, default=4)
    args = parser.parse_args()
    # The pool's own log lines (every child's state) would bury the table; warnings still show.
    configure_logging("console", "warning", stream=sys.stderr)
    print(f"roomd pool benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    await bench_warm_and_memory(args.children)
    await bench_ipc(500)
    await bench_burst(args.burst, args.idle)
    print("\n| measure | value |\n| --- | --- |")
    for name, value in ROWS:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    uvloop.run(main())
