"""The level a job child forwards a stdlib log record at: the record's own, except the native
SDK's teardown lines when a room is deleted under the agent, which are warnings."""

from __future__ import annotations

import logging

from roomd.child.logs import forwarded_level

TEARDOWN = ("livekit::rtc_engine::rtc_session:739:livekit::rtc_engine::rtc_session - "
            "publisher data channel '_reliable' closed unexpectedly")


def test_native_data_channel_teardown_is_a_warning() -> None:
    assert forwarded_level("livekit", logging.ERROR, TEARDOWN) == "warning"


def test_other_native_errors_stay_errors() -> None:
    assert forwarded_level("livekit", logging.ERROR, "failed to connect: signal failure") == "error"


def test_the_same_words_from_an_agent_logger_stay_errors() -> None:
    assert forwarded_level("my-agent", logging.ERROR, TEARDOWN) == "error"


def test_levels_map_to_names() -> None:
    assert [forwarded_level("x", n, "m") for n in (5, logging.DEBUG, logging.INFO, logging.WARNING,
                                                   logging.ERROR, logging.CRITICAL)] == \
        ["debug", "debug", "info", "warning", "error", "critical"]
