"""Small shared types: the NOT_GIVEN sentinel and connection options for provider calls."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeGuard, TypeVar, Union

_T = TypeVar("_T")


class NotGiven(enum.Enum):
    """Marks a parameter the caller left out, where ``None`` is a meaningful value."""

    NOT_GIVEN = "NOT_GIVEN"

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Literal[NotGiven.NOT_GIVEN] = NotGiven.NOT_GIVEN
NotGivenOr: TypeAlias = Union[_T, NotGiven]  # noqa: UP007 (must be subscriptable)


def is_given(value: _T | NotGiven) -> TypeGuard[_T]:
    return value is not NOT_GIVEN


@dataclass(frozen=True, slots=True)
class APIConnectOptions:
    """How a component talks to its provider.

    ``timeout`` bounds one attempt (for streams: until the first result arrives),
    ``max_retry`` is the number of extra attempts after the first for a retryable
    ``APIError``, and ``retry_interval`` is the base of an exponential backoff.
    """

    max_retry: int = 3
    retry_interval: float = 2.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_retry < 0:
            raise ValueError(f"max_retry must be >= 0, got {self.max_retry}")
        if self.retry_interval < 0:
            raise ValueError(f"retry_interval must be >= 0, got {self.retry_interval}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout}")

    def interval_for_retry(self, num_retries: int) -> float:
        """Delay before retry number ``num_retries`` (0-based).

        The first retry happens at once (a dropped connection usually comes back), later
        ones wait ``retry_interval * 2**(n-1)``, so the defaults wait 0, 2, 4 seconds.
        """
        if num_retries <= 0:
            return 0.0
        return self.retry_interval * (2 ** (num_retries - 1))


DEFAULT_API_CONNECT_OPTIONS = APIConnectOptions()


class ComponentIdentity:
    """What a model component (LLM, STT, TTS, realtime model) says about itself in metrics
    and logs: ``label`` (its class, unless the component sets ``_label``), and ``model`` and
    ``provider``, which a component overrides when it knows them."""

    def __init__(self) -> None:
        super().__init__()
        self._label = f"{type(self).__module__}.{type(self).__name__}"

    @property
    def label(self) -> str:
        return self._label

    @property
    def model(self) -> str:
        return "unknown"

    @property
    def provider(self) -> str:
        return "unknown"

__all__ = [
    "NOT_GIVEN",
    "NotGiven",
    "NotGivenOr",
    "is_given",
    "APIConnectOptions",
    "ComponentIdentity",
    "DEFAULT_API_CONNECT_OPTIONS",
]
