"""Bad input gets a clear error naming the cause, never a traceback or a retry loop."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from roomd.daemon.config import ConfigError, load_config
from roomd.daemon.logging import configure_logging
from roomd.daemon.ops.install import InstallPlan, Layout


def config_check(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "roomd.toml"
    path.write_text(f'[livekit]\nurl = "{url}"\napi_key = "k"\napi_secret = "s"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    return subprocess.run([sys.executable, "-m", "roomd.daemon.cli", "config", "check", str(path)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.mark.parametrize(("url", "cause"), [
    ("ws://127.0.0.1:99999", "not a valid URL"),
    ("ws://", "names no host"),
    ("ws://[::1", "not a valid URL"),
])
def test_config_check_rejects_a_server_url_that_cannot_be_connected_to(
        tmp_path: Path, url: str, cause: str) -> None:
    result = config_check(tmp_path, url)
    assert result.returncode == 2, result
    assert cause in result.stderr and "livekit.url" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("key", ["link.status_interval", "link.ping_interval", "pool.ping_interval",
                                 "pool.memory_sample_interval", "link.reconnect_backoff_max"])
def test_intervals_out_of_range_are_rejected(key: str) -> None:
    with pytest.raises(ConfigError, match=key.split(".")[1]):
        load_config(None, environ={}, overrides={key: 1e-9, "daemon.dev": True})


async def test_a_refused_registration_fails_fast_with_a_hint(livekit_server, tmp_path: Path) -> None:
    from daemon_process import DaemonProcess

    daemon = DaemonProcess(livekit_server, tmp_path, env={"LIVEKIT_API_SECRET": "not-the-secret-" * 3})
    try:
        await daemon.start(ready=False)
        assert await daemon.wait(timeout=30) == 1
        gave_up = [e for e in daemon.errors() if e.get("event") == "server link gave up; stopping"]
        assert gave_up and "LIVEKIT_API_KEY / LIVEKIT_API_SECRET" in gave_up[0]["error"], daemon.tail()
        attempts = [e for e in daemon.events if e.get("event") == "connection failed, retrying"]
        assert attempts == [], "a refused registration is not retried"
    finally:
        await daemon.stop()


def test_log_redaction_covers_nested_keys() -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    try:
        structlog.get_logger("test").info("child event", nested={"token": "eyJabc.def.ghi", "deeper": [
            {"api_secret": "s3cr3t"}], "fine": "visible"})
    finally:
        configure_logging("json", "info")
    event = json.loads(out.getvalue().strip().splitlines()[-1])
    assert "s3cr3t" not in out.getvalue() and "eyJabc" not in out.getvalue(), out.getvalue()
    assert event["nested"]["fine"] == "visible"


def test_service_install_sets_directory_modes_whatever_the_umask(tmp_path: Path) -> None:
    layout = Layout(root=tmp_path, prefix=Path("/opt/roomd"))
    installer = InstallPlan(layout, source="unused")
    files = [step for step in installer.steps() if step.text.startswith("write")]
    previous = os.umask(0)
    try:
        installer.apply(files, echo=lambda _line: None)
    finally:
        os.umask(previous)
    env_file = layout.env_file
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    for directory in (env_file.parent, layout.at("/etc/systemd/system")):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755, directory
    assert stat.S_IMODE(layout.at("/etc/roomd/roomd.toml").stat().st_mode) == 0o644
