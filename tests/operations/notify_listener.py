"""A stand-in for systemd's side of sd_notify: a real AF_UNIX datagram socket we read."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from collections.abc import Callable


def parse(datagram: bytes) -> dict[str, str]:
    fields = {}
    for line in datagram.decode().split("\n"):
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {line!r} in {datagram!r}"
        fields[key] = value
    return fields


class NotifyListener:
    """Binds a path socket (short, under /tmp: AF_UNIX paths are limited to 108 bytes) or an
    abstract one; ``address`` is the NOTIFY_SOCKET value to hand the daemon."""

    def __init__(self, *, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self._dir: str | None = None
        if abstract:
            name = f"roomd-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self._dir = tempfile.mkdtemp(prefix="rn", dir="/tmp")
            path = os.path.join(self._dir, "notify")
            self.sock.bind(path)
            self.address = path
        self.received: list[dict[str, str]] = []

    async def next(self, timeout: float) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            data = await loop.sock_recv(self.sock, 65536)
        fields = parse(data)
        self.received.append(fields)
        return fields

    async def wait_for(self, predicate: Callable[[dict[str, str]], bool],
                       timeout: float) -> dict[str, str]:
        """The first message (from now) matching ``predicate``; every one read is kept."""
        async with asyncio.timeout(timeout):
            while True:
                fields = await self.next(timeout)
                if predicate(fields):
                    return fields

    def pending(self) -> list[dict[str, str]]:
        """Messages already queued in the socket, without waiting."""
        out = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return out
            out.append(parse(data))
            self.received.append(out[-1])

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            os.unlink(os.path.join(self._dir, "notify"))
            os.rmdir(self._dir)

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def significant(messages: list[dict[str, str]]) -> list[str]:
    """The lifecycle announcements in order, without STATUS/WATCHDOG/EXTEND noise."""
    keys = ("READY", "RELOADING", "STOPPING")
    return [key for message in messages for key in keys if key in message]
