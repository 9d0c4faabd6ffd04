"""A TTS that "speaks" a sine tone whose length follows the text."""

from __future__ import annotations

import asyncio

from livekit import rtc

from ..errors import APIConnectionError
from ..tts.tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.audio import sine
from ..utils.ids import shortuuid
from ..utils.streams import FLUSH


class ToneTTS(TTS):
    """``seconds_per_char`` of tone per character (at least one frame), in frames of
    ``frame_duration``, after ``latency`` seconds (the time to first byte). With
    ``streaming=True`` it also streams natively: each pushed text piece is voiced as it
    arrives. ``failures`` makes the next N requests raise a retryable
    ``APIConnectionError``. ``requests`` records every text synthesized.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        num_channels: int = 1,
        frequency: float = 440.0,
        latency: float = 0.0,
        seconds_per_char: float = 0.01,
        frame_duration: float = 0.02,
        streaming: bool = False,
        failures: int = 0,
    ) -> None:
        super().__init__(
            capabilities=TTSCapabilities(streaming=streaming),
            sample_rate=sample_rate,
            num_channels=num_channels,
        )
        self.frequency = frequency
        self.latency = latency
        self.seconds_per_char = seconds_per_char
        self.frame_duration = frame_duration
        self.failures = failures
        self.requests: list[str] = []

    @property
    def model(self) -> str:
        return "tone"

    @property
    def provider(self) -> str:
        return "testing"

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise APIConnectionError("ToneTTS: scripted failure")

    def _frames(self, text: str, phase: int) -> list[rtc.AudioFrame]:
        total = max(self.frame_duration, len(text) * self.seconds_per_char)
        count = max(1, round(total / self.frame_duration))
        samples = round(self.frame_duration * self.sample_rate)
        return [
            sine(
                self.frame_duration,
                frequency=self.frequency,
                sample_rate=self.sample_rate,
                num_channels=self.num_channels,
                phase_samples=phase + i * samples,
            )
            for i in range(count)
        ]

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ChunkedStream:
        return _ToneChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> SynthesizeStream:
        if not self.capabilities.streaming:
            return super().stream(conn_options=conn_options)
        return _ToneSynthesizeStream(tts=self, conn_options=conn_options)


class _ToneChunkedStream(ChunkedStream):
    _tts: ToneTTS

    async def _run(self) -> None:
        tts = self._tts
        tts._maybe_fail()
        tts.requests.append(self._input_text)
        if tts.latency:
            await asyncio.sleep(tts.latency)
        frames = tts._frames(self._input_text, 0)
        for i, frame in enumerate(frames):
            self._send(
                SynthesizedAudio(
                    frame=frame,
                    request_id=self._request_id,
                    is_final=i == len(frames) - 1,
                    delta_text=self._input_text if i == 0 else "",
                )
            )


class _ToneSynthesizeStream(SynthesizeStream):
    _tts: ToneTTS

    async def _run(self) -> None:
        tts = self._tts
        tts._maybe_fail()
        segment_id = shortuuid("seg_")
        held: SynthesizedAudio | None = None  # the last frame waits to learn if it is final
        started = False
        phase = 0
        async for item in self._input_ch:
            if item is FLUSH:
                if held is not None:
                    held.is_final = True
                    self._send(held)
                    held = None
                    self._segment_done(segment_id)
                segment_id, started, phase = shortuuid("seg_"), False, 0
                continue
            if not item:
                continue
            tts.requests.append(item)
            if not started and tts.latency:
                await asyncio.sleep(tts.latency)
            started = True
            for i, frame in enumerate(tts._frames(item, phase)):
                phase += frame.samples_per_channel
                if held is not None:
                    self._send(held)
                held = SynthesizedAudio(
                    frame=frame,
                    request_id=self._request_id,
                    segment_id=segment_id,
                    delta_text=item if i == 0 else "",
                )
