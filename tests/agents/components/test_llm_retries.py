import asyncio

import pytest

from roomd.agents.errors import APIConnectionError, APIError, APIStatusError, APITimeoutError
from roomd.agents.llm import ChatContext, LLMMetrics
from roomd.agents.testing import ScriptedLLM, ScriptedReply, tool_call
from roomd.agents.types import APIConnectOptions
from roomd.agents.utils import call_with_retries

FAST = APIConnectOptions(max_retry=2, retry_interval=0.001, timeout=1.0)


def test_backoff_schedule() -> None:
    options = APIConnectOptions(max_retry=4, retry_interval=2.0)
    assert [options.interval_for_retry(n) for n in range(4)] == [0.0, 2.0, 4.0, 8.0]
    with pytest.raises(ValueError, match="max_retry"):
        APIConnectOptions(max_retry=-1)


def ctx() -> ChatContext:
    return ChatContext().append(role="user", content="hi")


async def test_stream_yields_text_tool_calls_and_usage_and_emits_metrics() -> None:
    call = tool_call("lookup", q="x")
    llm = ScriptedLLM([ScriptedReply(text="hello there world", tool_calls=[call])])
    metrics: list[LLMMetrics] = []
    llm.on("metrics_collected", metrics.append)
    async with asyncio.timeout(5):
        async with llm.chat(chat_ctx=ctx()) as stream:
            chunks = [chunk async for chunk in stream]
    text = "".join(c.delta.content or "" for c in chunks if c.delta)
    calls = [tc for c in chunks if c.delta for tc in c.delta.tool_calls]
    assert text == "hello there world" and calls == [call]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert len(metrics) == 1
    m = metrics[0]
    assert m.ttft >= 0 and m.duration >= m.ttft and m.completion_tokens == 4 and not m.cancelled


async def test_retryable_errors_are_retried_before_the_first_chunk() -> None:
    llm = ScriptedLLM([ScriptedReply(error=APIConnectionError("reset")), ScriptedReply(error=APIStatusError("busy", status_code=503)), "ok"])
    async with asyncio.timeout(5):
        text, _ = await llm.chat(chat_ctx=ctx(), conn_options=FAST).collect()
    assert text == "ok" and len(llm.requests) == 3


async def test_retries_stop_at_max_retry() -> None:
    llm = ScriptedLLM([ScriptedReply(error=APIConnectionError("reset"))] * 5)
    with pytest.raises(APIConnectionError):
        async with asyncio.timeout(5):
            await llm.chat(chat_ctx=ctx(), conn_options=FAST).collect()
    assert len(llm.requests) == 3  # first try + max_retry


async def test_non_retryable_errors_are_not_retried() -> None:
    llm = ScriptedLLM([ScriptedReply(error=APIStatusError("bad", status_code=400)), "never"])
    with pytest.raises(APIStatusError):
        async with asyncio.timeout(5):
            await llm.chat(chat_ctx=ctx(), conn_options=FAST).collect()
    assert len(llm.requests) == 1


async def test_timeout_before_first_chunk_raises_api_timeout_and_is_retried() -> None:
    options = APIConnectOptions(max_retry=1, retry_interval=0.001, timeout=0.05)
    llm = ScriptedLLM([ScriptedReply(text="slow", ttft=10), ScriptedReply(text="late", ttft=10)])
    with pytest.raises(APITimeoutError):
        async with asyncio.timeout(5):
            await llm.chat(chat_ctx=ctx(), conn_options=options).collect()
    assert len(llm.requests) == 2


async def test_timeout_does_not_cut_a_stream_that_has_started() -> None:
    options = APIConnectOptions(max_retry=0, timeout=0.05)
    llm = ScriptedLLM([ScriptedReply(text="a b c d", chunk_delay=0.03)])
    async with asyncio.timeout(5):
        text, _ = await llm.chat(chat_ctx=ctx(), conn_options=options).collect()
    assert text == "a b c d"


async def test_closing_a_stream_early_reports_cancelled_metrics() -> None:
    llm = ScriptedLLM([ScriptedReply(text="a b c d e", chunk_delay=1)])
    metrics: list[LLMMetrics] = []
    llm.on("metrics_collected", metrics.append)
    async with asyncio.timeout(5):
        stream = llm.chat(chat_ctx=ctx())
        await stream.__anext__()
        await stream.aclose()
    assert len(metrics) == 1 and metrics[0].cancelled


async def test_call_with_retries_for_batch_calls() -> None:
    outcomes: list[object] = [APITimeoutError(), APIConnectionError(), "done"]

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, APIError):
            raise outcome
        return str(outcome)

    assert await call_with_retries(attempt, FAST, label="t") == "done"

    async def hangs() -> str:
        await asyncio.sleep(10)
        return "never"

    with pytest.raises(APITimeoutError, match="no answer within"):
        await call_with_retries(hangs, APIConnectOptions(max_retry=0, timeout=0.02), label="t")

    async def bug() -> str:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await call_with_retries(bug, FAST, label="t")


async def test_script_exhaustion_is_a_clear_error() -> None:
    with pytest.raises(APIError, match="exhausted"):
        async with asyncio.timeout(5):
            await ScriptedLLM([]).chat(chat_ctx=ctx()).collect()
