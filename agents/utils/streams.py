"""Base classes for the components' streams.

An ``OutputStream`` runs its ``_run`` in a task started at construction (a stream
returned by ``llm.chat()`` or ``tts.synthesize()`` is already working), retries it per
``APIConnectOptions`` and hands results to the consumer through a channel. A failure
that survives the retries is raised from ``__anext__``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Generic, TypeVar

from ..errors import APIError, APITimeoutError
from ..types import APIConnectOptions
from .aio import Chan, cancel_and_wait

_T = TypeVar("_T")
_In = TypeVar("_In")
_Self = TypeVar("_Self", bound="OutputStream[Any]")

logger = logging.getLogger("roomd.agents")


class OutputStream(ABC, Generic[_T]):
    #: whether ``conn_options.timeout`` bounds the wait for the first output of an attempt
    _first_output_timeout: bool = True
    #: whether an attempt may be retried after some output was already delivered
    _retry_after_output: bool = False

    def __init__(self, *, conn_options: APIConnectOptions, label: str) -> None:
        self._conn_options = conn_options
        self._label = label
        self._event_ch: Chan[_T] = Chan()
        self._output_started = False
        self._attempt_timeout: asyncio.Timeout | None = None
        self._task = asyncio.get_running_loop().create_task(self._main(), name=f"{label}.stream")

    @abstractmethod
    async def _run(self) -> None:
        """Produce results with ``self._send``; raise ``APIError`` on provider failures."""

    def _on_retry(self) -> None:
        """Called before a retry (reset per-attempt state)."""

    def _on_done(self, *, cancelled: bool) -> None:
        """Called once when the stream has finished, failed or been closed."""

    def _send(self, item: _T) -> None:
        if not self._output_started:
            self._output_started = True
            if self._attempt_timeout is not None:
                self._attempt_timeout.reschedule(None)
        self._event_ch.send_nowait(item)

    async def _attempt(self) -> None:
        if not self._first_output_timeout:
            await self._run()
            return
        try:
            async with asyncio.timeout(self._conn_options.timeout) as cm:
                self._attempt_timeout = cm
                await self._run()
        except TimeoutError as exc:
            raise APITimeoutError(
                f"{self._label}: no output within {self._conn_options.timeout}s"
            ) from exc
        finally:
            self._attempt_timeout = None

    async def _main(self) -> None:
        num_retries = 0
        error: BaseException | None = None
        cancelled = False
        try:
            while True:
                try:
                    await self._attempt()
                    break
                except APIError as exc:
                    retry_allowed = self._retry_after_output or not self._output_started
                    if (
                        not exc.retryable
                        or not retry_allowed
                        or num_retries >= self._conn_options.max_retry
                    ):
                        raise
                    delay = self._conn_options.interval_for_retry(num_retries)
                    num_retries += 1
                    logger.warning(
                        "%s failed, retrying in %.2fs (retry %d of %d): %s",
                        self._label, delay, num_retries, self._conn_options.max_retry, exc,
                    )
                    await asyncio.sleep(delay)
                    self._on_retry()
        except asyncio.CancelledError:
            cancelled = True
            raise
        except Exception as exc:
            error = exc
        finally:
            self._event_ch.close(error)
            self._on_done(cancelled=cancelled)

    def __aiter__(self: _Self) -> _Self:
        return self

    async def __anext__(self) -> _T:
        return await self._event_ch.recv()

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._event_ch.close()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _Flush(enum.Enum):
    FLUSH = "FLUSH"


FLUSH = _Flush.FLUSH
Flush = _Flush


class InputOutputStream(OutputStream[_T], Generic[_In, _T]):
    """An ``OutputStream`` fed by the caller (audio frames, text) through ``_input_ch``.

    ``flush()`` marks the end of a segment (``FLUSH`` in the input channel),
    ``end_input()`` flushes and closes the input; ``_run`` ends when the input is done.
    Input streams run for as long as the caller feeds them, so the timeout does not
    bound the wait for output, and a retryable failure restarts ``_run`` on the input
    not yet consumed.
    """

    _first_output_timeout = False
    _retry_after_output = True

    def __init__(self, *, conn_options: APIConnectOptions, label: str) -> None:
        self._input_ch: Chan[_In | _Flush] = Chan()
        super().__init__(conn_options=conn_options, label=label)

    def _push(self, item: _In) -> None:
        if self._input_ch.closed:
            raise RuntimeError(f"{self._label}: input already ended")
        self._input_ch.send_nowait(item)

    def flush(self) -> None:
        if self._input_ch.closed:
            raise RuntimeError(f"{self._label}: input already ended")
        self._input_ch.send_nowait(FLUSH)

    def end_input(self) -> None:
        if self._input_ch.closed:
            return
        self.flush()
        self._input_ch.close()

    async def aclose(self) -> None:
        self._input_ch.close()
        await super().aclose()
