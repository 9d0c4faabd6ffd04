"""Deploying with pip and a reload: new jobs run the new code, running jobs keep the old."""

from __future__ import annotations

from pathlib import Path

from plugin_factory import RAISES_AT_IMPORT, PluginInstaller, good_agent
from rooms import Caller, dispatch, room_name, wait_jobs_ended, wait_until

from faults.server_record import ServerRecord
from plugin_factory import config_toml
from roomd.daemon.link import LinkState
from roomd.daemon.plugin_runtime import PluginState
from roomd.daemon.pool import PoolState


async def test_reload_runs_new_jobs_on_v2_while_a_v1_job_finishes_and_a_broken_v3_keeps_v2(
        livekit_server, livekit_dev_server, installer: PluginInstaller, daemons, lkapi) -> None:
    server_record = ServerRecord(livekit_dev_server.log_path)
    installer.install("hello", good_agent("hello", "hello-agent", "1.0.0"), version="1.0.0")
    supervisor = await daemons(config_toml(livekit_server, ["hello"]))
    v1_pool = supervisor.launcher.get("hello")
    assert v1_pool is not None

    first = await Caller(livekit_server, room_name("v1")).join()
    second = await Caller(livekit_server, room_name("v2")).join()
    third = await Caller(livekit_server, room_name("v2-again")).join()
    try:
        await dispatch(lkapi, "hello-agent", first.room_name)
        assert (await first.wait_agent())["plugin_version"] == "1.0.0"

        installer.install("hello", good_agent("hello", "hello-agent", "2.0.0"), version="2.0.0")
        result = await supervisor.reload()
        assert result.ok, result.detail
        record = supervisor.plugins["hello"]
        assert (record.state, record.spec.version, record.generation) == \
            (PluginState.SERVING, "2.0.0", result.generation)
        assert supervisor.launcher.get("hello") is not v1_pool
        # Same agent name and options: the link stays registered, only its route changed.
        assert len(supervisor.links) == 1

        await dispatch(lkapi, "hello-agent", second.room_name)
        assert (await second.wait_agent())["plugin_version"] == "2.0.0"
        # The first job still runs v1, in the old generation's child, still in its room.
        assert [a.attributes["plugin_version"] for a in first.agents()] == ["1.0.0"]
        assert v1_pool.stats().running == 1 and v1_pool.state is PoolState.READY

        await first.say_bye()  # the v1 job ends normally now
        await wait_jobs_ended(v1_pool, "SUCCESS")
        # With its last job done, the old generation is closed.
        await wait_until(lambda: v1_pool.state is PoolState.CLOSED, "the v1 pool to close")
        assert v1_pool.stats().jobs_ended == {"SUCCESS": 1}
        v2_pool = supervisor.launcher.get("hello")

        installer.install("hello", RAISES_AT_IMPORT, version="3.0.0")
        result = await supervisor.reload()
        assert not result.ok
        assert "hello: " in result.detail and "refusing to load" in result.detail, result.detail
        record = supervisor.plugins["hello"]
        assert record.state is PluginState.SERVING and record.spec.version == "2.0.0"
        assert "reload kept the previous generation" in record.last_error
        assert "roomd-test-hello 3.0.0" in record.last_error
        assert "RuntimeError: no API key in the environment" in record.last_error

        await dispatch(lkapi, "hello-agent", third.room_name)
        assert (await third.wait_agent())["plugin_version"] == "2.0.0"
        for count, caller in enumerate((second, third), start=1):
            await caller.say_bye()
            await wait_jobs_ended(v2_pool, "SUCCESS", count)
        # No call was lost to the reloads, and the server recorded each as it ended.
        rooms = [first.room_name, second.room_name, third.room_name]
        recorded = await server_record.wait_for_rooms(rooms)
        assert {job.status for job in recorded.values()} == {"JS_SUCCESS"}, recorded
    finally:
        for caller in (first, second, third):
            await caller.leave()


async def test_a_plugin_removed_from_config_stops_taking_jobs_after_its_running_ones(
        livekit_server, installer: PluginInstaller, daemons, lkapi, tmp_path: Path) -> None:
    installer.install("keep", good_agent("keep", "keep-agent"))
    installer.install("drop", good_agent("drop", "drop-agent"))
    supervisor = await daemons(config_toml(livekit_server, ["keep", "drop"]))
    drop_pool = supervisor.launcher.get("drop")
    drop_link = next(link for link in supervisor.links if link.registration.agent_name == "drop-agent")

    caller = await Caller(livekit_server, room_name("drop")).join()
    try:
        await dispatch(lkapi, "drop-agent", caller.room_name)
        assert (await caller.wait_agent())["plugin"] == "drop"

        (tmp_path / "roomd.toml").write_text(config_toml(livekit_server, ["keep"]))
        result = await supervisor.reload()
        assert result.ok, result.detail
        assert supervisor.plugins["drop"].state is PluginState.DISABLED
        assert supervisor.plugins["keep"].state is PluginState.SERVING
        assert supervisor.launcher.get("drop") is None  # no new job can reach its code
        assert drop_link.snapshot().draining  # the server is told FULL: no new offers
        # The running job is untouched: the agent is still in the room.
        assert [a.attributes["plugin"] for a in caller.agents()] == ["drop"]
        await caller.say_bye()
        await wait_jobs_ended(drop_pool, "SUCCESS")
    finally:
        await caller.leave()
    # Its last job over, the retired link unregisters and the old pool closes.
    assert drop_pool is not None
    assert await drop_link.wait_for_state(LinkState.CLOSED, timeout=20) is LinkState.CLOSED
    await wait_until(lambda: drop_pool.state is PoolState.CLOSED, "the dropped pool to close")
    assert [link.registration.agent_name for link in supervisor.links] == ["keep-agent"]
