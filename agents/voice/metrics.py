"""Metrics the session itself measures (the components report their own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class EOUMetrics:
    """End of utterance: how long the turn took to be declared over.

    ``end_of_utterance_delay``: from the end of user speech (VAD) to the turn being
    committed; ``transcription_delay``: from the end of speech to the final transcript;
    ``on_user_turn_completed_delay``: time spent in ``Agent.on_user_turn_completed``.
    """

    timestamp: float
    end_of_utterance_delay: float
    transcription_delay: float
    on_user_turn_completed_delay: float
    speech_id: str | None = None
    type: Literal["eou_metrics"] = "eou_metrics"
