"""STT (``/audio/transcriptions``) and TTS (``/audio/speech``) over OpenAI-compatible APIs,
with the constructors of livekit-plugins-openai's ``openai.STT`` and ``openai.TTS``."""

from __future__ import annotations

import asyncio
import io
import wave
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from roomd.agents.stt import STT as BaseSTT
from roomd.agents.stt import SpeechData, SpeechEvent, SpeechEventType, STTCapabilities
from roomd.agents.tts import TTS as BaseTTS
from roomd.agents.tts import ChunkedStream, SynthesizedAudio, TTSCapabilities
from roomd.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
    is_given,
)
from roomd.agents.utils.audio import AudioBuffer, merge_frames
from roomd.agents.utils.audio_decode import Decoder
from roomd.agents.utils.ids import shortuuid

from ._http import make_client

SAMPLE_RATE = 24000  # the API's PCM rate; every format is delivered to the session at this rate
_FRAME = 0.02
RESPONSE_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


def wav_bytes(buffer: AudioBuffer) -> bytes:
    frame = merge_frames(buffer)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(frame.num_channels)
        wav.setsampwidth(2)
        wav.setframerate(frame.sample_rate)
        wav.writeframes(bytes(frame.data))
    return out.getvalue()


def _update(options: Any, **changes: Any) -> None:
    """Set the options given (the others are NOT_GIVEN)."""
    for name, value in changes.items():
        if is_given(value):
            setattr(options, name, value)


@dataclass(slots=True)
class _STTOptions:
    model: str
    language: str
    detect_language: bool
    prompt: str | None


class STT(BaseSTT):
    """Batch transcription (``AgentSession`` wraps it in ``stt.StreamAdapter`` with its VAD).

    ``detect_language=True`` lets the server detect the language (no ``language`` sent).
    ``use_realtime=True`` (the realtime transcription websocket) is not supported and
    raises; ``turn_detection`` and ``noise_reduction_type`` belong to it and are ignored.
    """

    def __init__(
        self,
        *,
        language: str = "en",
        detect_language: bool = False,
        model: str = "gpt-4o-mini-transcribe",
        prompt: NotGivenOr[str] = NOT_GIVEN,
        turn_detection: NotGivenOr[Any] = NOT_GIVEN,
        noise_reduction_type: NotGivenOr[str] = NOT_GIVEN,
        base_url: NotGivenOr[str] = NOT_GIVEN,
        api_key: NotGivenOr[str] = NOT_GIVEN,
        client: Any | None = None,
        use_realtime: bool = False,
    ) -> None:
        if use_realtime:
            raise ValueError("openai.STT(use_realtime=True) is not supported by roomd: transcription "
                             "uses /audio/transcriptions (leave use_realtime=False)")
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self._opts = _STTOptions(model=model, language="" if detect_language else language,
                                 detect_language=detect_language, prompt=prompt if is_given(prompt) else None)
        self._client = make_client(base_url, api_key, client)

    @property
    def model(self) -> str:
        return self._opts.model

    @property
    def provider(self) -> str:
        return self._client.base_url

    def update_options(
        self,
        *,
        model: NotGivenOr[str] = NOT_GIVEN,
        language: NotGivenOr[str] = NOT_GIVEN,
        detect_language: NotGivenOr[bool] = NOT_GIVEN,
        prompt: NotGivenOr[str] = NOT_GIVEN,
        turn_detection: NotGivenOr[Any] = NOT_GIVEN,
        noise_reduction_type: NotGivenOr[str] = NOT_GIVEN,
    ) -> None:
        _update(self._opts, model=model, language=language, detect_language=detect_language, prompt=prompt)
        if self._opts.detect_language:
            self._opts.language = ""

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        lang = language or self._opts.language
        form = aiohttp.FormData()
        form.add_field("file", wav_bytes(buffer), filename="speech.wav", content_type="audio/wav")
        form.add_field("model", self._opts.model)
        if lang:
            form.add_field("language", lang)
        if self._opts.prompt:
            form.add_field("prompt", self._opts.prompt)
        form.add_field("response_format", "json")
        async with self._client.post("/audio/transcriptions", data=form, conn_options=conn_options) as resp:
            body = await resp.json(content_type=None)
        return SpeechEvent(
            type=SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[SpeechData(language=lang or str(body.get("language", "")),
                                     text=str(body.get("text", "")).strip())],
            request_id=resp.headers.get("x-request-id") or shortuuid("stt_"),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


@dataclass(slots=True)
class _TTSOptions:
    model: str
    voice: str
    speed: float
    instructions: str | None
    response_format: str


class TTS(BaseTTS):
    """Speech from ``/audio/speech``, delivered as 24 kHz mono frames.

    ``response_format`` is what the server is asked for (``mp3`` by default, as in the
    reference): ``pcm`` and ``mp3`` are decoded while they stream in; ``opus``, ``aac``,
    ``flac`` and ``wav`` once the whole answer arrived (PyAV decodes them all).
    """

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini-tts",
        voice: str = "ash",
        speed: float = 1.0,
        instructions: NotGivenOr[str] = NOT_GIVEN,
        base_url: NotGivenOr[str] = NOT_GIVEN,
        api_key: NotGivenOr[str] = NOT_GIVEN,
        client: Any | None = None,
        response_format: NotGivenOr[str] = NOT_GIVEN,
    ) -> None:
        fmt = response_format if is_given(response_format) else "mp3"
        if fmt not in RESPONSE_FORMATS:
            raise ValueError(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}; got {fmt!r}")
        super().__init__(capabilities=TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE, num_channels=1)
        self._opts = _TTSOptions(model=model, voice=voice, speed=speed,
                                 instructions=instructions if is_given(instructions) else None, response_format=fmt)
        self._client = make_client(base_url, api_key, client)

    @property
    def model(self) -> str:
        return self._opts.model

    @property
    def provider(self) -> str:
        return self._client.base_url

    def update_options(
        self,
        *,
        model: NotGivenOr[str] = NOT_GIVEN,
        voice: NotGivenOr[str] = NOT_GIVEN,
        speed: NotGivenOr[float] = NOT_GIVEN,
        instructions: NotGivenOr[str] = NOT_GIVEN,
    ) -> None:
        _update(self._opts, model=model, voice=voice, speed=speed, instructions=instructions)

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ChunkedStream:
        return _SpeechStream(tts=self, input_text=text, conn_options=conn_options)

    async def aclose(self) -> None:
        await self._client.aclose()


OpenAISTT = STT  # roomd's earlier names
OpenAITTS = TTS


class _Mp3Stream:
    """Incremental MP3 decoding: bytes in as they arrive, 24 kHz mono PCM out."""

    def __init__(self) -> None:
        import av

        self._codec: Any = av.CodecContext.create("mp3", "r")
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    def push(self, data: bytes | None) -> bytes:
        """PCM decoded so far; ``None`` flushes the decoder at the end."""
        import av

        out = []
        packets = self._codec.parse(data) if data is not None else [None]
        for packet in packets:
            try:
                frames = self._codec.decode(packet)
            except av.error.InvalidDataError:
                continue  # not audio: an ID3 tag before the first frame, as FFmpeg skips it
            for frame in frames:
                for converted in self._resampler.resample(frame):
                    out.append(np.ascontiguousarray(converted.to_ndarray(), dtype=np.int16).tobytes())
        if data is None:
            out.extend(np.ascontiguousarray(f.to_ndarray(), dtype=np.int16).tobytes()
                       for f in self._resampler.resample(None))
        return b"".join(out)


def _decode_whole(body: bytes) -> bytes:
    decoder = Decoder(io.BytesIO(body), SAMPLE_RATE, 1)
    try:
        pcm: list[bytes] = []
        while frames := decoder.next_slice():
            pcm.extend(bytes(f.data) for f in frames)
        return b"".join(pcm)
    finally:
        decoder.close()


class _SpeechStream(ChunkedStream):
    _tts: TTS

    async def _run(self) -> None:
        from livekit import rtc

        opts = self._tts._opts
        body: dict[str, Any] = {"model": opts.model, "voice": opts.voice, "input": self._input_text,
                                "response_format": opts.response_format, "speed": opts.speed}
        if opts.instructions:
            body["instructions"] = opts.instructions
        step = int(SAMPLE_RATE * _FRAME) * 2
        pending = b""
        held: rtc.AudioFrame | None = None
        first = True

        def frame(data: bytes) -> rtc.AudioFrame:
            return rtc.AudioFrame(data, SAMPLE_RATE, 1, len(data) // 2)

        def send(f: rtc.AudioFrame, final: bool) -> None:
            nonlocal first
            self._send(SynthesizedAudio(frame=f, request_id=self._request_id, is_final=final,
                                        delta_text=self._input_text if first else ""))
            first = False

        def take(pcm: bytes) -> None:
            # hold one frame back so the last one can be marked final
            nonlocal pending, held
            pending += pcm
            while len(pending) >= step:
                if held is not None:
                    send(held, False)
                held, pending = frame(pending[:step]), pending[step:]

        mp3 = _Mp3Stream() if opts.response_format == "mp3" else None
        whole = b""
        async with self._tts._client.post("/audio/speech", json=body, conn_options=self._conn_options) as resp:
            async for data in resp.content.iter_any():
                if opts.response_format == "pcm":
                    take(data)
                elif mp3 is not None:
                    take(mp3.push(data))
                else:
                    whole += data
        if mp3 is not None:
            take(mp3.push(None))
        elif opts.response_format != "pcm":
            try:
                take(await asyncio.to_thread(_decode_whole, whole))
            except ValueError as exc:
                from roomd.agents.errors import APIError

                raise APIError(f"{self._tts.provider}: undecodable {opts.response_format} speech: {exc}",
                               retryable=False) from None
        tail = pending[: len(pending) // 2 * 2]
        if tail:
            if held is not None:
                send(held, False)
            held = frame(tail)
        if held is not None:
            send(held, True)
