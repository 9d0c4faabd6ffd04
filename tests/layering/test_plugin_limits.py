"""A plugin's limits come from one place, and the operator's memory limit is a ceiling the
plugin can lower but never raise or remove (its 0, "no limit", means the operator's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomd.agents import WorkerOptions
from roomd.child.plugin import describe
from roomd.daemon.config import load_config
from roomd.daemon.plugins.limits import PoolLimits, operator_overrides, within_ceiling

SERVER = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": "key", "LIVEKIT_API_SECRET": "secret"}


async def entrypoint(ctx: object) -> None:
    pass


def limit_for(plugin_asks: float | None, *, pool: float, per_plugin: float | None = None,
              tmp_path: Path) -> float:
    text = f"[pool]\njob_memory_limit_mb = {pool}\n"
    if per_plugin is not None:
        text += f"[plugins.options.agent]\njob_memory_limit_mb = {per_plugin}\n"
    path = tmp_path / "roomd.toml"
    path.write_text(text)
    config = load_config(path, environ=SERVER)
    # The path the daemon takes: the zygote describes the plugin's WorkerOptions, the pool
    # resolves its limits from that description and the operator's settings.
    description = describe(WorkerOptions(entrypoint_fnc=entrypoint, job_memory_limit_mb=plugin_asks))
    limits = PoolLimits.resolve(config.pool, description.overrides, operator_overrides(config, "agent"))
    return limits.job_memory_limit_mb


@pytest.mark.parametrize(("asks", "pool", "per_plugin", "expected"), [
    (0, 300, None, 300),        # the plugin's "no limit" does not remove the operator's
    (1000, 300, None, 300),     # nor raise it
    (None, 300, None, 300),     # silent plugin: the operator's
    (200, 300, None, 200),      # lowering it is the plugin's right
    (1000, 0, None, 1000),      # no operator limit: the plugin's own
    (0, 0, None, 0),            # neither: none
    (0, 300, 500, 500),         # the operator's per-plugin setting replaces [pool]'s
    (800, 300, 500, 500),
    (100, 300, 500, 100),
    (100, 300, 0, 100),         # operator removed the limit for this plugin: the plugin's own
])
def test_the_operator_memory_limit_is_a_ceiling(asks: float | None, pool: float, per_plugin: float | None,
                                                expected: float, tmp_path: Path) -> None:
    assert limit_for(asks, pool=pool, per_plugin=per_plugin, tmp_path=tmp_path) == expected


def test_within_ceiling_treats_zero_as_no_limit_on_either_side() -> None:
    assert within_ceiling(300, 0) == 300
    assert within_ceiling(0, 0) == 0
    assert within_ceiling(0, 50) == 50
    assert within_ceiling(300, None) == 300


def test_other_limits_still_follow_plugin_then_operator() -> None:
    config = load_config(None, environ=SERVER, overrides={"pool.num_idle_processes": 2})
    limits = PoolLimits.resolve(config.pool, {"num_idle_processes": 4.0, "job_memory_warn_mb": 900.0},
                                {"num_idle_processes": 1})
    assert (limits.num_idle_processes, limits.job_memory_warn_mb) == (1, 900.0)
