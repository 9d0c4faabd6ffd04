"""LLM over an OpenAI-compatible ``/chat/completions`` endpoint (streaming, tools).

Works with OpenAI, Ollama, vLLM and llama.cpp's servers: only the documented request
fields are sent, and tool-call deltas are assembled by index as the spec describes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roomd.agents.errors import APIError
from roomd.agents.llm import (
    LLM,
    ChatChunk,
    ChatContext,
    ChoiceDelta,
    CompletionUsage,
    FunctionToolCall,
    LLMStream,
    Tool,
    ToolChoice,
)
from roomd.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from roomd.agents.utils.ids import shortuuid

from ._http import HTTPClient

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(slots=True)
class _PartialCall:
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class OpenAILLM(LLM):
    """``base_url`` defaults to ``OPENAI_BASE_URL`` then OpenAI; ``api_key`` to
    ``OPENAI_API_KEY`` (local servers need none)."""

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._model = model
        self._client = HTTPClient(
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            api_key=api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"),
        )
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._extra_body = dict(extra_body or {})

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return self._client.base_url

    def request_body(
        self, chat_ctx: ChatContext, tools: Sequence[Tool], tool_choice: ToolChoice | None,
        parallel_tool_calls: bool | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": chat_ctx.to_openai_messages(),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = [tool.openai_schema() for tool in tools]
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
            if parallel_tool_calls is not None:
                body["parallel_tool_calls"] = parallel_tool_calls
        if self._temperature is not None:
            body["temperature"] = self._temperature
        if self._max_tokens is not None:
            body["max_tokens"] = self._max_tokens
        body.update(self._extra_body)
        return body

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
    ) -> LLMStream:
        body = self.request_body(chat_ctx, list(tools or []), tool_choice, parallel_tool_calls)
        return _OpenAIStream(self, body=body, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)

    async def aclose(self) -> None:
        await self._client.aclose()


class _OpenAIStream(LLMStream):
    _llm: OpenAILLM

    def __init__(self, llm: OpenAILLM, *, body: dict[str, Any], **kwargs: Any) -> None:
        self._body = body
        super().__init__(llm, **kwargs)

    async def _run(self) -> None:
        calls: dict[int, _PartialCall] = {}
        async with self._llm._client.post("/chat/completions", json=self._body, conn_options=self._conn_options) as resp:
            async for data in _sse_data(resp.content):
                if data == "[DONE]":
                    break
                try:
                    event = json.loads(data)
                except ValueError as exc:
                    raise APIError(f"bad stream event from {self._llm.provider}: {data[:200]!r}", retryable=False) from exc
                if "error" in event:
                    raise APIError(f"{self._llm.provider}: {event['error']}", body=event, retryable=False)
                chunk_id = str(event.get("id") or self._request_id)
                usage = event.get("usage")
                if usage:
                    self._send(ChatChunk(id=chunk_id, usage=CompletionUsage(
                        completion_tokens=int(usage.get("completion_tokens", 0)),
                        prompt_tokens=int(usage.get("prompt_tokens", 0)),
                        total_tokens=int(usage.get("total_tokens", 0)),
                    )))
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if content:
                        self._send(ChatChunk(id=chunk_id, delta=ChoiceDelta(role="assistant", content=content)))
                    for tc in delta.get("tool_calls") or []:
                        partial = calls.setdefault(int(tc.get("index", len(calls))), _PartialCall())
                        partial.call_id = tc.get("id") or partial.call_id
                        function = tc.get("function") or {}
                        name = function.get("name") or ""
                        # OpenAI sends the name once; llama.cpp's server repeats it in every delta.
                        if name and name != partial.name:
                            partial.name += name
                        partial.arguments += function.get("arguments") or ""
        if calls:
            finished = [
                FunctionToolCall(name=c.name, arguments=c.arguments or "{}", call_id=c.call_id or shortuuid("call_"))
                for _, c in sorted(calls.items())
            ]
            self._send(ChatChunk(id=self._request_id, delta=ChoiceDelta(role="assistant", tool_calls=finished)))


async def _sse_data(content: Any) -> Any:
    """The ``data:`` payloads of a server-sent-events body (multi-line data joined)."""
    lines: list[str] = []
    async for raw in content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        if line.startswith("data:"):
            lines.append(line[5:].lstrip())
    if lines:
        yield "\n".join(lines)
