"""Previous generations on their way out: after a reload replaced a plugin's pool or link,
the old one takes no new jobs and is closed once its running jobs have ended (or after
``drain_timeout``, ending them through the link so the server hears their final status)."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from roomd.ipc.tasks import TaskOwner

from .config import Config
from .link import ServerLink
from .pool import Pool

log = structlog.get_logger("roomd.supervisor")


class Retirement:
    def __init__(self, config: Callable[[], Config]) -> None:
        """``config``: the configuration now (a reload may change the timeouts)."""
        self._config = config
        self._tasks = TaskOwner("retiring generations")
        self.pools: set[Pool] = set()  # previous generations finishing their jobs
        self.links: set[ServerLink] = set()

    def pool_later(self, pool: Pool) -> None:
        self.pools.add(pool)
        self._tasks.spawn(self._retire_pool(pool), f"retire pool {pool.plugin}#{pool.generation}")

    def link_later(self, plugin: str, link: ServerLink) -> None:
        link.drain()  # at once: the server must stop offering to it before the task runs
        self.links.add(link)
        self._tasks.spawn(self._retire_link(link), f"retire link {plugin}")

    async def _retire_pool(self, pool: Pool) -> None:
        """An old generation: no new jobs; close it once its running jobs have ended."""
        try:
            finished = await pool.drain(self._config().daemon.drain_timeout)
            if not finished:
                log.warning("old generation still busy after drain_timeout; stopping it",
                            plugin=pool.plugin, generation=pool.generation)
            await pool.aclose()
            log.info("old generation retired", plugin=pool.plugin, generation=pool.generation)
        finally:
            self.pools.discard(pool)

    async def _retire_link(self, link: ServerLink) -> None:
        try:
            if not await link.wait_idle(self._config().daemon.drain_timeout):
                # Ended through the link, so each job's final status still reaches the server
                # and its slot is given back before the socket closes.
                await link.terminate_jobs("old generation past drain_timeout",
                                          self._config().pool.shutdown_timeout)
            await link.aclose()
        finally:
            self.links.discard(link)

    async def aclose(self, timeout: float | None = 5.0) -> None:
        """Stop retiring: cancel what is still waiting (the caller closes the pools and links)."""
        await self._tasks.aclose(timeout=timeout)
