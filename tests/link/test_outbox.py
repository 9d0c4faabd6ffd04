"""The outbox's order: job messages never wait behind the worker status, and only the latest
status goes out."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiohttp
from livekit.protocol import agent as agent_pb

from roomd.daemon.link.outbox import Outbox


class RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[agent_pb.WorkerMessage] = []

    async def send_bytes(self, data: bytes) -> None:
        message = agent_pb.WorkerMessage()
        message.ParseFromString(data)
        self.sent.append(message)


def _status(load: float) -> agent_pb.WorkerMessage:
    return agent_pb.WorkerMessage(update_worker=agent_pb.UpdateWorkerStatus(load=load))


def _answer(job_id: str) -> agent_pb.WorkerMessage:
    return agent_pb.WorkerMessage(availability=agent_pb.AvailabilityResponse(job_id=job_id, available=True))


async def _sent_by(outbox: Outbox) -> list[agent_pb.WorkerMessage]:
    ws = RecordingSocket()
    sender = asyncio.ensure_future(outbox.run(cast(aiohttp.ClientWebSocketResponse, cast(Any, ws))))
    try:
        assert await outbox.flushed(5.0)
    finally:
        sender.cancel()
    return ws.sent


async def test_an_answer_queued_after_a_status_goes_out_first() -> None:
    outbox = Outbox()
    outbox.send_status(_status(0.5))  # a slot was reserved for the offer...
    outbox.send(_answer("J1"))  # ...and its answer is what the server waits for
    sent = await _sent_by(outbox)
    assert [m.WhichOneof("message") for m in sent] == ["availability", "update_worker"]
    assert len(outbox) == 0


async def test_only_the_latest_worker_status_is_sent() -> None:
    outbox = Outbox()
    outbox.send_status(_status(0.25))
    outbox.send_status(_status(0.5))
    sent = await _sent_by(outbox)
    assert [m.update_worker.load for m in sent] == [0.5]
