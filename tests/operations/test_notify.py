"""sd_notify against a real datagram socket: addresses, the watchdog, and the supervisor's
announcements through start, reload and stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from roomd.daemon.config import Config, DaemonConfig
from roomd.daemon.ops.notify import Notifier, WatchdogSettings, monotonic_usec, run_watchdog
from roomd.daemon.pool.zygote import child_environment
from roomd.daemon.supervisor import Supervisor
from roomd.daemon.plugins.discovery import Discovery

from notify_listener import NotifyListener, significant


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
async def test_notifier_sends_assignments_to_the_socket(abstract: bool) -> None:
    with NotifyListener(abstract=abstract) as listener:
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": listener.address})
        assert notifier.enabled
        assert notifier.notify(ready=1, status="ready: 0 jobs")
        assert await listener.next(5) == {"READY": "1", "STATUS": "ready: 0 jobs"}
        notifier.close()


async def test_a_newline_in_a_value_cannot_inject_an_assignment() -> None:
    with NotifyListener() as listener:
        notifier = Notifier(listener.address)
        notifier.notify(status="ok\nREADY=1")
        assert await listener.next(5) == {"STATUS": "ok READY=1"}
        notifier.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    assert notifier.notify(ready=1) is False


def test_a_vanished_socket_is_reported_not_raised() -> None:
    listener = NotifyListener()
    address = listener.address
    listener.close()
    notifier = Notifier(address)
    assert notifier.notify(ready=1) is False  # logged once; the daemon goes on
    notifier.close()


def test_watchdog_settings_honour_watchdog_pid() -> None:
    mine = WatchdogSettings.from_environment({"WATCHDOG_USEC": "4000000",
                                              "WATCHDOG_PID": str(os.getpid())})
    assert mine is not None and mine.ping_every == 2.0
    assert WatchdogSettings.from_environment({"WATCHDOG_USEC": "4000000"}) is not None
    assert WatchdogSettings.from_environment({"WATCHDOG_USEC": "4000000",
                                              "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert WatchdogSettings.from_environment({}) is None
    assert WatchdogSettings.from_environment({"WATCHDOG_USEC": "0"}) is None
    assert WatchdogSettings.from_environment({"WATCHDOG_USEC": "soon"}) is None


async def test_watchdog_pings_every_half_interval_and_not_while_the_loop_is_blocked() -> None:
    with NotifyListener() as listener:
        notifier = Notifier(listener.address)
        settings = WatchdogSettings(200_000)  # 0.2 s: a ping every 0.1 s
        task = asyncio.create_task(run_watchdog(notifier, settings))
        try:
            started = time.monotonic()
            for _ in range(3):
                assert await listener.next(5) == {"WATCHDOG": "1"}
            # Three pings span two intervals: never faster than half the deadline.
            assert time.monotonic() - started >= 2 * settings.ping_every * 0.9
            listener.pending()
            time.sleep(5 * settings.ping_every)  # block the loop: the watchdog task cannot run
            assert listener.pending() == []
            assert await listener.next(5) == {"WATCHDOG": "1"}  # and it resumes afterwards
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            notifier.close()


def test_children_do_not_inherit_the_service_managers_variables() -> None:
    env = child_environment({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "1",
                             "WATCHDOG_PID": "1", "LISTEN_FDS": "1", "PATH": "/usr/bin"})
    assert env["PATH"] == "/usr/bin"
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS"} & env.keys()


def _no_plugins() -> Discovery:
    return Discovery(plugins=(), problems=())


async def test_supervisor_announces_start_reload_and_stop() -> None:
    """READY once started; RELOADING with MONOTONIC_USEC then READY on reload; STOPPING on drain."""
    with NotifyListener(abstract=True) as listener:
        config = Config(daemon=DaemonConfig(http_port=0, drain_timeout=5.0))
        environ = {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "2000000",
                   "WATCHDOG_PID": str(os.getpid())}
        supervisor = Supervisor(config, discover=_no_plugins, environ=environ)
        run = asyncio.create_task(supervisor.run())
        try:
            ready = await listener.wait_for(lambda m: "READY" in m, 10)
            assert ready["STATUS"].startswith("ready:")
            before = monotonic_usec()
            result = await supervisor.request_reload()
            assert result.ok and result.generation == 2
            reloading = await listener.wait_for(lambda m: "RELOADING" in m, 5)
            # systemd matches the reload by this timestamp: CLOCK_MONOTONIC, in µs, taken now.
            assert before <= int(reloading["MONOTONIC_USEC"]) <= monotonic_usec()
            assert reloading["STATUS"].startswith("reloading:")
            await listener.wait_for(lambda m: "READY" in m, 5)
            supervisor.request_signal(signal.SIGTERM)
            stopping = await listener.wait_for(lambda m: "STOPPING" in m, 5)
            assert stopping["STATUS"].startswith("draining:")
            assert await asyncio.wait_for(run, 10) == 0
        finally:
            if not run.done():
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
        listener.pending()
        assert significant(listener.received) == ["READY", "RELOADING", "READY", "STOPPING"]
        assert {"WATCHDOG": "1"} in listener.received
        assert listener.received[-1]["STATUS"].startswith("stopped:")
