"""Every process exit code roomd uses on purpose, in one place.

Commands (``roomd ...``, an agent's ``python agent.py start``) exit 0 ok, 1 runtime failure,
2 usage or configuration error. A child exits with a code from the EX_* range so that logs and
metrics can tell a planned exit from a crash.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn

# Commands.
EXIT_OK = 0  # done; for a child: asked to shut down, did so
EXIT_FAILURE = 1
EXIT_USAGE = 2  # bad command line or configuration
EXIT_UNREACHABLE = 2  # a command that calls the running daemon could not reach it

# A child (zygote-forked job process).
EXIT_INTERNAL_ERROR = 70  # a bug in roomd's own child code (EX_SOFTWARE), not the plugin's
EXIT_RETIRED = 75  # served max_jobs_per_process jobs: recycled on purpose
EXIT_PROTOCOL_ERROR = 76  # the supervisor sent something it could not decode
EXIT_INIT_FAILED = 77  # initialize_process_fnc / prewarm_fnc raised or timed out


def exit_now(code: int) -> NoReturn:
    """Flush stdout and stderr, then end the process without interpreter teardown.

    For a process whose own work is done while threads it cannot stop still run: the livekit
    rtc runtime's native threads, which abort the process if they call into Python during
    teardown (seen: exit -6 after a finished conversation), or an executor thread blocked
    reading stdin, which teardown would wait for.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
