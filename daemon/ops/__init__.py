"""roomd as a system service: sd_notify and watchdog, the HTTP endpoint, Prometheus metrics."""

from .http import OpsHttpServer
from .playground import Playground
from .metrics import DaemonMetrics
from .notify import Notifier, WatchdogSettings
from .pools import PoolRoster
from .service import ServiceOps
from .status import DaemonStatus, Readiness, collect_status, readiness
from .view import DaemonView

__all__ = [
    "DaemonMetrics", "DaemonStatus", "DaemonView", "Notifier", "OpsHttpServer", "Playground", "PoolRoster",
    "Readiness", "ServiceOps", "WatchdogSettings", "collect_status", "readiness",
]
