"""The systemd unit, rendered for an install prefix.

``packaging/roomd.service`` is this rendering for /opt/roomd (a test keeps them equal):
the unit exists once, here, so ``roomd service install`` can write it from a wheel that
carries no data files.
"""

from __future__ import annotations

import math

from roomd.daemon.config import DaemonConfig, PoolConfig

from .deadlines import UNIT_START_TIMEOUT

CONFIG_PATH = "/etc/roomd/roomd.toml"
ENV_FILE = "/etc/roomd/roomd.env"
WATCHDOG_SECONDS = 30


def stop_timeout_seconds(drain_timeout: float = DaemonConfig().drain_timeout,
                         shutdown_timeout: float = PoolConfig().shutdown_timeout) -> int:
    """Above the daemon's own worst case: drain, then stop the children, then a margin.

    The daemon also asks for more time (EXTEND_TIMEOUT_USEC) within that budget, so a
    larger ``drain_timeout`` in roomd.toml does not need this edited.
    """
    return math.ceil(drain_timeout + 2 * shutdown_timeout + 60)


def render_unit(venv: str = "/opt/roomd/venv") -> str:
    roomd = f"{venv}/bin/roomd"
    return f"""\
# roomd: runs LiveKit voice-agent plugins. Written by `roomd service install`;
# local changes belong in a drop-in: systemctl edit roomd
[Unit]
Description=roomd - LiveKit voice agents as a service
After=network-online.target
Wants=network-online.target

[Service]
# notify, not notify-reload: Debian 12 has systemd 252 (notify-reload needs 253).
# ExecReload waits until the daemon has finished the reload (RELOADING=1 ... READY=1).
Type=notify
NotifyAccess=main
ExecStart={roomd} run --config {CONFIG_PATH} --log-format json
ExecReload={roomd} reload --config {CONFIG_PATH}
EnvironmentFile={ENV_FILE}
Environment=HOME=%S/roomd XDG_CACHE_HOME=%C/roomd PYTHONUNBUFFERED=1

# SIGTERM to the supervisor only: it drains its children itself; whatever is left in
# the cgroup after TimeoutStopSec gets SIGKILL.
KillMode=mixed
# Also bounds ExecReload= on systemd 252: above roomd reload's own wait (daemon/ops/deadlines.py).
TimeoutStartSec={UNIT_START_TIMEOUT}
TimeoutStopSec={stop_timeout_seconds()}
WatchdogSec={WATCHDOG_SECONDS}
Restart=on-failure
RestartSec=5
LimitNOFILE=65536
# Our own cgroup subtree with the memory controller: each child gets a cgroup with its job's
# memory limit (memory.max), which the kernel holds exactly (docs/operations.md, Memory limits).
Delegate=memory

DynamicUser=yes
StateDirectory=roomd
CacheDirectory=roomd
RuntimeDirectory=roomd
UMask=0077

NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
# Not ProtectControlGroups: on systemd 252 it makes the delegated subtree read-only too.
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
PrivateMounts=yes
PrivateUsers=yes
# AF_NETLINK: WebRTC lists network interfaces with getifaddrs(3), which uses netlink.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged
# @resources stays allowed: WebRTC and ML runtimes set thread priorities and affinity.
SystemCallErrorNumber=EPERM
# Not MemoryDenyWriteExecute: ctypes/cffi callbacks and some ML runtimes that plugins
# load generate code at run time and would crash.

[Install]
WantedBy=multi-user.target
"""
