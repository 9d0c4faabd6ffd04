"""The native SDK's room-teardown lines are warnings in roomd's processes (the daemon's and
its children's log setup both install the filter); its other errors stay errors."""

from __future__ import annotations

import logging

import pytest

from roomd.ipc.native_logs import NativeTeardownFilter, install_native_filter

TEARDOWN = ("livekit::rtc_engine::rtc_session:739:livekit::rtc_engine::rtc_session - "
            "publisher data channel '_reliable' closed unexpectedly")


@pytest.fixture
def native() -> logging.Logger:
    logger = logging.getLogger("livekit")
    before = list(logger.filters)
    install_native_filter()
    install_native_filter()  # idempotent
    yield logger
    logger.filters[:] = before


def test_teardown_lines_are_warnings_other_errors_stay(native: logging.Logger,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    assert sum(isinstance(f, NativeTeardownFilter) for f in native.filters) == 1
    with caplog.at_level(logging.INFO):
        native.error(TEARDOWN)
        native.error("failed to connect: signal failure")
        logging.getLogger("my-agent").error(TEARDOWN)  # an agent's own words are not touched
    assert [(r.name, r.levelname) for r in caplog.records] == [
        ("livekit", "WARNING"), ("livekit", "ERROR"), ("my-agent", "ERROR")]


def test_the_daemons_log_setup_writes_them_as_warnings(native: logging.Logger) -> None:
    # The console's own participant lives in the daemon process: the same lines reach its log.
    # (The children's setup is covered end to end by test_single_file_run_app's start test.)
    import io
    import json

    from roomd.daemon.logging import configure_logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    try:
        configure_logging("json", "info", stream=out)
        native.error(TEARDOWN)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    [line] = [json.loads(raw) for raw in out.getvalue().splitlines() if "closed unexpectedly" in raw]
    assert line["level"] == "warning"
