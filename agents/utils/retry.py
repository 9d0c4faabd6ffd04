"""The retry loop behind ``APIConnectOptions``: timeouts, backoff, retryable errors only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import APIError, APITimeoutError
from ..types import APIConnectOptions

_T = TypeVar("_T")

logger = logging.getLogger("roomd.agents")


async def call_with_retries(
    attempt: Callable[[], Awaitable[_T]],
    conn_options: APIConnectOptions,
    *,
    label: str,
    timeout: bool = True,
) -> _T:
    """Run ``attempt`` until it succeeds, retrying retryable ``APIError``s.

    Each attempt is bounded by ``conn_options.timeout`` (when ``timeout``), expiry raising
    ``APITimeoutError`` (which is retryable). Other exceptions propagate at once: a bug in
    a plugin is not fixed by calling it again.
    """
    num_retries = 0
    while True:
        try:
            if not timeout:
                return await attempt()
            try:
                async with asyncio.timeout(conn_options.timeout):
                    return await attempt()
            except TimeoutError as exc:
                raise APITimeoutError(
                    f"{label}: no answer within {conn_options.timeout}s"
                ) from exc
        except APIError as exc:
            if not exc.retryable or num_retries >= conn_options.max_retry:
                raise
            delay = conn_options.interval_for_retry(num_retries)
            num_retries += 1
            logger.warning(
                "%s failed, retrying in %.2fs (retry %d of %d): %s",
                label, delay, num_retries, conn_options.max_retry, exc,
            )
            await asyncio.sleep(delay)
