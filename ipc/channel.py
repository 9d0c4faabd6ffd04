"""An async, framed, typed channel over one end of a socketpair.

Reading and writing are kept apart on purpose: a read-only transport on the socket and our
own writes on a duplicate of its descriptor. A peer that exits makes our next write fail
(EPIPE), and an asyncio socket transport would then close the whole socket and drop what
the peer sent just before exiting (its JobEnded, its Exiting). Here a failed write only
ends writing; everything the peer sent is still read and delivered before
``ChannelClosed``. A small protocol decodes frames as bytes arrive, and reading pauses when
too many decoded messages wait, so a fast peer cannot grow our memory.

Sending goes through a bounded queue drained by the channel's own writer task: ``send``
waits for room (control messages are never dropped), ``try_send`` drops and counts (for
logs and metrics that must not grow memory when the peer is slow). When nothing is queued
or being written, a frame goes straight to the socket instead, and only what the kernel
did not take is queued: a message on the job path costs no wake-up of the writer task.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket

from .codec import HEADER, MAX_FRAME_SIZE, FrameDecoder, encode_frame
from .errors import ChannelClosed, ProtocolError
from .messages import Message

_READ_HIGH_WATER = 64  # decoded messages waiting before we stop reading the socket


class _FrameProtocol(asyncio.Protocol):
    def __init__(self, max_frame_size: int) -> None:
        self._decoder = FrameDecoder(Message, max_size=max_frame_size)
        self.messages: collections.deque[Message] = collections.deque()
        self.error: ProtocolError | None = None
        self.lost: str | None = None
        self.transport: asyncio.ReadTransport | None = None
        self._readable = asyncio.Event()
        self._reading_paused = False

    def decode(self, payload: bytes) -> Message:
        """One payload through this channel's decoder, outside the stream (``Channel.rehearse``)."""
        return self._decoder.decode_payload(payload)  # type: ignore[no-any-return]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        messages, error = self._decoder.feed_partial(data)
        self.messages.extend(messages)
        if error is not None and self.error is None:
            self.error = error
            if self.transport is not None:
                self.transport.pause_reading()  # nothing after a bad frame can be trusted
        elif len(self.messages) >= _READ_HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._readable.set()

    def eof_received(self) -> bool | None:
        self.lost = self.lost or "peer closed the channel"
        self._readable.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or (f"channel lost: {exc}" if exc else "peer closed the channel")
        self._readable.set()

    async def next_message(self) -> Message:
        while not self.messages:
            if self.error is not None:
                raise self.error
            if self.lost is not None:
                raise ChannelClosed(self.lost)
            self._readable.clear()
            await self._readable.wait()
        message = self.messages.popleft()
        if self._reading_paused and len(self.messages) < _READ_HIGH_WATER // 2 and self.error is None:
            self._reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return message


class Channel:
    def __init__(self, transport: asyncio.ReadTransport, protocol: _FrameProtocol, write_sock: socket.socket,
                 *, send_queue_size: int = 256, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self._transport = transport
        self._protocol = protocol
        self._wsock = write_sock
        self._max = max_frame_size
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(send_queue_size)
        self._writer_task = asyncio.get_running_loop().create_task(self._write_loop())
        self._closed = False
        self._writing = False
        self.dropped = 0  # messages try_send could not queue
        self.write_error: BaseException | None = None

    @classmethod
    async def from_socket(cls, sock: socket.socket, *, send_queue_size: int = 256,
                          max_frame_size: int = MAX_FRAME_SIZE) -> Channel:
        sock.setblocking(False)
        write_sock = sock.dup()
        write_sock.setblocking(False)
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.connect_read_pipe(lambda: _FrameProtocol(max_frame_size), sock)
        return cls(transport, protocol, write_sock,
                   send_queue_size=send_queue_size, max_frame_size=max_frame_size)

    async def recv(self) -> Message:
        """The next message. Raises ``ChannelClosed`` at end of stream, ``ProtocolError`` on bad input."""
        return await self._protocol.next_message()

    async def send(self, message: Message) -> None:
        """Queue a message, waiting for room. Raises ``ChannelClosed`` once closed."""
        if self._closed:
            raise ChannelClosed("channel is closed")
        frame = self._write_now(encode_frame(message, max_size=self._max))
        if frame:
            await self._queue.put(frame)

    def try_send(self, message: Message) -> bool:
        """Queue a message if there is room and it fits a frame; otherwise drop and count it.

        Best-effort traffic (logs) goes this way, from inside plugin code: a message too
        large for a frame is that traffic's problem, not an exception in the caller.
        """
        if self._closed:
            return False
        try:
            frame = self._write_now(encode_frame(message, max_size=self._max))
            if frame:
                self._queue.put_nowait(frame)
        except (asyncio.QueueFull, ProtocolError):
            self.dropped += 1
            return False
        return True

    def _write_now(self, frame: bytes) -> bytes:
        """Hand ``frame`` to the kernel at once if nothing is ahead of it; what is left to queue.

        Order is kept: only when the queue is empty and the writer is not mid-frame. A
        partial write leaves the rest for the writer, first in line.
        """
        if not self._queue.empty() or self._writing:
            return frame
        try:
            sent = self._wsock.send(frame)
        except (BlockingIOError, InterruptedError):
            return frame
        except OSError as exc:
            # As in the writer: the peer is gone, only writing ends; what it sent is still read.
            self.write_error = exc
            self._closed = True
            return b""
        return frame[sent:]

    def rehearse(self, message: Message) -> None:
        """Encode ``message`` and decode it as if received, sending nothing: a forked process
        pays the first use of a message type (lazily built type info, copy-on-write page
        faults) here rather than on a latency-critical send or receive."""
        self._protocol.decode(encode_frame(message, max_size=self._max)[HEADER.size:])

    def write_raw(self, data: bytes) -> None:
        """Bytes straight onto the socket, bypassing framing: for tests that play a broken peer."""
        self._wsock.send(data)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame = await self._queue.get()
            self._writing = True
            try:
                await loop.sock_sendall(self._wsock, frame)
            except OSError as exc:
                # The peer is gone (EPIPE/ECONNRESET). Only writing ends: what it sent is still read.
                self.write_error = exc
                self._closed = True
                return
            finally:
                self._writing = False

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait (bounded) until everything queued so far has been handed to the kernel."""
        if self._queue.empty() and not self._writing:
            return  # the usual case: sent straight to the socket
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (not self._queue.empty() or self._writing) and not self._writer_task.done():
                    await asyncio.sleep(0.002)

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
        self._transport.close()
        self._wsock.close()
