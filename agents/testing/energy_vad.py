"""A VAD that calls loud frames speech: an RMS threshold with hysteresis in time."""

from __future__ import annotations

import time

from livekit import rtc

from ..utils.audio import frame_duration, frame_rms
from ..utils.streams import FLUSH
from ..vad.vad import VAD, VADCapabilities, VADEvent, VADEventType, VADStream


class EnergyVAD(VAD):
    """Speech starts after ``min_speech_duration`` of frames louder than ``threshold``
    (RMS, full scale 1.0) and ends after ``min_silence_duration`` of quieter ones.
    ``probability`` is ``rms / (rms + threshold)``: 0.5 exactly at the threshold.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.01,
        min_speech_duration: float = 0.05,
        min_silence_duration: float = 0.3,
        prefix_padding_duration: float = 0.1,
        update_interval: float = 0.02,
    ) -> None:
        super().__init__(capabilities=VADCapabilities(update_interval=update_interval))
        self.threshold = threshold
        self.min_speech_duration = min_speech_duration
        self.min_silence_duration = min_silence_duration
        self.prefix_padding_duration = prefix_padding_duration

    def stream(self) -> VADStream:
        return _EnergyVADStream(self)


class _EnergyVADStream(VADStream):
    _vad: EnergyVAD

    async def _run(self) -> None:
        vad = self._vad
        speaking = False
        speech = silence = 0.0  # accumulated, for the hysteresis
        pushed = 0.0
        samples = 0
        prefix: list[rtc.AudioFrame] = []  # recent frames before speech started
        segment: list[rtc.AudioFrame] = []

        def event(kind: VADEventType, probability: float, frames: list[rtc.AudioFrame], took: float) -> VADEvent:
            return VADEvent(
                type=kind, samples_index=samples, timestamp=pushed,
                speech_duration=speech if speaking or kind == VADEventType.END_OF_SPEECH else 0.0,
                silence_duration=silence, frames=frames, probability=probability,
                inference_duration=took, speaking=speaking,
                raw_accumulated_speech=speech, raw_accumulated_silence=silence,
            )

        async for item in self._input_ch:
            if item is FLUSH:
                if speaking:
                    speaking = False
                    self._send(event(VADEventType.END_OF_SPEECH, 0.0, segment, 0.0))
                    segment, speech, silence = [], 0.0, 0.0
                continue
            started = time.perf_counter()
            rms = frame_rms(item)
            probability = rms / (rms + vad.threshold) if rms > 0 else 0.0
            duration = frame_duration(item)
            pushed += duration
            samples += item.samples_per_channel
            took = time.perf_counter() - started
            if probability >= 0.5:
                speech += duration
                silence = 0.0
            else:
                silence += duration
                if not speaking:
                    speech = 0.0
            if speaking:
                segment.append(item)
            else:
                prefix.append(item)
                while sum(frame_duration(f) for f in prefix[1:]) >= vad.prefix_padding_duration + speech:
                    prefix.pop(0)
            self._send(event(VADEventType.INFERENCE_DONE, probability, [item], took))
            if not speaking and speech >= vad.min_speech_duration:
                speaking, silence = True, 0.0
                segment, prefix = prefix, []
                self._send(event(VADEventType.START_OF_SPEECH, probability, list(segment), 0.0))
            elif speaking and silence >= vad.min_silence_duration:
                speaking = False
                self._send(event(VADEventType.END_OF_SPEECH, probability, segment, 0.0))
                segment, speech, silence = [], 0.0, 0.0
