"""Shared helpers for the agent SDK, under livekit-agents' names (``utils.aio``,
``utils.is_given``, ``utils.ExpFilter``, ...) plus roomd's own (events, audio, retries)."""

from ..types import NOT_GIVEN, NotGiven, NotGivenOr, is_given
from . import aio, audio
from .aio import Chan, ChanClosed, TaskOwner, cancel_and_wait, log_exceptions
from .audio import (
    AudioBuffer,
    AudioByteStream,
    audio_frames_from_file,
    buffer_duration,
    calculate_audio_duration,
    combine_frames,
    frame_duration,
    frame_rms,
    merge_frames,
    silence,
    sine,
    split_frame,
)
from .events import EventEmitter
from .filters import BoundedDict, ExpFilter, MovingAverage
from .ids import shortuuid, time_ms
from .participant import wait_for_participant, wait_for_track_publication
from .retry import call_with_retries

__all__ = [
    "NOT_GIVEN",
    "AudioBuffer",
    "AudioByteStream",
    "BoundedDict",
    "Chan",
    "ChanClosed",
    "EventEmitter",
    "ExpFilter",
    "MovingAverage",
    "NotGiven",
    "NotGivenOr",
    "TaskOwner",
    "aio",
    "audio",
    "audio_frames_from_file",
    "buffer_duration",
    "calculate_audio_duration",
    "call_with_retries",
    "cancel_and_wait",
    "combine_frames",
    "frame_duration",
    "frame_rms",
    "is_given",
    "log_exceptions",
    "merge_frames",
    "shortuuid",
    "silence",
    "sine",
    "split_frame",
    "time_ms",
    "wait_for_participant",
    "wait_for_track_publication",
]
