"""The zygote's control socket: the supervisor asks for forks, the zygote answers with pids.

One message per SOCK_SEQPACKET packet (the socket keeps boundaries), so no length prefix;
``Fork`` carries the child's end of its socketpair as SCM_RIGHTS ancillary data.
"""

from __future__ import annotations

import msgspec

from .messages import PluginDescription

MAX_CONTROL_PACKET = 1 << 16


class _Control(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    pass


class ZygoteReady(_Control, frozen=True):
    pid: int
    description: PluginDescription | None = None
    error: str = ""  # the plugin could not be imported or is not a valid WorkerOptions
    threads: int = 1  # threads alive in the zygote; more than 1 makes fork unsafe


class Fork(_Control, frozen=True):
    child_id: int


class Forked(_Control, frozen=True):
    child_id: int
    pid: int


class ForkFailed(_Control, frozen=True):
    child_id: int
    error: str


ControlMessage = ZygoteReady | Fork | Forked | ForkFailed
