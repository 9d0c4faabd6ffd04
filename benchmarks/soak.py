"""Soak: many short jobs through ``roomd run``, and what the server recorded for each.

    python benchmarks/soak.py [--jobs 1000] [--concurrency 4] [--every 100]

Starts ``livekit-server --dev`` on 127.0.0.1 and a ``roomd run`` daemon serving the probe
example plugin (one job per child, the default), then dispatches ``--jobs`` jobs, each in
a room of its own, at most ``--concurrency`` at a time. Each job joins its room, announces
itself and calls ``ctx.shutdown()``. Every ``--every`` jobs it prints the supervisor's RSS,
open file descriptors, threads and zombie children, and the statuses the *server* recorded
so far (its "job ended" log lines, read by tests/faults/server_record.py). Not a test: the
figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
from livekit import api
from roomd.daemon.devserver import DevServer, DevServerAddress

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "faults"))

from server_record import ServerRecord

AGENT = "roomd-probe"


def daemon_config(work: Path, address: DevServerAddress) -> Path:
    path = work / "roomd.toml"
    path.write_text(
        f'[livekit]\nurl = "{address.url}"\napi_key = "{address.api_key}"\n'
        f'api_secret = "{address.api_secret}"\n'
        '[daemon]\nhttp_port = 0\n'
        "[admission]\nload_threshold = 1000.0\n"  # a shared machine's neighbours must not refuse jobs
        "[pool]\nnum_idle_processes = 2\n"
        '[plugins]\nenabled = ["probe"]\n')
    return path


def supervisor_figures(pid: int) -> str:
    proc = psutil.Process(pid)
    zombies = [c for c in proc.children() if c.status() == psutil.STATUS_ZOMBIE]
    return (f"rss {proc.memory_info().rss / 2**20:6.1f} MB  fds {proc.num_fds():4d}  "
            f"threads {proc.num_threads():3d}  zombies {len(zombies)}")


async def soak(args: argparse.Namespace, address: DevServerAddress, record: ServerRecord, work: Path) -> int:
    log = (work / "roomd.log").open("wb")
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "roomd.daemon.cli", "run", "--config", str(daemon_config(work, address)),
        "--log-format", "json", stdout=log, stderr=asyncio.subprocess.STDOUT)
    tag = uuid.uuid4().hex[:6]
    rooms = [f"soak-{tag}-{i}" for i in range(args.jobs)]
    started = time.monotonic()
    try:
        async with api.LiveKitAPI(address.http_url, address.api_key, address.api_secret) as lk:
            await _wait_registered(lk, record)
            print(f"{'jobs':>5}  supervisor                                            server record",
                  flush=True)
            print(f"{0:5d}  {supervisor_figures(daemon.pid)}  {{}}", flush=True)
            for first in range(0, args.jobs, args.every):
                batch = rooms[first:first + args.every]
                await _run_batch(lk, record, batch, args.concurrency)
                counts = ServerRecord.counts(record.in_rooms(rooms[:first + len(batch)]))
                print(f"{first + len(batch):5d}  {supervisor_figures(daemon.pid)}  {counts}", flush=True)
        ended = record.in_rooms(rooms)
        counts = ServerRecord.counts(ended)
        print(f"\n{len(ended)} of {args.jobs} jobs recorded by the server in "
              f"{time.monotonic() - started:.0f} s: {counts}")
        for job in [j for j in ended if j.status != "JS_SUCCESS"][:5]:
            print(f"  {job.room}: {job.status} {job.error}")
        return 0 if counts.get("JS_SUCCESS", 0) == args.jobs else 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            daemon.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(daemon.wait(), 60)
        if daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
        log.close()


async def _wait_registered(lk: api.LiveKitAPI, record: ServerRecord) -> None:
    """Dispatch a warm-up job until one is recorded: then the agent is registered and warm."""
    for attempt in range(120):
        room = f"soak-warmup-{uuid.uuid4().hex[:6]}-{attempt}"
        await _dispatch(lk, room)
        with contextlib.suppress(AssertionError):
            await record.wait_for_rooms([room], timeout=1.0)
            return
    raise RuntimeError("the daemon never took a job")


async def _dispatch(lk: api.LiveKitAPI, room: str) -> None:
    await lk.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
        agent_name=AGENT, room=room, metadata=json.dumps({"action": "leave"})))


async def _run_batch(lk: api.LiveKitAPI, record: ServerRecord, rooms: list[str], concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one(room: str) -> None:
        async with slots:
            await _dispatch(lk, room)
            with contextlib.suppress(AssertionError):  # a job the server never ends is counted as missing
                await record.wait_for_rooms([room], timeout=60)

    await asyncio.gather(*(one(room) for room in rooms))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--every", type=int, default=100, help="print figures every N jobs")
    args = parser.parse_args()
    print(f"soak: {args.jobs} jobs, {args.concurrency} at a time; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="roomd-soak-") as tmp:
        work = Path(tmp)
        server = DevServer(log_path=work / "livekit-server.log")
        address = server.start()
        try:
            return asyncio.run(soak(args, address, ServerRecord(work / "livekit-server.log"), work))
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
