"""Several plugins in one daemon: a link (agent name) each, own idle counts, one max_jobs."""

from __future__ import annotations

import asyncio

from plugin_factory import PluginInstaller, good_agent
from rooms import Caller, dispatch, room_name, wait_jobs_ended, wait_until

from plugin_factory import config_toml
from roomd.daemon.plugin_runtime import PluginState
from roomd.daemon.pool import Pool


def idle(pool: Pool | None) -> int:
    assert pool is not None
    return pool.stats().idle


async def test_two_plugins_each_serve_their_own_agent_name_with_their_own_idle_count(
        livekit_server, installer: PluginInstaller, daemons, lkapi) -> None:
    installer.install("alpha", good_agent("alpha", "alpha-agent"))
    installer.install("beta", good_agent("beta", "beta-agent"))
    supervisor = await daemons(config_toml(
        livekit_server, ["alpha", "beta"],
        extra="[plugins.options.beta]\nnum_idle_processes = 3\n"))
    assert {n: supervisor.plugins[n].state for n in ("alpha", "beta")} == \
        {"alpha": PluginState.SERVING, "beta": PluginState.SERVING}
    assert sorted(link.registration.agent_name for link in supervisor.links) == \
        ["alpha-agent", "beta-agent"]
    alpha, beta = supervisor.launcher.get("alpha"), supervisor.launcher.get("beta")
    assert alpha is not None and beta is not None
    assert (alpha.limits.num_idle_processes, beta.limits.num_idle_processes) == (1, 3)
    await wait_until(lambda: idle(alpha) == 1 and idle(beta) == 3, "1 and 3 idle children")

    rooms = {"alpha": room_name("alpha"), "beta": room_name("beta")}
    callers = {plugin: await Caller(livekit_server, room).join() for plugin, room in rooms.items()}
    try:
        for plugin, room in rooms.items():
            await dispatch(lkapi, f"{plugin}-agent", room)
        for plugin, caller in callers.items():
            attributes = await caller.wait_agent()
            assert attributes["plugin"] == plugin  # each room got its own agent's code
        # Each pool refills toward its own target after handing a child to its job.
        await wait_until(lambda: idle(alpha) == 1 and idle(beta) == 3, "the pools refilled")
        assert alpha.stats().running == 1 and beta.stats().running == 1
        for plugin, caller in callers.items():
            await caller.say_bye()
            await wait_jobs_ended(supervisor.launcher.get(plugin), "SUCCESS")
    finally:
        for caller in callers.values():
            await caller.leave()


async def test_max_jobs_is_one_budget_for_every_plugin(
        livekit_server, installer: PluginInstaller, daemons, lkapi) -> None:
    installer.install("alpha", good_agent("alpha", "alpha-agent"))
    installer.install("beta", good_agent("beta", "beta-agent"))
    supervisor = await daemons(config_toml(livekit_server, ["alpha", "beta"], max_jobs=1))
    rooms = [room_name("alpha"), room_name("beta-refused"), room_name("beta")]
    callers = [await Caller(livekit_server, room).join() for room in rooms]
    try:
        await dispatch(lkapi, "alpha-agent", rooms[0])
        assert (await callers[0].wait_agent())["plugin"] == "alpha"
        assert supervisor.admission.in_use == 1 and supervisor.admission.is_full()
        # beta's link shares the one slot: it reports FULL, so the server gives beta's job
        # to no one while alpha's runs. Nothing announces "not started": watch a while.
        await dispatch(lkapi, "beta-agent", rooms[1])
        refused = asyncio.ensure_future(callers[1].wait_agent(timeout=60))
        done, _ = await asyncio.wait({refused}, timeout=3)
        refused.cancel()
        assert not done, "beta's job started although alpha's held the only slot"
        assert supervisor.launcher.get("beta").stats().jobs_started == 0  # type: ignore[union-attr]

        await callers[0].say_bye()
        await wait_jobs_ended(supervisor.launcher.get("alpha"), "SUCCESS")
        assert supervisor.admission.in_use == 0
        # The slot is free again, for any plugin: beta now takes a job.
        await dispatch(lkapi, "beta-agent", rooms[2])
        assert (await callers[2].wait_agent())["plugin"] == "beta"
        assert supervisor.admission.in_use == 1
        await callers[2].say_bye()
        await wait_jobs_ended(supervisor.launcher.get("beta"), "SUCCESS")
    finally:
        for caller in callers:
            await caller.leave()
