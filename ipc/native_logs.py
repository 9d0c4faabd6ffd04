"""The livekit native SDK's log records, as roomd's processes log them (daemon and children).

The SDK logs ``publisher data channel '...' closed unexpectedly`` at error while a room is
torn down: whenever the server closes the peer connections before the SDK has handled its
leave message, which is every time a room is deleted under a participant (the usual end of
a job, and of a console session). A real connection loss is told by the room's own
reconnecting/disconnected events, so those lines are warnings here.
"""

from __future__ import annotations

import logging

NATIVE_LOGGER = "livekit"
_TEARDOWN_NOISE = ("data channel", "closed unexpectedly")


class NativeTeardownFilter(logging.Filter):
    """Installed on the ``livekit`` logger: lowers the teardown lines to warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and all(part in record.getMessage() for part in _TEARDOWN_NOISE):
            record.levelno = logging.WARNING
            record.levelname = "WARNING"
        return True


def install_native_filter() -> None:
    """Idempotent: one filter on the ``livekit`` logger of this process."""
    native = logging.getLogger(NATIVE_LOGGER)
    if not any(isinstance(f, NativeTeardownFilter) for f in native.filters):
        native.addFilter(NativeTeardownFilter())
