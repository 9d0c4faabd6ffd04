"""An LLM that moves on to the next of several LLMs when one fails."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import APIConnectionError
from ..types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr, is_given
from ..utils.availability import Availability
from .chat_context import ChatContext
from .llm import LLM, LLMStream, ToolChoice
from .metrics import LLMMetrics
from .tools import Tool

logger = logging.getLogger("roomd.agents")


@dataclass(frozen=True, slots=True)
class AvailabilityChangedEvent:
    llm: LLM
    available: bool


class FallbackAdapter(LLM):
    """Tries ``llm[0]``, then ``llm[1]``, ... for each request.

    Each attempt gets ``attempt_timeout`` and ``max_retry_per_llm`` retries. An LLM that
    fails is marked unavailable (event ``llm_availability_changed``) and skipped for
    ``recovery_delay`` seconds, then tried again. Once text was streamed to the caller a
    failure is raised instead of switching (the words are already out), unless
    ``retry_on_chunk_sent``. Metrics of the inner LLMs are re-emitted.
    """

    def __init__(
        self,
        llm: Sequence[LLM],
        *,
        attempt_timeout: float = 5.0,
        max_retry_per_llm: int = 0,
        retry_interval: float = 0.5,
        retry_on_chunk_sent: bool = False,
        recovery_delay: float = 30.0,
    ) -> None:
        super().__init__()
        self._availability: Availability[LLM] = Availability(
            llm,
            recovery_delay=recovery_delay,
            on_change=lambda c, ok: self.emit("llm_availability_changed", AvailabilityChangedEvent(c, ok)),
        )
        self._attempt_options = APIConnectOptions(
            max_retry=max_retry_per_llm, retry_interval=retry_interval, timeout=attempt_timeout
        )
        self._retry_on_chunk_sent = retry_on_chunk_sent
        for inner in llm:
            inner.on("metrics_collected", self._forward_metrics)

    def _forward_metrics(self, metrics: LLMMetrics) -> None:
        self.emit("metrics_collected", metrics)

    @property
    def llms(self) -> list[LLM]:
        return self._availability.components

    def is_available(self, llm: LLM) -> bool:
        return self._availability.is_available(llm)

    @property
    def model(self) -> str:
        return "FallbackAdapter"

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: Sequence[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool | None] = NOT_GIVEN,
        tool_choice: NotGivenOr[ToolChoice | None] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> LLMStream:
        # Only what the caller gave is passed on: an inner LLM written for the reference
        # tells "not given" from None.
        given = {"parallel_tool_calls": parallel_tool_calls, "tool_choice": tool_choice, "extra_kwargs": extra_kwargs}
        extra = {k: v for k, v in given.items() if is_given(v) and v is not None}
        return _FallbackStream(self, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options, extra=extra)

    async def aclose(self) -> None:
        for inner in self.llms:
            inner.off("metrics_collected", self._forward_metrics)


class _FallbackStream(LLMStream):
    # The inner streams apply their own timeouts and retries.
    _first_output_timeout = False

    def __init__(self, adapter: FallbackAdapter, *, extra: dict[str, Any], **kwargs: Any) -> None:
        self._adapter = adapter
        self._extra = extra
        super().__init__(adapter, **kwargs)

    async def _run(self) -> None:
        adapter = self._adapter
        failures: list[str] = []
        for llm in adapter._availability.candidates():
            sent = False
            try:
                async with llm.chat(
                    chat_ctx=self._chat_ctx,
                    tools=self._tools,
                    conn_options=adapter._attempt_options,
                    **self._extra,
                ) as stream:
                    async for chunk in stream:
                        sent = True
                        self._send(chunk)
            except Exception as exc:
                if sent and not adapter._retry_on_chunk_sent:
                    adapter._availability.mark_failed(llm)
                    raise
                logger.warning("LLM %s failed, trying the next one: %s", llm.label, exc)
                failures.append(f"{llm.label}: {exc}")
                adapter._availability.mark_failed(llm)
                continue
            adapter._availability.mark_ok(llm)
            return
        raise APIConnectionError(f"all LLMs failed: {'; '.join(failures)}", retryable=False)

    def _on_done(self, *, cancelled: bool) -> None:
        pass  # the inner LLMs' metrics are forwarded instead
