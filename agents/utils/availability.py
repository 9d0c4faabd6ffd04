"""Which of a FallbackAdapter's components are usable right now."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

_C = TypeVar("_C")


@dataclass(slots=True)
class _Slot(Generic[_C]):
    component: _C
    available: bool = True
    retry_at: float = 0.0


class Availability(Generic[_C]):
    """Components in priority order; a failed one is skipped for ``recovery_delay``
    seconds, then tried again (in its place) and recovered when it succeeds.

    ``on_change(component, available)`` is called on every change.
    """

    def __init__(
        self,
        components: Sequence[_C],
        *,
        recovery_delay: float,
        on_change: Callable[[_C, bool], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not components:
            raise ValueError("a FallbackAdapter needs at least one component")
        self._slots = [_Slot(c) for c in components]
        self._recovery_delay = recovery_delay
        self._on_change = on_change
        self._clock = clock

    @property
    def components(self) -> list[_C]:
        return [s.component for s in self._slots]

    def is_available(self, component: _C) -> bool:
        return self._slot(component).available

    def candidates(self) -> list[_C]:
        """Components to try, in order: available ones and those due for a retry; if
        none qualifies, all of them (failing for sure beats not trying)."""
        now = self._clock()
        due = [s.component for s in self._slots if s.available or now >= s.retry_at]
        return due or self.components

    def mark_failed(self, component: _C) -> None:
        slot = self._slot(component)
        slot.retry_at = self._clock() + self._recovery_delay
        if slot.available:
            slot.available = False
            self._on_change(component, False)

    def mark_ok(self, component: _C) -> None:
        slot = self._slot(component)
        if not slot.available:
            slot.available = True
            self._on_change(component, True)

    def _slot(self, component: _C) -> _Slot[_C]:
        for slot in self._slots:
            if slot.component is component:
                return slot
        raise KeyError(component)
