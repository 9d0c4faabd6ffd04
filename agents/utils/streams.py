"""Base classes for the components' streams.

An ``OutputStream`` runs its ``_run`` in a task started at construction (a stream
returned by ``llm.chat()`` or ``tts.synthesize()`` is already working), retries it per
``APIConnectOptions`` and hands results to the consumer through ``_event_ch``. A failure
that survives the retries is raised from ``__anext__``.

Subclasses written for livekit-agents put results with ``self._event_ch.send_nowait``;
roomd's own call ``self._send``: both go through the same channel, which observes every
item (first-output timeout, metrics). The base keeps its own state in name-mangled
attributes, so a subclass may use any plain private name (``self._attempt``,
``self._opts``, ...) without breaking it; the only shared names are the ones the
reference's base classes give their subclasses (``_event_ch``, ``_input_ch``,
``_conn_options``, ``_task``, ``_FlushSentinel``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from ..errors import APIError, APITimeoutError
from ..types import APIConnectOptions
from .aio import Chan, cancel_and_wait

_T = TypeVar("_T")
_In = TypeVar("_In")

logger = logging.getLogger("roomd.agents")


class FlushSentinel(enum.Enum):
    """Marks the end of a segment in an input channel (``stream.flush()``). An enum, so that
    roomd's ``item is FLUSH`` narrows types and livekit-agents' ``isinstance(item,
    self._FlushSentinel)`` holds for the same object."""

    FLUSH = "FLUSH"


FLUSH = FlushSentinel.FLUSH
Flush = FlushSentinel


class ObservedChan(Chan[_T]):
    """A channel that shows every item to ``observer`` before queueing it."""

    def __init__(self, observer: Callable[[_T], None]) -> None:
        super().__init__()
        self.__observer = observer

    def send_nowait(self, value: _T) -> None:
        if not self.closed:
            self.__observer(value)
        super().send_nowait(value)


class OutputStream(ABC, Generic[_T]):
    #: whether ``conn_options.timeout`` bounds the wait for the first output of an attempt
    _first_output_timeout: bool = True
    #: whether an attempt may be retried after some output was already delivered
    _retry_after_output: bool = False

    def __init__(self, *, conn_options: APIConnectOptions, label: str) -> None:
        self._conn_options = conn_options
        self.__label = label
        self._event_ch: Chan[_T] = ObservedChan(self.__observe)
        self.__output_started = False
        self.__attempt_timeout: asyncio.Timeout | None = None
        self.__error: BaseException | None = None
        self._task = asyncio.get_running_loop().create_task(self.__main(), name=f"{label}.stream")

    @abstractmethod
    async def _run(self) -> None:
        """Produce results (``self._event_ch.send_nowait`` or ``self._send``); raise
        ``APIError`` on provider failures."""

    def _on_retry(self) -> None:
        """Called before a retry (reset per-attempt state)."""

    def _on_done(self, *, cancelled: bool) -> None:
        """Called once when the stream has finished, failed or been closed."""

    def _on_output(self, item: _T) -> None:
        """Called for every result before the consumer sees it (metrics)."""

    def _on_failed_attempt(self, error: APIError, *, recoverable: bool) -> None:
        """Called for every failed attempt (the component's ``error`` event)."""

    async def _run_attempt(self) -> None:
        """One attempt; a base class adapts the subclass's ``_run`` here."""
        await self._run()

    def _send(self, item: _T) -> None:
        self._event_ch.send_nowait(item)

    @property
    def _output_started(self) -> bool:
        return self.__output_started

    def __observe(self, item: _T) -> None:
        if not self.__output_started:
            self.__output_started = True
            if self.__attempt_timeout is not None:
                self.__attempt_timeout.reschedule(None)
        self._on_output(item)

    async def __attempt(self) -> None:
        if not self._first_output_timeout:
            await self._run_attempt()
            return
        try:
            async with asyncio.timeout(self._conn_options.timeout) as cm:
                self.__attempt_timeout = cm
                await self._run_attempt()
        except TimeoutError as exc:
            raise APITimeoutError(
                f"{self.__label}: no output within {self._conn_options.timeout}s"
            ) from exc
        finally:
            self.__attempt_timeout = None

    async def __main(self) -> None:
        num_retries = 0
        error: BaseException | None = None
        cancelled = False
        try:
            while True:
                try:
                    await self.__attempt()
                    break
                except APIError as exc:
                    retry_allowed = self._retry_after_output or not self.__output_started
                    if (
                        not exc.retryable
                        or not retry_allowed
                        or num_retries >= self._conn_options.max_retry
                    ):
                        self._on_failed_attempt(exc, recoverable=False)
                        raise
                    self._on_failed_attempt(exc, recoverable=True)
                    delay = self._conn_options.interval_for_retry(num_retries)
                    num_retries += 1
                    logger.warning(
                        "%s failed, retrying in %.2fs (retry %d of %d): %s",
                        self.__label, delay, num_retries, self._conn_options.max_retry, exc,
                    )
                    await asyncio.sleep(delay)
                    self._on_retry()
        except asyncio.CancelledError:
            cancelled = True
            raise
        except Exception as exc:
            error = exc
            self.__error = exc
        finally:
            self._event_ch.close(error)
            self._on_done(cancelled=cancelled)

    def done(self) -> bool:
        return self._task.done()

    @property
    def exception(self) -> BaseException | None:
        return self.__error

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _T:
        return await self._event_ch.__anext__()

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._event_ch.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class InputOutputStream(OutputStream[_T], Generic[_In, _T]):
    """An ``OutputStream`` fed by the caller (audio frames, text) through ``_input_ch``.

    ``flush()`` marks the end of a segment (a ``FlushSentinel`` in the input channel),
    ``end_input()`` flushes and closes the input; ``_run`` ends when the input is done.
    Input streams run for as long as the caller feeds them, so the timeout does not
    bound the wait for output, and a retryable failure restarts ``_run`` on the input
    not yet consumed.
    """

    _FlushSentinel = FlushSentinel
    _first_output_timeout = False
    _retry_after_output = True

    def __init__(self, *, conn_options: APIConnectOptions, label: str) -> None:
        self._input_ch: Chan[_In | FlushSentinel] = Chan()
        self.__label = label
        super().__init__(conn_options=conn_options, label=label)

    def _push(self, item: _In) -> None:
        if self._input_ch.closed:
            raise RuntimeError(f"{self.__label}: input already ended")
        self._input_ch.send_nowait(item)

    def flush(self) -> None:
        if self._input_ch.closed:
            raise RuntimeError(f"{self.__label}: input already ended")
        self._input_ch.send_nowait(FLUSH)

    def end_input(self) -> None:
        if self._input_ch.closed:
            return
        self.flush()
        self._input_ch.close()

    async def aclose(self) -> None:
        self._input_ch.close()
        await super().aclose()
