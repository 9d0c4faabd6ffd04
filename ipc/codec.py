"""Frames: a 4-byte big-endian payload length, then a msgpack-encoded message.

``FrameDecoder`` is incremental and pure (bytes in, messages out), so it is tested
without sockets and shared by the async channel and the synchronous zygote code.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from .errors import ProtocolError
from .messages import Message

MAX_FRAME_SIZE = 1 << 20  # 1 MiB: far above any real message, far below trouble
HEADER = struct.Struct(">I")

_encoder = msgspec.msgpack.Encoder()


def encode_frame(message: Any, *, max_size: int = MAX_FRAME_SIZE) -> bytes:
    payload = _encoder.encode(message)
    if len(payload) > max_size:
        raise ProtocolError(
            f"{type(message).__name__} encodes to {len(payload)} bytes, over the {max_size}-byte frame limit"
        )
    return HEADER.pack(len(payload)) + payload


class MessageDecoder:
    """Decode one payload into a message of the union (or another Struct type for control sockets)."""

    def __init__(self, message_type: Any = Message) -> None:
        self._decoder = msgspec.msgpack.Decoder(message_type)

    def decode(self, payload: bytes) -> Any:
        try:
            return self._decoder.decode(payload)
        except msgspec.ValidationError as exc:
            raise ProtocolError(f"invalid message: {exc}") from None
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"malformed message: {exc}") from None
        except (ValueError, TypeError, RecursionError, MemoryError) as exc:
            # Defence in depth: whatever the decoder trips on is the peer's fault, not ours.
            raise ProtocolError(f"undecodable message: {type(exc).__name__}: {exc}") from None


def check_length(length: int, max_size: int = MAX_FRAME_SIZE) -> None:
    if length > max_size:
        raise ProtocolError(f"frame of {length} bytes announced, over the {max_size}-byte limit")
    if length == 0:
        raise ProtocolError("empty frame")


class FrameDecoder:
    """Feed bytes as they arrive; get back every complete message."""

    def __init__(self, message_type: Any = Message, *, max_size: int = MAX_FRAME_SIZE) -> None:
        self._messages = MessageDecoder(message_type)
        self._max_size = max_size
        self._buffer = bytearray()
        self._failed: ProtocolError | None = None

    def feed(self, data: bytes) -> list[Any]:
        messages, error = self.feed_partial(data)
        if error is not None:
            raise error
        return messages

    def feed_partial(self, data: bytes) -> tuple[list[Any], ProtocolError | None]:
        """Like ``feed``, but the messages decoded before a bad frame are returned with the error."""
        if self._failed is not None:
            return [], self._failed  # a broken stream never resynchronises
        self._buffer += data
        out: list[Any] = []
        try:
            while len(self._buffer) >= HEADER.size:
                (length,) = HEADER.unpack_from(self._buffer)
                check_length(length, self._max_size)
                end = HEADER.size + length
                if len(self._buffer) < end:
                    break
                payload = bytes(self._buffer[HEADER.size:end])
                del self._buffer[:end]
                out.append(self._messages.decode(payload))
        except ProtocolError as exc:
            self._failed = exc
            self._buffer.clear()
            return out, exc
        return out, None

    def decode_payload(self, payload: bytes) -> Any:
        """Decode one frame's payload without touching the stream's buffer."""
        return self._messages.decode(payload)

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held (at most one frame's worth)."""
        return len(self._buffer)
