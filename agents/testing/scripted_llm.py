"""An LLM that answers from a script: canned text, tool calls, delays and failures."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ..errors import APIError
from ..llm.chat_context import ChatContext
from ..llm.llm import LLM, ChatChunk, ChoiceDelta, CompletionUsage, FunctionToolCall, LLMStream, ToolChoice
from ..llm.tools import Tool
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.ids import shortuuid


def tool_call(name: str, /, **arguments: Any) -> FunctionToolCall:
    """A tool call for a script: ``tool_call("get_weather", location="Paris")``."""
    return FunctionToolCall(name=name, arguments=json.dumps(arguments), call_id=shortuuid("call_"))


@dataclass(slots=True)
class ScriptedReply:
    """One completion: ``text`` streamed word by word, then ``tool_calls``.

    ``ttft`` delays the first chunk, ``chunk_delay`` each later one; ``error`` is raised
    instead of answering (before any chunk).
    """

    text: str = ""
    tool_calls: list[FunctionToolCall] = field(default_factory=list)
    ttft: float = 0.0
    chunk_delay: float = 0.0
    error: APIError | None = None


ScriptEntry: TypeAlias = "ScriptedReply | str | Callable[[ChatContext], ScriptedReply | str]"


def _as_reply(entry: Any, chat_ctx: ChatContext) -> ScriptedReply:
    if callable(entry) and not isinstance(entry, ScriptedReply):
        entry = entry(chat_ctx)
    if isinstance(entry, str):
        return ScriptedReply(text=entry)
    if isinstance(entry, ScriptedReply):
        return entry
    raise TypeError(f"a script entry must be a ScriptedReply, str or callable, got {entry!r}")


class Script:
    """Entries consumed in order, then ``default`` (None when both are spent)."""

    def __init__(self, replies: Iterable[Any], default: Any) -> None:
        self._entries: deque[Any] = deque(replies)
        self._default = default

    def add(self, entry: Any) -> None:
        self._entries.append(entry)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def next(self, chat_ctx: ChatContext) -> ScriptedReply | None:
        if self._entries:
            return _as_reply(self._entries.popleft(), chat_ctx)
        if self._default is not None:
            return _as_reply(self._default, chat_ctx)
        return None


class ScriptedLLM(LLM):
    """Each attempt of each ``chat()`` consumes the next script entry (so a failing
    entry followed by a good one exercises the retry path). When the script runs out,
    ``default`` answers, or a non-retryable ``APIError`` says the script is exhausted.
    ``requests`` records the chat context of every attempt (a copy) for assertions.
    """

    def __init__(
        self,
        replies: Iterable[ScriptedReply | str | Callable[[ChatContext], ScriptedReply | str]] = (),
        *,
        default: ScriptedReply | str | Callable[[ChatContext], ScriptedReply | str] | None = None,
        model: str = "scripted",
    ) -> None:
        super().__init__()
        self._script = Script(replies, default)
        self._model = model
        self.requests: list[ChatContext] = []
        self.tool_names: list[list[str]] = []

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return "testing"

    def add_reply(self, reply: ScriptedReply | str | Callable[[ChatContext], ScriptedReply | str]) -> None:
        self._script.add(reply)

    @property
    def remaining(self) -> int:
        return len(self._script)

    def _next_reply(self, chat_ctx: ChatContext) -> ScriptedReply:
        reply = self._script.next(chat_ctx)
        if reply is None:
            raise APIError("ScriptedLLM: the script is exhausted", retryable=False)
        return reply

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
    ) -> LLMStream:
        return _ScriptedStream(self, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)


class _ScriptedStream(LLMStream):
    _llm: ScriptedLLM

    async def _run(self) -> None:
        llm = self._llm
        llm.requests.append(self._chat_ctx.copy())
        llm.tool_names.append([t.name for t in self._tools])
        reply = llm._next_reply(self._chat_ctx)
        if reply.ttft:
            await asyncio.sleep(reply.ttft)
        if reply.error is not None:
            raise reply.error
        chunk_id = shortuuid("chunk_")
        words = reply.text.split(" ") if reply.text else []
        for i, word in enumerate(words):
            if i and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            piece = word if i == len(words) - 1 else f"{word} "
            self._send(ChatChunk(id=chunk_id, delta=ChoiceDelta(role="assistant", content=piece)))
        if reply.tool_calls:
            self._send(ChatChunk(id=chunk_id, delta=ChoiceDelta(role="assistant", tool_calls=list(reply.tool_calls))))
        prompt = sum(len((m.text_content or "").split()) for m in self._chat_ctx.messages)
        completion = len(words) + len(reply.tool_calls)
        self._send(ChatChunk(id=chunk_id, usage=CompletionUsage(completion, prompt, prompt + completion)))
