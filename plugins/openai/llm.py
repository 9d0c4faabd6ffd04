"""LLM over an OpenAI-compatible ``/chat/completions`` endpoint (streaming, tools).

Works with OpenAI, Ollama, vLLM and llama.cpp's servers: only the documented request
fields are sent, and tool-call deltas are assembled by index as the spec describes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from roomd.agents import llm as llm_base
from roomd.agents.errors import APIError
from roomd.agents.llm import (
    ChatChunk,
    ChatContext,
    ChoiceDelta,
    CompletionUsage,
    FunctionToolCall,
    LLMStream,
    Tool,
    ToolChoice,
)
from roomd.agents.llm.tool_schema import type_schema
from roomd.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
    is_given,
)
from roomd.agents.utils.ids import shortuuid

from ._http import make_client

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(slots=True)
class _PartialCall:
    call_id: str = ""
    name: str = ""
    arguments: str = ""


# constructor argument -> request field; sent only when given
_REQUEST_FIELDS = (
    ("user", "user"), ("safety_identifier", "safety_identifier"), ("prompt_cache_key", "prompt_cache_key"),
    ("temperature", "temperature"), ("top_p", "top_p"), ("store", "store"), ("metadata", "metadata"),
    ("max_completion_tokens", "max_completion_tokens"), ("service_tier", "service_tier"),
    ("reasoning_effort", "reasoning_effort"), ("verbosity", "verbosity"), ("max_tokens", "max_tokens"),
)


def openai_response_format(response_format: type | dict[str, Any]) -> dict[str, Any]:
    """The chat request's ``response_format`` for a type: its JSON schema in strict form
    (every property required, no others allowed), as OpenAI's structured outputs demand."""
    if isinstance(response_format, dict):
        return response_format
    if not isinstance(response_format, type):
        raise TypeError(f"response_format must be a type or a dict, not {type(response_format).__name__}")
    schema = type_schema(response_format)
    return {"type": "json_schema",
            "json_schema": {"name": response_format.__name__, "strict": True, "schema": _strict(schema)}}


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if out.get("type") == "object" and isinstance(out.get("properties"), dict):
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


class LLM(llm_base.LLM):
    """Chat completions from any OpenAI-compatible server, with the constructor of
    livekit-plugins-openai's ``openai.LLM``. Request fields left NOT_GIVEN are not sent, so
    servers that lack them (llama.cpp, Ollama) are not confused. ``tool_choice`` and
    ``parallel_tool_calls`` given here are the defaults of every ``chat()``.

    Accepted for the reference's signature but without effect here: ``timeout`` and
    ``max_retries`` (roomd's ``conn_options`` bound and retry each request). roomd extras:
    ``max_tokens`` (older servers' name for ``max_completion_tokens``) and ``extra_body``.
    """

    def __init__(
        self,
        *,
        model: str = "gpt-4.1",
        api_key: NotGivenOr[str] = NOT_GIVEN,
        base_url: NotGivenOr[str] = NOT_GIVEN,
        client: Any | None = None,
        user: NotGivenOr[str] = NOT_GIVEN,
        safety_identifier: NotGivenOr[str] = NOT_GIVEN,
        prompt_cache_key: NotGivenOr[str] = NOT_GIVEN,
        temperature: NotGivenOr[float] = NOT_GIVEN,
        top_p: NotGivenOr[float] = NOT_GIVEN,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[ToolChoice] = NOT_GIVEN,
        store: NotGivenOr[bool] = NOT_GIVEN,
        metadata: NotGivenOr[dict[str, str]] = NOT_GIVEN,
        max_completion_tokens: NotGivenOr[int] = NOT_GIVEN,
        timeout: Any | None = None,
        max_retries: NotGivenOr[int] = NOT_GIVEN,
        service_tier: NotGivenOr[str] = NOT_GIVEN,
        reasoning_effort: NotGivenOr[str] = NOT_GIVEN,
        verbosity: NotGivenOr[str] = NOT_GIVEN,
        max_tokens: NotGivenOr[int | None] = NOT_GIVEN,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._model = model
        self._client = make_client(base_url, api_key, client)
        given = locals()
        self._fields = {field: given[arg] for arg, field in _REQUEST_FIELDS
                        if is_given(given[arg]) and given[arg] is not None}
        self._tool_choice = tool_choice if is_given(tool_choice) else None
        self._parallel_tool_calls = parallel_tool_calls if is_given(parallel_tool_calls) else None
        self._extra_body = dict(extra_body or {})

    @staticmethod
    def with_ollama(
        *,
        model: str = "llama3.1",
        base_url: str = "http://localhost:11434/v1",
        client: Any | None = None,
        temperature: NotGivenOr[float] = NOT_GIVEN,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: ToolChoice = "auto",
        reasoning_effort: NotGivenOr[str] = NOT_GIVEN,
        safety_identifier: NotGivenOr[str] = NOT_GIVEN,
        prompt_cache_key: NotGivenOr[str] = NOT_GIVEN,
        top_p: NotGivenOr[float] = NOT_GIVEN,
    ) -> LLM:
        """An LLM served by Ollama's OpenAI-compatible endpoint."""
        return LLM(model=model, base_url=base_url, api_key="ollama", client=client, temperature=temperature,
                   parallel_tool_calls=parallel_tool_calls, tool_choice=tool_choice,
                   reasoning_effort=reasoning_effort, safety_identifier=safety_identifier,
                   prompt_cache_key=prompt_cache_key, top_p=top_p)

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
            tool_choice = tool_choice if tool_choice is not None else self._tool_choice
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
            if parallel_tool_calls is None:
                parallel_tool_calls = self._parallel_tool_calls
            if parallel_tool_calls is not None:
                body["parallel_tool_calls"] = parallel_tool_calls
        body.update(self._fields)
        body.update(self._extra_body)
        return body

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        tool_choice: NotGivenOr[ToolChoice | None] = NOT_GIVEN,
        parallel_tool_calls: NotGivenOr[bool | None] = NOT_GIVEN,
        response_format: NotGivenOr[type | dict[str, Any]] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> LLMStream:
        """``response_format``: a request field as is (a dict), or a type (pydantic model,
        TypedDict, dataclass) sent as a strict JSON schema named after it."""
        body = self.request_body(chat_ctx, list(tools or []),
                                 tool_choice if is_given(tool_choice) else None,
                                 parallel_tool_calls if is_given(parallel_tool_calls) else None)
        if is_given(response_format):
            body["response_format"] = openai_response_format(response_format)
        if is_given(extra_kwargs):
            body.update(extra_kwargs)
        return _OpenAIStream(self, body=body, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)

    async def aclose(self) -> None:
        await self._client.aclose()


OpenAILLM = LLM  # roomd's earlier name


class _OpenAIStream(LLMStream):
    _llm: LLM

    def __init__(self, llm: LLM, *, body: dict[str, Any], **kwargs: Any) -> None:
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
