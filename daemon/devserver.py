"""A local ``livekit-server --dev`` for tests and for ``roomd run --dev``.

The binary comes from the Go module proxy at a pinned version, built once into the
user's cache directory. Everything binds to 127.0.0.1. Tests take free ports, so
several sessions run side by side; ``roomd run --dev`` prefers LiveKit's usual 7880, so
``roomd console`` in another terminal finds it without being told where it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgspec
import structlog

from roomd.ipc.urls import http_url

from .config import Config, LiveKitConfig

LIVEKIT_SERVER_MODULE = "github.com/livekit/livekit-server/cmd/server"
LIVEKIT_SERVER_VERSION = "v1.13.5"
DEV_API_KEY = "devkey"
# The secret `--dev` would use is too short for some JWT libraries; we pass our own keys.
DEV_API_SECRET = "roomd-dev-secret-roomd-dev-secret-0123456789"
# livekit-server's default port, where LiveKit users look for a local server.
DEV_PORT = 7880

log = structlog.get_logger("roomd.devserver")


class DevServerError(RuntimeError):
    """The dev server could not be found, built or started."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "roomd"


def find_binary() -> Path | None:
    """``livekit-server`` on PATH, else the one built into the roomd cache dir."""
    on_path = shutil.which("livekit-server")
    if on_path:
        return Path(on_path)
    cached = cache_dir() / "bin" / "livekit-server"
    return cached if cached.exists() else None


def build_binary() -> Path:
    """Build the pinned server with ``go install`` into the cache dir (a few minutes, once)."""
    go = shutil.which("go")
    if go is None:
        raise DevServerError(
            "livekit-server is not installed and Go is not on PATH to build it; "
            f"install Go, or put livekit-server {LIVEKIT_SERVER_VERSION} on PATH"
        )
    bin_dir = cache_dir() / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(bin_dir))
    result = subprocess.run(
        [go, "install", f"{LIVEKIT_SERVER_MODULE}@{LIVEKIT_SERVER_VERSION}"],
        env=env, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise DevServerError(f"go install of livekit-server failed:\n{result.stderr.strip()}")
    built = bin_dir / "server"
    target = bin_dir / "livekit-server"
    built.replace(target)
    return target


def ensure_binary() -> Path:
    return find_binary() or build_binary()


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tcp_port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As a server binds (Go sets it): a port left in TIME_WAIT by the last run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def find_running_dev_server(port: int = DEV_PORT) -> DevServerAddress | None:
    """A dev server started by ``roomd run --dev`` on ``port``, if one answers there."""
    address = DevServerAddress(f"ws://127.0.0.1:{port}", DEV_API_KEY, DEV_API_SECRET)
    try:
        with urllib.request.urlopen(address.http_url + "/", timeout=1) as response:
            return address if response.status == 200 else None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class DevServerAddress:
    url: str  # ws://127.0.0.1:<port>
    api_key: str
    api_secret: str

    @property
    def http_url(self) -> str:
        return http_url(self.url)


class DevServer:
    """A running ``livekit-server --dev``; use as a context manager or call start/stop."""

    def __init__(self, binary: Path | None = None, *, log_path: Path | None = None,
                 port: int | None = None) -> None:
        self._binary = binary
        self._port = port
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: object | None = None
        self.address: DevServerAddress | None = None

    def start(self, *, ready_timeout: float = 30.0) -> DevServerAddress:
        binary = self._binary or ensure_binary()
        port = self._port or free_tcp_port()
        rtc_tcp = free_tcp_port()
        udp = free_udp_port()
        config = (
            f"port: {port}\n"
            "rtc:\n"
            f"  tcp_port: {rtc_tcp}\n"
            f"  udp_port: {udp}\n"
            "  use_external_ip: false\n"
            "  node_ip: 127.0.0.1\n"
            "  enable_loopback_candidate: true\n"
            "keys:\n"
            f"  {DEV_API_KEY}: {DEV_API_SECRET}\n"
        )
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="livekit-server-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        log_file = open(self._log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log_file = log_file
        self._process = subprocess.Popen(
            [str(binary), "--dev", "--bind", "127.0.0.1", "--node-ip", "127.0.0.1",
             "--config-body", config],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self.address = DevServerAddress(f"ws://127.0.0.1:{port}", DEV_API_KEY, DEV_API_SECRET)
        self._wait_ready(ready_timeout)
        return self.address

    def _wait_ready(self, timeout: float) -> None:
        assert self.address is not None and self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DevServerError(
                    f"livekit-server exited with {self._process.returncode}; log: {self._log_path}\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(self.address.http_url + "/", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.stop()
        raise DevServerError(f"livekit-server did not answer within {timeout}s; log: {self._log_path}")

    @property
    def log_path(self) -> Path | None:
        """Where the server's own log goes (its "job ended" lines are the server's record)."""
        return self._log_path

    def log_tail(self, lines: int = 30) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None

    def __enter__(self) -> DevServerAddress:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def dev_server_for(config: Config) -> Iterator[Config]:
    """``config`` as it is, or in dev mode without a URL, pointed at a dev server we run.

    Raises ``DevServerError`` when the server cannot be found, built or started.
    """
    if not config.daemon.dev or config.livekit.url:
        yield config
        return
    server = DevServer(port=DEV_PORT if tcp_port_is_free(DEV_PORT) else None)
    address = server.start()
    log.info("started local livekit-server --dev", url=address.url, api_key=address.api_key,
             talk_to_an_agent="roomd console --agent-name NAME"
             + ("" if address.url.endswith(f":{DEV_PORT}") else f" --url {address.url}"))
    try:
        yield msgspec.structs.replace(config, livekit=LiveKitConfig(
            url=address.url, api_key=address.api_key, api_secret=address.api_secret))
    finally:
        server.stop()
