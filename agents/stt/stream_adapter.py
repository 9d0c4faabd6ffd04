"""A streaming STT made of a batch STT and a VAD: one ``recognize`` per VAD segment."""

from __future__ import annotations

from livekit import rtc

from ..types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from ..utils.aio import Chan
from ..utils.audio import AudioBuffer
from ..utils.streams import FLUSH
from ..utils.taskgroup import run_together
from ..vad.vad import VAD, VADEventType
from .metrics import STTMetrics
from .stt import STT, RecognizeStream, SpeechEvent, SpeechEventType, STTCapabilities


class StreamAdapter(STT):
    """Streaming over a batch STT: START_OF_SPEECH and END_OF_SPEECH come from the VAD
    as they happen, then FINAL_TRANSCRIPT once the segment is recognised. No interim
    transcripts (``capabilities.interim_results`` is False: there are none to give)."""

    def __init__(self, *, stt: STT, vad: VAD) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=True, interim_results=False))
        self._stt = stt
        self._vad = vad
        stt.on("metrics_collected", self._forward_metrics)

    def _forward_metrics(self, metrics: STTMetrics) -> None:
        self.emit("metrics_collected", metrics)

    @property
    def wrapped_stt(self) -> STT:
        return self._stt

    @property
    def label(self) -> str:
        return f"StreamAdapter({self._stt.label})"

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        return await self._stt.recognize(buffer, language=language, conn_options=conn_options)

    async def recognize(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechEvent:
        # The wrapped STT retries and emits metrics itself.
        return await self._stt.recognize(buffer, language=language, conn_options=conn_options)

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> RecognizeStream:
        return StreamAdapterWrapper(
            self, vad=self._vad, wrapped_stt=self._stt, language=language, conn_options=conn_options
        )

    async def aclose(self) -> None:
        self._stt.off("metrics_collected", self._forward_metrics)


class StreamAdapterWrapper(RecognizeStream):
    """The stream ``StreamAdapter.stream()`` returns: ``vad`` cuts the audio into
    utterances, ``wrapped_stt`` recognises each one."""

    def __init__(
        self,
        stt: STT,
        *,
        vad: VAD,
        wrapped_stt: STT,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> None:
        self.__vad = vad
        self.__wrapped = wrapped_stt
        super().__init__(stt=stt, conn_options=conn_options, language=language)

    def _on_done(self, *, cancelled: bool) -> None:
        pass  # each recognize() reports its own metrics

    async def _run(self) -> None:
        vad_stream = self.__vad.stream()
        segments: Chan[list[rtc.AudioFrame]] = Chan()

        async def feed() -> None:
            async for item in self._input_ch:
                if item is FLUSH:
                    vad_stream.flush()
                else:
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        async def detect() -> None:
            async for event in vad_stream:
                if event.type == VADEventType.START_OF_SPEECH:
                    self._send(SpeechEvent(type=SpeechEventType.START_OF_SPEECH, request_id=self._request_id))
                elif event.type == VADEventType.END_OF_SPEECH:
                    self._send(SpeechEvent(type=SpeechEventType.END_OF_SPEECH, request_id=self._request_id))
                    segments.send_nowait(event.frames)
            segments.close()

        async def recognize() -> None:
            # One at a time, so transcripts come out in speaking order.
            async for frames in segments:
                if not frames:
                    continue
                event = await self.__wrapped.recognize(
                    frames, language=self._language, conn_options=self._conn_options
                )
                if event.alternatives and event.alternatives[0].text.strip():
                    event.type = SpeechEventType.FINAL_TRANSCRIPT
                    self._send(event)

        try:
            await run_together(feed(), detect(), recognize())
        finally:
            await vad_stream.aclose()
