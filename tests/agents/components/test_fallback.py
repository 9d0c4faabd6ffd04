import asyncio

import pytest

from roomd.agents import llm, stt, tts
from roomd.agents.errors import APIConnectionError
from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ScriptedReply, ToneTTS

from components_audio import quiet_frames, speech_frames


def ctx() -> llm.ChatContext:
    return llm.ChatContext().append(role="user", content="hi")


async def test_llm_fallback_moves_on_marks_unavailable_and_recovers() -> None:
    broken = ScriptedLLM([ScriptedReply(error=APIConnectionError("down"))] * 3 + ["primary again"])
    backup = ScriptedLLM(default="from backup")
    adapter = llm.FallbackAdapter([broken, backup], max_retry_per_llm=0, recovery_delay=0.05)
    changes: list[tuple[str, bool]] = []
    adapter.on("llm_availability_changed", lambda e: changes.append((e.llm.model, e.available)))
    metrics: list[llm.LLMMetrics] = []
    adapter.on("metrics_collected", metrics.append)
    async with asyncio.timeout(5):
        assert (await adapter.chat(chat_ctx=ctx()).collect())[0] == "from backup"
        assert not adapter.is_available(broken)
        # while unavailable, the broken one is skipped
        assert (await adapter.chat(chat_ctx=ctx()).collect())[0] == "from backup"
        assert len(broken.requests) == 1
        await asyncio.sleep(0.06)
        # due for another try: fails twice more (its script), then recovers later
        assert (await adapter.chat(chat_ctx=ctx()).collect())[0] == "from backup"
        await asyncio.sleep(0.06)
        assert (await adapter.chat(chat_ctx=ctx()).collect())[0] == "from backup"
        await asyncio.sleep(0.06)
        assert (await adapter.chat(chat_ctx=ctx()).collect())[0] == "primary again"
    assert adapter.is_available(broken)
    assert changes == [("scripted", False), ("scripted", True)]
    assert metrics and all(isinstance(m, llm.LLMMetrics) for m in metrics)


async def test_llm_fallback_fails_with_every_cause_when_all_fail() -> None:
    a = ScriptedLLM(default=ScriptedReply(error=APIConnectionError("a down")))
    b = ScriptedLLM(default=ScriptedReply(error=APIConnectionError("b down")))
    adapter = llm.FallbackAdapter([a, b], max_retry_per_llm=0)
    with pytest.raises(APIConnectionError, match="all LLMs failed.*a down.*b down"):
        async with asyncio.timeout(5):
            await adapter.chat(chat_ctx=ctx()).collect()


async def test_llm_fallback_does_not_switch_after_text_was_sent() -> None:
    first = ScriptedLLM([ScriptedReply(text="partial answer", chunk_delay=0.01)])
    backup = ScriptedLLM(default="never")
    adapter = llm.FallbackAdapter([first, backup], max_retry_per_llm=0, attempt_timeout=0.5)
    async with asyncio.timeout(5):
        stream = adapter.chat(chat_ctx=ctx())
        chunk = await stream.__anext__()
        assert chunk.delta is not None and chunk.delta.content == "partial "
        await stream.aclose()
    assert backup.requests == []


async def test_stt_fallback_batch_and_stream() -> None:
    broken = FakeSTT("broken", failures=100)
    backup = FakeSTT("hello from backup", interim_results=False)
    adapter = stt.FallbackAdapter([broken, backup], max_retry_per_stt=0)
    async with asyncio.timeout(5):
        event = await adapter.recognize(speech_frames(0.2))
        assert event.alternatives[0].text == "hello from backup"
        assert not adapter.is_available(broken)

        stream = adapter.stream()
        for frame in speech_frames(0.3) + quiet_frames(0.4):
            stream.push_frame(frame)
        stream.end_input()
        events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds == [
        stt.SpeechEventType.START_OF_SPEECH,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
        stt.SpeechEventType.END_OF_SPEECH,
    ]
    assert events[1].alternatives[0].text == "hello from backup"


async def test_stt_fallback_streams_batch_stts_through_a_vad() -> None:
    batch_only = FakeSTT("batch words", streaming=False)
    adapter = stt.FallbackAdapter([batch_only], vad=EnergyVAD())
    assert adapter.capabilities.streaming
    async with asyncio.timeout(5):
        stream = adapter.stream()
        for frame in speech_frames(0.3) + quiet_frames(0.4):
            stream.push_frame(frame)
        stream.end_input()
        finals = [e async for e in stream if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert [e.alternatives[0].text for e in finals] == ["batch words"]


async def test_tts_fallback_switches_and_resamples() -> None:
    broken = ToneTTS(sample_rate=24000, failures=100)
    backup = ToneTTS(sample_rate=16000)
    adapter = tts.FallbackAdapter([broken, backup], max_retry_per_tts=0)
    assert adapter.sample_rate == 24000
    async with asyncio.timeout(5):
        audio = [a async for a in adapter.synthesize("Hello there.")]
    assert audio and all(a.frame.sample_rate == 24000 for a in audio)
    assert audio[-1].is_final and audio[0].delta_text == "Hello there."
    assert backup.requests == ["Hello there."] and not adapter.is_available(broken)
    assert sum(a.frame.samples_per_channel for a in audio) > 0


async def test_tts_fallback_stream_replays_text_to_the_next_tts() -> None:
    broken = ToneTTS(failures=100, streaming=True)
    backup = ToneTTS()  # not streaming: goes through StreamAdapter
    adapter = tts.FallbackAdapter([broken, backup], max_retry_per_tts=0)
    async with asyncio.timeout(5):
        stream = adapter.stream()
        stream.push_text("The first sentence is here. ")
        stream.push_text("And a second one follows.")
        stream.end_input()
        audio = [a async for a in stream]
    assert backup.requests == ["The first sentence is here.", "And a second one follows."]
    assert [a.is_final for a in audio].count(True) == 1 and audio[-1].is_final
