"""Run coroutines together; the first failure cancels the others and is raised as is."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def run_together(*coros: Coroutine[Any, Any, None]) -> None:
    """Like ``asyncio.TaskGroup`` but raises the first exception itself, not a group:
    component streams report one provider error, which is what callers catch."""
    try:
        async with asyncio.TaskGroup() as tg:
            for coro in coros:
                tg.create_task(coro)
    except* Exception as group:
        raise group.exceptions[0] from None
