"""Waiting on something a benchmark records as it happens (stamps, wire messages)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(changed: asyncio.Event, condition: Callable[[], bool], timeout: float) -> bool:
    """True once ``condition()`` holds, checked after each ``changed``; False at ``timeout``.

    The recorder sets ``changed`` on every new record; this clears it before each wait.
    """
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                changed.clear()
                await changed.wait()
    except TimeoutError:
        return False
    return True
