"""Shared helpers for the agent SDK: events, owned tasks, channels, audio, retries."""

from .aio import Chan, ChanClosed, TaskOwner, cancel_and_wait
from .audio import (
    AudioBuffer,
    audio_frames_from_file,
    buffer_duration,
    frame_duration,
    frame_rms,
    merge_frames,
    silence,
    sine,
    split_frame,
)
from .events import EventEmitter
from .ids import shortuuid
from .retry import call_with_retries

__all__ = [
    "AudioBuffer",
    "Chan",
    "ChanClosed",
    "EventEmitter",
    "TaskOwner",
    "audio_frames_from_file",
    "buffer_duration",
    "call_with_retries",
    "cancel_and_wait",
    "frame_duration",
    "frame_rms",
    "merge_frames",
    "shortuuid",
    "silence",
    "sine",
    "split_frame",
]
