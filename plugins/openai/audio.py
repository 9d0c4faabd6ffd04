"""STT (``/audio/transcriptions``) and TTS (``/audio/speech``) over OpenAI-compatible APIs."""

from __future__ import annotations

import io
import os
import wave

import aiohttp

from roomd.agents.stt import STT, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities
from roomd.agents.tts import TTS, ChunkedStream, SynthesizedAudio, TTSCapabilities
from roomd.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from roomd.agents.utils.audio import AudioBuffer, merge_frames
from roomd.agents.utils.ids import shortuuid

from ._http import HTTPClient
from .llm import DEFAULT_BASE_URL

_PCM_RATE = 24000  # response_format "pcm": 24 kHz 16-bit mono little-endian, per the API
_FRAME = 0.02


def _client(base_url: str | None, api_key: str | None) -> HTTPClient:
    return HTTPClient(
        base_url=base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
        api_key=api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"),
    )


def wav_bytes(buffer: AudioBuffer) -> bytes:
    frame = merge_frames(buffer)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(frame.num_channels)
        wav.setsampwidth(2)
        wav.setframerate(frame.sample_rate)
        wav.writeframes(bytes(frame.data))
    return out.getvalue()


class OpenAISTT(STT):
    """Batch transcription (wrap in ``stt.StreamAdapter`` with a VAD for a stream)."""

    def __init__(
        self, *, model: str = "whisper-1", language: str = "en", base_url: str | None = None, api_key: str | None = None
    ) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self._model = model
        self._language = language
        self._client = _client(base_url, api_key)

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return self._client.base_url

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        lang = language or self._language
        form = aiohttp.FormData()
        form.add_field("file", wav_bytes(buffer), filename="speech.wav", content_type="audio/wav")
        form.add_field("model", self._model)
        form.add_field("language", lang)
        form.add_field("response_format", "json")
        async with self._client.post("/audio/transcriptions", data=form, conn_options=conn_options) as resp:
            body = await resp.json(content_type=None)
        return SpeechEvent(
            type=SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[SpeechData(language=lang, text=str(body.get("text", "")).strip())],
            request_id=resp.headers.get("x-request-id") or shortuuid("stt_"),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAITTS(TTS):
    """Speech as raw PCM (24 kHz), streamed as the server sends it."""

    def __init__(
        self,
        *,
        model: str = "tts-1",
        voice: str = "alloy",
        speed: float = 1.0,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        super().__init__(capabilities=TTSCapabilities(streaming=False), sample_rate=_PCM_RATE, num_channels=1)
        self._model = model
        self._voice = voice
        self._speed = speed
        self._client = _client(base_url, api_key)

    @property
    def model(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return self._client.base_url

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ChunkedStream:
        return _SpeechStream(tts=self, input_text=text, conn_options=conn_options)

    async def aclose(self) -> None:
        await self._client.aclose()


class _SpeechStream(ChunkedStream):
    _tts: OpenAITTS

    async def _run(self) -> None:
        from livekit import rtc

        tts = self._tts
        body = {"model": tts._model, "voice": tts._voice, "input": self._input_text,
                "response_format": "pcm", "speed": tts._speed}
        step = int(_PCM_RATE * _FRAME) * 2
        pending = b""
        held: rtc.AudioFrame | None = None
        first = True

        def frame(data: bytes) -> rtc.AudioFrame:
            return rtc.AudioFrame(data, _PCM_RATE, 1, len(data) // 2)

        def send(f: rtc.AudioFrame, final: bool) -> None:
            nonlocal first
            self._send(SynthesizedAudio(frame=f, request_id=self._request_id, is_final=final,
                                        delta_text=self._input_text if first else ""))
            first = False

        async with tts._client.post("/audio/speech", json=body, conn_options=self._conn_options) as resp:
            async for data in resp.content.iter_any():
                pending += data
                while len(pending) >= step:
                    if held is not None:
                        send(held, False)
                    held, pending = frame(pending[:step]), pending[step:]
        tail = pending[: len(pending) // 2 * 2]
        if tail:
            if held is not None:
                send(held, False)
            held = frame(tail)
        if held is not None:
            send(held, True)
