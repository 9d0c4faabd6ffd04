"""An essential task that ends is never silent: the daemon says it is not ready and stops
feeding systemd's watchdog, so the service is restarted instead of serving frozen values."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from roomd.daemon.ops.notify import Notifier, WatchdogSettings, run_watchdog
from roomd.ipc.tasks import TaskOwner

sys.path.insert(0, str(Path(__file__).parent.parent / "operations"))

from notify_listener import NotifyListener


async def test_an_essential_task_that_ends_is_recorded_and_an_ordinary_one_is_not() -> None:
    owner = TaskOwner("test")

    async def fails() -> None:
        raise OSError(24, "Too many open files")

    async def returns() -> None:
        return None

    tasks = [owner.spawn(fails(), "sampler", essential=True), owner.spawn(returns(), "loop", essential=True),
             owner.spawn(fails(), "one-off")]
    await asyncio.gather(*tasks, return_exceptions=True)
    assert owner.dead == {"test: sampler": "OSError: [Errno 24] Too many open files", "test: loop": "returned"}
    await owner.aclose()


async def test_essential_tasks_cancelled_by_close_are_not_dead() -> None:
    owner = TaskOwner("test")
    owner.spawn(asyncio.sleep(3600), "sampler", essential=True)
    await owner.aclose()
    assert owner.dead == {}


async def test_the_watchdog_stops_pinging_while_the_daemon_is_unhealthy() -> None:
    healthy = True
    with NotifyListener() as listener:
        notifier = Notifier(listener.address)
        settings = WatchdogSettings(200_000)  # a ping every 0.1 s
        task = asyncio.create_task(run_watchdog(notifier, settings, healthy=lambda: healthy))
        try:
            assert await listener.next(5) == {"WATCHDOG": "1"}
            healthy = False
            listener.pending()
            await asyncio.sleep(5 * settings.ping_every)
            assert listener.pending() == []
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            notifier.close()
