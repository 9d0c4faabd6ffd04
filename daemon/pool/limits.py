"""The limits one plugin's pool runs under: PoolConfig, overridden by the plugin, then the operator."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from roomd.daemon.config import PoolConfig


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
        per-plugin settings (``[plugins.options.<name>]``). Keys that are not pool limits are ignored.
        """
        values: dict[str, Any] = {f.name: getattr(config, f.name) for f in dataclasses.fields(cls)
                                  if hasattr(config, f.name)}
        names = {f.name: f.type for f in dataclasses.fields(cls)}
        for layer in (plugin_overrides or {}, operator_overrides or {}):
            for key, value in layer.items():
                if key in names and value is not None:
                    values[key] = value
        values.update(extra)
        for key in ("num_idle_processes", "max_jobs_per_process", "max_concurrent_spawns",
                    "max_start_failures", "log_burst"):
            if key in values:
                values[key] = int(values[key])
        values["max_jobs_per_process"] = max(1, values["max_jobs_per_process"])
        return cls(**values)
