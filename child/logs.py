"""Route a child's logs (structlog and stdlib) to the supervisor as structured ``Log`` messages.

Bounded twice: a token bucket caps the sustained rate, and the channel's send queue drops
(and counts) when the supervisor reads slower than we write. Drops are reported as one
warning per second, so a flood shows up in the logs without being the flood.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from roomd.ipc import Channel, Log
from roomd.ipc.native_logs import install_native_filter
from roomd.ipc.ratelimit import TokenBucket

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}
_MAX_STRING = 16 * 1024
_MAX_FIELDS = 64
_MAX_DEPTH = 4


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy of ``value`` small enough to fit a frame; other objects become repr text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= _MAX_STRING else value[:_MAX_STRING] + "…(truncated)"
    if depth < _MAX_DEPTH:
        if isinstance(value, dict):
            return {str(k): to_jsonable(v, depth + 1) for k, v in list(value.items())[:_MAX_FIELDS]}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [to_jsonable(v, depth + 1) for v in list(value)[:_MAX_FIELDS]]
    return to_jsonable(repr(value), _MAX_DEPTH)


def level_name(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class LogForwarder:
    def __init__(
        self,
        channel: Channel,
        *,
        rate: float,
        burst: int,
        context: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self._channel = channel
        self._bucket = TokenBucket(rate, burst)
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._context = context
        self.dropped = 0
        self._reported = 0

    def emit(self, level: str, event: str, logger: str, fields: dict[str, Any]) -> None:
        """Thread-safe: the livekit SDK logs from its own threads."""
        if threading.get_ident() != self._thread:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is exiting
                self._loop.call_soon_threadsafe(self.emit, level, event, logger, fields)
            return
        if not self._bucket.take():
            self.dropped += 1
            return
        merged = {**self._context(), **fields}
        message = Log(level=level, event=to_jsonable(event), logger=logger,  # type: ignore[arg-type]
                      fields=to_jsonable(merged))
        if not self._channel.try_send(message):
            self.dropped += 1

    async def report_drops(self, interval: float = 1.0) -> None:
        """Forever: once per interval, say how many events were dropped since the last report."""
        while True:
            await asyncio.sleep(interval)
            await self.report_now()

    async def report_now(self) -> None:
        """Say how many events were dropped since the last report (at job end, before exit)."""
        dropped = self.dropped - self._reported
        if dropped:
            self._reported = self.dropped
            await self._channel.send(Log(level="warning", event="child log events dropped",
                                         logger="roomd.child", fields={**self._context(), "dropped": dropped,
                                                                       "dropped_total": self.dropped}))

    def structlog_processor(
        self, _logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        fields = dict(event_dict)
        event = str(fields.pop("event", ""))
        logger = str(fields.pop("logger", "") or "")
        level = str(fields.pop("level", method)).lower()
        if level not in _LEVELS:
            level = "error" if level == "exception" else "info"
        self.emit(level, event, logger, fields)
        raise structlog.DropEvent


class _ForwardingHandler(logging.Handler):
    def __init__(self, forwarder: LogForwarder) -> None:
        super().__init__()
        self._forwarder = forwarder

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {}
            if record.exc_info:
                fields["exception"] = logging.Formatter().formatException(record.exc_info)
            self._forwarder.emit(level_name(record.levelno), record.getMessage(), record.name, fields)
        except Exception:
            self.handleError(record)


def install(forwarder: LogForwarder, level: str) -> None:
    """Point structlog and the stdlib root logger of this process at ``forwarder``."""
    numeric = _LEVELS.get(level, logging.INFO)
    structlog.reset_defaults()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.processors.format_exc_info,
            forwarder.structlog_processor,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_ForwardingHandler(forwarder))
    root.setLevel(numeric)
    logging.getLogger("livekit").setLevel(max(numeric, logging.INFO))
    install_native_filter()
