"""The OpenAI-compatible plugin against a real server: llama-cpp-python's own
``llama_cpp.server`` serving SmolLM2 on 127.0.0.1, and small aiohttp servers for the
audio endpoints and error statuses."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Annotated

import pytest
from aiohttp import web
from typing_extensions import TypedDict  # what pydantic asks for before Python 3.12

from roomd.agents import llm as L
from roomd.agents.components import resolve
from roomd.agents.errors import APIConnectionError, APIStatusError, APITimeoutError
from roomd.agents.types import APIConnectOptions
from roomd.plugins.openai import OpenAILLM, OpenAISTT, OpenAITTS
from voice_helpers import load_wav, serve_app

NO_RETRY = APIConnectOptions(max_retry=0, timeout=5.0)


def _ctx(question: str) -> L.ChatContext:
    ctx = L.ChatContext.empty()
    ctx.add_message(role="user", content=question)
    return ctx


@pytest.mark.slow_models
async def test_llm_streams_text_from_llama_cpp_server(llama_server: str) -> None:
    llm = resolve("llm", "openai/smollm2", base_url=llama_server, api_key="unused", temperature=0.0)
    assert isinstance(llm, OpenAILLM)
    try:
        async with llm.chat(chat_ctx=_ctx("Say hello to the visitor.")) as stream:
            chunks = [c async for c in stream]
        text = "".join(c.delta.content or "" for c in chunks if c.delta)
        assert text.strip()
        assert sum(1 for c in chunks if c.delta and c.delta.content) > 1  # streamed
        # (llama.cpp's server sends no usage in streams, unlike OpenAI; nothing to check there)
    finally:
        await llm.aclose()


@pytest.mark.slow_models
async def test_llm_tool_call_follows_the_schema(llama_server: str) -> None:
    @L.function_tool
    async def lookup_opening_hours(place: str) -> str:
        """Look up the opening hours of a place.

        Args:
            place: the place
        """
        return "9 to 5"

    llm = OpenAILLM(model="smollm2", base_url=llama_server, temperature=0.0, max_tokens=64)
    forced = {"type": "function", "function": {"name": "lookup_opening_hours"}}
    try:
        _, calls = await llm.chat(
            chat_ctx=_ctx("When does the library open?"), tools=[lookup_opening_hours], tool_choice=forced
        ).collect()
    finally:
        await llm.aclose()
    (call,) = calls
    assert call.name == "lookup_opening_hours" and call.call_id
    assert isinstance(json.loads(call.arguments)["place"], str)


async def test_llm_errors_map_to_api_errors() -> None:
    release = asyncio.Event()

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "bad key"}}, status=401)

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/bad/v1/chat/completions", status)
    app.router.add_post("/slow/v1/chat/completions", slow)
    runner, base = await serve_app(app)
    root = base.removesuffix("/v1")
    try:
        llm = OpenAILLM(base_url=f"{root}/bad/v1", api_key="wrong")
        with pytest.raises(APIStatusError) as info:
            await llm.chat(chat_ctx=_ctx("hi"), conn_options=NO_RETRY).collect()
        assert info.value.status_code == 401 and not info.value.retryable
        await llm.aclose()

        llm = OpenAILLM(base_url=f"{root}/slow/v1")
        with pytest.raises(APITimeoutError):
            await llm.chat(chat_ctx=_ctx("hi"), conn_options=APIConnectOptions(max_retry=0, timeout=0.3)).collect()
        await llm.aclose()
    finally:
        release.set()
        await runner.cleanup()

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = OpenAILLM(base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(APIConnectionError) as refused:
        await llm.chat(chat_ctx=_ctx("hi"), conn_options=NO_RETRY).collect()
    assert not isinstance(refused.value, APITimeoutError)
    await llm.aclose()


async def test_stt_and_tts_use_the_audio_endpoints() -> None:
    seen: dict[str, object] = {}

    async def transcriptions(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        seen["wav"] = upload.file.read()  # type: ignore[union-attr]
        seen["model"] = form["model"]
        seen["auth"] = request.headers.get("Authorization")
        return web.json_response({"text": " what time is it? "})

    async def speech(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen["speech"] = body
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(5):  # 5 x 10 ms of 24 kHz PCM, sent in pieces
            await response.write(b"\x01\x00" * 240)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/speech", speech)
    runner, base = await serve_app(app)
    try:
        stt = OpenAISTT(model="whisper-1", base_url=base, api_key="k")
        event = await stt.recognize(load_wav("what_time.wav"))
        assert event.alternatives[0].text == "what time is it?"
        assert seen["model"] == "whisper-1" and seen["auth"] == "Bearer k"
        assert bytes(seen["wav"])[:4] == b"RIFF"  # type: ignore[arg-type]
        await stt.aclose()

        tts = OpenAITTS(base_url=base, model="tts-1", voice="alloy", response_format="pcm")
        async with tts.synthesize("Hello.") as stream:
            frames = [a async for a in stream]
        assert seen["speech"] == {"model": "tts-1", "voice": "alloy", "input": "Hello.", "response_format": "pcm", "speed": 1.0}
        assert sum(a.frame.samples_per_channel for a in frames) == 5 * 240
        assert {a.frame.sample_rate for a in frames} == {24000} and frames[-1].is_final
        await tts.aclose()
    finally:
        await runner.cleanup()


class Answer(TypedDict):
    mood: Annotated[str, "how to say it"]
    text: str


async def test_llm_sends_a_typed_response_format_as_a_strict_json_schema() -> None:
    bodies: list[dict[str, object]] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.json())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in ('{"mood": "calm", ', '"text": "hello"}'):
            chunk = {"id": "c1", "choices": [{"index": 0, "delta": {"content": piece}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner, base = await serve_app(app)
    try:
        llm = OpenAILLM(base_url=base)
        text, _calls = await llm.chat(chat_ctx=_ctx("hi"), response_format=Answer, conn_options=NO_RETRY).collect()
        assert json.loads(text) == {"mood": "calm", "text": "hello"}
        raw = {"type": "json_object"}
        await llm.chat(chat_ctx=_ctx("hi"), response_format=raw, conn_options=NO_RETRY).collect()
        with pytest.raises(TypeError, match="response_format"):
            llm.chat(chat_ctx=_ctx("hi"), response_format="json")  # type: ignore[arg-type]
        await llm.aclose()
    finally:
        await runner.cleanup()
    assert bodies[0]["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "Answer", "strict": True, "schema": {
            "type": "object",
            "properties": {"mood": {"type": "string", "description": "how to say it"}, "text": {"type": "string"}},
            "required": ["mood", "text"], "additionalProperties": False}}}
    assert bodies[1]["response_format"] == raw
    assert "response_format" not in OpenAILLM().request_body(_ctx("hi"), [], None, None)
