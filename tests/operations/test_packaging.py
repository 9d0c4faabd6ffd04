"""The systemd unit, the installer and the .deb, checked with the real tools
(systemd-analyze, dpkg-deb) of this Debian 12 machine."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from roomd.daemon.config import DaemonConfig
from roomd.daemon.ops.deadlines import PREWARM_DEADLINE, RELOAD_CLIENT_TIMEOUT
from roomd.daemon.ops.playground import livekit_client_version
from roomd.daemon.ops.unit import render_unit

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "roomd.service"
EXPOSURE_THRESHOLD = 15  # 0..100, i.e. 1.5 on systemd-analyze's printed scale


def roomd_binary() -> str:
    found = Path(sys.executable).with_name("roomd")
    assert found.exists(), f"roomd is not installed next to {sys.executable}"
    return str(found)


def unit_for_this_machine(tmp_path: Path) -> Path:
    """A copy whose ExecStart/ExecReload name an existing roomd: verify checks the binary."""
    copy = tmp_path / "roomd.service"
    copy.write_text(UNIT.read_text().replace("/opt/roomd/venv/bin/roomd", roomd_binary()))
    return copy


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_packaged_unit_is_the_rendered_unit() -> None:
    assert UNIT.read_text() == render_unit("/opt/roomd/venv")


def test_unit_has_what_a_notify_service_with_drain_needs() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"]  # not notify-reload: systemd 252
    assert s["ExecReload"][0].endswith("roomd reload --config /etc/roomd/roomd.toml")
    assert s["KillMode"] == ["mixed"]
    assert int(s["TimeoutStopSec"][0]) > DaemonConfig().drain_timeout
    assert int(s["WatchdogSec"][0]) > 0
    assert s["Restart"] == ["on-failure"]
    assert s["EnvironmentFile"] == ["/etc/roomd/roomd.env"]
    assert s["DynamicUser"] == ["yes"] and s["StateDirectory"] == ["roomd"]
    assert s["RuntimeDirectory"] == ["roomd"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    assert s["SystemCallFilter"][0] == "@system-service"


def test_systemd_analyze_verify_has_nothing_to_say(tmp_path: Path) -> None:
    # verify exits 0 on unknown keys and bad values; only an empty stderr means clean.
    result = subprocess.run(["systemd-analyze", "verify", str(unit_for_this_machine(tmp_path))],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stderr == ""


def test_exposure_is_low_and_the_documented_figure_is_true(tmp_path: Path) -> None:
    unit = unit_for_this_machine(tmp_path)
    result = subprocess.run(["systemd-analyze", "security", "--offline=true",
                             f"--threshold={EXPOSURE_THRESHOLD}", str(unit)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    measured = re.search(r"Overall exposure level for roomd\.service: (\d+\.\d)", result.stdout)
    assert measured is not None, result.stdout[-500:]
    documented = re.search(r"Overall exposure level for roomd\.service: (\d+\.\d)",
                           (ROOT / "docs" / "operations.md").read_text())
    assert documented is not None and documented.group(1) == measured.group(1)


def _roomd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "roomd.daemon.cli", *args],
                          capture_output=True, text=True, check=False, timeout=300)


def test_install_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    result = _roomd("service", "install", "--root", str(tmp_path), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        f"would create virtualenv {tmp_path}/opt/roomd/venv",
        f"would install roomd 0.1.0 into {tmp_path}/opt/roomd/venv from {lines[1].split(' from ')[1]}",
        f"would write unit {tmp_path}/etc/systemd/system/roomd.service",
        f"would write config {tmp_path}/etc/roomd/roomd.toml",
        f"would write secrets file {tmp_path}/etc/roomd/roomd.env (mode 0600, root)",
    ]
    assert lines[-1] == "dry run: 5 change(s) planned, none made"
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(["bash", str(ROOT / "packaging" / "build-deb.sh"), str(out)],
                            capture_output=True, text=True, check=False, timeout=300,
                            env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                 "PYTHON": sys.executable, "HOME": str(out)})
    assert result.returncode == 0, result.stderr[-2000:]
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.name == "roomd_0.1.0_all.deb" and path.exists()
    return path


def test_deb_holds_the_wheel_unit_conffile_and_secrets_template(deb: Path) -> None:
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    files = {line.split()[-1].removeprefix(".") for line in listing.splitlines()
             if line.startswith("-")}
    assert files == {
        "/etc/roomd/roomd.toml",
        "/lib/systemd/system/roomd.service",
        "/usr/share/roomd/roomd-0.1.0-py3-none-any.whl",
        "/usr/share/roomd/roomd.env.example",
        "/usr/share/doc/roomd/operations.md",
        # the playground's browser SDK, fetched from npm by packaging/web-client.sh
        *(f"/usr/share/roomd/web/livekit-client-{livekit_client_version()}/{name}"
          for name in ("livekit-client.umd.js", "LICENSE", "package.json")),
    }
    assert all(" root/root " in line for line in listing.splitlines())
    info = subprocess.run(["dpkg-deb", "-I", str(deb)], capture_output=True, text=True,
                          check=True).stdout
    assert "Package: roomd" in info and "Version: 0.1.0" in info
    assert "Architecture: all" in info and "python3-venv" in info
    assert subprocess.run(["dpkg-deb", "-f", str(deb), "Package"], capture_output=True,
                          text=True, check=True).stdout.strip() == "roomd"


def test_deb_maintainer_scripts_make_the_venv_and_the_secrets_file(deb: Path,
                                                                   tmp_path: Path) -> None:
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    assert (control / "conffiles").read_text().split() == ["/etc/roomd/roomd.toml"]
    postinst = (control / "postinst").read_text()
    assert "python3 -m venv /opt/roomd/venv" in postinst
    assert "pip install --quiet --upgrade /usr/share/roomd/roomd-0.1.0-py3-none-any.whl" in postinst
    assert "install -m 0600 -o root -g root" in postinst
    for script in ("postinst", "prerm", "postrm"):
        assert (control / script).stat().st_mode & 0o111, script
        subprocess.run(["sh", "-n", str(control / script)], check=True)

    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    assert (tree / "lib/systemd/system/roomd.service").read_text() == UNIT.read_text()
    with zipfile.ZipFile(tree / "usr/share/roomd/roomd-0.1.0-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
    assert {"roomd/daemon/ops/notify.py", "roomd/daemon/cli_service.py",
            "roomd/daemon/supervisor.py"} <= names
    assert any(name.endswith("entry_points.txt") for name in names)



def test_upgrade_restarts_a_running_daemon_instead_of_reloading_it(deb: Path,
                                                                  tmp_path: Path) -> None:
    # A reload would keep the old supervisor running the old code (tests/systemd upgrades
    # for real); the postinst must restart.
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    postinst = (control / "postinst").read_text()
    assert "systemctl try-restart roomd.service" in postinst
    assert "reload-or" not in postinst


def test_reload_deadlines_nest_daemon_inside_client_inside_unit() -> None:
    # systemd 252 bounds ExecReload= by TimeoutStartSec=: the daemon answers first, then
    # roomd reload reports it, and systemd only kills a daemon that is stuck.
    s = unit_settings()
    assert PREWARM_DEADLINE < RELOAD_CLIENT_TIMEOUT < int(s["TimeoutStartSec"][0])
    help_text = _roomd("reload", "--help").stdout
    assert re.search(rf"default:\s+{RELOAD_CLIENT_TIMEOUT}", help_text), help_text


def test_install_refuses_to_shadow_the_package_unit(tmp_path: Path) -> None:
    packaged = tmp_path / "lib/systemd/system/roomd.service"
    packaged.parent.mkdir(parents=True)
    packaged.write_text(UNIT.read_text())
    refused = _roomd("service", "install", "--root", str(tmp_path), "--dry-run")
    assert refused.returncode == 1
    assert "roomd package is installed" in refused.stderr and "--force" in refused.stderr
    assert not (tmp_path / "etc").exists()
    forced = _roomd("service", "install", "--root", str(tmp_path), "--dry-run", "--force")
    assert forced.returncode == 0, forced.stderr


def test_install_is_idempotent_and_never_overwrites_secrets(deb: Path, tmp_path: Path) -> None:
    # The wheel the .deb carries; --no-deps keeps pip off the network (the venv is not
    # meant to run here, only to prove the installer's steps).
    tree = tmp_path / "deb"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    wheel = tree / "usr/share/roomd/roomd-0.1.0-py3-none-any.whl"
    root = tmp_path / "root"
    args = ("service", "install", "--root", str(root), "--source", str(wheel),
            "--pip-arg=--no-deps", "--pip-arg=--no-index")
    first = _roomd(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.splitlines()[-1] == "done: 5 change(s)"
    venv_roomd = root / "opt/roomd/venv/bin/roomd"
    assert venv_roomd.exists()
    unit = (root / "etc/systemd/system/roomd.service").read_text()
    assert unit == render_unit("/opt/roomd/venv")
    env = root / "etc/roomd/roomd.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    env.write_text("LIVEKIT_API_SECRET=kept\n")
    config = root / "etc/roomd/roomd.toml"
    config.write_text(config.read_text() + "\n# edited by the operator\n")
    edited = config.read_text()

    again = _roomd(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == "done: 0 change(s)"
    assert env.read_text() == "LIVEKIT_API_SECRET=kept\n" and config.read_text() == edited

    env.chmod(0o644)  # someone loosened it: the installer puts it back
    fixed = _roomd(*args)
    assert fixed.stdout.splitlines()[-1] == "done: 1 change(s)"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
