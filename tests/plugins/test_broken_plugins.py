"""Broken plugins are FAILED with their cause; a good plugin beside them keeps serving."""

from __future__ import annotations

from livekit.protocol import agent as agent_pb
from plugin_factory import (
    IMPORT_FAILS,
    NOT_WORKER_OPTIONS,
    PREWARM_RAISES,
    RAISES_AT_IMPORT,
    PluginInstaller,
    good_agent,
)
from rooms import Caller, dispatch, room_name, wait_job_status, wait_jobs_ended, wait_until

from plugin_factory import config_toml
from roomd.daemon.plugin_runtime import PluginState

BROKEN = {
    "import-fails": (IMPORT_FAILS, "No module named 'roomd_test_dependency_that_is_not_installed'"),
    "raises": (RAISES_AT_IMPORT, "RuntimeError: no API key in the environment: refusing to load"),
    "not-options": (NOT_WORKER_OPTIONS, "is a dict, not a roomd.agents.WorkerOptions"),
    "prewarm-fails": (PREWARM_RAISES, "prewarm_fnc raised FileNotFoundError: model weights "
                                      "/nonexistent/model.bin are missing"),
}


async def test_each_broken_plugin_is_failed_with_its_cause_and_the_good_one_serves(
        livekit_server, installer: PluginInstaller, daemons, lkapi) -> None:
    installer.install("good", good_agent("good", "good-agent"))
    for name, (source, _cause) in BROKEN.items():
        installer.install(name, source)
    installer.install("missing-module", IMPORT_FAILS, entry_point="roomd_test_nowhere.agent:options")
    names = ["good", "missing-module", *BROKEN]
    supervisor = await daemons(config_toml(livekit_server, names))
    # Ready does not wait for a broken plugin's every retry (only its first failure): wait
    # for each to give up.
    await wait_until(lambda: all(supervisor.plugins[n].state is not PluginState.STARTING for n in names),
                     "every broken plugin to be FAILED")

    for name, (_source, cause) in BROKEN.items():
        record = supervisor.plugins[name]
        assert record.state is PluginState.FAILED, (name, record)
        assert cause in record.last_error, (name, record.last_error)
        assert record.spec.distribution == f"roomd-test-{name}"
    missing = supervisor.plugins["missing-module"]
    assert missing.state is PluginState.FAILED
    assert "module 'roomd_test_nowhere' is not installed" in missing.last_error
    good = supervisor.plugins["good"]
    assert (good.state, good.agent_name, good.last_error) == (PluginState.SERVING, "good-agent", "")
    assert [link.registration.agent_name for link in supervisor.links] == ["good-agent"]

    room = room_name("good")
    caller = await Caller(livekit_server, room).join()
    try:
        await dispatch(lkapi, "good-agent", room)
        attributes = await caller.wait_agent()
        assert attributes == {"plugin": "good", "plugin_version": "1.0.0", "prewarmed": "yes"}
        await wait_job_status(lkapi, room, agent_pb.JS_RUNNING)
        await caller.say_bye()
        await wait_jobs_ended(supervisor.launcher.get("good"), "SUCCESS")
    finally:
        await caller.leave()


async def test_config_enables_and_disables_plugins_by_name(
        livekit_server, installer: PluginInstaller, daemons) -> None:
    for name in ("alpha", "beta", "gamma"):
        installer.install(name, good_agent(name, f"{name}-agent"))
    supervisor = await daemons(config_toml(livekit_server, ["alpha", "beta", "gamma"],
                                           extra='disabled = ["beta"]'))
    states = {name: supervisor.plugins[name].state for name in ("alpha", "beta", "gamma")}
    assert states == {"alpha": PluginState.SERVING, "beta": PluginState.DISABLED,
                      "gamma": PluginState.SERVING}
    # Installed but not in `enabled`: known to the daemon, never started.
    assert "probe" not in supervisor.launcher.pools
    assert sorted(link.registration.agent_name for link in supervisor.links) == \
        ["alpha-agent", "gamma-agent"]
