"""The limits one plugin runs under, resolved in one place from the operator's config and the
plugin's description (``PluginDescription.overrides``, from its WorkerOptions).

The plugin may choose its own values, but the operator's memory limit is a ceiling: a plugin can
lower it, never raise or remove it (its 0, "no limit", means "the operator's limit").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from roomd.daemon.config import Config, PoolConfig
from roomd.ipc import PluginDescription

# Limits the operator sets as a ceiling: a plugin may only ask for less (0 means no limit).
CEILINGS = ("job_memory_limit_mb",)


@dataclasses.dataclass(frozen=True)
class PoolLimits:
    num_idle_processes: int
    max_jobs_per_process: int
    max_concurrent_spawns: int
    initialize_timeout: float
    shutdown_timeout: float
    ping_interval: float
    ping_timeout: float
    memory_sample_interval: float
    job_memory_warn_mb: float
    job_memory_limit_mb: float
    max_start_failures: int
    start_backoff_max: float
    start_backoff_base: float = 0.5
    memory_warn_interval: float = 60.0  # at most one memory warning per child per interval
    kill_grace: float = 2.0  # SIGTERM -> SIGKILL
    log_rate: float = 200.0
    log_burst: int = 1000
    log_level: str = "info"

    @classmethod
    def resolve(
        cls,
        config: PoolConfig,
        plugin_overrides: Mapping[str, float] | None = None,
        operator_overrides: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> PoolLimits:
        """PoolConfig < the plugin's WorkerOptions (``PluginDescription.overrides``) < the operator's
        per-plugin settings (``[plugins.options.<name>]``), except for ``CEILINGS``, where the
        operator's value bounds the plugin's. Keys that are not pool limits are ignored.
        """
        values: dict[str, Any] = {f.name: getattr(config, f.name) for f in dataclasses.fields(cls)
                                  if hasattr(config, f.name)}
        names = {f.name: f.type for f in dataclasses.fields(cls)}
        for layer in (plugin_overrides or {}, operator_overrides or {}):
            for key, value in layer.items():
                if key in names and key not in CEILINGS and value is not None:
                    values[key] = value
        for key in CEILINGS:
            operator = (operator_overrides or {}).get(key)
            ceiling = values[key] if operator is None else float(operator)
            values[key] = within_ceiling(ceiling, (plugin_overrides or {}).get(key))
        values.update(extra)
        for key in ("num_idle_processes", "max_jobs_per_process", "max_concurrent_spawns",
                    "max_start_failures", "log_burst"):
            if key in values:
                values[key] = int(values[key])
        values["max_jobs_per_process"] = max(1, values["max_jobs_per_process"])
        return cls(**values)


def within_ceiling(ceiling: float, asked: float | None) -> float:
    """The plugin's ``asked`` limit, never above the operator's ``ceiling`` (0 on either: none)."""
    if asked is None or asked == 0:
        return ceiling
    return asked if ceiling == 0 else min(ceiling, asked)


def operator_overrides(config: Config, plugin: str) -> Mapping[str, Any]:
    """The pool limits the operator set for ``plugin`` in ``[plugins.options.<name>]``."""
    options = config.plugins.options.get(plugin)
    if options is None:
        return {}
    return {"num_idle_processes": options.num_idle_processes,
            "job_memory_limit_mb": options.job_memory_limit_mb}


def plugin_limits(config: Config, plugin: str, description: PluginDescription) -> tuple[int, float]:
    """The plugin's own ``(max_jobs, load_threshold)`` inside the daemon's budget.

    The operator's ``[plugins.options.<name>]`` wins over what the plugin's WorkerOptions
    asks for; unset means no limit of its own (0 jobs, an infinite threshold). Dev mode
    ignores load thresholds, like the daemon's own.
    """
    options = config.plugins.options.get(plugin)
    max_jobs = options.max_jobs if options is not None and options.max_jobs is not None \
        else int(description.overrides.get("max_jobs", 0))
    threshold = options.load_threshold if options is not None and options.load_threshold is not None \
        else description.overrides.get("load_threshold", math.inf)
    return max_jobs, (math.inf if config.daemon.dev else threshold)
