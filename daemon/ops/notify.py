"""The sd_notify protocol, spoken without libsystemd: datagrams to ``$NOTIFY_SOCKET``.

systemd reads newline-separated ``KEY=VALUE`` assignments from an AF_UNIX datagram
socket whose address it passes in the environment; an address starting with ``@`` is
in the abstract namespace. When the variable is unset (not under systemd, or a unit
that is not ``Type=notify``) every call is a no-op, so callers never need to check.

A notification is best effort: a full or vanished socket must never stall or crash the
daemon, so sends are non-blocking and failures are logged once per kind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger("roomd.notify")


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: what systemd compares ``MONOTONIC_USEC`` against."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def socket_address(raw: str) -> str | bytes | None:
    """The sendto() address for a ``NOTIFY_SOCKET`` value; None if we cannot speak to it."""
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()  # abstract namespace: a leading NUL, no file
    if raw.startswith("/"):
        return raw
    return None  # e.g. "vsock:..." (systemd 253+ in VMs): not ours to support here


class Notifier:
    """Sends notifications to one service manager socket, or nowhere."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._target = socket_address(address) if address else None
        self._sock: socket.socket | None = None
        self._failed_kinds: set[str] = set()
        if address and self._target is None:
            log.warning("NOTIFY_SOCKET has an address kind we do not support; not notifying",
                        notify_socket=address)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._target is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` lines (keys upper-cased); True if the datagram left."""
        if self._target is None:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value)
            if "\n" in text:  # a newline would start a new assignment systemd would obey
                text = text.replace("\n", " ")
            lines.append(f"{key.upper()}={text}")
        payload = "\n".join(lines).encode()
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        try:
            self._sock.sendto(payload, self._target)
        except OSError as exc:
            kind = type(exc).__name__
            if kind not in self._failed_kinds:
                self._failed_kinds.add(kind)
                log.warning("sd_notify failed", notify_socket=self.address, error=str(exc) or kind)
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class WatchdogSettings:
    """``WatchdogSec=`` as systemd hands it to the main process."""

    def __init__(self, interval_usec: int) -> None:
        self.interval_usec = interval_usec

    @property
    def ping_every(self) -> float:
        # Half the deadline, as sd_watchdog_enabled(3) advises: one late ping is survivable.
        return self.interval_usec / 2 / 1e6

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None,
                         pid: int | None = None) -> WatchdogSettings | None:
        """None unless ``WATCHDOG_USEC`` is set and (if ``WATCHDOG_PID`` is set) meant for us."""
        env = os.environ if environ is None else environ
        raw = env.get("WATCHDOG_USEC", "")
        if not raw:
            return None
        owner = env.get("WATCHDOG_PID", "")
        if owner and owner != str(os.getpid() if pid is None else pid):
            return None  # inherited from a parent that systemd watches; pinging would lie for it
        try:
            usec = int(raw)
        except ValueError:
            log.warning("WATCHDOG_USEC is not an integer; watchdog disabled", value=raw)
            return None
        return cls(usec) if usec > 0 else None


async def run_watchdog(notifier: Notifier, settings: WatchdogSettings,
                       healthy: Callable[[], bool] = lambda: True) -> None:
    """Ping ``WATCHDOG=1`` every half interval for as long as the event loop keeps turning
    and ``healthy()`` holds.

    The ping comes from a task on the loop itself: a blocked loop sends nothing and
    systemd's deadline fires (SIGABRT, then a restart), which is the point. So does a
    daemon whose essential task died: a restart is better than a silent, frozen daemon.
    """
    every = settings.ping_every
    loop = asyncio.get_running_loop()
    while True:
        if healthy():
            notifier.notify(watchdog=1)
        due = loop.time() + every
        await asyncio.sleep(every)
        late = loop.time() - due
        if late > every / 2:
            log.warning("event loop was blocked; watchdog ping late", late_seconds=round(late, 3),
                        watchdog_seconds=settings.interval_usec / 1e6)
