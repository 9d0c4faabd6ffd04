"""A booted Debian 12 under ``systemd-nspawn``: a real systemd 252 to run roomd's unit in.

The root comes from ``packaging/nspawn-root.sh`` (built once, cached). Each boot mounts it
read-only with a tmpfs overlay (``--volatile=overlay``), so nothing a test does survives
the container and the cached root stays clean. There is no machined or system bus on the
host, hence ``--register=no --keep-unit``; commands run inside through ``nsenter`` into
the container's PID 1, with a clean environment (the host's PIP_* and PATH stay out).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
from roomd.daemon.devserver import DevServerAddress

REPO = Path(__file__).resolve().parents[2]
SHARE = "/srv/roomd-test"  # where the host's build directory is bound inside (read-only)
# pip inside installs from the wheelhouse the fixture made on the host: no index needed.
PIP_OFFLINE = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": f"{SHARE}/wheels",
               "PIP_DISABLE_PIP_VERSION_CHECK": "1", "DEBIAN_FRONTEND": "noninteractive"}
_INSIDE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}


class ContainerError(RuntimeError):
    """The container could not be built, booted or driven; the message says which step."""


@dataclass(frozen=True)
class Result:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Result:
        if self.returncode != 0:
            raise AssertionError(f"{' '.join(self.args)} exited {self.returncode}:\n"
                                 f"{self.stdout[-3000:]}\n{self.stderr[-3000:]}")
        return self


def build_root() -> Path:
    """The cached root's path (built now if its recipe changed); ``ContainerError`` if not."""
    proc = subprocess.run(["bash", str(REPO / "packaging" / "nspawn-root.sh")],
                          capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL,
                          check=False)
    if proc.returncode != 0:
        raise ContainerError(f"packaging/nspawn-root.sh failed ({proc.returncode}):\n"
                             f"{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


class Container:
    def __init__(self, root: Path, share: Path, log_path: Path) -> None:
        self.root = root
        self.share = share
        self.log_path = log_path
        self._nspawn: subprocess.Popen[bytes] | None = None
        self.init_pid = 0

    # -- lifetime -------------------------------------------------------------------------
    def boot(self, timeout: float = 90) -> None:
        env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
        with open(self.log_path, "wb") as log:
            self._nspawn = subprocess.Popen(
                ["systemd-nspawn", "--quiet", "-D", str(self.root), "-b", "--register=no",
                 "--keep-unit", "--volatile=overlay", "--console=read-only",
                 f"--bind-ro={self.share}:{SHARE}",
                 # Unique per boot: nspawn keeps per-machine state under /run/systemd/nspawn.
                 f"--machine=roomd-test-{os.getpid()}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.init_pid:
            self._check_alive()
            self.init_pid = self._find_init()
            if time.monotonic() > deadline:
                raise ContainerError("no systemd inside the container:\n" + self.console_tail())
            time.sleep(0.1)
        # "degraded" is fine (a unit we never use may fail in a container); wait for either.
        while True:
            state = self.run(["systemctl", "is-system-running", "--wait"], timeout=timeout).stdout
            if state.strip() in ("running", "degraded"):
                return
            if time.monotonic() > deadline:
                raise ContainerError(f"boot did not finish ({state.strip()}):\n" + self.console_tail())
            time.sleep(0.5)

    def _check_alive(self) -> None:
        assert self._nspawn is not None
        if self._nspawn.poll() is not None:
            raise ContainerError(f"systemd-nspawn exited {self._nspawn.returncode}:\n"
                                 + self.console_tail())

    def _find_init(self) -> int:
        """PID 1 of the container, as the host sees it: nspawn's child running systemd."""
        assert self._nspawn is not None
        try:
            for child in psutil.Process(self._nspawn.pid).children(recursive=True):
                if child.name() == "systemd" and child.ppid() == self._nspawn.pid:
                    return int(child.pid)
        except psutil.NoSuchProcess:
            pass
        return 0

    def poweroff(self, timeout: float = 30) -> None:
        """SIGTERM to nspawn (it asks the container's systemd to power off); SIGKILL if stuck."""
        proc, self._nspawn = self._nspawn, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def console_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- commands inside ------------------------------------------------------------------
    def run(self, args: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float = 120, input: str | None = None) -> Result:
        self._check_alive()
        full = ["nsenter", "-t", str(self.init_pid), "-a", "env", "-i",
                *(f"{k}={v}" for k, v in {**_INSIDE_ENV, **(env or {})}.items()), *args]
        try:
            proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                                  input=input, stdin=None if input is not None else subprocess.DEVNULL,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"{' '.join(args)} did not finish in {timeout}s") from exc
        return Result(list(args), proc.returncode, proc.stdout, proc.stderr)

    def sh(self, script: str, **kwargs: object) -> Result:
        return self.run(["sh", "-c", script], **kwargs)  # type: ignore[arg-type]

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        self.run(["sh", "-c", f'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod {mode} "$1"',
                  "write", path], input=text).check()

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run(["systemctl", "show", unit, *(f"--property={p}" for p in props)]).check()
        return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)

    def journal(self, unit: str, *extra: str) -> list[dict[str, str]]:
        """The unit's journal entries (JSON export), oldest first."""
        out = self.run(["journalctl", "-u", unit, "-o", "json", "--no-pager", *extra]).check()
        entries = []
        for line in out.stdout.splitlines():
            entry = json.loads(line)
            message = entry.get("MESSAGE")
            if isinstance(message, list):  # non-UTF-8 bytes come as a list of ints
                entry["MESSAGE"] = bytes(message).decode(errors="replace")
            entries.append(entry)
        return entries


@dataclass
class Installed:
    """The container with roomd installed and configured, and what the tests need to know."""

    box: Container
    server: DevServerAddress
    http_port: int
    deb: str            # path inside the container
    upgrade_deb: str    # the same checkout at a bumped version
    upgrade_version: str
    version: str

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def set_http_port(self, port: int) -> None:
        self.box.run(["sed", "-i", f"s/^http_port = .*/http_port = {port}/",
                      "/etc/roomd/roomd.toml"]).check()
