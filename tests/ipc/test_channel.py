"""The async channel over a real socketpair: ordering, end of stream, bad input, bounded sends."""

from __future__ import annotations

import asyncio
import socket

import pytest

from roomd.ipc import Channel, ChannelClosed, Ping, Pong, ProtocolError
from roomd.ipc.messages import Log


async def _pair(**kwargs: object) -> tuple[Channel, Channel, socket.socket, socket.socket]:
    a, b = socket.socketpair()
    return await Channel.from_socket(a, **kwargs), await Channel.from_socket(b), a, b  # type: ignore[arg-type]


async def test_messages_arrive_in_order_and_close_is_seen() -> None:
    left, right, _, _ = await _pair()
    for seq in range(100):
        await left.send(Ping(seq=seq, supervisor_ts=float(seq)))
    async with asyncio.timeout(5):
        got = [await right.recv() for _ in range(100)]
    assert [m.seq for m in got] == list(range(100))  # type: ignore[union-attr]
    await left.aclose()
    with pytest.raises(ChannelClosed):
        async with asyncio.timeout(5):
            await right.recv()
    await right.aclose()


async def test_garbage_on_the_socket_is_a_protocol_error() -> None:
    left, right, raw_left, _ = await _pair()
    raw_left.send(b"\x00\x00\x00\x05hello")
    with pytest.raises(ProtocolError):
        async with asyncio.timeout(5):
            await right.recv()
    await left.aclose()
    await right.aclose()


async def test_try_send_drops_and_counts_when_the_queue_is_full() -> None:
    left, right, _, _ = await _pair(send_queue_size=4)
    # Nobody reads `right` and the queue is tiny: try_send must drop, never block or grow.
    sent = sum(left.try_send(Log(level="info", event="x" * 60000)) for _ in range(500))
    assert left.dropped == 500 - sent
    assert left.dropped > 0
    # The reader still gets whole, valid messages.
    async with asyncio.timeout(5):
        first = await right.recv()
    assert isinstance(first, Log)
    await left.aclose(flush_timeout=0.1)
    await right.aclose()


async def test_rehearse_sends_nothing() -> None:
    left, right, _, _ = await _pair()
    left.rehearse(Pong(seq=1, supervisor_ts=1.0, child_ts=1.0))
    await left.send(Ping(seq=2, supervisor_ts=2.0))
    async with asyncio.timeout(5):
        first = await right.recv()
    assert isinstance(first, Ping) and first.seq == 2  # the rehearsed Pong never went out
    await left.aclose()
    await right.aclose()


async def test_pong_fields_survive() -> None:
    left, right, _, _ = await _pair()
    await left.send(Pong(seq=7, supervisor_ts=1.5, child_ts=2.5))
    async with asyncio.timeout(5):
        assert await right.recv() == Pong(seq=7, supervisor_ts=1.5, child_ts=2.5)
    await left.aclose()
    await right.aclose()


async def test_direct_writes_and_queued_ones_keep_their_order_past_a_full_socket() -> None:
    left, right, _, _ = await _pair()

    async def read_all() -> list[int]:
        got = [await right.recv() for _ in range(300)]
        return [m.seq if isinstance(m, Ping) else int(m.event[:4]) for m in got]  # type: ignore[union-attr]

    reader = asyncio.ensure_future(read_all())
    # Large frames fill the socket buffer: some go straight to the socket, some partly, the
    # rest wait in the queue behind them; small control frames between them keep their place.
    for seq in range(300):
        await left.send(Log(level="info", event=f"{seq:04d}" + "x" * 20000) if seq % 2
                        else Ping(seq=seq, supervisor_ts=0.0))
    await left.flush(timeout=10)
    async with asyncio.timeout(10):
        assert await reader == list(range(300))
    await left.aclose()
    await right.aclose()
