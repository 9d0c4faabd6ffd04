from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from roomd.daemon.logging import MASK, bind_job_context, clear_job_context, configure_logging


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    clear_job_context()
    yield
    clear_job_context()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_parse_and_carry_level_time_pid_and_context() -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    bind_job_context(job_id="AJ_1", room="lobby", plugin="echo")
    structlog.get_logger("roomd.test").info("job started", attempt=2)
    [record] = lines(out)
    assert record["event"] == "job started"
    assert record["level"] == "info"
    assert record["attempt"] == 2
    assert (record["job_id"], record["room"], record["plugin"]) == ("AJ_1", "lobby", "echo")
    assert isinstance(record["pid"], int) and "timestamp" in record


def test_stdlib_logging_goes_through_the_same_pipeline() -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    bind_job_context(job_id="AJ_2")
    logging.getLogger("aiohttp.client").warning("retrying %s", "POST")
    [record] = lines(out)
    assert record == {**record, "event": "retrying POST", "logger": "aiohttp.client",
                      "level": "warning", "job_id": "AJ_2"}


def test_secrets_are_masked_by_key_and_inside_text() -> None:
    out = io.StringIO()
    configure_logging("json", "debug", stream=out)
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    log = structlog.get_logger()
    log.info("connecting", api_secret="hunter2", token=jwt, header=f"Authorization: Bearer {jwt}")
    logging.getLogger("livekit").warning("joined with %s", jwt)
    text = out.getvalue()
    assert "hunter2" not in text and jwt not in text
    first, second = lines(out)
    assert first["api_secret"] == MASK and first["token"] == MASK
    assert first["header"] == f"Authorization: {MASK}"
    assert second["event"] == f"joined with {MASK}"


def test_level_filters_lower_levels() -> None:
    out = io.StringIO()
    configure_logging("json", "warning", stream=out)
    structlog.get_logger().info("quiet")
    structlog.get_logger().error("loud")
    assert [r["event"] for r in lines(out)] == ["loud"]


def test_exceptions_are_rendered_into_the_json_line() -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    try:
        raise ValueError("bad frame")
    except ValueError:
        structlog.get_logger().exception("decode failed")
    [record] = lines(out)
    assert "ValueError: bad frame" in str(record["exception"])


def test_console_format_is_readable_text_not_json() -> None:
    out = io.StringIO()
    configure_logging("console", "info", stream=out)
    structlog.get_logger("roomd").info("hello", answer=42)
    text = out.getvalue()
    assert "hello" in text and "answer=42" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_auto_format_is_json_when_not_a_terminal() -> None:
    out = io.StringIO()  # not a TTY
    configure_logging("auto", "info", stream=out)
    structlog.get_logger().info("machine readable")
    assert lines(out)[0]["event"] == "machine readable"
