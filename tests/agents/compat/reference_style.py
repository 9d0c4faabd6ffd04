"""A TTS, an STT, a VAD, an LLM and an audio output written the way livekit-agents 1.2
plugins are written (the shape of its openai and silero plugins: options dataclasses,
``self._opts``, streams reading ``self._input_ch`` and writing ``self._event_ch`` or an
``AudioEmitter``). Only the import block below is roomd's; with ``livekit.agents`` in
place of ``roomd.agents`` this file is a livekit-agents plugin.

They also keep private state under the names plugins naturally pick (``self._attempt``,
``self._opts``, ``self._streams``, ``self._model``, ``self._client``...), which roomd's base
classes must leave alone.
"""

from __future__ import annotations

import asyncio
import io as _io
import weakref
from dataclasses import dataclass, replace

import numpy as np
from livekit import rtc

# -- the only lines that differ from a livekit-agents plugin ------------------------------
from roomd.agents import APIConnectionError, llm, stt, tts, utils, vad
from roomd.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from roomd.agents.utils import is_given
from roomd.agents.voice import io

# -----------------------------------------------------------------------------------------

TTS_RATE = 24000


def _rms(frame: rtc.AudioFrame) -> float:
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
    return float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0


# -- TTS --------------------------------------------------------------------------------


@dataclass
class _ChimeOptions:
    frequency: float
    seconds_per_char: float
    fail_first: int  # attempts that fail (connection error) before the service answers
    mime_type: str


class ChimeTTS(tts.TTS):
    """Says any text as a tone of ``seconds_per_char`` per character, as 24 kHz PCM
    (or a WAV file with ``mime_type="audio/wav"``)."""

    def __init__(
        self,
        *,
        frequency: float = 330.0,
        seconds_per_char: float = 0.01,
        fail_first: int = 0,
        streaming: bool = False,
        mime_type: str = "audio/pcm",
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=streaming),
            sample_rate=TTS_RATE,
            num_channels=1,
        )
        self._opts = _ChimeOptions(frequency, seconds_per_char, fail_first, mime_type)
        self._attempt = 0  # attempts across all requests (the service's view)
        self._streams: weakref.WeakSet[ChimeSynthesizeStream] = weakref.WeakSet()
        self.requests: list[str] = []

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChimeChunkedStream:
        return ChimeChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ChimeSynthesizeStream:
        stream = ChimeSynthesizeStream(tts=self, conn_options=conn_options)
        self._streams.add(stream)
        return stream

    def _pcm(self, text: str) -> bytes:
        n = int(len(text) * self._opts.seconds_per_char * TTS_RATE)
        t = np.arange(n) / TTS_RATE
        return (0.3 * 32767 * np.sin(2 * np.pi * self._opts.frequency * t)).astype(np.int16).tobytes()

    def _encode(self, pcm: bytes) -> bytes:
        if self._opts.mime_type != "audio/wav":
            return pcm
        import wave

        buf = _io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(TTS_RATE)
            w.writeframes(pcm)
        return buf.getvalue()


class ChimeChunkedStream(tts.ChunkedStream):
    def __init__(self, *, tts: ChimeTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tts: ChimeTTS = tts
        self._opts = replace(tts._opts)
        self._attempt = 0  # this request's attempts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        self._attempt += 1
        self._tts._attempt += 1
        if self._tts._attempt <= self._opts.fail_first:
            raise APIConnectionError("chime service unreachable")
        self._tts.requests.append(self._input_text)
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=TTS_RATE,
            num_channels=1,
            mime_type=self._opts.mime_type,
        )
        body = self._tts._encode(self._tts._pcm(self._input_text))
        for start in range(0, len(body), 4096):  # as an HTTP body arrives: in chunks
            output_emitter.push(body[start : start + 4096])
            await asyncio.sleep(0)
        output_emitter.flush()


class ChimeSynthesizeStream(tts.SynthesizeStream):
    def __init__(self, *, tts: ChimeTTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._tts: ChimeTTS = tts
        self._opts = replace(tts._opts)

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=TTS_RATE,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        in_segment = False
        async for data in self._input_ch:
            if isinstance(data, self._FlushSentinel):
                if in_segment:
                    output_emitter.end_segment()
                    in_segment = False
                continue
            if not data:
                continue
            if not in_segment:
                output_emitter.start_segment(segment_id=utils.shortuuid())
                in_segment = True
            self._tts.requests.append(data)
            output_emitter.push(self._tts._pcm(data))
        if in_segment:
            output_emitter.end_segment()


# -- STT --------------------------------------------------------------------------------


@dataclass
class _PhraseOptions:
    phrase: str
    language: str
    threshold: float
    min_silence: float


class PhraseSTT(stt.STT):
    """Hears loud audio as ``phrase`` (an interim with its first word, then the final),
    streaming at 16 kHz."""

    def __init__(self, *, phrase: str, language: str = "en", threshold: float = 0.01, min_silence: float = 0.3) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self._opts = _PhraseOptions(phrase, language, threshold, min_silence)
        self._model = "phrase-1"

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = utils.combine_frames(buffer)
        text = self._opts.phrase if _rms(frame) > self._opts.threshold else ""
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid(),
            alternatives=[stt.SpeechData(language=language if is_given(language) else self._opts.language, text=text)],
        )

    def stream(
        self, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> PhraseSpeechStream:
        opts = replace(self._opts)
        if is_given(language):
            opts.language = language
        return PhraseSpeechStream(stt=self, opts=opts, conn_options=conn_options)


class PhraseSpeechStream(stt.SpeechStream):
    def __init__(self, *, stt: PhraseSTT, opts: _PhraseOptions, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=stt, conn_options=conn_options, sample_rate=16000)
        self._opts = opts
        self._speaking = False
        self._request_id = ""
        self.sample_rates: set[int] = set()

    def _final(self, speech: float) -> None:
        data = stt.SpeechData(language=self._opts.language, text=self._opts.phrase, confidence=1.0)
        self._event_ch.send_nowait(
            stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, request_id=self._request_id, alternatives=[data])
        )
        self._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH, request_id=self._request_id))
        self._event_ch.send_nowait(
            stt.SpeechEvent(
                type=stt.SpeechEventType.RECOGNITION_USAGE,
                request_id=self._request_id,
                recognition_usage=stt.RecognitionUsage(audio_duration=speech),
            )
        )

    async def _run(self) -> None:
        silence = speech = 0.0
        async for data in self._input_ch:
            if isinstance(data, self._FlushSentinel):
                if self._speaking:
                    self._speaking = False
                    self._final(speech)
                continue
            self.sample_rates.add(data.sample_rate)
            loud = _rms(data) > self._opts.threshold
            if self._speaking:
                speech += data.duration
            if loud and not self._speaking:
                self._speaking, silence, speech = True, 0.0, data.duration
                self._request_id = utils.shortuuid()
                self._event_ch.send_nowait(
                    stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH, request_id=self._request_id)
                )
                first = stt.SpeechData(language=self._opts.language, text=self._opts.phrase.split()[0])
                self._event_ch.send_nowait(
                    stt.SpeechEvent(
                        type=stt.SpeechEventType.INTERIM_TRANSCRIPT, request_id=self._request_id, alternatives=[first]
                    )
                )
            elif self._speaking and not loud:
                silence += data.duration
                if silence >= self._opts.min_silence:
                    self._speaking = False
                    self._final(speech)
            elif loud:
                silence = 0.0


# -- VAD --------------------------------------------------------------------------------


@dataclass
class _LevelOptions:
    min_speech_duration: float
    min_silence_duration: float
    activation_threshold: float
    sample_rate: int


class LevelVAD(vad.VAD):
    """Speech probability from the smoothed level of 32 ms windows at 16 kHz."""

    @classmethod
    def load(
        cls,
        *,
        min_speech_duration: float = 0.05,
        min_silence_duration: float = 0.3,
        activation_threshold: float = 0.5,
        sample_rate: int = 16000,
    ) -> LevelVAD:
        return cls(opts=_LevelOptions(min_speech_duration, min_silence_duration, activation_threshold, sample_rate))

    def __init__(self, *, opts: _LevelOptions) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=0.032))
        self._opts = opts
        self._streams: weakref.WeakSet[LevelVADStream] = weakref.WeakSet()

    def stream(self) -> LevelVADStream:
        stream = LevelVADStream(self, replace(self._opts))
        self._streams.add(stream)
        return stream


class LevelVADStream(vad.VADStream):
    def __init__(self, vad: LevelVAD, opts: _LevelOptions) -> None:
        super().__init__(vad)
        self._opts = opts
        self._exp_filter = utils.ExpFilter(alpha=0.35)
        self._input_sample_rate = 0
        self._model = "level"

    async def _main_task(self) -> None:
        window = int(0.032 * self._opts.sample_rate)
        resampler: rtc.AudioResampler | None = None
        pending = np.zeros(0, dtype=np.int16)
        speaking = False
        speech = silence = 0.0
        samples_index = 0
        pushed = 0.0
        speech_frames: list[rtc.AudioFrame] = []

        def event(kind: vad.VADEventType, probability: float, frames: list[rtc.AudioFrame]) -> vad.VADEvent:
            return vad.VADEvent(
                type=kind,
                samples_index=samples_index,
                timestamp=pushed,
                speech_duration=speech,
                silence_duration=silence,
                frames=frames,
                probability=probability,
                inference_duration=0.0001,
                speaking=speaking,
            )

        async for frame in self._input_ch:
            if isinstance(frame, self._FlushSentinel):
                continue
            if not self._input_sample_rate:
                self._input_sample_rate = frame.sample_rate
                if frame.sample_rate != self._opts.sample_rate:
                    resampler = rtc.AudioResampler(frame.sample_rate, self._opts.sample_rate, num_channels=1)
            samples_index += frame.samples_per_channel
            pushed += frame.duration
            if speaking:
                speech_frames.append(frame)
            converted = resampler.push(frame) if resampler is not None else [frame]
            for out in converted:
                pending = np.concatenate([pending, np.frombuffer(out.data, dtype=np.int16)])
            while pending.size >= window:
                chunk, pending = pending[:window], pending[window:]
                level = float(np.sqrt(np.mean((chunk.astype(np.float32) / 32768.0) ** 2)))
                probability = self._exp_filter.apply(1.0, min(1.0, level * 20))
                step = window / self._opts.sample_rate
                if probability >= self._opts.activation_threshold:
                    speech += step
                    silence = 0.0
                else:
                    silence += step
                self._event_ch.send_nowait(event(vad.VADEventType.INFERENCE_DONE, probability, [frame]))
                if not speaking and speech >= self._opts.min_speech_duration:
                    speaking = True
                    speech_frames = [frame]
                    self._event_ch.send_nowait(event(vad.VADEventType.START_OF_SPEECH, probability, [frame]))
                elif speaking and silence >= self._opts.min_silence_duration:
                    speaking = False
                    self._event_ch.send_nowait(event(vad.VADEventType.END_OF_SPEECH, probability, speech_frames))
                    speech_frames, speech = [], 0.0


# -- LLM --------------------------------------------------------------------------------


class ParrotLLM(llm.LLM):
    """Answers "You said: <the user's last words>." word by word, then its usage."""

    def __init__(self, *, model: str = "parrot-1") -> None:
        super().__init__()
        self._model = model
        self._client = object()  # a plugin's HTTP client lives here
        self._attempt = 0
        self.requests: list[llm.ChatContext] = []

    @property
    def model(self) -> str:
        return self._model

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.FunctionTool | llm.RawFunctionTool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, object]] = NOT_GIVEN,
    ) -> ParrotStream:
        self.requests.append(chat_ctx)
        return ParrotStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class ParrotStream(llm.LLMStream):
    def __init__(self, llm: ParrotLLM, *, chat_ctx: llm.ChatContext, tools: list, conn_options: APIConnectOptions) -> None:
        super().__init__(llm, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._llm: ParrotLLM = llm
        self._attempt = 0

    async def _run(self) -> None:
        self._attempt += 1
        self._llm._attempt += 1
        said = [i.text_content for i in self._chat_ctx.items if i.type == "message" and i.role == "user"]
        words = f"You said: {said[-1] if said else 'nothing'}.".split(" ")
        request_id = utils.shortuuid()
        for i, word in enumerate(words):
            self._event_ch.send_nowait(
                llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=word if i == 0 else " " + word))
            )
            await asyncio.sleep(0)
        self._event_ch.send_nowait(
            llm.ChatChunk(
                id=request_id,
                usage=llm.CompletionUsage(
                    completion_tokens=len(words), prompt_tokens=7, prompt_cached_tokens=2, total_tokens=len(words) + 7
                ),
            )
        )


# -- audio output -----------------------------------------------------------------------


class ClockedAudioOutput(io.AudioOutput):
    """Plays frames in real time (``speed`` times faster) into ``heard``; a cleared
    segment keeps only what was played."""

    def __init__(self, *, speed: float = 4.0, sample_rate: int | None = None) -> None:
        super().__init__(label="clocked", capabilities=io.AudioOutputCapabilities(pause=False), sample_rate=sample_rate)
        self._speed = speed
        self._queue: utils.aio.Chan[rtc.AudioFrame | None] = utils.aio.Chan()
        self._task: asyncio.Task[None] | None = None
        self._segment_open = False  # captured and not finished yet
        self._position = 0.0
        self.heard: list[rtc.AudioFrame] = []
        self.finished: list[io.PlaybackFinishedEvent] = []
        self.on("playback_finished", self.finished.append)

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self._segment_open = True
        if self._task is None:
            self._task = asyncio.create_task(self._play())
        self._queue.send_nowait(frame)

    def flush(self) -> None:
        super().flush()
        if self._segment_open:
            self._queue.send_nowait(None)

    def clear_buffer(self) -> None:
        while True:
            try:
                self._queue.recv_nowait()
            except utils.aio.ChanEmpty:
                break
        if self._segment_open:
            self._segment_open = False
            self.on_playback_finished(playback_position=self._position, interrupted=True)
            self._position = 0.0

    async def _play(self) -> None:
        async for frame in self._queue:
            if frame is None:
                if self._segment_open:
                    self._segment_open = False
                    self.on_playback_finished(playback_position=self._position, interrupted=False)
                    self._position = 0.0
                continue
            await asyncio.sleep(frame.duration / self._speed)
            self.heard.append(frame)
            self._position += frame.duration

    async def aclose(self) -> None:
        self._queue.close()
        if self._task is not None:
            await utils.aio.cancel_and_wait(self._task)

    @property
    def heard_duration(self) -> float:
        return sum(f.duration for f in self.heard)


# -- audio input and text output --------------------------------------------------------


class QueueAudioInput(io.AudioInput):
    """Frames put by the caller, handed out by ``__anext__`` (the reference's hook)."""

    def __init__(self) -> None:
        super().__init__(label="queue")
        self._frames: utils.aio.Chan[rtc.AudioFrame] = utils.aio.Chan()

    def put(self, frame: rtc.AudioFrame) -> None:
        self._frames.send_nowait(frame)

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._frames.__anext__()


class ListTextOutput(io.TextOutput):
    """Segments of the agent's transcript; ``flush`` is a plain method, as in the reference."""

    def __init__(self) -> None:
        super().__init__(label="list", next_in_chain=None)
        self._current: list[str] = []
        self.segments: list[str] = []

    async def capture_text(self, text: str) -> None:
        self._current.append(text)

    def flush(self) -> None:
        if self._current:
            self.segments.append("".join(self._current))
            self._current = []
