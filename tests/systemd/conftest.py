"""One booted Debian 12 with roomd installed from its .deb, shared by a test module.

The root is built once and cached (``packaging/nspawn-root.sh``); each module boots it
afresh on a throwaway overlay, installs the package with apt exactly as an operator would
(``apt-get install ./roomd_<version>_all.deb``), points ``/etc/roomd/roomd.env`` at the
session's ``livekit-server --dev`` on the host's 127.0.0.1 (the container shares the host's
network) and installs the probe plugin into the service's venv. pip inside installs from a
wheelhouse made on the host (same Debian, same Python), so the boot needs no index.

Under CI=true a container that cannot be built or booted fails the run; elsewhere the
tests skip with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from roomd.daemon.devserver import DevServerAddress, free_tcp_port

sys.path.insert(0, str(Path(__file__).parent))

from container import (
    PIP_OFFLINE,
    REPO,
    SHARE,
    Container,
    ContainerError,
    Installed,
    build_root,
)

WHEELHOUSE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "roomd" / "nspawn" / "wheels"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"a booted systemd is required in CI but unavailable: {reason}")
    pytest.skip(f"no booted systemd: {reason}")


@pytest.fixture(scope="session")
def nspawn_root() -> Path:
    if os.geteuid() != 0:
        _unavailable("systemd-nspawn needs root")
    try:
        return build_root()
    except (ContainerError, subprocess.TimeoutExpired, OSError) as exc:
        _unavailable(str(exc))
        raise  # unreachable: skip/fail raise


def _host_python() -> str:
    return sys.executable


def build_deb(source: Path, out: Path) -> Path:
    proc = subprocess.run(["bash", str(source / "packaging" / "build-deb.sh"), str(out)],
                          capture_output=True, text=True, env={**os.environ, "PYTHON": _host_python()},
                          timeout=600, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"build-deb.sh failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def bumped_checkout(version: str, into: Path) -> Path:
    """A copy of this checkout whose version is ``version`` (the upgrade's new release)."""
    copy = into / "roomd-src"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", "dist", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    pyproject = copy / "pyproject.toml"
    text, count = re.subn(r'(?m)^version = "[^"]+"', f'version = "{version}"', pyproject.read_text(), 1)
    assert count == 1, "pyproject.toml has no version line"
    pyproject.write_text(text)
    return copy


def fill_wheelhouse(wheels: list[Path], share: Path) -> None:
    """Every wheel the package needs, from the cache; pip fetches what is missing once."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    # Our own wheels change without a version bump: pip download would take a cached file of
    # the same name (and its old dependencies) for the new one, so they never stay cached.
    ours = [WHEELHOUSE / wheel.name for wheel in wheels]
    for cached in ours:
        cached.unlink(missing_ok=True)
    args = [_host_python(), "-m", "pip", "download", "--quiet", "--only-binary=:all:",
            "--dest", str(WHEELHOUSE), *map(str, wheels)]
    offline = subprocess.run([*args, "--no-index", "--find-links", str(WHEELHOUSE)],
                             capture_output=True, text=True, timeout=300, check=False)
    if offline.returncode != 0:
        subprocess.run(args, capture_output=True, text=True, timeout=900, check=True)
    for cached in ours:
        cached.unlink(missing_ok=True)
    target = share / "wheels"
    shutil.copytree(WHEELHOUSE, target, dirs_exist_ok=True)
    for wheel in wheels:
        shutil.copy2(wheel, target / wheel.name)


def _pyproject_version(source: Path) -> str:
    match = re.search(r'(?m)^version = "([^"]+)"', (source / "pyproject.toml").read_text())
    assert match
    return match.group(1)


@pytest.fixture(scope="module")
def installed(nspawn_root: Path, livekit_server: DevServerAddress) -> Iterator[Installed]:
    with tempfile.TemporaryDirectory(prefix="roomd-sysd-") as tmp:
        share = Path(tmp) / "share"
        share.mkdir()
        version = _pyproject_version(REPO)
        upgrade_version = version + ".post1"
        deb = build_deb(REPO, share)
        upgrade_deb = build_deb(bumped_checkout(upgrade_version, Path(tmp)), share)
        wheels = Path(tmp) / "built"
        subprocess.run([_host_python(), "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--no-build-isolation", "--wheel-dir", str(wheels),
                        str(REPO / "plugins" / "examples" / "probe")],
                       check=True, capture_output=True, timeout=300)
        roomd_wheel = _wheel_in(deb, Path(tmp) / "deb")
        fill_wheelhouse([roomd_wheel, *wheels.glob("*.whl")], share)
        # The upgrade's wheel too: a test installs it behind the running daemon's back.
        shutil.copy2(_wheel_in(upgrade_deb, Path(tmp) / "upgrade-deb"), share / "wheels")

        box = Container(nspawn_root, share, Path(tmp) / "console.log")
        try:
            try:
                box.boot()
            except ContainerError as exc:
                _unavailable(str(exc))
            port = free_tcp_port()
            box.run(["apt-get", "install", "-y", "-q", f"{SHARE}/{deb.name}"],
                    env=PIP_OFFLINE, timeout=600).check()
            box.write("/etc/roomd/roomd.env",
                      f"LIVEKIT_URL={livekit_server.url}\nLIVEKIT_API_KEY={livekit_server.api_key}\n"
                      f"LIVEKIT_API_SECRET={livekit_server.api_secret}\n", mode="0600")
            box.run(["/opt/roomd/venv/bin/pip", "install", "--quiet", "roomd-example-probe"],
                    env=PIP_OFFLINE, timeout=300).check()
            result = Installed(box, livekit_server, port, f"{SHARE}/{deb.name}",
                               f"{SHARE}/{upgrade_deb.name}", upgrade_version, version)
            result.set_http_port(port)
            yield result
        finally:
            _keep_journal(box)
            box.poweroff()


def _wheel_in(deb: Path, into: Path) -> Path:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)
    return next((into / "usr" / "share" / "roomd").glob("*.whl"))


def _keep_journal(box: Container) -> None:
    """The run's journal of roomd, for docs/operations.md and for reading after a failure."""
    if not box.init_pid:
        return
    try:
        text = box.run(["journalctl", "-u", "roomd", "-o", "short-iso", "--no-pager"], timeout=30).stdout
    except (AssertionError, ContainerError):
        return
    path = Path(os.environ.get("ROOMD_SYSTEMD_JOURNAL", Path(tempfile.gettempdir()) / "roomd-systemd-journal.txt"))
    path.write_text(text)
