"""A small synchronous event emitter, generic over the event-name type."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T_contra = TypeVar("T_contra", contravariant=True)
_Callback = TypeVar("_Callback", bound=Callable[..., Any])

logger = logging.getLogger("roomd.agents")


class EventEmitter(Generic[T_contra]):
    """``on``/``once``/``off``/``emit``, callbacks run synchronously in registration order.
    (Its table is name-mangled: a subclass may have its own ``_listeners``.)

    A callback that raises is logged and does not stop the others: one broken listener
    (a metrics exporter, say) must not break the voice pipeline that emitted the event.
    """

    def __init__(self) -> None:
        self.__listeners: dict[T_contra, list[Callable[..., Any]]] = {}

    def on(self, event: T_contra, callback: _Callback | None = None) -> Any:
        """Register ``callback``; without one, return a decorator."""
        if callback is None:

            def decorator(fn: _Callback) -> _Callback:
                self.on(event, fn)
                return fn

            return decorator
        self.__listeners.setdefault(event, []).append(callback)
        return callback

    def once(self, event: T_contra, callback: _Callback | None = None) -> Any:
        """Register ``callback`` for the next ``event`` only."""
        if callback is None:

            def decorator(fn: _Callback) -> _Callback:
                self.once(event, fn)
                return fn

            return decorator

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.off(event, wrapper)
            return callback(*args, **kwargs)

        wrapper.__wrapped__ = callback  # type: ignore[attr-defined]
        return self.on(event, wrapper)

    def off(self, event: T_contra, callback: Callable[..., Any]) -> None:
        listeners = self.__listeners.get(event, [])
        for i, registered in enumerate(listeners):
            if registered is callback or getattr(registered, "__wrapped__", None) is callback:
                del listeners[i]
                return

    def emit(self, event: T_contra, *args: Any) -> None:
        for callback in list(self.__listeners.get(event, ())):
            try:
                callback(*args)
            except Exception:
                logger.exception("event listener failed", extra={"event": str(event)})

    def listener_count(self, event: T_contra) -> int:
        return len(self.__listeners.get(event, ()))
