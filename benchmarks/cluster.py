"""Fleet benchmark: bursts of dispatches on a two-node LiveKit cluster, served or lost.

    python benchmarks/cluster.py [--max-jobs 3] [--rounds 6,12,24] [--idle 2]

Starts Debian's redis-server and two livekit-server nodes sharing it on 127.0.0.1 (the
cluster of tests/cluster, tests/cluster/livekit_cluster.py), then two roomd daemons
serving benchmarks/cluster_bench_plugin.py, each with ``max_jobs`` slots, in two layouts:
- one daemon per node (each registers with its own node);
- both daemons on the first node.
Each round creates N rooms, alternately on each node, and dispatches the agent to all of
them at once, each through its room's node. A job is served when its agent has joined its
room (a stamp from inside the job process, benchmarks/stamps.py); the others are lost.
The time to agent joined runs from the moment the burst's dispatches were sent to that
stamp, on one CLOCK_MONOTONIC. Between rounds the rooms are deleted and the daemons go
back to no jobs and their idle children. Prints one table; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
sys.path[1:1] = [str(TESTS), str(TESTS / "cluster")]  # the cluster and daemon helpers

from cluster_rooms import ClusterApi, Daemons, cluster_api
from daemon_process import DaemonProcess, value
from livekit_cluster import LiveKitCluster, Node
from stamps import ENV as STAMP_ENV
from stamps import StampReceiver, listen

AGENT = "cluster-bench"
ROUND_TIMEOUT = 20.0  # a job request the server has not placed in 3 s is dropped by it
SETTLE_TIMEOUT = 60.0


def plugin_env(work: Path, stamp_socket: str) -> dict[str, str]:
    """The environment that finds the bench plugin without installing it (an entry point in
    a .dist-info on PYTHONPATH, as benchmarks/dispatch.py does)."""
    dist = work / "roomd_cluster_bench-0.0.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: roomd-cluster-bench\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text(
        "[roomd.agents]\ncluster-bench = cluster_bench_plugin:options\n")
    return {"PYTHONPATH": os.pathsep.join([str(HERE), str(work)]), STAMP_ENV: stamp_socket}


async def accepted(daemon: DaemonProcess) -> float:
    return value(await daemon.metrics(), "roomd_offers_total", agent=AGENT, outcome="accepted")


async def settle(daemons: list[DaemonProcess], idle: int) -> None:
    """Until every daemon runs no job and has its idle children back."""
    async def quiet(daemon: DaemonProcess) -> bool:
        status = await daemon.status()
        current = [p for p in status["pools"] if p["current"]]
        return not status["jobs"] and all(p["idle"] >= idle for p in current)

    for daemon in daemons:
        await daemon.until(lambda d=daemon: quiet(d), SETTLE_TIMEOUT)


async def burst(lk: ClusterApi, nodes: list[Node], stamps: StampReceiver, n: int,
                daemons: list[DaemonProcess]) -> list[str]:
    rooms = [(nodes[i % len(nodes)], await lk.create_room(nodes[i % len(nodes)], f"bench{n}"))
             for i in range(n)]
    names = [room for _node, room in rooms]
    before = [await accepted(d) for d in daemons]

    def joined(kind: str = "connected") -> dict[str, float]:
        return {s.room: s.t for s in stamps.of(kind) if s.room in names}

    sent = time.monotonic()
    await asyncio.gather(*(lk.dispatch(node, room, agent=AGENT) for node, room in rooms))
    served = await stamps.wait_for(
        lambda: len(joined()) + len(lk.dropped(names)) >= n, ROUND_TIMEOUT)
    del served  # the round is reported either way; what did not join by now is lost
    connected, entered = joined(), joined("entry")
    times = sorted((t - sent) * 1000 for t in connected.values())
    # The agent's own part: its entrypoint started to its room joined.
    joining = sorted((t - entered[room]) * 1000 for room, t in connected.items() if room in entered)
    after = [await accepted(d) for d in daemons]
    await lk.delete_rooms(names)
    split = " + ".join(f"{b - a:.0f}" for a, b in zip(before, after, strict=True))
    return [str(n), str(len(times)), str(n - len(times)), str(len(lk.dropped(names))), split,
            *percentiles(times), percentiles(joining)[0]]


def percentiles(values: list[float]) -> tuple[str, str]:
    """p50 and p90 of sorted ``values``, in whole milliseconds."""
    if not values:
        return "n/a", "n/a"
    p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
    return f"{statistics.median(values):.0f}", f"{p90:.0f}"


async def layout(name: str, cluster: LiveKitCluster, homes: list[Node], args: argparse.Namespace,
                 work: Path, stamps: StampReceiver, stamp_socket: str) -> list[list[str]]:
    print(f"{name}:", flush=True)
    daemons = Daemons(work)
    env = plugin_env(work / "plugin", stamp_socket)
    config = {"plugins": {"enabled": [AGENT]}, "pool": {"num_idle_processes": args.idle}}
    rows = []
    try:
        started = [await daemons.start(node, max_jobs=args.max_jobs, config=config, env=env)
                   for node in homes]
        async with cluster_api(cluster) as lk:
            for n in args.rounds:
                await settle(started, args.idle)
                row = [name, *await burst(lk, cluster.nodes, stamps, n, started)]
                print("  " + " | ".join(row), flush=True)
                rows.append(row)
    finally:
        await daemons.stop_all()
    return rows


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="roomd-cluster-bench-") as tmp:
        work = Path(tmp)
        stamp_socket = str(work / "stamps.sock")
        transport, stamps = await listen(stamp_socket)
        cluster = LiveKitCluster(work / "cluster")
        (work / "cluster").mkdir()
        cluster.start()
        try:
            node_a, node_b = cluster.nodes
            rows = await layout("one daemon per node", cluster, [node_a, node_b], args,
                                work / "per-node", stamps, stamp_socket)
            rows += await layout("both daemons on node 1", cluster, [node_a, node_a], args,
                                 work / "one-node", stamps, stamp_socket)
        finally:
            cluster.stop()
            transport.close()
    slots = 2 * args.max_jobs
    print(f"\n| layout | dispatched at once ({slots} slots) | served | lost | dropped by the "
          "server (its log) | accepted per daemon | time to agent joined p50 ms | p90 ms | "
          "of which entrypoint -> joined p50 ms |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-jobs", type=int, default=3, help="slots per daemon")
    parser.add_argument("--rounds", type=lambda s: [int(n) for n in s.split(",")],
                        default=[6, 12, 24], help="dispatches at once, per round")
    parser.add_argument("--idle", type=int, default=2, help="idle prewarmed children per daemon")
    args = parser.parse_args()
    print(f"cluster benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
