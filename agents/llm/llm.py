"""The LLM interface: ``chat()`` returns a stream of chunks (text and tool-call deltas).

An ``LLMStream`` subclass implements ``_run`` and puts ``ChatChunk``s with
``self._event_ch.send_nowait`` (as for livekit-agents) or ``self._send``; the base class
retries per ``APIConnectOptions`` and emits ``metrics_collected`` (``LLMMetrics``) and
``error`` (``LLMError``) on the ``LLM``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from ..errors import APIError, ComponentErrorEvent
from ..metrics.base import LLMMetrics
from ..types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, ComponentIdentity, NotGivenOr
from ..utils.events import EventEmitter
from ..utils.ids import shortuuid
from ..utils.streams import OutputStream
from .chat_context import ChatContext
from .tools import Tool

ToolChoice: TypeAlias = Literal["auto", "required", "none"] | dict[str, Any]
LLMEvents: TypeAlias = Literal["metrics_collected", "error", "llm_availability_changed"]


@dataclass(slots=True)
class FunctionToolCall:
    """A complete tool call from the model (``arguments`` is JSON text)."""

    name: str
    arguments: str
    call_id: str
    type: Literal["function"] = "function"


@dataclass(slots=True)
class ChoiceDelta:
    role: Literal["developer", "system", "user", "assistant"] | None = None
    content: str | None = None
    tool_calls: list[FunctionToolCall] = field(default_factory=list)


@dataclass(slots=True)
class CompletionUsage:
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int
    prompt_cached_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0


@dataclass(slots=True, kw_only=True)
class LLMError(ComponentErrorEvent):
    type: Literal["llm_error"] = "llm_error"


@dataclass(slots=True)
class ChatChunk:
    id: str
    delta: ChoiceDelta | None = None
    usage: CompletionUsage | None = None


class LLM(ABC, ComponentIdentity, EventEmitter[LLMEvents]):
    """Base class for language models.

    Implementations override ``chat`` to return their ``LLMStream`` subclass. Events:
    ``metrics_collected`` (``LLMMetrics``) once per stream.
    """

    @abstractmethod
    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> LLMStream: ...

    def prewarm(self) -> None:
        """Open connections early (optional)."""

    async def aclose(self) -> None:
        """Release resources (optional)."""

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class LLMStream(OutputStream[ChatChunk]):
    """Chunks of one completion.

    Retryable ``APIError``s are retried (per ``conn_options``) as long as no chunk has
    been delivered; ``conn_options.timeout`` bounds the wait for the first chunk.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> None:
        self._llm = llm
        self._chat_ctx = chat_ctx
        self._tools = list(tools or [])
        self._request_id = shortuuid("llm_")
        self.__started_at = time.perf_counter()
        self.__ttft = -1.0
        self.__usage: CompletionUsage | None = None
        super().__init__(conn_options=conn_options, label=llm.label)

    @property
    def chat_ctx(self) -> ChatContext:
        return self._chat_ctx

    @property
    def tools(self) -> list[Tool]:
        return list(self._tools)

    @property
    def request_id(self) -> str:
        return self._request_id

    def _on_output(self, item: ChatChunk) -> None:
        if self.__ttft < 0:
            self.__ttft = time.perf_counter() - self.__started_at
        if item.usage is not None:
            self.__usage = item.usage

    def _on_failed_attempt(self, error: APIError, *, recoverable: bool) -> None:
        self._emit_error(error, recoverable)

    def _emit_error(self, api_error: Exception, recoverable: bool) -> None:
        self._llm.emit(
            "error",
            LLMError(timestamp=time.time(), label=self._llm.label, error=api_error, recoverable=recoverable),
        )

    def _on_done(self, *, cancelled: bool) -> None:
        duration = time.perf_counter() - self.__started_at
        usage = self.__usage or CompletionUsage(0, 0, 0)
        self._llm.emit(
            "metrics_collected",
            LLMMetrics(
                label=self._llm.label,
                request_id=self._request_id,
                timestamp=time.time(),
                ttft=self.__ttft,
                duration=duration,
                cancelled=cancelled,
                completion_tokens=usage.completion_tokens,
                prompt_tokens=usage.prompt_tokens,
                prompt_cached_tokens=usage.prompt_cached_tokens,
                total_tokens=usage.total_tokens,
                tokens_per_second=usage.completion_tokens / duration if duration > 0 else 0.0,
            ),
        )

    async def collect(self) -> tuple[str, list[FunctionToolCall]]:
        """Read the whole stream: the text and the tool calls."""
        text: list[str] = []
        calls: list[FunctionToolCall] = []
        async for chunk in self:
            if chunk.delta is not None:
                text.append(chunk.delta.content or "")
                calls.extend(chunk.delta.tool_calls)
        return "".join(text), calls

    async def to_str_iterable(self) -> AsyncIterator[str]:
        """The reply's text pieces as they come (tool calls and usage are skipped)."""
        async for chunk in self:
            if chunk.delta is not None and chunk.delta.content:
                yield chunk.delta.content
