"""A recording relay for the agent protocol, between a worker and the LiveKit server.

The benchmark cannot ask roomd or the peer when they answered an offer without trusting
their own bookkeeping (and the two keep different books). The tap sits on the wire instead:
the worker connects to it as if it were the server, it opens the same websocket upstream
(same path, query and Authorization header) and relays every frame both ways, noting the
time (CLOCK_MONOTONIC) at which it saw each ``AvailabilityRequest``, ``AvailabilityResponse``,
``JobAssignment`` and ``UpdateJobStatus``. Both workers pay the same extra loopback hop.

One change is made to the traffic: an empty ``JobAssignment.url`` (meaning "the URL you
registered with") is filled with the server's own URL, so jobs join their rooms directly
and only the agent protocol goes through the tap.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from livekit.protocol import agent as agent_pb

from waiting import wait_until


@dataclass(frozen=True)
class WireEvent:
    t: float
    kind: str  # availability_request, availability_response, assignment, job_status, registered
    job_id: str = ""
    available: bool = False
    status: int = 0
    agent_name: str = ""
    dispatch_id: str = ""


class WireTap:
    def __init__(self, upstream_ws_url: str) -> None:
        self._upstream = upstream_ws_url.rstrip("/")
        self.events: list[WireEvent] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._session = aiohttp.ClientSession()
        self.url = f"ws://127.0.0.1:{port}"
        return self.url

    async def aclose(self) -> None:
        for task in list(self._relays):
            task.cancel()
        if self._relays:
            await asyncio.gather(*self._relays, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- what was seen ---------------------------------------------------------------------
    def first(self, kind: str, job_id: str) -> WireEvent | None:
        return next((e for e in self.events if e.kind == kind and e.job_id == job_id), None)

    def of(self, kind: str) -> list[WireEvent]:
        return [e for e in self.events if e.kind == kind]

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        return await wait_until(self._changed, condition, timeout)

    def _note(self, event: WireEvent) -> None:
        self.events.append(event)
        self._changed.set()

    # -- relaying --------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        target = self._upstream + request.path_qs
        try:
            upstream = await self._session.ws_connect(target, headers=headers, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            return web.Response(status=exc.status, text=exc.message)
        downstream = web.WebSocketResponse(autoping=True)
        await downstream.prepare(request)
        relay = asyncio.current_task()
        assert relay is not None
        self._relays.add(relay)
        try:
            to_server = asyncio.ensure_future(self._pump(downstream, upstream, self._from_worker))
            to_worker = asyncio.ensure_future(self._pump(upstream, downstream, self._from_server))
            try:
                await asyncio.wait([to_server, to_worker], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (to_server, to_worker):
                    task.cancel()
                await asyncio.gather(to_server, to_worker, return_exceptions=True)
                await upstream.close()
                await downstream.close()
        finally:
            self._relays.discard(relay)
        return downstream

    @staticmethod
    async def _pump(
        source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        inspect: Callable[[bytes], bytes],
    ) -> None:
        async for frame in source:
            if frame.type is aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(inspect(frame.data))
            elif frame.type is aiohttp.WSMsgType.TEXT:
                await sink.send_str(frame.data)
            else:
                return

    def _from_worker(self, data: bytes) -> bytes:
        t = time.monotonic()
        message = agent_pb.WorkerMessage()
        message.ParseFromString(data)
        kind = message.WhichOneof("message")
        if kind == "availability":
            self._note(
                WireEvent(
                    t,
                    "availability_response",
                    message.availability.job_id,
                    available=message.availability.available,
                )
            )
        elif kind == "update_job":
            self._note(
                WireEvent(
                    t, "job_status", message.update_job.job_id, status=message.update_job.status
                )
            )
        elif kind == "register":
            self._note(WireEvent(t, "register_request", agent_name=message.register.agent_name))
        return data

    def _from_server(self, data: bytes) -> bytes:
        t = time.monotonic()
        message = agent_pb.ServerMessage()
        message.ParseFromString(data)
        kind = message.WhichOneof("message")
        if kind == "availability":
            job = message.availability.job
            self._note(
                WireEvent(
                    t,
                    "availability_request",
                    job.id,
                    agent_name=job.agent_name,
                    dispatch_id=job.dispatch_id,
                )
            )
        elif kind == "assignment":
            self._note(WireEvent(t, "assignment", message.assignment.job.id))
            if not message.assignment.url:
                message.assignment.url = self._upstream
                return message.SerializeToString()
        elif kind == "register":
            self._note(WireEvent(t, "registered", agent_name=""))
        return data
