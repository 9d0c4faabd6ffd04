"""What the operations layer reads from the daemon: a narrow, structural view.

The supervisor satisfies this protocol; the ops modules depend on it instead of on the
supervisor module, so they never import the supervisor and can be tested against a hand-built
view. The view's fields are the daemon's own types (admission, links, pools, plugin records).
"""

from __future__ import annotations

import enum
from typing import Protocol

from roomd.daemon.admission import Admission
from roomd.daemon.config import Config
from roomd.daemon.link import ServerLink
from roomd.daemon.load import LoadMonitor
from roomd.daemon.plugin_runtime import PluginRecord
from roomd.daemon.pool import Pool, PoolLauncher
from roomd.daemon.transitions import TransitionCounter

from .pools import PoolRoster


class ReloadOutcome(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def generation(self) -> int: ...
    @property
    def detail(self) -> str: ...


class DaemonView(Protocol):
    @property
    def state(self) -> enum.Enum: ...
    @property
    def generation(self) -> int: ...
    @property
    def links(self) -> list[ServerLink]: ...  # current and retiring
    @property
    def pools(self) -> list[Pool]: ...  # current and retiring

    config: Config
    launcher: PoolLauncher  # its pools are the current generation, one per plugin
    plugins: dict[str, PluginRecord]
    roster: PoolRoster
    load: LoadMonitor
    admission: Admission
    started_at: float
    transitions: TransitionCounter  # every state machine's changes
    version: str

    async def request_reload(self) -> ReloadOutcome: ...

    def dead_tasks(self) -> dict[str, str]: ...  # essential tasks that ended, and how
