"""User audio to user turns: VAD and STT streams, and the end-of-turn decision.

End of turn ("endpointing"): after the VAD says the speech ended (mode "vad") or the
STT does (mode "stt"), wait ``min_endpointing_delay`` counted from the last speech (the
VAD's event comes its ``silence_duration`` later), or ``max_endpointing_delay``
when a turn detector finds the end of turn unlikely; the turn is committed once that
delay has passed and a final transcript exists. Speech resuming in between cancels the
wait. Mode "manual" commits only on ``commit_user_turn()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..llm.chat_context import ChatContext
from ..stt.stream_adapter import StreamAdapter as STTStreamAdapter
from ..stt.stt import STT, RecognizeStream, SpeechData, SpeechEvent, SpeechEventType
from ..utils.aio import Chan
from ..types import APIConnectOptions
from ..utils.aio import TaskOwner
from ..vad.vad import VAD, VADEvent, VADEventType, VADStream
from .io import AudioInput

from livekit import rtc

logger = logging.getLogger("roomd.agents")


@dataclass(frozen=True, slots=True)
class EndOfTurnInfo:
    transcript: str
    end_of_speech_at: float  # perf_counter when the user stopped speaking
    final_transcript_at: float  # perf_counter of the last final transcript
    committed_at: float
    language: str | None = None


class RecognitionHooks(Protocol):
    def on_start_of_speech(self, ev: VADEvent | None) -> None: ...
    def on_vad_inference_done(self, ev: VADEvent) -> None: ...
    def on_end_of_speech(self, ev: VADEvent | None) -> None: ...
    def on_interim_transcript(self, ev: SpeechEvent) -> None: ...
    def on_final_transcript(self, ev: SpeechEvent) -> None: ...
    def on_preemptive_generation(self, transcript: str) -> None: ...
    async def on_end_of_turn(self, info: EndOfTurnInfo) -> None: ...
    def retrieve_chat_ctx(self) -> ChatContext: ...
    def discard_audio(self) -> bool: ...
    def input_audio_enabled(self) -> bool: ...
    def on_stt_error(self, exc: BaseException) -> None: ...


class _NodeInput:
    """The audio an overridden ``stt_node`` reads, fed like an STT stream."""

    def __init__(self) -> None:
        self.frames: Chan[rtc.AudioFrame] = Chan()

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        if not self.frames.closed:
            self.frames.send_nowait(frame)

    def flush(self) -> None:
        pass

    def end_input(self) -> None:
        self.frames.close()

    async def aclose(self) -> None:
        self.frames.close()


class AudioRecognition:
    def __init__(
        self,
        hooks: RecognitionHooks,
        *,
        stt: STT | None,
        vad: VAD | None,
        turn_detection: str,
        turn_detector: Any | None,
        min_endpointing_delay: Callable[[], float],
        max_endpointing_delay: Callable[[], float],
        stt_conn_options: APIConnectOptions,
        stt_node: Callable[[AsyncIterable[rtc.AudioFrame]], Any] | None = None,
    ) -> None:
        if stt is not None and not stt.capabilities.streaming:
            if vad is None:
                raise ValueError(f"{stt.label} does not stream; the session needs a VAD to segment speech for it")
            stt = STTStreamAdapter(stt=stt, vad=vad)
        self._hooks = hooks
        self._stt = stt
        self._vad = vad
        self._mode = turn_detection
        self._turn_detector = turn_detector
        self._min_delay = min_endpointing_delay
        self._max_delay = max_endpointing_delay
        self._stt_conn_options = stt_conn_options
        self._stt_node = stt_node
        self._tasks = TaskOwner()
        self._vad_stream: VADStream | None = None
        self._stt_stream: RecognizeStream | None = None
        self._transcript: list[str] = []
        self._language: str | None = None
        self._speaking = False
        self._end_of_speech_at = 0.0
        self._final_at = 0.0
        self._eou_task: asyncio.Task[None] | None = None
        self._commit_lock = asyncio.Lock()

    @property
    def stt(self) -> STT | None:
        return self._stt

    @property
    def transcript(self) -> str:
        return " ".join(self._transcript)

    def start(self, audio: AudioInput) -> None:
        if self._vad is not None:
            self._vad_stream = self._vad.stream()
            self._tasks.create_task(self._read_vad(self._vad_stream), name="recognition.vad")
        if self._stt_node is not None:
            sink = _NodeInput()
            self._stt_stream = sink  # type: ignore[assignment]
            self._tasks.create_task(self._read_node(self._stt_node(sink.frames)), name="recognition.stt_node")
        elif self._stt is not None:
            self._stt_stream = self._stt.stream(conn_options=self._stt_conn_options)
            self._tasks.create_task(self._read_stt(self._stt_stream), name="recognition.stt")
        self._tasks.create_task(self._forward_audio(audio), name="recognition.audio")

    async def _forward_audio(self, audio: AudioInput) -> None:
        async for frame in audio:
            if not self._hooks.input_audio_enabled():
                continue
            if self._vad_stream is not None:
                self._vad_stream.push_frame(frame)
            if self._stt_stream is not None and not self._hooks.discard_audio():
                self._stt_stream.push_frame(frame)
        for stream in (self._vad_stream, self._stt_stream):
            if stream is not None:
                stream.end_input()

    # -- VAD -----------------------------------------------------------------------------

    async def _read_vad(self, stream: VADStream) -> None:
        async for ev in stream:
            if ev.type == VADEventType.START_OF_SPEECH:
                self._speaking = True
                self._cancel_eou()
                self._hooks.on_start_of_speech(ev)
            elif ev.type == VADEventType.INFERENCE_DONE:
                self._hooks.on_vad_inference_done(ev)
            elif ev.type == VADEventType.END_OF_SPEECH:
                self._speaking = False
                # The VAD speaks up after ``silence_duration`` of quiet: the user stopped
                # then, and the endpointing delay counts from there (as the reference does),
                # not from the VAD's verdict.
                self._end_of_speech_at = time.perf_counter() - max(0.0, ev.silence_duration)
                self._hooks.on_end_of_speech(ev)
                if self._mode == "vad":
                    self._schedule_eou()

    # -- STT -----------------------------------------------------------------------------

    async def _read_stt(self, stream: RecognizeStream) -> None:
        try:
            async for ev in stream:
                await self._on_stt_event(ev)
        except Exception as exc:
            logger.error("speech recognition failed: %s", exc)
            self._hooks.on_stt_error(exc)

    async def _read_node(self, result: Any) -> None:
        """An overridden ``stt_node``: speech events, or plain strings as final transcripts."""
        from .nodes import iterate

        async for item in iterate(result):
            if isinstance(item, str):
                if self._vad is None:
                    # no VAD to say when speech ended: the text itself ends the utterance
                    await self._on_stt_event(SpeechEvent(type=SpeechEventType.FINAL_TRANSCRIPT,
                                                         alternatives=[SpeechData(language="", text=item)]))
                    await self._on_stt_event(SpeechEvent(type=SpeechEventType.END_OF_SPEECH))
                else:
                    await self._on_stt_event(SpeechEvent(type=SpeechEventType.FINAL_TRANSCRIPT,
                                                         alternatives=[SpeechData(language="", text=item)]))
            elif isinstance(item, SpeechEvent):
                await self._on_stt_event(item)
            else:
                raise TypeError(f"stt_node yielded {type(item).__name__}; expected SpeechEvent or str")

    async def _on_stt_event(self, ev: SpeechEvent) -> None:
        if ev.type == SpeechEventType.START_OF_SPEECH and self._vad is None:
            self._speaking = True
            self._cancel_eou()
            self._hooks.on_start_of_speech(None)
        elif ev.type == SpeechEventType.INTERIM_TRANSCRIPT:
            if ev.alternatives and ev.alternatives[0].text.strip():
                self._hooks.on_interim_transcript(ev)
        elif ev.type == SpeechEventType.PREFLIGHT_TRANSCRIPT:
            if self._mode == "vad" and ev.alternatives and ev.alternatives[0].text.strip():
                self._hooks.on_preemptive_generation(" ".join([*self._transcript, ev.alternatives[0].text.strip()]))
        elif ev.type == SpeechEventType.FINAL_TRANSCRIPT:
            if not ev.alternatives or not ev.alternatives[0].text.strip():
                return
            self._transcript.append(ev.alternatives[0].text.strip())
            self._language = ev.alternatives[0].language or self._language
            self._final_at = time.perf_counter()
            self._hooks.on_final_transcript(ev)
            if self._mode == "vad":
                # the turn so far, before it is committed (as the reference does with
                # VAD-based turn detection): a reply may start on it
                self._hooks.on_preemptive_generation(self.transcript)
            # The VAD may have ended the speech before the transcript came: commit now
            # (the endpointing delay counts from the end of speech).
            if self._mode in ("vad", "stt") and not self._speaking and self._eou_task is None:
                self._schedule_eou()
        elif ev.type == SpeechEventType.END_OF_SPEECH:
            if self._vad is None:
                self._speaking = False
                self._end_of_speech_at = time.perf_counter()
                self._hooks.on_end_of_speech(None)
            if self._mode == "stt" or (self._vad is None and self._mode == "vad"):
                self._schedule_eou()

    # -- end of turn ---------------------------------------------------------------------

    def _cancel_eou(self) -> None:
        if self._eou_task is not None:
            self._eou_task.cancel()
            self._eou_task = None

    def _schedule_eou(self) -> None:
        self._cancel_eou()
        self._eou_task = self._tasks.create_task(self._bounce_eou(self._end_of_speech_at), name="recognition.eou")

    async def _bounce_eou(self, end_of_speech_at: float) -> None:
        try:
            delay = self._min_delay()
            if self._turn_detector is not None and self._transcript:
                delay = await self._predicted_delay(delay)
            wait = end_of_speech_at + delay - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            if not self._transcript:
                return  # nothing said yet: a final transcript will schedule this again
            await self._commit()
        finally:
            if self._eou_task is asyncio.current_task():
                self._eou_task = None

    async def _predicted_delay(self, min_delay: float) -> float:
        ctx = self._hooks.retrieve_chat_ctx().copy()
        ctx.add_message(role="user", content=self.transcript)
        try:
            probability = float(await self._turn_detector.predict_end_of_turn(ctx))
        except Exception as exc:
            logger.warning("turn detector failed, using min_endpointing_delay: %s", exc)
            return min_delay
        threshold = float(getattr(self._turn_detector, "unlikely_threshold", 0.0) or 0.0)
        return self._max_delay() if probability < threshold else min_delay

    async def _commit(self) -> None:
        async with self._commit_lock:
            if not self._transcript:
                return
            info = EndOfTurnInfo(
                transcript=self.transcript,
                end_of_speech_at=self._end_of_speech_at or time.perf_counter(),
                final_transcript_at=self._final_at,
                committed_at=time.perf_counter(),
                language=self._language,
            )
            self._transcript = []
            await self._hooks.on_end_of_turn(info)

    async def commit_user_turn(self, *, transcript_timeout: float = 2.0) -> None:
        """Manual turn detection: end the user's turn now (waiting up to
        ``transcript_timeout`` for the STT to finish what it heard)."""
        self._cancel_eou()
        if self._stt_stream is not None and not self._transcript:
            try:
                self._stt_stream.flush()
            except RuntimeError:
                pass
            deadline = time.perf_counter() + transcript_timeout
            while not self._transcript and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
        if not self._end_of_speech_at:
            self._end_of_speech_at = time.perf_counter()
        await self._commit()

    def clear_user_turn(self) -> None:
        self._cancel_eou()
        self._transcript = []

    async def aclose(self) -> None:
        await self._tasks.aclose()
        for stream in (self._vad_stream, self._stt_stream):
            if stream is not None:
                await stream.aclose()
        if isinstance(self._stt, STTStreamAdapter):
            await self._stt.aclose()


__all__ = ["AudioRecognition", "EndOfTurnInfo", "RecognitionHooks"]
