"""Pools with short deadlines, started from the test plugins in this folder, always closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pool_helpers import FAST, plugin_env, zombies

from roomd.daemon.config import PoolConfig
from roomd.daemon.pool import Pool


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., Any]]:
    pools: list[Pool] = []

    async def factory(target: str = "plugins_for_tests:normal", *, start: bool = True,
                      config: PoolConfig | None = None, **kwargs: Any) -> Pool:
        pool = Pool(plugin="tests", target=target, config=config or FAST, env=plugin_env(), **kwargs)
        pools.append(pool)
        if start:
            await pool.start()
        return pool

    yield factory
    for pool in pools:
        await pool.aclose(timeout=2.0)
    assert zombies() == [], "every child must be reaped"

