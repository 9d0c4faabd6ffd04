"""Components written in livekit-agents' style (reference_style.py) work on roomd's base
classes, alone and inside an AgentSession, with metrics and errors as the reference emits."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from reference_style import (
    TTS_RATE,
    ChimeTTS,
    ClockedAudioOutput,
    LevelVAD,
    ListTextOutput,
    ParrotLLM,
    PhraseSTT,
    QueueAudioInput,
)
from roomd.agents import APIConnectionError, APIConnectOptions, metrics, stt, tts, vad
from roomd.agents.llm import ChatContext
from roomd.agents.voice import Agent, AgentSession

sys.path.insert(0, str(Path(__file__).parent.parent / "voice"))
from voice_audio import tone, utterance

TIMEOUT = 10.0
FAST_RETRY = APIConnectOptions(max_retry=2, retry_interval=0.01)


# -- TTS --------------------------------------------------------------------------------


async def test_chunked_tts_pushes_pcm_through_the_audio_emitter() -> None:
    chime = ChimeTTS(seconds_per_char=0.01)
    emitted: list[Any] = []
    chime.on("metrics_collected", emitted.append)
    async with chime.synthesize("hello there") as stream:
        frames = [audio async for audio in stream]
    assert sum(a.frame.duration for a in frames) == pytest.approx(0.11, abs=1e-3)
    assert {a.frame.sample_rate for a in frames} == {TTS_RATE}
    assert [a.is_final for a in frames] == [False] * (len(frames) - 1) + [True]
    assert len({a.request_id for a in frames}) == 1
    (m,) = emitted
    assert isinstance(m, metrics.TTSMetrics)
    assert m.characters_count == len("hello there") and m.audio_duration == pytest.approx(0.11, abs=1e-3)
    assert m.ttfb >= 0 and not m.streamed and not m.cancelled


async def test_chunked_tts_decodes_wav_pushed_to_the_emitter() -> None:
    frame = await ChimeTTS(mime_type="audio/wav").synthesize("hello there").collect()
    assert frame.sample_rate == TTS_RATE and frame.duration == pytest.approx(0.11, abs=1e-3)


async def test_tts_retries_through_conn_options_and_reports_each_error() -> None:
    chime = ChimeTTS(fail_first=2)
    errors: list[tts.TTSError] = []
    chime.on("error", errors.append)
    frame = await chime.synthesize("retry me", conn_options=FAST_RETRY).collect()
    assert frame.duration > 0
    # the plugin's own self._attempt counters were not touched by the base class
    assert chime._attempt == 3
    assert [e.recoverable for e in errors] == [True, True]
    assert all(isinstance(e.error, APIConnectionError) and e.label == chime.label for e in errors)


async def test_tts_gives_up_after_max_retry() -> None:
    chime = ChimeTTS(fail_first=5)
    errors: list[tts.TTSError] = []
    chime.on("error", errors.append)
    with pytest.raises(APIConnectionError):
        await chime.synthesize("never", conn_options=APIConnectOptions(max_retry=1, retry_interval=0.0)).collect()
    assert [e.recoverable for e in errors] == [True, False]


async def test_streaming_tts_segments_carry_their_text_and_metrics() -> None:
    chime = ChimeTTS(streaming=True)
    emitted: list[metrics.TTSMetrics] = []
    chime.on("metrics_collected", emitted.append)
    stream = chime.stream()
    stream.push_text("hello ")
    stream.push_text("world")
    stream.flush()
    stream.push_text("again")
    stream.end_input()
    out = [audio async for audio in stream]
    segments = list(dict.fromkeys(a.segment_id for a in out))
    assert len(segments) == 2
    firsts = [next(a for a in out if a.segment_id == s) for s in segments]
    assert [a.delta_text for a in firsts] == ["hello world", "again"]
    assert [a.is_final for a in out].count(True) == 2
    assert chime.requests == ["hello ", "world", "again"]
    assert [m.segment_id for m in emitted] == segments and all(m.streamed for m in emitted)
    assert [m.characters_count for m in emitted] == [11, 5]


async def test_audio_emitter_rejects_misuse_with_clear_errors() -> None:
    from roomd.agents.utils.aio import Chan

    emitter = tts.AudioEmitter(label="t", dst_ch=Chan())
    with pytest.raises(RuntimeError, match="initialize"):
        emitter.push(b"\0\0")
    emitter.initialize(request_id="r", sample_rate=16000, num_channels=1, mime_type="audio/pcm", stream=True)
    with pytest.raises(RuntimeError, match="start_segment"):
        emitter.push(b"\0\0")
    with pytest.raises(RuntimeError, match="twice"):
        emitter.initialize(request_id="r", sample_rate=16000, num_channels=1, mime_type="audio/pcm")


async def test_stream_adapter_and_fallback_take_the_reference_parameters() -> None:
    chime = ChimeTTS()
    adapter = tts.StreamAdapter(tts=chime, text_pacing=True)
    stream = adapter.stream()
    stream.push_text("The first sentence is here. The second one follows it. ")
    stream.push_text("And a third.")
    stream.end_input()
    out = [a async for a in stream]
    assert "".join(a.delta_text for a in out) == (
        "The first sentence is here. The second one follows it. And a third."
    )
    fallback = tts.FallbackAdapter([ChimeTTS(fail_first=10), ChimeTTS()], sample_rate=48000, max_retry_per_tts=0)
    frame = await fallback.synthesize("fallback").collect()
    assert fallback.sample_rate == 48000 and frame.sample_rate == 48000
    assert frame.duration == pytest.approx(0.08, abs=0.01)


async def test_text_pacing_batches_sentences_while_audio_is_queued() -> None:
    chime = ChimeTTS(seconds_per_char=0.2)  # each sentence: several seconds of audio
    pacer = tts.SentenceStreamPacer(min_remaining_audio=1000.0, max_text_length=300)
    stream = tts.StreamAdapter(tts=chime, text_pacing=pacer).stream()
    stream.push_text("One sentence is spoken first. Two more come while it plays. And this one too. ")
    stream.end_input()
    async for _ in stream:
        pass
    # the first sentence alone, then the rest in one request: its audio was still queued
    assert chime.requests == ["One sentence is spoken first.", "Two more come while it plays. And this one too."]


# -- STT --------------------------------------------------------------------------------


async def test_streaming_stt_reads_resampled_input_and_reports_usage() -> None:
    phrase = PhraseSTT(phrase="what time is it")
    emitted: list[metrics.STTMetrics] = []
    phrase.on("metrics_collected", emitted.append)
    stream = phrase.stream()
    for frame in utterance():
        stream.push_frame(frame)
    stream.end_input()
    events = [e async for e in stream]
    assert [e.type for e in events] == [
        stt.SpeechEventType.START_OF_SPEECH,
        stt.SpeechEventType.INTERIM_TRANSCRIPT,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
        stt.SpeechEventType.END_OF_SPEECH,
        stt.SpeechEventType.RECOGNITION_USAGE,
    ]
    assert stream.sample_rates == {16000}  # the base resampled the 48 kHz input
    (m,) = emitted
    assert m.streamed and m.audio_duration == pytest.approx(events[-1].recognition_usage.audio_duration)


async def test_batch_stt_gets_not_given_language_and_emits_metrics() -> None:
    phrase = PhraseSTT(phrase="hello", language="fr")
    emitted: list[metrics.STTMetrics] = []
    phrase.on("metrics_collected", emitted.append)
    event = await phrase.recognize(tone(0.3))
    assert event.alternatives[0].text == "hello" and event.alternatives[0].language == "fr"
    event = await phrase.recognize(tone(0.3), language="de")
    assert event.alternatives[0].language == "de"
    assert len(emitted) == 2 and not emitted[0].streamed and emitted[0].audio_duration == pytest.approx(0.3)


# -- VAD --------------------------------------------------------------------------------


async def test_vad_main_task_events_and_metrics() -> None:
    level = LevelVAD.load()
    emitted: list[metrics.VADMetrics] = []
    level.on("metrics_collected", emitted.append)
    stream = level.stream()
    for frame in utterance(speech=0.5, pause=0.8):
        stream.push_frame(frame)
    stream.end_input()
    events = [e async for e in stream]
    kinds = [e.type for e in events if e.type != vad.VADEventType.INFERENCE_DONE]
    assert kinds == [vad.VADEventType.START_OF_SPEECH, vad.VADEventType.END_OF_SPEECH]
    inferences = sum(e.type == vad.VADEventType.INFERENCE_DONE for e in events)
    assert inferences >= 32 and len(emitted) == inferences // 32  # one report per ~1 s of inferences
    assert emitted[0].inference_count == 32 and emitted[0].label == level.label


# -- LLM --------------------------------------------------------------------------------


async def test_llm_writing_to_event_ch_gets_metrics_with_cached_tokens() -> None:
    parrot = ParrotLLM()
    emitted: list[metrics.LLMMetrics] = []
    parrot.on("metrics_collected", emitted.append)
    text, _ = await parrot.chat(chat_ctx=ChatContext().append(role="user", content="hi there")).collect()
    assert text == "You said: hi there."
    (m,) = emitted
    assert (m.prompt_tokens, m.prompt_cached_tokens, m.completion_tokens) == (7, 2, 4)
    assert m.ttft >= 0 and m.label == parrot.label
    stream = parrot.chat(chat_ctx=ChatContext().append(role="user", content="again"))
    assert "".join([piece async for piece in stream.to_str_iterable()]) == "You said: again."


# -- audio output -----------------------------------------------------------------------


async def test_audio_output_subclass_reports_playout_and_interruption() -> None:
    out = ClockedAudioOutput(speed=20)
    await out.capture_frame(tone(0.2)[0])
    out.flush()
    finished = await asyncio.wait_for(out.wait_for_playout(), TIMEOUT)
    assert not finished.interrupted and finished.playback_position == pytest.approx(0.02)
    for frame in tone(2.0):
        await out.capture_frame(frame)
    out.flush()
    await asyncio.sleep(0.01)
    out.clear_buffer()
    finished = await asyncio.wait_for(out.wait_for_playout(), TIMEOUT)
    assert finished.interrupted and finished.playback_position < 2.0
    assert out.label == "clocked" and not out.can_pause
    await out.aclose()


# -- in a session ----------------------------------------------------------------------


class Session:
    def __init__(self, *, streaming_tts: bool) -> None:
        self.chime = ChimeTTS(streaming=streaming_tts)
        self.phrase = PhraseSTT(phrase="what time is it")
        self.level = LevelVAD.load()
        self.parrot = ParrotLLM()
        self.session: AgentSession[Any] = AgentSession(
            vad=self.level, stt=self.phrase, llm=self.parrot, tts=self.chime, min_endpointing_delay=0.05
        )
        self.audio_in = QueueAudioInput()
        self.audio_out = ClockedAudioOutput(speed=4.0)
        self.text_out = ListTextOutput()
        self.session.input.audio = self.audio_in
        self.session.output.audio = self.audio_out
        self.session.output.transcription = self.text_out
        self.metrics: list[Any] = []
        self.usage = metrics.UsageCollector()
        self.transcripts: list[Any] = []
        self.replied = asyncio.Event()

        @self.session.on("metrics_collected")
        def _on_metrics(ev: Any) -> None:
            self.metrics.append(ev.metrics)
            self.usage.collect(ev.metrics)

        self.session.on("user_input_transcribed", self.transcripts.append)
        self.session.on(
            "conversation_item_added",
            lambda ev: self.replied.set() if getattr(ev.item, "role", "") == "assistant" else None,
        )


@pytest.mark.parametrize("streaming_tts", [False, True], ids=["chunked-tts", "streaming-tts"])
async def test_reference_style_components_run_a_turn_in_a_session(streaming_tts: bool) -> None:
    h = Session(streaming_tts=streaming_tts)
    await h.session.start(Agent(instructions="Repeat the user."))
    try:
        for frame in utterance(speech=0.5, pause=0.8):
            h.audio_in.put(frame)
            await asyncio.sleep(frame.duration / 4)  # a microphone, four times as fast
        await asyncio.wait_for(h.replied.wait(), TIMEOUT)
        reply = "You said: what time is it."
        assert [(m.role, m.text_content) for m in h.session.history.messages] == [
            ("user", "what time is it"),
            ("assistant", reply),
        ]
        finals = [t.transcript for t in h.transcripts if t.is_final]
        assert finals == ["what time is it"]
        await asyncio.wait_for(h.audio_out.wait_for_playout(), TIMEOUT)
        assert h.audio_out.heard_duration == pytest.approx(len(reply) * 0.01, abs=0.03)
        assert h.text_out.segments == [reply]
        kinds = {type(m).__name__ for m in h.metrics}
        assert {"LLMMetrics", "TTSMetrics", "STTMetrics", "EOUMetrics"} <= kinds
        summary = h.usage.get_summary()
        assert summary.llm_prompt_tokens == 7 and summary.llm_prompt_cached_tokens == 2
        assert summary.tts_characters_count >= len(reply) - 1 and summary.stt_audio_duration > 0.3
    finally:
        await asyncio.wait_for(h.session.aclose(), TIMEOUT)


# -- the daemon's histograms ------------------------------------------------------------


async def test_reference_style_components_feed_the_daemons_latency_samples() -> None:
    from roomd.agents.voice.metrics_report import latency_sample

    emitted: list[Any] = []
    chime, parrot = ChimeTTS(), ParrotLLM()
    chime.on("metrics_collected", emitted.append)
    parrot.on("metrics_collected", emitted.append)
    await chime.synthesize("latency").collect()
    await parrot.chat(chat_ctx=ChatContext().append(role="user", content="hi")).collect()
    samples = [latency_sample(m) for m in emitted]
    assert [(s.name, s.component) for s in samples if s is not None] == [
        ("tts_ttfb_seconds", chime.label),
        ("llm_ttft_seconds", parrot.label),
    ]
    realtime = metrics.RealtimeModelMetrics(
        label="acme.Realtime", request_id="r", timestamp=0.0, duration=1.0, ttft=0.3, cancelled=False,
        input_tokens=10, output_tokens=5, total_tokens=15, tokens_per_second=5.0,
    )
    sample = latency_sample(realtime)
    assert sample is not None and (sample.name, sample.seconds) == ("llm_ttft_seconds", 0.3)


def test_usage_collector_and_log_metrics(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    usage = metrics.UsageCollector()
    llm_m = metrics.LLMMetrics(label="l", request_id="r", timestamp=0, duration=1, ttft=0.1, cancelled=False,
                               completion_tokens=5, prompt_tokens=10, prompt_cached_tokens=3, total_tokens=15,
                               tokens_per_second=5)
    rt = metrics.RealtimeModelMetrics(
        label="rt", request_id="r", timestamp=0, duration=1, ttft=0.1, cancelled=False, input_tokens=4,
        output_tokens=2, total_tokens=6, tokens_per_second=2,
        input_token_details=metrics.RealtimeModelMetrics.InputTokenDetails(audio_tokens=3, cached_tokens=1),
        output_token_details=metrics.RealtimeModelMetrics.OutputTokenDetails(audio_tokens=2),
    )
    tts_m = metrics.TTSMetrics(label="t", request_id="r", timestamp=0, ttfb=0.2, duration=1, audio_duration=2.5,
                               cancelled=False, characters_count=30, streamed=False)
    stt_m = metrics.STTMetrics(label="s", request_id="r", timestamp=0, duration=0, audio_duration=1.5, streamed=True)
    for m in (llm_m, rt, tts_m, stt_m, metrics.VADMetrics(label="v", timestamp=0, idle_time=0,
                                                          inference_duration_total=0.1, inference_count=31)):
        usage(m)
    summary = usage.get_summary()
    assert summary == metrics.UsageSummary(
        llm_prompt_tokens=14, llm_prompt_cached_tokens=4, llm_input_audio_tokens=3, llm_completion_tokens=7,
        llm_output_audio_tokens=2, tts_characters_count=30, tts_audio_duration=2.5, stt_audio_duration=1.5,
    )
    summary.llm_prompt_tokens = 0
    assert usage.get_summary().llm_prompt_tokens == 14  # a copy
    assert llm_m.model_dump()["prompt_cached_tokens"] == 3 and '"type": "tts_metrics"' in tts_m.model_dump_json()
    log = logging.getLogger("test.metrics")
    with caplog.at_level(logging.INFO, logger="test.metrics"):
        metrics.log_metrics(llm_m, logger=log)
        metrics.log_metrics(tts_m, logger=log)
    assert [r.getMessage() for r in caplog.records] == ["LLM metrics", "TTS metrics"]
    assert caplog.records[0].prompt_cached_tokens == 3  # type: ignore[attr-defined]


# -- private names ----------------------------------------------------------------------

# What livekit-agents' base classes give their subclasses; anything else the base keeps is
# name-mangled, so a plugin's own self._attempt, self._opts, self._listeners... are safe.
SHARED = {
    "_tts", "_stt", "_vad", "_llm", "_input_text", "_chat_ctx", "_tools", "_conn_options",
    "_input_ch", "_event_ch", "_task", "_label", "_capabilities", "_sample_rate", "_num_channels",
    "_request_id", "_language", "_last_activity_time",
}


async def test_base_classes_keep_their_state_out_of_the_subclass_namespace() -> None:
    def plain(obj: object) -> set[str]:
        return {n for n in vars(obj) if n.startswith("_") and not n.startswith("__") and "__" not in n[1:]}

    chime, phrase, level, parrot = ChimeTTS(streaming=True), PhraseSTT(phrase="x"), LevelVAD.load(), ParrotLLM()
    # the plugin's own names, set after the base's __init__
    own = {"_opts", "_attempt", "_streams", "_tts", "_model", "_speaking", "_request_id", "_exp_filter",
           "_input_sample_rate", "_client", "_llm"}
    objects: list[object] = [chime, phrase, level, parrot, chime.synthesize("x"), chime.stream(), phrase.stream(),
                             level.stream(), parrot.chat(chat_ctx=ChatContext()), ClockedAudioOutput()]
    for obj in objects:
        leaked = plain(obj) - SHARED - own - {"requests", "_queue", "_speed", "_segment_open", "_position"}
        assert not leaked, f"{type(obj).__name__} base class uses plain private names {leaked}"
    for obj in objects[4:9]:
        await obj.aclose()  # type: ignore[attr-defined]
