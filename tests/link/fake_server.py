"""A protocol-level stand-in for LiveKit's /agent endpoint, for faults the real server
cannot produce: dropped sockets, stalls, garbage, refused registrations."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import WSMsgType, web
from livekit.protocol import agent as agent_pb


@dataclasses.dataclass
class Connection:
    ws: web.WebSocketResponse
    received: asyncio.Queue[agent_pb.WorkerMessage]
    authorization: str

    async def send(self, message: agent_pb.ServerMessage) -> None:
        await self.ws.send_bytes(message.SerializeToString())

    async def next(self, kind: str, timeout: float = 5.0) -> agent_pb.WorkerMessage:
        """The next message of ``kind`` (register, availability, update_job, ...)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.received.get()
                if message.WhichOneof("message") == kind:
                    return message

    async def offer(self, job_id: str, agent_name: str = "", room: str = "room") -> None:
        await self.send(agent_pb.ServerMessage(availability=agent_pb.AvailabilityRequest(
            job=agent_pb.Job(id=job_id, agent_name=agent_name, type=agent_pb.JT_ROOM,
                             room={"name": room}))))

    async def dispatch(self, job_id: str, agent_name: str = "") -> agent_pb.AvailabilityResponse:
        """Offer, wait for the worker's answer, and assign if it accepted (the server's order)."""
        await self.offer(job_id, agent_name)
        while True:
            answer = (await self.next("availability")).availability
            if answer.job_id == job_id:
                break
        if answer.available:
            await self.assign(job_id, agent_name)
        return answer

    async def assign(self, job_id: str, agent_name: str = "", token: str = "tok") -> None:
        await self.send(agent_pb.ServerMessage(assignment=agent_pb.JobAssignment(
            job=agent_pb.Job(id=job_id, agent_name=agent_name, type=agent_pb.JT_ROOM,
                             room={"name": "room"}), url="", token=token)))


class FakeAgentServer:
    """Accepts worker connections at /agent; ``register_reply`` decides the first answer."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[Connection] = asyncio.Queue()
        self.register_reply: str = "ok"  # ok | wrong_first | close | garbage | silent
        self.refuse_connections = False
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._open: set[web.WebSocketResponse] = set()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/agent", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        await self.drop_all()
        if self._runner is not None:
            await self._runner.cleanup()

    async def drop_all(self) -> None:
        for ws in list(self._open):
            await ws.close()

    async def connection(self, timeout: float = 10.0) -> Connection:
        async with asyncio.timeout(timeout):
            return await self.connections.get()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_connections:
            raise web.HTTPServiceUnavailable()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._open.add(ws)
        received: asyncio.Queue[agent_pb.WorkerMessage] = asyncio.Queue()
        conn = Connection(ws, received, request.headers.get("Authorization", ""))
        try:
            first = await ws.receive()
            register = agent_pb.WorkerMessage()
            register.ParseFromString(first.data)
            received.put_nowait(register)
            reply = self.register_reply
            if reply == "close":
                return ws
            if reply == "silent":
                await ws.receive()  # until the worker gives up
                return ws
            if reply == "garbage":
                await ws.send_bytes(b"\xff\x00not a protobuf\xff")
            elif reply == "wrong_first":
                await conn.send(agent_pb.ServerMessage(pong=agent_pb.WorkerPong(last_timestamp=1)))
            else:
                await conn.send(agent_pb.ServerMessage(register=agent_pb.RegisterWorkerResponse(
                    worker_id=f"W_{id(ws):x}")))
            self.connections.put_nowait(conn)
            async for frame in ws:
                if frame.type is WSMsgType.BINARY:
                    message = agent_pb.WorkerMessage()
                    message.ParseFromString(frame.data)
                    if message.WhichOneof("message") == "ping":
                        await conn.send(agent_pb.ServerMessage(pong=agent_pb.WorkerPong(
                            last_timestamp=message.ping.timestamp, timestamp=message.ping.timestamp)))
                    received.put_nowait(message)
        finally:
            self._open.discard(ws)
        return ws
