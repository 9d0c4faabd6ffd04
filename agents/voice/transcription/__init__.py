"""Agent transcripts kept in step with the audio being heard."""

from .synchronizer import TranscriptSynchronizer

__all__ = ["TranscriptSynchronizer"]
