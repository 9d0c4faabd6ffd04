"""Bounds on the operations endpoint's connections, so no client can hold it open.

aiohttp waits for a request's headers for as long as the client likes and keeps every
connection it accepts. A few hundred half-sent requests then hold as many file
descriptors: the daemon runs out (EMFILE) and the endpoint stops answering. The guard
wraps aiohttp's protocol factory and

- closes a connection that spends more than ``idle_timeout`` outside a handler (sending
  its request, or idle between keep-alive requests); one inside a handler (a ``/reload``
  waiting for its result) is left alone;
- keeps at most ``max_connections``: a new connection past the limit evicts the connection
  that has been idle longest (else it is refused), so a scraper or ``roomd reload`` still
  gets through while junk connections churn each other out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger("roomd.http")

MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 10.0
SWEEP_INTERVAL = 1.0


class _Connection(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the time it last left a handler."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self._guard = guard
        self._inner = inner
        self.transport: asyncio.BaseTransport | None = None
        self.idle_since = time.monotonic()
        self.active = 0  # handlers running for this connection
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if not self._guard.admit(self):
            transport.abort()  # type: ignore[attr-defined]
            return
        self._admitted = True
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.forget(self)
        if self._admitted:
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()  # type: ignore[no-any-return]

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]


class ConnectionGuard:
    def __init__(self, factory: Callable[[], Any], *, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._factory = factory
        self._max = max_connections
        self._idle_timeout = idle_timeout
        self._open: dict[asyncio.BaseTransport, _Connection] = {}
        self.evicted = 0

    def __call__(self) -> _Connection:
        return _Connection(self, self._factory())

    def admit(self, conn: _Connection) -> bool:
        if len(self._open) >= self._max:
            idle = [c for c in self._open.values() if c.active == 0]
            if not idle:
                self.evicted += 1
                return False  # every slot is serving a handler: refuse the newcomer
            victim = min(idle, key=lambda c: c.idle_since)
            self._drop(victim)
        assert conn.transport is not None
        self._open[conn.transport] = conn
        return True

    def forget(self, conn: _Connection) -> None:
        if conn.transport is not None:
            self._open.pop(conn.transport, None)

    def _drop(self, conn: _Connection) -> None:
        self.forget(conn)  # at once: its connection_lost comes later, its slot is free now
        self.evicted += 1
        if self.evicted == 1 or self.evicted % 1000 == 0:
            log.warning("http connection closed: idle too long or too many open",
                        open=len(self._open), max_connections=self._max, closed_total=self.evicted)
        conn.close()

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        conn = self._open.get(request.transport) if request.transport is not None else None
        if conn is not None:
            conn.active += 1
        try:
            return await handler(request)
        finally:
            if conn is not None:
                conn.active -= 1
                conn.idle_since = time.monotonic()

    async def sweep(self) -> None:
        """Close connections idle past the timeout; runs until cancelled."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            cutoff = time.monotonic() - self._idle_timeout
            for conn in [c for c in self._open.values() if c.active == 0 and c.idle_since < cutoff]:
                self._drop(conn)
