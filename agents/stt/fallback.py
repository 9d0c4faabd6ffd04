"""An STT that moves on to the next of several STTs when one fails."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from livekit import rtc

from ..errors import APIConnectionError
from ..types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from ..utils.audio import AudioBuffer
from ..utils.availability import Availability
from ..utils.streams import FLUSH
from ..utils.taskgroup import run_together
from ..vad.vad import VAD
from .metrics import STTMetrics
from .stream_adapter import StreamAdapter
from .stt import STT, RecognizeStream, SpeechEvent, SpeechEventType, STTCapabilities

logger = logging.getLogger("roomd.agents")


@dataclass(frozen=True, slots=True)
class AvailabilityChangedEvent:
    stt: STT
    available: bool


class FallbackAdapter(STT):
    """Tries the STTs in order. A failing one is marked unavailable (event
    ``stt_availability_changed``), skipped for ``recovery_delay`` seconds, then tried
    again. Streams switch mid-way: the audio since the last final transcript is replayed
    to the next STT. Batch-only STTs are streamed through ``StreamAdapter`` with ``vad``
    (without a VAD, streaming needs every STT to stream natively).
    """

    def __init__(
        self,
        stt: Sequence[STT],
        *,
        vad: VAD | None = None,
        attempt_timeout: float = 10.0,
        max_retry_per_stt: int = 1,
        retry_interval: float = 5.0,
        recovery_delay: float = 30.0,
    ) -> None:
        streaming = all(s.capabilities.streaming for s in stt) or vad is not None
        super().__init__(
            capabilities=STTCapabilities(
                streaming=streaming,
                interim_results=all(s.capabilities.interim_results for s in stt),
            )
        )
        self._availability: Availability[STT] = Availability(
            stt,
            recovery_delay=recovery_delay,
            on_change=lambda c, ok: self.emit("stt_availability_changed", AvailabilityChangedEvent(c, ok)),
        )
        self._streamers = {
            id(s): s if s.capabilities.streaming or vad is None else StreamAdapter(stt=s, vad=vad) for s in stt
        }
        self._attempt_options = APIConnectOptions(
            max_retry=max_retry_per_stt, retry_interval=retry_interval, timeout=attempt_timeout
        )
        for inner in stt:
            inner.on("metrics_collected", self._forward_metrics)

    def _forward_metrics(self, metrics: STTMetrics) -> None:
        self.emit("metrics_collected", metrics)

    @property
    def stts(self) -> list[STT]:
        return self._availability.components

    def is_available(self, stt: STT) -> bool:
        return self._availability.is_available(stt)

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        failures: list[str] = []
        for stt in self._availability.candidates():
            try:
                event = await stt.recognize(buffer, language=language, conn_options=self._attempt_options)
            except Exception as exc:
                logger.warning("STT %s failed, trying the next one: %s", stt.label, exc)
                failures.append(f"{stt.label}: {exc}")
                self._availability.mark_failed(stt)
                continue
            self._availability.mark_ok(stt)
            return event
        raise APIConnectionError(f"all STTs failed: {'; '.join(failures)}", retryable=False)

    async def recognize(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechEvent:
        # No outer retries or metrics: the inner STTs have their own.
        return await self._recognize_impl(buffer, language=language, conn_options=conn_options)

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> RecognizeStream:
        if not self.capabilities.streaming:
            return super().stream(language=language, conn_options=conn_options)
        return _FallbackStream(adapter=self, conn_options=conn_options, language=language)

    async def aclose(self) -> None:
        for inner in self.stts:
            inner.off("metrics_collected", self._forward_metrics)


class _FallbackStream(RecognizeStream):
    def __init__(self, *, adapter: FallbackAdapter, conn_options: APIConnectOptions, language: NotGivenOr[str]) -> None:
        self._adapter = adapter
        super().__init__(stt=adapter, conn_options=conn_options, language=language)

    def _on_done(self, *, cancelled: bool) -> None:
        pass  # the inner STTs report metrics

    async def _run(self) -> None:
        adapter = self._adapter
        replay: list[rtc.AudioFrame] = []  # audio since the last final transcript
        failures: list[str] = []
        for stt in adapter._availability.candidates():
            inner = adapter._streamers[id(stt)].stream(
                language=self._language, conn_options=adapter._attempt_options
            )
            for frame in replay:
                inner.push_frame(frame)

            async def feed(inner: RecognizeStream = inner) -> None:
                async for item in self._input_ch:
                    if item is FLUSH:
                        inner.flush()
                    else:
                        replay.append(item)
                        inner.push_frame(item)
                inner.end_input()

            async def read(inner: RecognizeStream = inner) -> None:
                async for event in inner:
                    if event.type == SpeechEventType.FINAL_TRANSCRIPT:
                        replay.clear()
                    self._send(event)

            try:
                await run_together(feed(), read())
            except Exception as exc:
                logger.warning("STT stream %s failed, trying the next one: %s", stt.label, exc)
                failures.append(f"{stt.label}: {exc}")
                adapter._availability.mark_failed(stt)
                continue
            finally:
                await inner.aclose()
            adapter._availability.mark_ok(stt)
            return
        raise APIConnectionError(f"all STT streams failed: {'; '.join(failures)}", retryable=False)
