"""structlog for the whole process: JSON lines for machines, readable lines for people.

One processor chain serves structlog loggers and stdlib ``logging`` (livekit, aiohttp),
so every line has the same shape and passes the same secret filter. Per-job context
(job_id, room, plugin) is bound with contextvars by whoever runs the job. Python
warnings (``warnings.warn`` in any library) are records too, one line each.

When the stream is the journal (systemd sets ``JOURNAL_STREAM`` to its device and inode),
each record is written as exactly one line that starts with its syslog priority (``<3>``
error, ``<4>`` warning, ``<6>`` info, ``<7>`` debug): journald stores it as the entry's
PRIORITY, so ``journalctl -p warning`` finds our warnings and errors.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

from roomd.ipc.native_logs import install_native_filter

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


# syslog priorities by logging level (sd-daemon(3)): journald strips the prefix.
_PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def syslog_priority(levelno: int) -> int:
    for threshold, priority in _PRIORITIES:
        if levelno >= threshold:
            return priority
    return 7


def is_journal_stream(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the journal's socket that systemd named in ``JOURNAL_STREAM``."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):  # unset, malformed, or no file descriptor
        return False


class JournalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """One line per record, prefixed with its syslog priority, for a journal stream."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        # A traceback or a warning's source line must not become entries of their own,
        # each at the default priority: keep the record on its line.
        return f"<{syslog_priority(record.levelno)}>" + text.replace("\n", "\\n")


def configure_logging(
    log_format: LogFormat = "auto",
    level: str = "info",
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Route structlog, stdlib logging and warnings through one chain writing to ``stream``."""
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
        final: list[structlog.types.Processor] = [structlog.processors.format_exc_info, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        final = [renderer]

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    journal = is_journal_stream(stream, environ)
    handler = JournalHandler(stream) if journal else logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # The livekit FFI logs every frame at debug; keep its noise one step above ours.
    logging.getLogger("livekit").setLevel(max(numeric_level, logging.INFO))
    install_native_filter()  # room teardown's "data channel closed unexpectedly" is a warning
    # Library warnings (PyJWT's InsecureKeyLengthWarning, deprecations) as records on the
    # "py.warnings" logger instead of raw multi-line text on stderr.
    logging.captureWarnings(True)

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
