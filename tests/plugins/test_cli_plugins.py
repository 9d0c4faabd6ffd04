"""``roomd plugins list`` and ``roomd plugins check``, run as the operator runs them."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

from plugin_factory import IMPORT_FAILS, PREWARM_RAISES, RAISES_AT_IMPORT, PluginInstaller, good_agent

from plugin_factory import config_toml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def roomd(installer: PluginInstaller, *args: str) -> tuple[int, str, str]:
    """Run the roomd CLI in a subprocess that sees the installed plugins on its path."""
    env = dict(os.environ, PYTHONPATH=str(installer.target))
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "roomd.daemon.cli", "plugins", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def rows_by_name(stdout: str) -> dict[str, dict[str, object]]:
    return {row["name"]: row for row in json.loads(stdout)}


async def test_list_without_a_daemon_reports_what_metadata_says(
        livekit_server, installer: PluginInstaller, tmp_path: Path) -> None:
    installer.install("good", good_agent("good", "good-agent"), version="1.2.3")
    installer.install("off", good_agent("off", "off-agent"))
    installer.install("nowhere", IMPORT_FAILS, entry_point="roomd_test_elsewhere.agent:options")
    config = tmp_path / "roomd.toml"
    # Nobody listens on this port: the list falls back to metadata.
    config.write_text(config_toml(livekit_server, [], http_port=free_port(),
                                  extra='disabled = ["off"]'))
    code, out, err = await roomd(installer, "list", "--json", "--config", str(config))
    assert code == 0, err
    rows = rows_by_name(out)
    assert {k: rows["good"][k] for k in ("distribution", "version", "state", "agent_name")} == \
        {"distribution": "roomd-test-good", "version": "1.2.3", "state": "installed",
         "agent_name": None}
    assert rows["off"]["state"] == "disabled"
    assert rows["nowhere"]["state"] == "broken"
    assert "module 'roomd_test_elsewhere' is not installed" in str(rows["nowhere"]["last_error"])

    code, out, err = await roomd(installer, "list", "--config", str(config))
    assert code == 0
    assert "no daemon answered" in err
    header, *lines = out.splitlines()
    assert header.split() == ["NAME", "DISTRIBUTION", "VERSION", "AGENT_NAME", "STATE", "LAST",
                              "ERROR"]
    assert any(line.split()[:5] == ["good", "roomd-test-good", "1.2.3", "-", "installed"]
               for line in lines)


async def test_check_loads_the_plugin_in_a_child_and_exits_non_zero_when_broken(
        livekit_server, installer: PluginInstaller) -> None:
    installer.install("good", good_agent("good", "good-agent", extra="num_idle_processes=4"))
    installer.install("prewarm-fails", PREWARM_RAISES)
    installer.install("raises", RAISES_AT_IMPORT)
    installer.install("import-fails", IMPORT_FAILS)

    code, out, err = await roomd(installer, "check", "good", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["ok"], report["agent_name"], report["worker_type"], report["error"]) == \
        (True, "good-agent", "room", "")
    assert report["overrides"] == {"num_idle_processes": 4.0}

    code, out, err = await roomd(installer, "check", "good")
    assert code == 0, err
    assert "agent_name   'good-agent'" in out and "result       ok" in out

    for name, cause in [
        ("prewarm-fails", "prewarm_fnc raised FileNotFoundError: model weights "
                          "/nonexistent/model.bin are missing"),
        ("raises", "RuntimeError: no API key in the environment: refusing to load"),
        ("import-fails", "No module named 'roomd_test_dependency_that_is_not_installed'"),
    ]:
        code, out, err = await roomd(installer, "check", name)
        assert code == 1, (name, out, err)
        assert "result       broken: " in out and cause in out, (name, out)
        assert f"roomd: plugin {name!r} is broken: " in err and cause in err, (name, err)

    code, _out, err = await roomd(installer, "check", "no-such-plugin")
    assert code == 2
    assert "no plugin named 'no-such-plugin'" in err and "good" in err


async def test_list_shows_the_running_daemons_view(
        livekit_server, installer: PluginInstaller, daemons, tmp_path: Path) -> None:
    installer.install("good", good_agent("good", "good-agent"))
    installer.install("raises", RAISES_AT_IMPORT)
    port = free_port()
    supervisor = await daemons(config_toml(livekit_server, ["good", "raises"], http_port=port))
    code, out, err = await roomd(installer, "list", "--json", "--config",
                                 str(tmp_path / "roomd.toml"))
    assert code == 0, err
    rows = rows_by_name(out)
    assert (rows["good"]["state"], rows["good"]["agent_name"]) == ("serving", "good-agent")
    assert rows["good"]["generation"] == supervisor.generation
    assert rows["raises"]["state"] == "failed"
    assert "refusing to load" in str(rows["raises"]["last_error"])
    code, _out, err = await roomd(installer, "list", "--config", str(tmp_path / "roomd.toml"))
    assert code == 0 and "no daemon answered" not in err
