from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

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
    logging.captureWarnings(False)


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


def _journal(path: Path) -> tuple[io.TextIOWrapper, dict[str, str]]:
    """A stream and the JOURNAL_STREAM value systemd would set for it (its device:inode)."""
    stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    st = os.fstat(stream.fileno())
    return stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_journal_lines_start_with_their_priority_and_stay_one_line(
        tmp_path: Path, log_format: str) -> None:
    path = tmp_path / "journal"
    stream, environ = _journal(path)
    with stream:
        configure_logging(log_format, "debug", stream=stream, environ=environ)  # type: ignore[arg-type]
        log = structlog.get_logger("roomd.test")
        log.debug("looking")
        log.info("started")
        log.warning("slow")
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            log.exception("failed")
        logging.getLogger("aiohttp").critical("gone")
    written = path.read_text().splitlines()
    assert [line[:3] for line in written] == ["<7>", "<6>", "<4>", "<3>", "<3>"]
    assert "Traceback" in written[3] and "ValueError" in written[3]
    if log_format == "json":
        assert json.loads(written[3][3:])["event"] == "failed"


def test_python_warnings_are_one_warning_record_each(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    stream, environ = _journal(path)
    with stream:
        configure_logging("json", "info", stream=stream, environ=environ)
        warnings.warn("key is too short", UserWarning, stacklevel=1)
    [line] = path.read_text().splitlines()
    assert line.startswith("<4>")
    record = json.loads(line[3:])
    assert record["logger"] == "py.warnings" and record["level"] == "warning"
    assert "UserWarning: key is too short" in record["event"]


def test_no_priority_prefix_when_the_stream_is_not_the_journal(tmp_path: Path) -> None:
    other, environ = _journal(tmp_path / "elsewhere")
    other.close()
    out = io.StringIO()
    configure_logging("json", "info", stream=out, environ=environ)
    structlog.get_logger().warning("slow")
    [record] = lines(out)
    assert record["event"] == "slow"
