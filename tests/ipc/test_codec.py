"""Property tests: every message round-trips; nothing a peer sends makes the decoder raise
anything but ProtocolError."""

from __future__ import annotations

import struct

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomd.ipc import ALL_MESSAGE_TYPES, MAX_FRAME_SIZE, FrameDecoder, ProtocolError, encode_frame
from roomd.ipc.messages import Hello, Log

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _strategy(info: mi.Type) -> st.SearchStrategy[object]:
    if isinstance(info, mi.IntType):
        return st.integers(-(2**63), 2**63 - 1)
    if isinstance(info, mi.FloatType):
        return st.floats(allow_nan=False)
    if isinstance(info, mi.StrType):
        return st.text(max_size=40)
    if isinstance(info, mi.BytesType):
        return st.binary(max_size=200)
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.AnyType):
        return _json
    if isinstance(info, mi.LiteralType):
        return st.sampled_from(info.values)
    if isinstance(info, mi.UnionType):
        return st.one_of(*[_strategy(t) for t in info.types])
    if isinstance(info, mi.DictType):
        return st.dictionaries(_strategy(info.key_type), _strategy(info.value_type), max_size=4)
    if isinstance(info, mi.ListType):
        return st.lists(_strategy(info.item_type), max_size=4)
    if isinstance(info, mi.StructType):
        return st.builds(info.cls, **{f.name: _strategy(f.type) for f in info.fields})
    raise AssertionError(f"no strategy for {info}")


any_message = st.one_of(*[_strategy(mi.type_info(cls)) for cls in ALL_MESSAGE_TYPES])


def test_every_message_type_is_covered() -> None:
    names = {cls.__name__ for cls in ALL_MESSAGE_TYPES}
    assert {"Hello", "Initialize", "Initialized", "Ping", "Pong", "StartJob", "JobStarted", "JobEnded",
            "Shutdown", "ShutdownAck", "Exiting", "Log", "Metrics", "DumpStacks", "EvaluateRequest",
            "RequestEvaluated"} <= names


@settings(max_examples=400, deadline=None)
@given(any_message)
def test_every_message_round_trips(message: object) -> None:
    assert FrameDecoder().feed(encode_frame(message)) == [message]


@settings(max_examples=100, deadline=None)
@given(st.lists(any_message, min_size=1, max_size=6), st.integers(1, 64))
def test_frames_survive_any_chunking(messages: list[object], chunk: int) -> None:
    stream = b"".join(encode_frame(m) for m in messages)
    decoder = FrameDecoder()
    out: list[object] = []
    for i in range(0, len(stream), chunk):
        out += decoder.feed(stream[i:i + chunk])
    assert out == messages
    assert decoder.pending == 0


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_only_raise_protocol_error(data: bytes) -> None:
    decoder = FrameDecoder()
    try:
        decoder.feed(data)
    except ProtocolError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=500))
def test_random_payload_in_a_valid_frame_only_raises_protocol_error(payload: bytes) -> None:
    try:
        FrameDecoder().feed(struct.pack(">I", len(payload)) + payload)
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(_json)
def test_well_formed_msgpack_of_the_wrong_shape_is_a_protocol_error(value: object) -> None:
    payload = msgspec.msgpack.encode(value)
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(struct.pack(">I", len(payload)) + payload)


def test_unknown_tag_is_a_protocol_error() -> None:
    payload = msgspec.msgpack.encode({"type": "Teleport", "where": "mars"})
    with pytest.raises(ProtocolError, match="Teleport|invalid"):
        FrameDecoder().feed(struct.pack(">I", len(payload)) + payload)


def test_oversized_frame_is_refused_from_the_header_alone() -> None:
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError, match="over the"):
        decoder.feed(struct.pack(">I", MAX_FRAME_SIZE + 1))
    with pytest.raises(ProtocolError):  # a broken stream stays broken
        decoder.feed(encode_frame(Hello(protocol_version=1, pid=1)))


def test_sender_refuses_a_message_over_the_limit() -> None:
    with pytest.raises(ProtocolError, match="frame limit"):
        encode_frame(Log(level="info", event="x" * (MAX_FRAME_SIZE + 1)))


def test_empty_frame_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="empty"):
        FrameDecoder().feed(b"\x00\x00\x00\x00")
