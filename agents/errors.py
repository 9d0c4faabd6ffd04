"""The error hierarchy from the reference API.

``AssignmentTimeoutError`` is the daemon's too: it lives in roomd.ipc and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from roomd.ipc.errors import AssignmentTimeoutError

__all__ = ["APIConnectionError", "APIError", "APIStatusError", "APITimeoutError", "AssignmentTimeoutError",
           "ComponentErrorEvent", "StopResponse", "ToolError"]


class APIError(Exception):
    """A call to a model provider (LLM, STT, TTS, ...) failed.

    ``retryable`` tells the retry loop in ``APIConnectOptions`` whether trying again
    can help; ``body`` keeps whatever the provider sent back, for logs.
    """

    def __init__(self, message: str, *, body: object | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.body = body
        self.retryable = retryable


class APIConnectionError(APIError):
    """The provider could not be reached (DNS, refused, reset)."""

    def __init__(self, message: str = "connection error", *, retryable: bool = True) -> None:
        super().__init__(message, body=None, retryable=retryable)


class APITimeoutError(APIConnectionError):
    """The provider did not answer within the configured timeout."""

    def __init__(self, message: str = "request timed out", *, retryable: bool = True) -> None:
        super().__init__(message, retryable=retryable)


class APIStatusError(APIError):
    """The provider answered with an error status.

    4xx answers other than 408 and 429 are not worth retrying: the request itself is wrong.
    """

    def __init__(
        self,
        message: str = "status error",
        *,
        status_code: int = -1,
        request_id: str | None = None,
        body: object | None = None,
        retryable: bool | None = None,
    ) -> None:
        if retryable is None:
            retryable = not (400 <= status_code < 500) or status_code in (408, 429)
        super().__init__(message, body=body, retryable=retryable)
        self.status_code = status_code
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.message} (status_code={self.status_code}, request_id={self.request_id})"


class ToolError(Exception):
    """Raised by a tool: the message goes back to the LLM as the tool's output."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._message = message

    @property
    def message(self) -> str:
        return self._message


class StopResponse(Exception):
    """Raised by a tool or a turn hook: the agent does not reply to this turn."""


@dataclass(slots=True, kw_only=True)
class ComponentErrorEvent:
    """What a component's ``error`` event carries: one failed attempt of ``label``'s call,
    ``recoverable`` when a retry follows. ``LLMError``, ``STTError`` and ``TTSError`` add
    their ``type``."""

    timestamp: float
    label: str
    error: Exception
    recoverable: bool
