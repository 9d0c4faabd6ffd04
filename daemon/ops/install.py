"""``roomd service install``: a virtualenv, the unit, the config and the secrets file.

The install is a list of steps, each knowing whether it is needed; ``--dry-run`` prints
them and stops, a real run applies only the needed ones. Nothing the operator may have
edited (roomd.toml, roomd.env with the secrets) is ever overwritten; the unit is ours and
is rewritten when it differs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, distribution
from importlib.metadata import version as dist_version
from pathlib import Path

import tomli_w

from roomd.daemon.config import Config

from .unit import CONFIG_PATH, ENV_FILE, render_unit

UNIT_PATH = "/etc/systemd/system/roomd.service"
# Where a distribution package (packaging/build-deb.sh) puts its unit. A unit in
# /etc/systemd/system overrides it entirely, package upgrades included.
PACKAGED_UNIT_PATHS = ("/lib/systemd/system/roomd.service", "/usr/lib/systemd/system/roomd.service")

ENV_TEMPLATE = """\
# Secrets for roomd (read by systemd as root; the service never reads this file itself).
# LIVEKIT_URL=wss://livekit.example.com
# LIVEKIT_API_KEY=
# LIVEKIT_API_SECRET=
"""

INSTALL_UMASK = 0o022
DIR_MODE = 0o755  # /etc/roomd, /opt/roomd, the unit's directory: readable, written by root only


def default_config_text() -> str:
    data = Config().masked()
    data.pop("livekit", None)  # credentials come from roomd.env
    return ("# roomd configuration: every key with its default (see docs/operations.md).\n"
            "# LiveKit URL and credentials are in /etc/roomd/roomd.env.\n"
            + tomli_w.dumps(data))


def default_source() -> str:
    """What pip should install: this roomd's project directory if it came from one,
    else the same version from the package index."""
    try:
        dist = distribution("roomd")
    except PackageNotFoundError:
        return "roomd"
    direct = dist.read_text("direct_url.json")
    if direct:
        url = str(json.loads(direct).get("url", ""))
        if url.startswith("file://"):
            return url.removeprefix("file://")
    return f"roomd=={dist.version}"


@dataclasses.dataclass(frozen=True)
class Layout:
    root: Path
    prefix: Path

    def at(self, absolute: str | Path) -> Path:
        """A system path inside the install root."""
        return self.root / str(absolute).lstrip("/")

    @property
    def is_live(self) -> bool:
        return self.root.resolve() == Path("/")

    @property
    def venv(self) -> Path:  # as systemd will see it
        return self.prefix / "venv"

    def packaged_unit(self) -> Path | None:
        """The unit a package installed under this root, if there is one."""
        for path in PACKAGED_UNIT_PATHS:
            if self.at(path).is_file():
                return self.at(path)
        return None

    @property
    def env_file(self) -> Path:
        return self.at(ENV_FILE)


@dataclasses.dataclass
class Step:
    text: str
    needed: bool
    action: Callable[[], None]

    def describe(self) -> str:
        return self.text if self.needed else f"keep {self.text.split(' ', 1)[1]} (up to date)"


class InstallPlan:
    def __init__(self, layout: Layout, *, source: str, pip_args: Sequence[str] = (),
                 python: str = sys.executable) -> None:
        self.layout = layout
        self._source = source
        self._pip_args = list(pip_args)
        self._python = python

    def steps(self) -> list[Step]:
        layout = self.layout
        venv = layout.at(layout.venv)
        vpython = venv / "bin" / "python"
        unit = render_unit(str(layout.venv))
        unit_path = layout.at(UNIT_PATH)
        unit_needed = _read(unit_path) != unit
        steps = [
            Step(f"create virtualenv {venv}", not vpython.exists(),
                 lambda: _run([self._python, "-m", "venv", str(venv)])),
            Step(f"install roomd {dist_version('roomd')} into {venv} from {self._source}",
                 _installed_version(vpython) != dist_version("roomd"),
                 lambda: _run([str(vpython), "-m", "pip", "install", "--quiet",
                               *self._pip_args, self._source])),
            Step(f"write unit {unit_path}", unit_needed,
                 lambda: _write(unit_path, unit, 0o644)),
            Step(f"write config {layout.at(CONFIG_PATH)}", not layout.at(CONFIG_PATH).exists(),
                 lambda: _write(layout.at(CONFIG_PATH), default_config_text(), 0o644)),
            Step(f"write secrets file {layout.env_file} (mode 0600, root)",
                 not layout.env_file.exists(),
                 lambda: _write(layout.env_file, ENV_TEMPLATE, 0o600, root_owned=layout.is_live)),
        ]
        if layout.env_file.exists() and (layout.env_file.stat().st_mode & 0o077):
            steps.append(Step(f"restrict {layout.env_file} to mode 0600", True,
                              lambda: layout.env_file.chmod(0o600)))
        if layout.is_live and shutil.which("systemctl"):
            steps.append(Step("run systemctl daemon-reload", unit_needed,
                              lambda: _run(["systemctl", "daemon-reload"])))
        return steps

    def apply(self, steps: list[Step], echo: Callable[[str], None]) -> int:
        changed = 0
        # The caller's umask (000 in some shells and provisioning tools) must not decide who
        # may read the venv and the config: everything we create gets the usual modes.
        previous = os.umask(INSTALL_UMASK)
        try:
            for step in steps:
                if step.needed:
                    echo(step.text)
                    step.action()
                    changed += 1
        finally:
            os.umask(previous)
        return changed


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('roomd'))"],
        capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _run(command: list[str]) -> None:
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {result.returncode}")


def _make_dirs(directory: Path, mode: int = DIR_MODE) -> None:
    """Create ``directory`` and missing parents with exactly ``mode`` (whatever the umask)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        os.chmod(path, mode)


def _write(path: Path, text: str, mode: int, *, root_owned: bool = False) -> None:
    _make_dirs(path.parent)
    # Created with its final mode: the secrets file is never readable by others, not even
    # between open() and chmod().
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    if root_owned:
        os.chown(path, 0, 0)
