"""A streaming STT made of a batch STT and a VAD: one ``recognize`` per VAD segment.

Early recognition (``recognize_early_after``, off by default): the VAD declares the end of
speech only after its ``min_silence_duration`` of quiet (0.55 s for Silero), and the batch
STT starts after that. With ``recognize_early_after=t``, once the speech has been quiet
for ``t`` seconds the adapter recognises the speech so far at once; if the speech ends
without resuming, that recognition is the segment's transcript, ready when (or soon after)
the VAD speaks up. Speech resuming cancels it. Worth it for a local STT (a recognition
that is thrown away costs CPU only); a paid API would bill each one. An early recognition
done while the speech is still quiet is sent at once as a PREFLIGHT_TRANSCRIPT (what the
session's ``preemptive_generation`` starts a reply on); the FINAL_TRANSCRIPT, with the
same text, follows when the VAD ends the speech.
"""

from __future__ import annotations

import asyncio
from collections import deque

from livekit import rtc

from ..types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from ..utils.aio import Chan, TaskOwner
from ..utils.audio import AudioBuffer
from ..utils.streams import FLUSH
from ..utils.taskgroup import run_together
from ..vad.vad import VAD, VADEventType
from .metrics import STTMetrics
from .stt import STT, RecognizeStream, SpeechEvent, SpeechEventType, STTCapabilities


_MAX_KEPT_FRAMES = 3000  # frames kept for an early recognition (a minute of 20 ms frames)


class StreamAdapter(STT):
    """Streaming over a batch STT: START_OF_SPEECH and END_OF_SPEECH come from the VAD
    as they happen, then FINAL_TRANSCRIPT once the segment is recognised. No interim
    transcripts (``capabilities.interim_results`` is False: there are none to give)."""

    def __init__(self, *, stt: STT, vad: VAD, recognize_early_after: float | None = None) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=True, interim_results=False))
        if recognize_early_after is not None and recognize_early_after < 0:
            raise ValueError(f"recognize_early_after must be >= 0 or None, got {recognize_early_after}")
        self._stt = stt
        self._vad = vad
        self._early_after = recognize_early_after
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
            self, vad=self._vad, wrapped_stt=self._stt, language=language, conn_options=conn_options,
            recognize_early_after=self._early_after,
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
        recognize_early_after: float | None = None,
    ) -> None:
        self.__vad = vad
        self.__wrapped = wrapped_stt
        self.__early_after = recognize_early_after
        super().__init__(stt=stt, conn_options=conn_options, language=language)

    def _on_done(self, *, cancelled: bool) -> None:
        pass  # each recognize() reports its own metrics

    async def _run(self) -> None:
        vad_stream = self.__vad.stream()
        # A segment's audio, or the early recognition of it.
        segments: Chan[list[rtc.AudioFrame] | asyncio.Task[SpeechEvent]] = Chan()
        early_after = self.__early_after
        # Frames pushed to the VAD during the current speech, with the count of input
        # samples up to each frame's end (the VAD's events carry that count too).
        pushed: deque[tuple[int, rtc.AudioFrame]] = deque()
        total = 0
        speech: list[rtc.AudioFrame] = []  # the START_OF_SPEECH frames (they end at speech_at)
        speech_at = 0
        early: asyncio.Task[SpeechEvent] | None = None
        # Early recognitions, cancelled with the stream; each is either cancelled or awaited
        # by recognize() below, which raises its error: the owner need not report it again.
        early_tasks = TaskOwner("stt early recognition", on_error=lambda _name, _exc: None)

        def recognize_task(frames: list[rtc.AudioFrame]) -> asyncio.Task[SpeechEvent]:
            return early_tasks.create_task(
                self.__wrapped.recognize(frames, language=self._language, conn_options=self._conn_options),
                name="early recognition",
            )

        def preflight(task: asyncio.Task[SpeechEvent]) -> None:
            # still the early recognition of a speech not ended yet: say what it heard
            if early is not task or task.cancelled() or task.exception() is not None:
                return
            event = task.result()
            if event.alternatives and event.alternatives[0].text.strip():
                self._send(SpeechEvent(type=SpeechEventType.PREFLIGHT_TRANSCRIPT, request_id=self._request_id,
                                       alternatives=list(event.alternatives)))

        def drop_early() -> None:
            nonlocal early
            if early is not None:
                early.cancel()
                early = None

        async def feed() -> None:
            nonlocal total
            async for item in self._input_ch:
                if item is FLUSH:
                    vad_stream.flush()
                else:
                    if early_after is not None:
                        total += item.samples_per_channel
                        pushed.append((total, item))
                        if len(pushed) > _MAX_KEPT_FRAMES:  # a VAD that reports no inference
                            pushed.popleft()
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        def forget_before(index: int) -> None:
            while pushed and pushed[0][0] <= index:
                pushed.popleft()

        async def detect() -> None:
            nonlocal speech, speech_at, early
            async for event in vad_stream:
                if event.type == VADEventType.START_OF_SPEECH:
                    speech, speech_at = list(event.frames), event.samples_index
                    forget_before(speech_at)
                    self._send(SpeechEvent(type=SpeechEventType.START_OF_SPEECH, request_id=self._request_id))
                elif event.type == VADEventType.END_OF_SPEECH:
                    self._send(SpeechEvent(type=SpeechEventType.END_OF_SPEECH, request_id=self._request_id))
                    segments.send_nowait(early if early is not None else event.frames)
                    early, speech = None, []
                    forget_before(event.samples_index)
                elif early_after is not None and event.type == VADEventType.INFERENCE_DONE:
                    if not event.speaking:
                        forget_before(event.samples_index)
                    elif event.raw_accumulated_silence <= 0.0:
                        drop_early()  # the speech goes on: what was recognised is stale
                    elif early is None and event.raw_accumulated_silence >= early_after and speech:
                        gap = bool(pushed) and pushed[0][0] - pushed[0][1].samples_per_channel > speech_at
                        if not gap:  # (frames dropped for the bound: the segment's own audio will do)
                            later = [f for end, f in pushed if speech_at < end <= event.samples_index]
                            early = recognize_task(speech + later)
                            early.add_done_callback(preflight)
            segments.close()

        async def recognize() -> None:
            # One at a time, so transcripts come out in speaking order.
            async for item in segments:
                if isinstance(item, asyncio.Task):
                    event = await item
                elif item:
                    event = await self.__wrapped.recognize(
                        item, language=self._language, conn_options=self._conn_options
                    )
                else:
                    continue
                if event.alternatives and event.alternatives[0].text.strip():
                    event.type = SpeechEventType.FINAL_TRANSCRIPT
                    self._send(event)

        try:
            await run_together(feed(), detect(), recognize())
        finally:
            await early_tasks.aclose()
            await vad_stream.aclose()
