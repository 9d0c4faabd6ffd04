"""A TTS that moves on to the next of several TTSs when one fails."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from livekit import rtc

from ..errors import APIConnectionError
from ..tokenize.sentences import SentenceTokenizer
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.availability import Availability
from ..utils.streams import FLUSH
from ..utils.taskgroup import run_together
from .metrics import TTSMetrics
from .stream_adapter import StreamAdapter
from .tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities

logger = logging.getLogger("roomd.agents")


@dataclass(frozen=True, slots=True)
class AvailabilityChangedEvent:
    tts: TTS
    available: bool


class _Resampler:
    """Frames at the adapter's rate, whatever the inner TTS produces."""

    def __init__(self, rate_in: int, rate_out: int, num_channels: int) -> None:
        self._resampler = (
            None if rate_in == rate_out else rtc.AudioResampler(rate_in, rate_out, num_channels=num_channels)
        )

    def push(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        return [frame] if self._resampler is None else self._resampler.push(frame)

    def flush(self) -> list[rtc.AudioFrame]:
        return [] if self._resampler is None else self._resampler.flush()


class FallbackAdapter(TTS):
    """Tries the TTSs in order; a failing one is marked unavailable (event
    ``tts_availability_changed``), skipped for ``recovery_delay`` seconds, then tried
    again. Audio comes out at ``sample_rate``, by default the highest sample rate among
    them (others are resampled). A request only switches TTS while none of its audio has been sent:
    half a sentence in one voice and the rest in another would be worse than an error.
    Non-streaming TTSs stream through ``StreamAdapter`` with ``sentence_tokenizer``.
    """

    def __init__(
        self,
        tts: Sequence[TTS],
        *,
        sentence_tokenizer: SentenceTokenizer | None = None,
        attempt_timeout: float = 10.0,
        max_retry_per_tts: int = 2,
        sample_rate: int | None = None,
        retry_interval: float = 0.5,
        recovery_delay: float = 30.0,
    ) -> None:
        if not tts:
            raise ValueError("a FallbackAdapter needs at least one TTS")
        if sample_rate is not None and sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        channels = {t.num_channels for t in tts}
        if len(channels) > 1:
            raise ValueError(f"all TTSs must have the same number of channels, got {sorted(channels)}")
        super().__init__(
            capabilities=TTSCapabilities(streaming=True),
            sample_rate=sample_rate if sample_rate is not None else max(t.sample_rate for t in tts),
            num_channels=channels.pop(),
        )
        self._availability: Availability[TTS] = Availability(
            tts,
            recovery_delay=recovery_delay,
            on_change=lambda c, ok: self.emit("tts_availability_changed", AvailabilityChangedEvent(c, ok)),
        )
        self._streamers = {
            id(t): t if t.capabilities.streaming else StreamAdapter(tts=t, sentence_tokenizer=sentence_tokenizer)
            for t in tts
        }
        self._attempt_options = APIConnectOptions(
            max_retry=max_retry_per_tts, retry_interval=retry_interval, timeout=attempt_timeout
        )
        for inner in tts:
            inner.on("metrics_collected", self._forward_metrics)

    def _forward_metrics(self, metrics: TTSMetrics) -> None:
        self.emit("metrics_collected", metrics)

    @property
    def ttss(self) -> list[TTS]:
        return self._availability.components

    def is_available(self, tts: TTS) -> bool:
        return self._availability.is_available(tts)

    def _resampler(self, tts: TTS) -> _Resampler:
        return _Resampler(tts.sample_rate, self.sample_rate, self.num_channels)

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ChunkedStream:
        return _FallbackChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> SynthesizeStream:
        return _FallbackSynthesizeStream(tts=self, conn_options=conn_options)

    async def aclose(self) -> None:
        for inner in self.ttss:
            inner.off("metrics_collected", self._forward_metrics)


class _FallbackChunkedStream(ChunkedStream):
    _tts: FallbackAdapter
    _first_output_timeout = False  # each attempt has its own

    def _on_done(self, *, cancelled: bool) -> None:
        pass  # the inner TTSs report metrics

    async def _run(self) -> None:
        adapter = self._tts
        failures: list[str] = []
        for tts in adapter._availability.candidates():
            resampler = adapter._resampler(tts)
            sent = False
            held: SynthesizedAudio | None = None  # the last frame waits to be marked final

            def out(frame: rtc.AudioFrame) -> None:
                nonlocal held, sent
                if held is not None:
                    self._send(held)
                held = SynthesizedAudio(
                    frame=frame, request_id=self._request_id, delta_text="" if sent else self._input_text
                )
                sent = True

            try:
                async with tts.synthesize(self._input_text, conn_options=adapter._attempt_options) as chunked:
                    async for audio in chunked:
                        for frame in resampler.push(audio.frame):
                            out(frame)
                for frame in resampler.flush():
                    out(frame)
                if held is not None:
                    held.is_final = True
                    self._send(held)
            except Exception as exc:
                adapter._availability.mark_failed(tts)
                if sent:
                    raise
                logger.warning("TTS %s failed, trying the next one: %s", tts.label, exc)
                failures.append(f"{tts.label}: {exc}")
                continue
            adapter._availability.mark_ok(tts)
            return
        raise APIConnectionError(f"all TTSs failed: {'; '.join(failures)}", retryable=False)


class _FallbackSynthesizeStream(SynthesizeStream):
    _tts: FallbackAdapter

    def _segment_done(self, segment_id: str, *, cancelled: bool = False) -> None:
        pass  # the inner TTSs report metrics

    async def _run(self) -> None:
        adapter = self._tts
        # Text of segments whose audio has not started yet; replayed on a switch.
        pending: list[list[str]] = [[]]
        audio_started = False  # for the oldest pending segment
        failures: list[str] = []
        for tts in adapter._availability.candidates():
            inner = adapter._streamers[id(tts)].stream(conn_options=adapter._attempt_options)
            resampler = adapter._resampler(tts)
            for i, segment in enumerate(pending):
                for text in segment:
                    inner.push_text(text)
                if i < len(pending) - 1:
                    inner.flush()

            async def feed(inner: SynthesizeStream = inner) -> None:
                async for item in self._input_ch:
                    if item is FLUSH:
                        pending.append([])
                        inner.flush()
                    else:
                        pending[-1].append(item)
                        inner.push_text(item)
                inner.end_input()

            async def read(inner: SynthesizeStream = inner, resampler: _Resampler = resampler) -> None:
                nonlocal audio_started
                async for audio in inner:
                    frames = resampler.push(audio.frame)
                    if audio.is_final:
                        frames += resampler.flush()
                    for j, frame in enumerate(frames):
                        audio_started = True
                        last = audio.is_final and j == len(frames) - 1
                        self._send(SynthesizedAudio(frame=frame, request_id=self._request_id,
                                                    is_final=last, segment_id=audio.segment_id,
                                                    delta_text=audio.delta_text if j == 0 else ""))
                    if audio.is_final:
                        if len(pending) > 1:
                            pending.pop(0)
                        else:
                            pending[0] = []
                        audio_started = False

            try:
                await run_together(feed(), read())
            except Exception as exc:
                adapter._availability.mark_failed(tts)
                if audio_started:
                    raise
                logger.warning("TTS stream %s failed, trying the next one: %s", tts.label, exc)
                failures.append(f"{tts.label}: {exc}")
                continue
            finally:
                await inner.aclose()
            adapter._availability.mark_ok(tts)
            return
        raise APIConnectionError(f"all TTS streams failed: {'; '.join(failures)}", retryable=False)
