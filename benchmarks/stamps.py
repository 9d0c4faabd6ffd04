"""Timestamps from inside agent processes to the benchmark, over a unix datagram socket.

The bench agents (roomd's and the peer's) call ``stamp()`` at the moments the benchmark
measures: a process finished prewarming, an entrypoint started, a job joined its room.
Each stamp carries ``time.monotonic()``, which on Linux is CLOCK_MONOTONIC, one clock for
every process on the machine, so it is comparable with the benchmark's own readings.

Stdlib only: this module is imported by roomd's venv and by the peer's venv alike.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from waiting import wait_until

ENV = "BENCH_STAMP_SOCKET"


def stamp(kind: str, **fields: str | int) -> None:
    """Send one stamp if a benchmark is listening (``BENCH_STAMP_SOCKET``); else do nothing."""
    path = os.environ.get(ENV)
    if not path:
        return
    payload = json.dumps({"kind": kind, "t": time.monotonic(), "pid": os.getpid(), **fields})
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        # A unix datagram socket blocks rather than drops when the reader is behind, so a
        # missing stamp means the process never got there, not that the socket lost it.
        sock.sendto(payload.encode(), path)


@dataclass(frozen=True)
class Stamp:
    kind: str
    t: float
    pid: int
    job_id: str = ""
    room: str = ""


class StampReceiver(asyncio.DatagramProtocol):
    """Collects stamps and wakes whoever waits for a condition on them."""

    def __init__(self) -> None:
        self.stamps: list[Stamp] = []
        self._changed = asyncio.Event()

    def datagram_received(self, data: bytes, addr: object) -> None:
        raw = json.loads(data)
        self.stamps.append(
            Stamp(raw["kind"], float(raw["t"]), int(raw["pid"]), str(raw.get("job_id", "")),
                  str(raw.get("room", "")))
        )
        self._changed.set()

    def of(self, kind: str) -> list[Stamp]:
        return [s for s in self.stamps if s.kind == kind]

    def first(self, kind: str, job_id: str) -> Stamp | None:
        return next((s for s in self.stamps if s.kind == kind and s.job_id == job_id), None)

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """True once ``condition()`` holds after some stamp; False if ``timeout`` passed first."""
        return await wait_until(self._changed, condition, timeout)


async def listen(path: str) -> tuple[asyncio.DatagramTransport, StampReceiver]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    transport, receiver = await asyncio.get_running_loop().create_datagram_endpoint(
        StampReceiver, sock=sock
    )
    return transport, receiver
