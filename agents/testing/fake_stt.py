"""An STT that "recognises" given transcripts, in batch or as a stream driven by energy."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from livekit import rtc

from ..errors import APIConnectionError
from ..stt.stt import STT, RecognizeStream, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.audio import AudioBuffer, frame_duration, frame_rms
from ..utils.ids import shortuuid
from ..utils.streams import FLUSH


class FakeSTT(STT):
    """Returns the next of ``transcripts`` for each utterance (the last one repeats).

    Batch: every ``recognize`` is one utterance. Stream: an utterance is a run of frames
    louder than ``threshold`` (RMS) ended by ``min_silence_duration`` of quiet or a
    ``flush``; it yields START_OF_SPEECH, INTERIM_TRANSCRIPT with a growing prefix of
    the words every ``interim_interval`` seconds of speech (when ``interim_results``),
    then FINAL_TRANSCRIPT and END_OF_SPEECH. ``latency`` delays each final result;
    ``failures`` makes the next N calls/streams raise a retryable ``APIConnectionError``.
    """

    def __init__(
        self,
        transcripts: str | Iterable[str] = "hello",
        *,
        streaming: bool = True,
        interim_results: bool = True,
        language: str = "en",
        latency: float = 0.0,
        threshold: float = 0.01,
        min_silence_duration: float = 0.3,
        interim_interval: float = 0.2,
        failures: int = 0,
    ) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=streaming, interim_results=interim_results and streaming))
        self._transcripts: deque[str] = deque([transcripts] if isinstance(transcripts, str) else transcripts)
        if not self._transcripts:
            raise ValueError("FakeSTT needs at least one transcript")
        self.language = language
        self.latency = latency
        self.threshold = threshold
        self.min_silence_duration = min_silence_duration
        self.interim_interval = interim_interval
        self.failures = failures
        self.recognized: list[str] = []

    @property
    def model(self) -> str:
        return "fake"

    @property
    def provider(self) -> str:
        return "testing"

    def _peek(self) -> str:
        return self._transcripts[0]

    def _take(self) -> str:
        text = self._transcripts.popleft() if len(self._transcripts) > 1 else self._transcripts[0]
        self.recognized.append(text)
        return text

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise APIConnectionError("FakeSTT: scripted failure")

    def _final(self, text: str, request_id: str, start: float, end: float) -> SpeechEvent:
        return SpeechEvent(
            type=SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[SpeechData(language=self.language, text=text, confidence=1.0, start_time=start, end_time=end)],
            request_id=request_id,
        )

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        self._maybe_fail()
        if self.latency:
            await asyncio.sleep(self.latency)
        frames = [buffer] if isinstance(buffer, rtc.AudioFrame) else buffer
        return self._final(self._take(), shortuuid("stt_"), 0.0, sum(frame_duration(f) for f in frames))

    def stream(
        self,
        *,
        language: str | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> RecognizeStream:
        if not self.capabilities.streaming:
            return super().stream(language=language, conn_options=conn_options)
        return _FakeRecognizeStream(stt=self, conn_options=conn_options, language=language)


class _FakeRecognizeStream(RecognizeStream):
    _stt: FakeSTT

    async def _run(self) -> None:
        stt = self._stt
        stt._maybe_fail()
        position = 0.0  # seconds of audio consumed
        speaking = False
        start = speech = silence = next_interim = 0.0

        async def finish() -> None:
            nonlocal speaking
            speaking = False
            if stt.latency:
                await asyncio.sleep(stt.latency)
            self._send(stt._final(stt._take(), self._request_id, start, position))
            self._send(SpeechEvent(type=SpeechEventType.END_OF_SPEECH, request_id=self._request_id))

        async for item in self._input_ch:
            if item is FLUSH:
                if speaking:
                    await finish()
                continue
            duration = frame_duration(item)
            position += duration
            loud = frame_rms(item) >= stt.threshold
            if loud and not speaking:
                speaking, start, speech, silence, next_interim = True, position - duration, 0.0, 0.0, stt.interim_interval
                self._send(SpeechEvent(type=SpeechEventType.START_OF_SPEECH, request_id=self._request_id))
            if not speaking:
                continue
            speech += duration
            silence = 0.0 if loud else silence + duration
            if stt.capabilities.interim_results and speech >= next_interim and silence == 0.0:
                next_interim += stt.interim_interval
                words = stt._peek().split()
                shown = max(1, min(len(words), int(speech / stt.interim_interval)))
                self._send(
                    SpeechEvent(
                        type=SpeechEventType.INTERIM_TRANSCRIPT,
                        alternatives=[SpeechData(language=stt.language, text=" ".join(words[:shown]), start_time=start, end_time=position)],
                        request_id=self._request_id,
                    )
                )
            if silence >= stt.min_silence_duration:
                await finish()
