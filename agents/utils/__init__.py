"""Shared helpers for the agent SDK: events, owned tasks, channels, audio, retries."""

from .aio import Chan, ChanClosed, TaskOwner, cancel_and_wait
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
from .ids import shortuuid
from .participant import wait_for_participant, wait_for_track_publication
from .retry import call_with_retries

__all__ = [
    "AudioBuffer",
    "AudioByteStream",
    "Chan",
    "ChanClosed",
    "EventEmitter",
    "TaskOwner",
    "audio_frames_from_file",
    "buffer_duration",
    "calculate_audio_duration",
    "call_with_retries",
    "cancel_and_wait",
    "combine_frames",
    "frame_duration",
    "frame_rms",
    "merge_frames",
    "shortuuid",
    "silence",
    "sine",
    "split_frame",
    "wait_for_participant",
    "wait_for_track_publication",
]
