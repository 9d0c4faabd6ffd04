"""``PoolLauncher``: a ``JobLauncher`` that routes each job to its plugin's current pool."""

from __future__ import annotations

from collections.abc import Callable

from roomd.daemon.jobs import Job, LaunchError

from .pool import Pool


class PoolLauncher:
    """Plugin name -> its current-generation Pool. A reload swaps the pool with ``set_pool``;
    jobs already running keep their old-generation child."""

    def __init__(self, pools: dict[str, Pool] | None = None, *,
                 on_pool: Callable[[Pool], None] | None = None) -> None:
        """``on_pool`` hears of every pool made current, so metrics and /status can follow
        a generation after it is replaced and while it finishes its jobs."""
        self._pools: dict[str, Pool] = dict(pools or {})
        self._on_pool = on_pool

    def set_pool(self, pool: Pool) -> Pool | None:
        """Make ``pool`` current for its plugin; return the pool it replaces (to drain and close)."""
        previous = self._pools.get(pool.plugin)
        self._pools[pool.plugin] = pool
        if self._on_pool is not None:
            self._on_pool(pool)
        return previous

    def remove_pool(self, plugin: str) -> Pool | None:
        return self._pools.pop(plugin, None)

    def get(self, plugin: str) -> Pool | None:
        return self._pools.get(plugin)

    @property
    def pools(self) -> dict[str, Pool]:
        return dict(self._pools)

    async def launch(self, job: Job) -> None:
        plugin = job.launch.plugin if job.launch is not None else ""
        pool = self._pools.get(plugin)
        if pool is None:
            raise LaunchError(f"no pool for plugin {plugin!r} (not enabled, or failed to load)")
        await pool.launch(job)
