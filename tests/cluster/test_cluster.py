"""roomd on a two-node LiveKit cluster: Redis, two livekit-server nodes, a daemon on each.

Which node a job goes to is the server's choice (docs/operations.md, "How the server
places jobs"): the node whose available workers have the most headroom under the target
load wins, ties go to the first node to answer, and only that node's workers are tried.
"""

from __future__ import annotations

import asyncio
import signal

import pytest
from cluster_rooms import ASSIGN_FAILED, MAX_JOBS, ClusterApi, Daemons, cluster_api, worker_id
from livekit_cluster import LiveKitCluster, Node

from daemon_process import AGENT, DaemonProcess, value

pytestmark = pytest.mark.livekit_server

SETTLE_TIMEOUT = 20.0  # the server gives up on a job request after 3 s; joining takes ~1 s


async def offers(daemon: DaemonProcess, outcome: str) -> float:
    return value(await daemon.metrics(), "roomd_offers_total", agent=AGENT, outcome=outcome)


async def test_rooms_on_either_node_are_served_by_the_daemon_on_the_other(
        cluster: LiveKitCluster, daemons: Daemons) -> None:
    node_a, node_b = cluster.nodes
    async with cluster_api(cluster) as lk:
        on_a = await daemons.start(node_a)
        room_b = await lk.create_room(node_b, "on-b")
        await lk.dispatch(node_b, room_b)
        assert await lk.wait_served(room_b) == await worker_id(on_a)
        await lk.delete_rooms([room_b])

        on_b = await daemons.start(node_b)
        assert await on_a.stop() == 0  # stopped: node A has no worker left
        room_a = await lk.create_room(node_a, "on-a")
        await lk.dispatch(node_a, room_a)
        assert await lk.wait_served(room_a) == await worker_id(on_b)
        await lk.delete_rooms([room_a])


async def test_a_full_daemon_leaves_new_rooms_on_its_node_to_the_other(
        cluster: LiveKitCluster, daemons: Daemons) -> None:
    node_a, node_b = cluster.nodes
    async with cluster_api(cluster) as lk:
        rooms = []
        try:
            on_a = await daemons.start(node_a, max_jobs=1)
            rooms.append(await lk.create_room(node_a, "fills-a"))
            await lk.dispatch(node_a, rooms[-1])
            assert await lk.wait_served(rooms[-1]) == await worker_id(on_a)
            # Its one slot is taken: the load it reported is 1 whatever its CPU.
            assert (await on_a.status())["links"][0]["load"] == 1.0
            assert value(await on_a.metrics(), "roomd_server_link_load", agent=AGENT) == 1.0

            on_b = await daemons.start(node_b, max_jobs=1)
            rooms.append(await lk.create_room(node_a, "a-is-full"))
            await lk.dispatch(node_a, rooms[-1])
            assert await lk.wait_served(rooms[-1]) == await worker_id(on_b)
            # A reported FULL at once: the server did not even offer it the second job.
            assert await offers(on_a, "refused_no_slot") == 0
            assert await offers(on_a, "accepted") == 1
        finally:
            await lk.delete_rooms(rooms)


async def test_sigterm_lets_its_calls_finish_while_the_other_daemon_takes_every_new_job(
        cluster: LiveKitCluster, daemons: Daemons) -> None:
    node_a, node_b = cluster.nodes
    async with cluster_api(cluster) as lk:
        rooms: list[str] = []
        try:
            on_a, on_b = await daemons.start(node_a), await daemons.start(node_b)
            by_worker = {await worker_id(on_a): on_a, await worker_id(on_b): on_b}
            first = await _served(lk, node_a, rooms)
            second = await _served(lk, node_b, rooms)
            # The first job's slot is in the load its daemon reported at once, so the other
            # node had more headroom for the second: one call on each daemon.
            assert {first, second} == set(by_worker)

            stopping, staying = by_worker[first], by_worker[second]
            stopping.signal(signal.SIGTERM)
            await stopping.wait_state("draining")
            new = [await lk.create_room(node, "after-sigterm") for node in (node_a, node_b)]
            rooms += new
            await asyncio.gather(*(lk.dispatch(node, room) for node, room in zip(
                (node_a, node_b), new, strict=True)))
            for room in new:
                assert await lk.wait_served(room) == second
            assert await offers(staying, "accepted") == 3 and await offers(stopping, "accepted") == 1
            # The draining daemon's call goes on until the call itself ends.
            assert await lk.serving_worker(rooms[0]) == first
            assert stopping.returncode is None
            await lk.delete_rooms([rooms[0]])
            ended = await stopping.wait_event(lambda e: e.get("event") == "job ended")
            assert await stopping.wait(30) == 0, ended
        finally:
            await lk.delete_rooms(rooms)


async def _served(lk: ClusterApi, node: Node, rooms: list[str]) -> str:
    rooms.append(await lk.create_room(node, "held"))
    await lk.dispatch(node, rooms[-1])
    return await lk.wait_served(rooms[-1])


async def burst(lk: ClusterApi, cluster: LiveKitCluster, per_node: int) -> tuple[
        dict[str, str], set[str], list[str]]:
    """``per_node`` rooms on each node, all dispatched at once through their own node;
    returns the worker serving each served room, the rooms the server dropped, all rooms."""
    rooms = {node.name: [await lk.create_room(node, f"burst-{node.name}") for _ in range(per_node)]
             for node in cluster.nodes}
    everything = [room for names in rooms.values() for room in names]
    await asyncio.gather(*(lk.dispatch(node, room) for node in cluster.nodes
                           for room in rooms[node.name]))
    served: dict[str, str] = {}
    async with asyncio.timeout(SETTLE_TIMEOUT):
        while len(served) + len(lk.dropped(everything)) < len(everything):
            for room in everything:
                if room not in served and (worker := await lk.serving_worker(room)):
                    served[room] = worker
            await asyncio.sleep(0.2)
    return served, lk.dropped(everything), everything


async def test_a_burst_of_the_free_slots_over_both_nodes_loses_the_share_the_server_drops(
        cluster: LiveKitCluster, daemons: Daemons) -> None:
    on_a, on_b = await daemons.start(cluster.nodes[0]), await daemons.start(cluster.nodes[1])
    async with cluster_api(cluster) as lk:
        served, dropped, rooms = await burst(lk, cluster, MAX_JOBS)
        try:
            # The measured share: livekit-server 1.13.5 places the job requests at once, and
            # when both nodes claim before any offer reaches a worker, the first to answer
            # takes the whole burst, its daemon fills its slots and refuses the rest, and the
            # server tries no worker of the other node (3 of 6 served, all on one daemon: most
            # runs). When the claims interleave with the first load reports, both daemons
            # serve (6 of 6: seen in some runs). Either way at least one node's worth is
            # served, and every dispatch is served or dropped by the server, never lost
            # unseen. docs/operations.md shows the server's log lines and the layout that
            # avoids the drop (the next test).
            assert len(served) + len(dropped) == 2 * MAX_JOBS and not set(served) & dropped, (served, dropped)
            assert len(served) >= MAX_JOBS, served
            # Every loss is seen: a refusal roomd counted and lists in /status, or a job the
            # server dropped without offering it to any worker, because every worker it would
            # try had reported a full load (roomd reports slot use at once): then the server
            # logged no attempt to assign it.
            refused = await offers(on_a, "refused_no_slot") + await offers(on_b, "refused_no_slot")
            listed = {r["room"] for d in (on_a, on_b) for r in (await d.status())["recent_refusals"]}
            assert listed <= dropped and refused == len(listed), (listed, dropped, refused)
            attempted = {event.get("room") for node in cluster.nodes
                         for event in node.log_lines(ASSIGN_FAILED)}
            assert not (dropped - listed) & attempted, (dropped, listed, attempted)
        finally:
            await lk.delete_rooms(rooms)


async def test_a_burst_with_both_daemons_on_one_node_loses_none(
        cluster: LiveKitCluster, daemons: Daemons) -> None:
    # The operator setting: every daemon registers with the same node, whose worker
    # selection retries each worker in turn (docs/operations.md).
    node = cluster.nodes[0]
    first, second = await daemons.start(node), await daemons.start(node)
    async with cluster_api(cluster) as lk:
        served, dropped, rooms = await burst(lk, cluster, MAX_JOBS)
        try:
            assert not dropped and len(served) == 2 * MAX_JOBS
            assert set(served.values()) == {await worker_id(first), await worker_id(second)}
        finally:
            await lk.delete_rooms(rooms)
