from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner

from roomd.daemon.cli import main

REPO = Path(__file__).resolve().parents[2]
SERVER_ENV = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": "k",
              "LIVEKIT_API_SECRET": "topsecret"}


def invoke(*args: str, env: dict[str, str] | None = None):  # noqa: ANN201 - click Result
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_every_command_has_help() -> None:
    for args in ([], ["run"], ["config"], ["config", "check"], ["version"]):
        result = invoke(*args, "--help")
        assert result.exit_code == 0, args
        assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_config_check_prints_effective_config_with_secret_masked() -> None:
    result = invoke("config", "check", str(REPO / "etc" / "roomd.toml"), env=SERVER_ENV)
    assert result.exit_code == 0
    effective = tomllib.loads(result.stdout)
    assert effective["livekit"]["url"] == "ws://127.0.0.1:7880"
    assert effective["livekit"]["api_secret"] == "********"
    assert "topsecret" not in result.output
    assert effective["pool"]["num_idle_processes"] == 2


def test_config_error_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[pool]\nnum_idle_processes = -1\n")
    result = invoke("config", "check", str(bad), env=SERVER_ENV)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"roomd: configuration error: {bad}:2: pool.num_idle_processes: Expected `int` >= 0"
    ]


def test_run_with_bad_config_exits_2(tmp_path: Path) -> None:
    result = invoke("run", "--config", str(tmp_path / "absent.toml"), env=SERVER_ENV)
    assert result.exit_code == 2
    assert "cannot read config file" in result.stderr


def test_usage_error_exits_2() -> None:
    result = CliRunner().invoke(main, ["run", "--no-such-flag"])
    assert result.exit_code == 2


def test_version_names_roomd_and_livekit_packages() -> None:
    result = invoke("version")
    assert result.exit_code == 0
    assert result.output.startswith("roomd ")
    assert "livekit-protocol " in result.output


@pytest.mark.timeout(60)
def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "roomd"
    completed = subprocess.run([str(script), "version"], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("roomd ")
