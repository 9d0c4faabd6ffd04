"""An async, framed, typed channel over one end of a socketpair.

Receiving reads one frame at a time (never more than ``MAX_FRAME_SIZE`` held). Sending goes
through a bounded queue drained by the channel's own writer task: ``send`` waits for room
(control messages are never dropped), ``try_send`` drops and counts (for logs and metrics
that must not grow memory when the peer is slow).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from .codec import HEADER, MAX_FRAME_SIZE, MessageDecoder, check_length, encode_frame
from .errors import ChannelClosed, ProtocolError
from .messages import Message


class Channel:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        send_queue_size: int = 256,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._max = max_frame_size
        self._decoder = MessageDecoder(Message)
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(send_queue_size)
        self._writer_task = asyncio.get_running_loop().create_task(self._write_loop())
        self._closed = False
        self.dropped = 0  # messages try_send could not queue
        self.write_error: BaseException | None = None

    @classmethod
    async def from_socket(cls, sock: socket.socket, **kwargs: Any) -> Channel:
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_FRAME_SIZE + 64)
        return cls(reader, writer, **kwargs)

    async def recv(self) -> Message:
        """The next message. Raises ``ChannelClosed`` at end of stream, ``ProtocolError`` on bad input."""
        try:
            header = await self._reader.readexactly(HEADER.size)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ProtocolError(f"stream ended inside a frame header ({len(exc.partial)} bytes)") from None
            raise ChannelClosed("peer closed the channel") from None
        except (ConnectionError, OSError) as exc:
            raise ChannelClosed(f"channel read failed: {exc}") from None
        (length,) = HEADER.unpack(header)
        check_length(length, self._max)
        try:
            payload = await self._reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise ProtocolError(f"stream ended inside a {length}-byte frame ({len(exc.partial)} read)") from None
        except (ConnectionError, OSError) as exc:
            raise ChannelClosed(f"channel read failed: {exc}") from None
        message: Message = self._decoder.decode(payload)
        return message

    async def send(self, message: Message) -> None:
        """Queue a message, waiting for room. Raises ``ChannelClosed`` once closed."""
        if self._closed:
            raise ChannelClosed("channel is closed")
        await self._queue.put(encode_frame(message, max_size=self._max))

    def try_send(self, message: Message) -> bool:
        """Queue a message if there is room; otherwise drop it and count the drop."""
        if self._closed:
            return False
        try:
            self._queue.put_nowait(encode_frame(message, max_size=self._max))
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    async def _write_loop(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                if frame is None:
                    break
                self._writer.write(frame)
                await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self.write_error = exc
            self._closed = True

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait (bounded) until everything queued so far has been written."""
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            async with asyncio.timeout(timeout):
                while not self._queue.empty() and not self._writer_task.done():
                    await asyncio.sleep(0.005)
                if not self._writer_task.done():
                    await self._writer.drain()

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self, *, flush_timeout: float = 1.0) -> None:
        """Write what is queued (bounded), then close. Safe to call twice."""
        if not self._closed:
            await self.flush(flush_timeout)
        self._closed = True
        self._writer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer_task
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(flush_timeout):
                await self._writer.wait_closed()
