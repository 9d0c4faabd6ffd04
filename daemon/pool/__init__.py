"""The process pool: prewarmed children per plugin and generation, forked from a zygote."""

from roomd.daemon.plugins.limits import PoolLimits

from .child import ApiCredentials, ChildSnapshot
from .launcher import PoolLauncher
from .pool import Pool
from .questions import RequestEvaluationError
from .states import REQUEST_HOST_STATE, ChildState, ExitReason, PoolState
from .stats import PoolSnapshot, PoolStats

__all__ = [
    "REQUEST_HOST_STATE",
    "ApiCredentials",
    "ChildSnapshot",
    "ChildState",
    "ExitReason",
    "Pool",
    "PoolLauncher",
    "PoolLimits",
    "PoolSnapshot",
    "PoolState",
    "PoolStats",
    "RequestEvaluationError",
]
