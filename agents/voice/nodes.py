"""The default pipeline nodes (``Agent.default.<node>``) and how the session reads any
node's result, overridden or not."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from livekit import rtc

from ..llm.chat_context import ChatContext
from ..llm.llm import ChatChunk
from ..llm.tools import Tool
from ..stt.stt import SpeechEvent
from ..types import is_given
from .timed_string import TimedString

if TYPE_CHECKING:
    from .agent import Agent, ModelSettings

# The playout listening to the default TTS node: told which text each audio starts, so
# the transcript can be cut where the user stopped hearing. Node overrides that call the
# default keep this working, because their generator runs in the playout's context.
tts_text_listener: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "roomd_tts_text_listener", default=None
)


async def _through(stream: Any, inputs: AsyncIterable[Any], push: Callable[[Any], None]) -> AsyncIterator[Any]:
    """Feed ``inputs`` into ``stream`` in the background while reading its outputs."""

    async def feed() -> None:
        async for item in inputs:
            push(item)
        stream.end_input()

    task = asyncio.ensure_future(feed())
    try:
        async for out in stream:
            yield out
        await task
    finally:
        task.cancel()
        await stream.aclose()


async def default_stt_node(
    agent: Agent, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
) -> AsyncIterator[SpeechEvent]:
    session = agent.session
    stt = session._stt_for_stream()
    if stt is None:
        raise RuntimeError("stt_node: the session has no STT")
    stream = stt.stream(conn_options=session.conn_options.stt_conn_options)
    async for ev in _through(stream, audio, stream.push_frame):
        yield ev


async def default_llm_node(
    agent: Agent, chat_ctx: ChatContext, tools: list[Tool], model_settings: ModelSettings
) -> AsyncIterator[ChatChunk]:
    session = agent.session
    llm = session.llm
    if llm is None:
        raise RuntimeError("llm_node: the session has no LLM")
    extra: dict[str, Any] = {}
    if is_given(model_settings.tool_choice):
        extra["tool_choice"] = model_settings.tool_choice
    async with llm.chat(
        chat_ctx=chat_ctx, tools=list(tools) or None, conn_options=session.conn_options.llm_conn_options, **extra
    ) as stream:
        async for chunk in stream:
            yield chunk


async def default_tts_node(
    agent: Agent, text: AsyncIterable[str], model_settings: ModelSettings
) -> AsyncIterator[rtc.AudioFrame]:
    session = agent.session
    tts = session._tts_for_stream()
    if tts is None:
        raise RuntimeError("tts_node: the session has no TTS")
    stream = tts.stream(conn_options=session.conn_options.tts_conn_options)
    listener = tts_text_listener.get()
    async for synthesized in _through(stream, text, stream.push_text):
        if synthesized.delta_text and listener is not None:
            listener(synthesized.delta_text)
        yield synthesized.frame


async def default_transcription_node(
    agent: Agent, text: AsyncIterable[str | TimedString], model_settings: ModelSettings
) -> AsyncIterator[str | TimedString]:
    async for piece in text:
        yield piece


async def default_realtime_audio_output_node(
    agent: Agent, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
) -> AsyncIterator[rtc.AudioFrame]:
    async for frame in audio:
        yield frame


async def iterate(result: Any) -> AsyncIterator[Any]:
    """Whatever a node returned, as an async iterator: an async iterable is read, an
    awaitable is awaited first, a plain value is one item, None is nothing."""
    while inspect.isawaitable(result) and not isinstance(result, AsyncIterable):
        result = await result
    if result is None:
        return
    if isinstance(result, AsyncIterable):
        async for item in result:
            yield item
        return
    yield result


__all__ = [
    "default_llm_node",
    "default_realtime_audio_output_node",
    "default_stt_node",
    "default_transcription_node",
    "default_tts_node",
    "iterate",
    "tts_text_listener",
]
