"""structlog for the whole process: JSON lines for machines, readable lines for people.

One processor chain serves structlog loggers and stdlib ``logging`` (livekit, aiohttp),
so every line has the same shape and passes the same secret filter. Per-job context
(job_id, room, plugin) is bound with contextvars by whoever runs the job.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["auto", "json", "console"]

# Keys whose values are never written, whatever logs them.
_SECRET_KEY = re.compile(r"(secret|token|password|api_key|authorization)", re.IGNORECASE)
# JWTs (three base64url parts) and "Bearer ..." values inside free text.
_SECRET_TEXT = re.compile(r"(Bearer\s+)?eyJ[\w-]+\.[\w-]+\.[\w-]+")
MASK = "********"


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask values of secret-looking keys and JWTs inside any string value, at any depth
    (a child's log fields can nest: ``{"nested": {"token": ...}}``)."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact(key, value, 0)
    return event_dict


_MAX_DEPTH = 8  # deeper than any honest log field; anything below is masked whole


def _redact(key: object, value: Any, depth: int) -> Any:
    if isinstance(key, str) and _SECRET_KEY.search(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return _SECRET_TEXT.sub(MASK, value) if "eyJ" in value else value
    if isinstance(value, (dict, list, tuple)) and depth >= _MAX_DEPTH:
        return MASK
    if isinstance(value, dict):
        return {k: _redact(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(None, v, depth + 1) for v in value)
    return value


def resolve_format(log_format: LogFormat, stream: TextIO) -> Literal["json", "console"]:
    if log_format != "auto":
        return log_format
    return "console" if stream.isatty() else "json"


def configure_logging(
    log_format: LogFormat = "auto",
    level: str = "info",
    *,
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging through one chain writing to ``stream``."""
    stream = stream or sys.stdout
    resolved = resolve_format(log_format, stream)
    numeric_level = logging.getLevelName(level.upper())

    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
        redact_secrets,
    ]
    renderer: structlog.types.Processor
    if resolved == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        final = [structlog.processors.format_exc_info, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        final = [renderer]

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # The livekit FFI logs every frame at debug; keep its noise one step above ours.
    logging.getLogger("livekit").setLevel(max(numeric_level, logging.INFO))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _add_pid(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event_dict.setdefault("pid", os.getpid())
    return event_dict


def bind_job_context(**fields: Any) -> None:
    """Bind per-job fields (job_id, room, plugin) for every log line in this context."""
    structlog.contextvars.bind_contextvars(**fields)


def clear_job_context() -> None:
    structlog.contextvars.clear_contextvars()
