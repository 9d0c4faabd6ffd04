import asyncio

import pytest

from roomd.agents import stt, tts, vad
from roomd.agents.testing import EnergyVAD, FakeSTT, ToneTTS
from roomd.agents.tokenize import SentenceTokenizer
from roomd.agents.utils import frame_rms

from components_audio import quiet_frames, speech_frames


async def run_vad(frames: list) -> list[vad.VADEvent]:
    stream = EnergyVAD(min_silence_duration=0.2).stream()
    for frame in frames:
        stream.push_frame(frame)
    stream.end_input()
    async with asyncio.timeout(5):
        return [e async for e in stream]


async def test_energy_vad_finds_each_utterance() -> None:
    frames = quiet_frames(0.2) + speech_frames(0.4) + quiet_frames(0.3) + speech_frames(0.2) + quiet_frames(0.3)
    events = await run_vad(frames)
    edges = [e for e in events if e.type != vad.VADEventType.INFERENCE_DONE]
    assert [e.type for e in edges] == [
        vad.VADEventType.START_OF_SPEECH,
        vad.VADEventType.END_OF_SPEECH,
        vad.VADEventType.START_OF_SPEECH,
        vad.VADEventType.END_OF_SPEECH,
    ]
    first_end = edges[1]
    assert first_end.speech_duration == pytest.approx(0.4, abs=0.03)
    assert sum(f.samples_per_channel for f in first_end.frames) / 16000 >= 0.4
    assert edges[0].timestamp == pytest.approx(0.2 + 0.06, abs=0.03)  # start + min_speech_duration
    inference = [e for e in events if e.type == vad.VADEventType.INFERENCE_DONE]
    assert len(inference) == len(frames)
    assert max(e.probability for e in inference) > 0.9 and min(e.probability for e in inference) == 0.0


async def test_energy_vad_flush_ends_speech() -> None:
    events = await run_vad(speech_frames(0.3))
    assert [e.type for e in events if e.type != vad.VADEventType.INFERENCE_DONE] == [
        vad.VADEventType.START_OF_SPEECH,
        vad.VADEventType.END_OF_SPEECH,
    ]


async def test_fake_stt_stream_gives_interim_then_final_per_utterance() -> None:
    fake = FakeSTT(["turn on the lights", "thanks"], interim_interval=0.1)
    stream = fake.stream()
    for frame in speech_frames(0.35) + quiet_frames(0.4) + speech_frames(0.2):
        stream.push_frame(frame)
    stream.end_input()  # flush ends the second utterance
    async with asyncio.timeout(5):
        events = [e async for e in stream]
    T = stt.SpeechEventType
    kinds = [e.type for e in events]
    assert kinds[0] == T.START_OF_SPEECH and kinds.count(T.FINAL_TRANSCRIPT) == 2
    interims = [e.alternatives[0].text for e in events if e.type == T.INTERIM_TRANSCRIPT]
    assert interims and all("turn on the lights".startswith(i) or "thanks".startswith(i) for i in interims)
    finals = [e.alternatives[0].text for e in events if e.type == T.FINAL_TRANSCRIPT]
    assert finals == ["turn on the lights", "thanks"]
    assert kinds[-2:] == [T.FINAL_TRANSCRIPT, T.END_OF_SPEECH]


async def test_stt_stream_adapter_turns_batch_into_stream() -> None:
    batch = FakeSTT(["one", "two"], streaming=False)
    adapter = stt.StreamAdapter(stt=batch, vad=EnergyVAD(min_silence_duration=0.2))
    assert adapter.capabilities == stt.STTCapabilities(streaming=True, interim_results=False)
    metrics: list[stt.STTMetrics] = []
    adapter.on("metrics_collected", metrics.append)
    stream = adapter.stream()
    for frame in speech_frames(0.3) + quiet_frames(0.3) + speech_frames(0.3) + quiet_frames(0.3):
        stream.push_frame(frame)
    stream.end_input()
    async with asyncio.timeout(5):
        events = [e async for e in stream]
    T = stt.SpeechEventType
    assert [e.type for e in events].count(T.START_OF_SPEECH) == 2
    assert [e.alternatives[0].text for e in events if e.type == T.FINAL_TRANSCRIPT] == ["one", "two"]
    assert T.INTERIM_TRANSCRIPT not in [e.type for e in events]
    assert len(metrics) == 2 and all(m.audio_duration >= 0.3 for m in metrics)


async def test_batch_only_stt_refuses_to_stream_with_a_hint() -> None:
    with pytest.raises(NotImplementedError, match="StreamAdapter"):
        FakeSTT(streaming=False).stream()


async def test_recognize_retries_and_reports_metrics() -> None:
    from roomd.agents.types import APIConnectOptions

    fake = FakeSTT("hi", failures=1)
    metrics: list[stt.STTMetrics] = []
    fake.on("metrics_collected", metrics.append)
    event = await fake.recognize(speech_frames(0.2), conn_options=APIConnectOptions(retry_interval=0.001))
    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives[0].text == "hi"
    assert len(metrics) == 1 and metrics[0].audio_duration == pytest.approx(0.2)


async def test_tone_tts_chunked_is_a_tone_of_the_right_length_with_metrics() -> None:
    tone = ToneTTS(sample_rate=24000, seconds_per_char=0.01, latency=0.01)
    metrics: list[tts.TTSMetrics] = []
    tone.on("metrics_collected", metrics.append)
    async with asyncio.timeout(5):
        frame = await tone.synthesize("x" * 50).collect()
    assert frame.sample_rate == 24000
    assert frame.samples_per_channel / 24000 == pytest.approx(0.5, abs=0.021)
    assert frame_rms(frame) > 0.1
    assert len(metrics) == 1 and metrics[0].ttfb >= 0.01 and metrics[0].characters_count == 50


async def test_tts_stream_adapter_synthesizes_sentence_by_sentence() -> None:
    tone = ToneTTS()
    adapter = tts.StreamAdapter(tts=tone, sentence_tokenizer=SentenceTokenizer(min_sentence_len=5))
    stream = adapter.stream()
    stream.push_text("Hello world. How ")
    async with asyncio.timeout(5):
        first = await stream.__anext__()
    # the first sentence is spoken before the rest of the text exists
    assert first.delta_text == "Hello world." and tone.requests == ["Hello world."]
    stream.push_text("are you today? Fine")
    stream.flush()
    stream.push_text("Second segment.")
    stream.end_input()
    async with asyncio.timeout(5):
        rest = [a async for a in stream]
    audio = [first, *rest]
    assert tone.requests == ["Hello world.", "How are you today?", "Fine", "Second segment."]
    finals = [a for a in audio if a.is_final]
    assert len(finals) == 2 and audio[-1].is_final
    assert len({a.segment_id for a in audio}) == 2
    # Each sentence's text rides on its first frame; within a segment, sentences after the
    # first carry the space the tokenizer took out, so a transcript reads as written.
    assert [a.delta_text for a in audio if a.delta_text] == [
        "Hello world.", " How are you today?", " Fine", "Second segment."]


async def test_tone_tts_native_stream_marks_segment_ends() -> None:
    tone = ToneTTS(streaming=True)
    metrics: list[tts.TTSMetrics] = []
    tone.on("metrics_collected", metrics.append)
    stream = tone.stream()
    stream.push_text("abc")
    stream.push_text("def")
    stream.flush()
    stream.push_text("ghi")
    stream.end_input()
    async with asyncio.timeout(5):
        audio = [a async for a in stream]
    assert [a.is_final for a in audio].count(True) == 2 and audio[-1].is_final
    assert [m.characters_count for m in metrics] == [6, 3]


class _RecordingSTT(stt.STT):
    """A batch STT that says how much audio each recognition got."""

    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.heard: list[float] = []

    async def _recognize_impl(self, buffer, *, language, conn_options):  # type: ignore[no-untyped-def]
        from roomd.agents.utils.audio import merge_frames

        seconds = merge_frames(buffer).duration
        self.heard.append(seconds)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language="en", text=f"heard {len(self.heard)}")],
        )


async def _adapter_events(adapter: stt.StreamAdapter, frames: list) -> list[stt.SpeechEvent]:
    stream = adapter.stream()
    for frame in frames:
        stream.push_frame(frame)
        await asyncio.sleep(0)  # let the VAD keep up, as with live audio
    stream.end_input()
    async with asyncio.timeout(5):
        return [e async for e in stream]


async def test_stt_stream_adapter_recognizes_early_once_the_speech_is_quiet() -> None:
    """With ``recognize_early_after`` the segment is recognised from the speech up to the
    first quiet moments, not from the speech plus the VAD's whole end-of-speech silence;
    a pause shorter than the VAD's silence throws the early recognition away."""
    batch = _RecordingSTT()
    adapter = stt.StreamAdapter(stt=batch, vad=EnergyVAD(min_silence_duration=0.5), recognize_early_after=0.1)
    frames = speech_frames(0.4) + quiet_frames(0.2) + speech_frames(0.4) + quiet_frames(0.8)
    events = await _adapter_events(adapter, frames)
    T = stt.SpeechEventType
    assert [e.type for e in events if e.type != T.PREFLIGHT_TRANSCRIPT] == [
        T.START_OF_SPEECH, T.END_OF_SPEECH, T.FINAL_TRANSCRIPT]
    # one early recognition in the pause (thrown away), one at the end (used); each was
    # sent as a preflight transcript while the speech was quiet, before the VAD ended it
    assert len(batch.heard) == 2, batch.heard
    assert events[-1].alternatives[0].text == "heard 2"
    preflights = [(i, e.alternatives[0].text) for i, e in enumerate(events) if e.type == T.PREFLIGHT_TRANSCRIPT]
    assert [text for _, text in preflights] == ["heard 1", "heard 2"]
    assert all(i < [e.type for e in events].index(T.END_OF_SPEECH) for i, _ in preflights)
    # the used one holds both bursts and the pause, but not the 0.5 s of final silence
    assert 1.0 <= batch.heard[1] < 1.0 + 0.5, batch.heard


async def test_stt_stream_adapter_without_early_recognition_waits_for_the_segment() -> None:
    batch = _RecordingSTT()
    adapter = stt.StreamAdapter(stt=batch, vad=EnergyVAD(min_silence_duration=0.5))
    events = await _adapter_events(adapter, speech_frames(0.4) + quiet_frames(0.2) + speech_frames(0.4) + quiet_frames(0.8))
    assert [e.alternatives[0].text for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT] == ["heard 1"]
    assert batch.heard[0] >= 1.0 + 0.5, batch.heard  # the segment includes the VAD's silence
