"""The process pool: prewarmed children per plugin and generation, forked from a zygote."""

from .child import ApiCredentials, ChildSnapshot
from .handle import PoolJobHandle
from .launcher import PoolLauncher
from .limits import PoolLimits
from .pool import Pool, RequestEvaluationError
from .states import REQUEST_HOST_STATE, ChildState, PoolState
from .stats import PoolSnapshot, PoolStats

__all__ = [
    "ApiCredentials", "ChildSnapshot", "ChildState", "Pool", "PoolJobHandle", "PoolLauncher",
    "PoolLimits", "PoolSnapshot", "PoolState", "PoolStats", "REQUEST_HOST_STATE",
    "RequestEvaluationError",
]
