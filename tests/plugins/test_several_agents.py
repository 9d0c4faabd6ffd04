"""Several plugins in one daemon: a link (agent name) each, own idle counts, one max_jobs."""

from __future__ import annotations

import asyncio

from plugin_factory import PluginInstaller, good_agent
from rooms import Caller, dispatch, room_name, wait_jobs_ended, wait_until

from conftest import config_toml
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
    first, second = room_name("alpha"), room_name("beta")
    caller_a = await Caller(livekit_server, first).join()
    caller_b = await Caller(livekit_server, second).join()
    beta_job: asyncio.Future[dict[str, str]] | None = None
    try:
        await dispatch(lkapi, "alpha-agent", first)
        assert (await caller_a.wait_agent())["plugin"] == "alpha"
        assert supervisor.admission.in_use == 1
        assert supervisor.admission.is_full()
        # beta's link shares the budget: it reports FULL, so beta's job cannot start here
        # while alpha's runs; once alpha's ends, the slot is free and beta's job runs.
        await dispatch(lkapi, "beta-agent", second)
        beta_job = asyncio.ensure_future(caller_b.wait_agent(timeout=60))
        done, _ = await asyncio.wait({beta_job}, timeout=3)
        assert not done, "beta's job started although max_jobs=1 was taken by alpha's"
        await caller_a.say_bye()
        await wait_jobs_ended(supervisor.launcher.get("alpha"), "SUCCESS")
        assert (await beta_job)["plugin"] == "beta"
        assert supervisor.admission.in_use == 1
        await caller_b.say_bye()
        await wait_jobs_ended(supervisor.launcher.get("beta"), "SUCCESS")
    finally:
        if beta_job is not None:
            beta_job.cancel()
        await caller_a.leave()
        await caller_b.leave()
