"""What the link sends: a durable, ordered outbox, the pings that prove the server caught up
with it, and the worker status (AVAILABLE/FULL, load, job count) reported through it.

The outbox does not belong to a socket: a message waits for the next connection when the
current one drops, and leaves the queue only once it is on the wire.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import cast

import aiohttp
import structlog
from livekit.protocol import agent as agent_pb

from roomd.daemon.admission import Admission, Refusal
from roomd.daemon.load import reported_load

log = structlog.get_logger("roomd.link")

FULL_WARNING_INTERVAL = 60.0  # seconds between warnings that we report FULL


class Outbox:
    def __init__(self) -> None:
        self._messages: collections.deque[agent_pb.WorkerMessage] = collections.deque()
        # The worker status goes out behind every queued message: an offer's answer or a
        # job's RUNNING never waits for it, and only the latest one is worth sending.
        self._status: agent_pb.WorkerMessage | None = None
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        # WorkerPings whose pong proves the server has handled everything sent before them.
        self._barriers: list[tuple[int, asyncio.Future[None]]] = []
        self._last_ping_stamp = 0

    def __len__(self) -> int:
        return len(self._messages) + (self._status is not None)

    def send(self, message: agent_pb.WorkerMessage) -> None:
        """Queue a message; it goes out, in order, on this or the next connection."""
        self._messages.append(message)
        self._empty.clear()
        self._ready.set()

    def send_status(self, message: agent_pb.WorkerMessage) -> None:
        """Queue the worker status in place of any not sent yet, behind every other message."""
        self._status = message
        self._empty.clear()
        self._ready.set()

    def send_first(self, message: agent_pb.WorkerMessage) -> None:
        """Queue a message ahead of all others (sent when the next connection starts)."""
        self._messages.appendleft(message)

    def drop(self, kind: str) -> None:
        """Forget queued messages of one kind: news that means nothing on a later socket."""
        self._messages = collections.deque(
            m for m in self._messages if m.WhichOneof("message") != kind)
        if self._status is not None and self._status.WhichOneof("message") == kind:
            self._status = None

    def wake(self) -> None:
        self._ready.set()

    async def run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Send queued messages on ``ws`` until it fails."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._messages or self._status is not None:
                message = self._messages[0] if self._messages else self._status
                assert message is not None
                try:
                    await ws.send_bytes(message.SerializeToString())
                except (ConnectionError, aiohttp.ClientError):
                    return  # the reader sees the close; the message waits for the next socket
                # Off the queue only once it is on the wire (a newer status may have replaced it).
                if self._messages and self._messages[0] is message:
                    self._messages.popleft()
                elif self._status is message:
                    self._status = None
            self._empty.set()

    async def flushed(self, timeout: float) -> bool:
        """True once every queued message is on the wire; False if ``timeout`` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._empty.wait()
        except TimeoutError:
            return False
        return True

    def ping(self) -> int:
        # Strictly increasing stamps, so a pong names exactly which pings it follows.
        stamp = self._last_ping_stamp = max(int(time.time() * 1000), self._last_ping_stamp + 1)
        self.send(agent_pb.WorkerMessage(ping=agent_pb.WorkerPing(timestamp=stamp)))
        return stamp

    def pong(self, last_timestamp: int) -> None:
        # The server handles one worker's messages in order: a pong for a ping sent
        # after a status means that status has been applied.
        for stamp, waiter in self._barriers:
            if stamp <= last_timestamp and not waiter.done():
                waiter.set_result(None)

    async def caught_up(self, timeout: float) -> bool:
        """True once the server has handled every message queued before this call (but the
        worker status, which goes out behind them all)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.ping(), waiter)
        self._barriers.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            self._barriers.remove(entry)


class StatusReporter:
    """Keeps the server told whether this worker takes offers, its load and its job count."""

    def __init__(self, *, agent_name: str, admission: Admission, outbox: Outbox, interval: float,
                 active_jobs: Callable[[], int], draining: Callable[[], bool]) -> None:
        self._agent_name = agent_name
        self._admission = admission
        self._outbox = outbox
        self._interval = interval
        self._active_jobs = active_jobs
        self._draining = draining
        self.changed = asyncio.Event()
        self.reported_load = 0.0
        self._full_warned_at = -FULL_WARNING_INTERVAL

    async def run(self) -> None:
        # Woken by every admission change (a slot reserved or released, here or in another
        # plugin's link), so the server hears a new slot use at once, not at the next period.
        last: tuple[int, int, float] | None = None
        next_periodic = 0.0
        while True:
            draining = self._draining()
            refusal = None if draining else self._admission.refusal()
            status = agent_pb.WS_FULL if (draining or refusal is not None) \
                else agent_pb.WS_AVAILABLE
            active = self._active_jobs()
            load = round(reported_load(self._admission.load(), self._admission.slot_use()), 3)
            now = time.monotonic()
            if status != (last[0] if last else agent_pb.WS_AVAILABLE) and not draining:
                self._log_availability(refusal, now)
            if (status, active, load) != last or now >= next_periodic:
                self._send(status, active, load)
                last, next_periodic = (status, active, load), now + self._interval
            self.changed.clear()
            try:
                async with asyncio.timeout(max(0.0, next_periodic - time.monotonic())):
                    await self.changed.wait()
            except TimeoutError:
                pass
            # What woke us (a slot reserved for an offer) has queued its own message, whose
            # sender was woken after us: let it go out before this status is worked out.
            await asyncio.sleep(0)

    def _log_availability(self, refusal: Refusal | None, now: float) -> None:
        """The server stops offering to a FULL worker without telling anyone: say why here,
        loudly at most once a minute (a load hovering at the threshold flips it often)."""
        if refusal is None:
            log.info("reporting available again", agent=self._agent_name)
            return
        loud = now - self._full_warned_at >= FULL_WARNING_INTERVAL
        if loud:
            self._full_warned_at = now
        (log.warning if loud else log.debug)(
            "reporting full: no offers until this changes", agent=self._agent_name,
            reason=refusal.decision.value, detail=refusal.detail)

    def _send(self, status: int, active: int, load: float) -> None:
        # Replaces one not sent yet: only the latest status is news.
        self.reported_load = load
        self._outbox.send_status(agent_pb.WorkerMessage(update_worker=agent_pb.UpdateWorkerStatus(
            status=cast("agent_pb.WorkerStatus", status), load=load, job_count=active)))
