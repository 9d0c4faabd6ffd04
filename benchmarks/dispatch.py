"""Dispatch benchmark: offer to entrypoint, against a real local livekit-server, roomd vs the peer.

    python benchmarks/dispatch.py [--jobs 20] [--idle 2] [--peer] [--floor]

Starts ``livekit-server --dev`` on 127.0.0.1, then, one contender at a time:
- roomd: a ``roomd run`` daemon serving benchmarks/dispatch_bench_plugin.py;
- with ``--peer``: a livekit-agents worker (benchmarks/peer_dispatch_agent.py, same logic,
  in the venv benchmarks/peer-env.sh makes) through the peer's own CLI (``start``), once
  with its defaults and once without the local models it preloads by default;
- with ``--floor``: benchmarks/floor_dispatch_worker.py, a worker that only answers (no
  process per job, no room): what the relay and the server cost, under any worker's times.
Each registers through a recording relay (benchmarks/wiretap.py) and dispatches jobs with
livekit-api's ``AgentDispatchService.create_dispatch``: N one at a time (each offered
once the pool is back at its idle target and the previous job has ended), then N at
once. Where the times come from:
- offer / answer / assignment / reported RUNNING: when the relay saw each protocol message;
- entrypoint running, room joined, process prewarmed: stamps the agent code sends from
  inside the job process (benchmarks/stamps.py), on the same CLOCK_MONOTONIC.
A job is lost when it was accepted but its entrypoint never ran (within 60 s); a dispatch
the server does not offer within 10 s is counted as not offered (the server's part).
Prints one table with a column per contender; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import operator
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import uvloop
from livekit import api
from livekit.protocol import agent as agent_pb
from stamps import ENV as STAMP_ENV
from stamps import StampReceiver, listen
from wiretap import WireTap

from roomd.daemon.devserver import DevServer, DevServerAddress

HERE = Path(__file__).resolve().parent
JOB_TIMEOUT = 60.0
OFFER_TIMEOUT = 10.0
START_TIMEOUT = 120.0
ENDED = (agent_pb.JS_SUCCESS, agent_pb.JS_FAILED)


# The rows of the table: (label, the job's timestamp it starts at, the one it ends at).
SPANS = (
    ("create_dispatch -> offer (the server's part)", "created", "offered"),
    ("offer -> availability answer", "offered", "answered"),
    ("assignment -> entrypoint running", "assigned", "entry"),
    ("offer -> entrypoint running", "offered", "entry"),
    ("offer -> RUNNING reported to the server", "offered", "running"),
    ("create_dispatch -> entrypoint running (end to end)", "created", "entry"),
    ("offer -> joined the room", "offered", "connected"),
)


@dataclasses.dataclass(frozen=True)
class Contender:
    agent_name: str
    argv: list[str]
    env: dict[str, str]


@dataclasses.dataclass
class JobTimes:
    room: str
    created: float  # create_dispatch called
    dispatch_id: str = ""
    job_id: str = ""
    offered: float | None = None  # AvailabilityRequest seen
    answered: float | None = None  # AvailabilityResponse seen
    accepted: bool = False
    assigned: float | None = None  # JobAssignment seen
    entry: float | None = None  # entrypoint started (stamp from the job process)
    connected: float | None = None  # ctx.connect() returned (stamp)
    running: float | None = None  # UpdateJobStatus RUNNING seen
    ended: float | None = None  # UpdateJobStatus SUCCESS/FAILED seen


@dataclasses.dataclass
class Outcome:
    rows: dict[str, str] = dataclasses.field(default_factory=dict)
    error: str = ""


# -- the contenders --------------------------------------------------------------------------
def roomd_contender(work: Path, url: str, address: DevServerAddress, idle: int) -> Contender:
    # An entry point in a .dist-info on PYTHONPATH is how any installed plugin is found;
    # this one is found without installing anything into the project's venv.
    dist = work / "roomd_dispatch_bench-0.0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: roomd-dispatch-bench\nVersion: 0.0.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[roomd.agents]\ndispatch-bench = dispatch_bench_plugin:options\n"
    )
    config = work / "roomd.toml"
    config.write_text(
        f'[livekit]\nurl = "{url}"\napi_key = "{address.api_key}"\napi_secret = "{address.api_secret}"\n'
        '[daemon]\nlog_format = "json"\nhttp_port = 0\n'
        # Load shedding off: other work on a shared machine must not turn offers away.
        "[admission]\nload_threshold = 1000.0\n"
        f"[pool]\nnum_idle_processes = {idle}\n"
        '[plugins]\nenabled = ["dispatch-bench"]\n'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(work)])}
    return Contender(
        "dispatch-bench-roomd",
        [sys.executable, "-m", "roomd.daemon.cli", "run", "--config", str(config)],
        env,
    )


def livekit_env(url: str, address: DevServerAddress, idle: int) -> dict[str, str]:
    """A worker configured the LiveKit way (the peer's CLI, the floor worker)."""
    return {
        **os.environ,
        "PYTHONPATH": str(HERE),
        "LIVEKIT_URL": url,
        "LIVEKIT_API_KEY": address.api_key,
        "LIVEKIT_API_SECRET": address.api_secret,
        "BENCH_IDLE": str(idle),
    }


def peer_contender(
    python: str, url: str, address: DevServerAddress, idle: int, preload_models: bool
) -> Contender:
    env = livekit_env(url, address, idle)
    if not preload_models:
        # By default the peer loads its local VAD and end-of-turn model into the forkserver,
        # so every job process maps them; this agent uses neither, and this variant shows
        # the framework without them.
        env["LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE"] = "0"
    return Contender(
        "dispatch-bench-peer",
        [python, str(HERE / "peer_dispatch_agent.py"), "start"],
        env,
    )


def floor_contender(url: str, address: DevServerAddress, idle: int) -> Contender:
    return Contender(
        "dispatch-bench-floor",
        [sys.executable, str(HERE / "floor_dispatch_worker.py")],
        livekit_env(url, address, idle),
    )


def peer_python() -> tuple[str | None, str]:
    """The peer venv's python (made on first use), or None and the reason it is not there."""
    result = subprocess.run(
        ["bash", str(HERE / "peer-env.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return None, (result.stderr.strip().splitlines() or ["peer-env.sh failed"])[-1]
    return result.stdout.strip().splitlines()[-1], ""


# -- one contender's run ---------------------------------------------------------------------
class Run:
    def __init__(
        self,
        name: str,
        build: Callable[[str], Contender],
        address: DevServerAddress,
        work: Path,
        idle: int,
    ) -> None:
        self.name = name
        # The contender is built once the relay's URL, which it registers with, is known.
        self._build = build
        self.address = address
        self.work = work
        self.idle = idle
        self.tap = WireTap(address.url)
        self.stamps: StampReceiver
        self.contender: Contender
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = work / f"{work.name}.log"
        self.jobs_path = work / f"{work.name}-jobs.jsonl"
        self.raw_path = work / f"{work.name}-events.jsonl"
        self.profile_path: Path | None = None  # set: sample the one-at-a-time jobs with py-spy
        self.out = Outcome()

    def row(self, name: str, value: str) -> None:
        self.out.rows[name] = value
        print(f"  [{self.name}] {name:<54} {value}", flush=True)

    def idle_now(self) -> int:
        # Every process prewarms once and runs at most one job (both sides' default).
        return len(self.stamps.of("prewarmed")) - len(self.stamps.of("entry"))

    async def execute(self, jobs: int) -> Outcome:
        socket_path = str(self.work / "stamps.sock")
        transport, self.stamps = await listen(socket_path)
        self.contender = self._build(await self.tap.start())
        lkapi = api.LiveKitAPI(self.address.http_url, self.address.api_key, self.address.api_secret)
        try:
            env = {**self.contender.env, STAMP_ENV: socket_path}
            with self.log_path.open("wb") as log:
                started = time.monotonic()
                self.process = await asyncio.create_subprocess_exec(
                    *self.contender.argv,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
                try:
                    await self.warm_up(started)
                    await self.memory()
                    for mode, concurrent in (("one at a time", False), (f"{jobs} at once", True)):
                        sampler = None if concurrent else await self.start_sampler()
                        times = await self.dispatch(lkapi, jobs, concurrent)
                        await self.stop_sampler(sampler)
                        self.report(mode, times)
                except (TimeoutError, RuntimeError) as exc:
                    self.out.error = f"{exc} (log: {self.log_path})"
                    print(f"  [{self.name}] FAILED: {self.out.error}", flush=True)
                finally:
                    await self.stop()
                    self.save_raw()
        finally:
            await lkapi.aclose()
            await self.tap.aclose()
            transport.close()
        return self.out

    async def start_sampler(self) -> asyncio.subprocess.Process | None:
        """py-spy on every process of the service (supervisor, zygote, children), sampling
        the stacks that are on a CPU 1000 times a second, without pausing them."""
        if self.profile_path is None or self.process is None:
            return None
        sampler = await asyncio.create_subprocess_exec(
            profile_sampler(), "record", "--pid", str(self.process.pid), "--subprocesses",
            "--nonblocking", "--rate", "1000", "--format", "raw",
            "--output", str(self.profile_path),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        await asyncio.sleep(1.0)  # it attaches to each process before sampling it
        return sampler

    async def stop_sampler(self, sampler: asyncio.subprocess.Process | None) -> None:
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            await asyncio.wait_for(sampler.wait(), 30.0)

    def save_raw(self) -> None:
        """Every stamp and protocol event seen, in time order, next to the per-job lines."""
        events = [dataclasses.asdict(e) | {"source": "wire"} for e in self.tap.events]
        events += [dataclasses.asdict(s) | {"source": "stamp"} for s in self.stamps.stamps]
        events.sort(key=lambda e: e["t"])
        with self.raw_path.open("w") as out:
            for event in events:
                out.write(json.dumps(event) + "\n")

    async def warm_up(self, started: float) -> None:
        agent = self.contender.agent_name
        registered = await self.tap.wait_for(lambda: bool(self.tap.of("registered")), START_TIMEOUT)
        if not registered:
            raise RuntimeError(f"{agent} did not register within {START_TIMEOUT}s")
        t_registered = self.tap.of("registered")[0].t
        if not await self.stamps.wait_for(
            lambda: len(self.stamps.of("prewarmed")) >= self.idle, START_TIMEOUT
        ):
            raise RuntimeError(f"{self.idle} processes did not prewarm within {START_TIMEOUT}s")
        warm = self.stamps.of("prewarmed")[self.idle - 1].t
        self.row("start -> registered with the server", f"{(t_registered - started) * 1000:.0f} ms")
        self.row(
            f"start -> {self.idle} idle processes prewarmed", f"{(warm - started) * 1000:.0f} ms"
        )

    async def memory(self) -> None:
        # A process that has just sent its prewarm stamp still finishes its own start (its
        # reply to the parent, first ping); no event says "settled", so give it a moment.
        await asyncio.sleep(1.0)
        idle = [s.pid for s in self.stamps.of("prewarmed")]
        pss, uss, rss = [], [], []
        for pid in idle:
            with contextlib.suppress(psutil.NoSuchProcess):
                info = psutil.Process(pid).memory_full_info()
                pss.append(info.pss)
                uss.append(info.uss)
                rss.append(info.rss)
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        tree = [root, *root.children(recursive=True)]
        total = 0
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_full_info().pss
        mb = 2**20
        self.row("idle process PSS, mean", f"{statistics.mean(pss) / mb:.1f} MB")
        self.row("idle process USS (private), mean", f"{statistics.mean(uss) / mb:.1f} MB")
        self.row("idle process RSS, mean", f"{statistics.mean(rss) / mb:.1f} MB")
        self.row(
            f"whole service PSS, every process ({self.idle} idle)",
            f"{total / mb:.0f} MB ({len(tree)} processes)",
        )

    async def dispatch(self, lkapi: api.LiveKitAPI, n: int, concurrent: bool) -> list[JobTimes]:
        tag = uuid.uuid4().hex[:6]
        times = [JobTimes(room=f"bench-{tag}-{i}", created=0.0) for i in range(n)]

        async def create(job: JobTimes) -> None:
            job.created = time.monotonic()
            dispatch = await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=self.contender.agent_name, room=job.room)
            )
            job.dispatch_id = dispatch.id

        def offered(jobs: list[JobTimes]) -> bool:
            return all(self.fill(job) is not None or job.offered is not None for job in jobs)

        def settled(jobs: list[JobTimes]) -> bool:
            return all(self.fill(job) is not None for job in jobs if job.offered is not None)

        # A dispatch the server never offers is the server's loss, not the worker's: it is
        # counted apart, after a short wait, and the run goes on.
        if concurrent:
            await asyncio.gather(*(create(job) for job in times))
            await self.tap.wait_for(lambda: offered(times), OFFER_TIMEOUT)
            await self.tap.wait_for(lambda: settled(times), JOB_TIMEOUT)
        else:
            for job in times:
                if not await self.stamps.wait_for(
                    lambda: self.idle_now() >= self.idle, JOB_TIMEOUT
                ):
                    raise RuntimeError(f"pool did not get back to {self.idle} idle processes")
                await create(job)
                if await self.tap.wait_for(functools.partial(offered, [job]), OFFER_TIMEOUT):
                    await self.tap.wait_for(functools.partial(settled, [job]), JOB_TIMEOUT)
        # Stamps arrive on their own socket: give a stamp sent before the last status a chance.
        await self.stamps.wait_for(lambda: all(self.fill(job) is not None for job in times), 1.0)
        for job in times:
            self.fill(job)
        with contextlib.suppress(Exception):
            await asyncio.gather(
                *(lkapi.room.delete_room(api.DeleteRoomRequest(room=job.room)) for job in times)
            )
        return times

    def fill(self, job: JobTimes) -> JobTimes | None:
        """Complete ``job`` from what the relay and the stamps saw; the job once it has ended."""
        if not job.job_id:
            offer = next(
                (
                    e
                    for e in self.tap.of("availability_request")
                    if e.dispatch_id == job.dispatch_id and job.dispatch_id
                ),
                None,
            )
            if offer is None:
                return None
            job.job_id, job.offered = offer.job_id, offer.t
        answer = self.tap.first("availability_response", job.job_id)
        if answer is not None:
            job.answered, job.accepted = answer.t, answer.available
        assignment = self.tap.first("assignment", job.job_id)
        job.assigned = assignment.t if assignment else None
        statuses = [e for e in self.tap.of("job_status") if e.job_id == job.job_id]
        job.running = next((e.t for e in statuses if e.status == agent_pb.JS_RUNNING), None)
        job.ended = next((e.t for e in statuses if e.status in ENDED), None)
        entry = self.stamps.first("entry", job.job_id)
        connected = self.stamps.first("connected", job.job_id)
        job.entry = entry.t if entry else None
        job.connected = connected.t if connected else None
        if answer is not None and not answer.available:
            return job  # refused: nothing more will come
        return job if job.entry is not None and job.ended is not None else None

    def report(self, mode: str, times: list[JobTimes]) -> None:
        def spans(
            start: Callable[[JobTimes], float | None], end: Callable[[JobTimes], float | None]
        ) -> str:
            values = sorted(
                (e - s) * 1000
                for j in times
                if (s := start(j)) is not None and (e := end(j)) is not None
            )
            if not values:
                return "n/a"
            p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
            return f"{statistics.median(values):.1f} / {p90:.1f} / {values[-1]:.1f}"

        offered = sum(1 for j in times if j.offered is not None)
        accepted = sum(1 for j in times if j.accepted)
        ran = sum(1 for j in times if j.entry is not None)
        self.row(
            f"{mode}: dispatched / offered / accepted / ran / lost",
            f"{len(times)} / {offered} / {accepted} / {ran} / {accepted - ran}",
        )
        # Every job's timeline, relative to its offer, for a look behind the percentiles.
        with self.jobs_path.open("a") as out:
            for j in times:
                base = j.offered
                record = dataclasses.asdict(j) | {"mode": mode}
                if base is not None:
                    for key in (
                        "created",
                        "answered",
                        "assigned",
                        "entry",
                        "connected",
                        "running",
                        "ended",
                    ):
                        value = record[key]
                        record[key] = None if value is None else round((value - base) * 1000, 2)
                    record["offered"] = 0.0
                out.write(json.dumps(record) + "\n")
        for label, since, until in SPANS:
            self.row(f"{mode}: {label}", spans(operator.attrgetter(since), operator.attrgetter(until)))

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30.0)
        except TimeoutError:
            # Both contenders drain on SIGTERM; one that does not finish is stopped hard,
            # its whole process group (start_new_session) with it.
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def profile_sampler() -> str:
    """py-spy next to this interpreter (``pip install py-spy``), for ``--profile``."""
    path = Path(sys.executable).with_name("py-spy")
    if not path.exists():
        raise SystemExit("--profile needs py-spy in this environment: pip install py-spy")
    return str(path)


# -- the benchmark ---------------------------------------------------------------------------
@contextlib.contextmanager
def dev_server() -> Iterator[DevServerAddress]:
    server = DevServer()
    address = server.start()
    try:
        yield address
    finally:
        server.stop()


async def bench(args: argparse.Namespace, address: DevServerAddress) -> None:
    results: dict[str, Outcome] = {}
    missing: Outcome | None = None
    with tempfile.TemporaryDirectory(prefix="roomd-dispatch-bench-") as tmp:
        work = Path(tmp)
        runs: list[tuple[str, Callable[[str], Contender]]] = [
            (
                "roomd",
                functools.partial(roomd_contender, work / "roomd", address=address, idle=args.idle),
            )
        ]
        if args.floor:
            runs.append(
                ("floor", functools.partial(floor_contender, address=address, idle=args.idle))
            )
        if args.peer:
            python, why = peer_python()
            if python is None:
                missing = Outcome(error=f"the peer could not be installed: {why}")
            else:
                for name, preload in (
                    ("livekit-agents", True),
                    ("livekit-agents, no models", False),
                ):
                    peer = functools.partial(
                        peer_contender,
                        python,
                        address=address,
                        idle=args.idle,
                        preload_models=preload,
                    )
                    runs.append((name, peer))
        for name, build in runs:
            print(f"{name}:", flush=True)
            directory = work / name.replace(",", "").replace(" ", "-")
            directory.mkdir(exist_ok=True)
            run = Run(name, build, address, directory, args.idle)
            if args.profile and name == "roomd":
                run.profile_path = directory / "roomd-profile.txt"
            results[name] = await run.execute(args.jobs)
            if args.keep_logs:
                for path in (run.log_path, run.jobs_path, run.raw_path, run.profile_path):
                    if path is None:
                        continue
                    if path.exists():
                        (Path(args.keep_logs) / path.name).write_bytes(path.read_bytes())
    if missing is not None:
        results["livekit-agents"] = missing  # its column last, empty, with the reason below
    names = list(results)
    print("\n| measure (p50 / p90 / max in ms) | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    measures: list[str] = []
    for outcome in results.values():
        measures += [m for m in outcome.rows if m not in measures]
    for measure in measures:
        print(
            f"| {measure} | " + " | ".join(results[n].rows.get(measure, "") for n in names) + " |"
        )
    for name, outcome in results.items():
        if outcome.error:
            print(f"\n{name}: {outcome.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs", type=int, default=20, help="jobs per mode (one at a time, then all at once)"
    )
    parser.add_argument(
        "--idle", type=int, default=2, help="idle prewarmed processes, for both contenders"
    )
    parser.add_argument(
        "--peer", action="store_true", help="also run livekit-agents (benchmarks/peer-env.sh)"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also run benchmarks/floor_dispatch_worker.py, a worker that only answers: what "
        "the relay, the server and one Python wake-up cost, under any real worker's times",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample roomd's processes with py-spy during the one-at-a-time jobs; the "
        "collapsed stacks are kept with --keep-logs",
    )
    parser.add_argument(
        "--keep-logs",
        metavar="DIR",
        help="copy each contender's log and per-job timelines (JSON lines) into DIR",
    )
    args = parser.parse_args()
    print(
        f"dispatch benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with dev_server() as address:
        uvloop.run(bench(args, address))


if __name__ == "__main__":
    main()
