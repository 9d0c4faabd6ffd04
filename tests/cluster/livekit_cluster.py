"""A LiveKit cluster on 127.0.0.1: Debian's redis-server and livekit-server nodes sharing it.

Each node gets a multi-node YAML config written here (the Redis address, its own HTTP,
RTC TCP and UDP range ports, the same API keys, node IP 127.0.0.1) and logs JSON to a file,
from which the node's id is read: rooms are placed on a node by passing that id to
``CreateRoom``. Everything started here is stopped by its PID in ``stop()``.

Used by tests/cluster/ and by benchmarks/cluster.py.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from roomd.daemon.devserver import (
    DEV_API_KEY,
    DEV_API_SECRET,
    DevServerAddress,
    DevServerError,
    ensure_binary,
    free_tcp_port,
)

UDP_PORTS_PER_NODE = 64  # one per WebRTC connection on the node: callers and agents
READY_TIMEOUT = 30.0


class ClusterError(RuntimeError):
    """Redis or a node could not be found or started."""


def free_udp_range(count: int, exclude: set[int]) -> int:
    """The first port of ``count`` consecutive free UDP ports on 127.0.0.1, none in ``exclude``."""
    for base in range(40000, 60000, count):
        ports = range(base, base + count)
        if exclude.intersection(ports):
            continue
        sockets: list[socket.socket] = []
        try:
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise ClusterError(f"no {count} consecutive free UDP ports between 40000 and 60000")


class Process:
    """A child process with its output in a log file, stopped by its PID."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise ClusterError(f"{self.name} exited with {self.popen.returncode}; its log "
                               f"({self.log_path}) ends:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def _wait(what: str, process: Process, ready: Callable[[], bool],
          timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.check_alive()
        if ready():
            return
        time.sleep(0.05)  # a starting server has no way to tell us; a short poll
    raise ClusterError(f"{what} not ready within {timeout}s; log ends:\n{process.tail()}")


def start_redis(directory: Path) -> tuple[Process, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ClusterError("redis-server is not installed (packaging/devenv.sh installs "
                           "Debian's redis-server)")
    port = free_tcp_port()
    # No persistence (no RDB snapshots, no AOF), loopback only, nothing left on disk.
    process = Process("redis-server", [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(directory), "--daemonize", "no", "--logfile", "",
    ], directory / "redis.log")

    def pong() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    _wait("redis-server", process, pong)
    return process, port


@dataclasses.dataclass(frozen=True)
class NodePorts:
    http: int
    rtc_tcp: int
    udp_start: int
    udp_end: int


def node_config(ports: NodePorts, redis_port: int) -> str:
    return (
        f"port: {ports.http}\n"
        "bind_addresses: [\"127.0.0.1\"]\n"
        "rtc:\n"
        f"  tcp_port: {ports.rtc_tcp}\n"
        f"  port_range_start: {ports.udp_start}\n"
        f"  port_range_end: {ports.udp_end}\n"
        "  use_external_ip: false\n"
        "  node_ip: 127.0.0.1\n"
        "  enable_loopback_candidate: true\n"
        "redis:\n"
        f"  address: 127.0.0.1:{redis_port}\n"
        "keys:\n"
        f"  {DEV_API_KEY}: {DEV_API_SECRET}\n"
        "logging:\n"
        "  json: true\n"
        "  level: info\n"
    )


class Node:
    """One livekit-server of the cluster."""

    def __init__(self, name: str, process: Process, address: DevServerAddress) -> None:
        self.name = name
        self.process = process
        self.address = address
        self.node_id = ""

    def log_events(self) -> list[dict[str, object]]:
        events = []
        for line in self.process.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    def log_lines(self, message: str) -> list[dict[str, object]]:
        return [e for e in self.log_events() if e.get("msg") == message]

    def _ready(self) -> bool:
        if not self.node_id:
            started = self.log_lines("starting LiveKit server")
            self.node_id = str(started[0].get("nodeID", "")) if started else ""
        if not self.node_id:
            return False
        try:
            with urllib.request.urlopen(self.address.http_url + "/", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False


class LiveKitCluster:
    """Redis plus ``nodes`` livekit-server processes sharing it; ``stop()`` ends them all."""

    def __init__(self, directory: Path, nodes: int = 2) -> None:
        self.directory = directory
        self._count = nodes
        self.redis: Process | None = None
        self.redis_port = 0
        self.nodes: list[Node] = []

    def start(self) -> LiveKitCluster:
        try:
            binary = ensure_binary()
        except DevServerError as exc:
            raise ClusterError(f"livekit-server unavailable: {exc}") from None
        try:
            self.redis, self.redis_port = start_redis(self.directory)
            used: set[int] = set()
            for index in range(self._count):
                self.nodes.append(self._start_node(binary, f"node{index}", used))
            for node in self.nodes:
                _wait(f"livekit-server {node.name}", node.process, node._ready)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, binary: Path, name: str, used: set[int]) -> Node:
        http, rtc_tcp = free_tcp_port(), free_tcp_port()
        udp = free_udp_range(UDP_PORTS_PER_NODE, used)
        used.update(range(udp, udp + UDP_PORTS_PER_NODE))
        ports = NodePorts(http, rtc_tcp, udp, udp + UDP_PORTS_PER_NODE - 1)
        config = self.directory / f"{name}.yaml"
        config.write_text(node_config(ports, self.redis_port))
        process = Process(f"livekit-server {name}", [str(binary), "--config", str(config)],
                          self.directory / f"{name}.log")
        address = DevServerAddress(f"ws://127.0.0.1:{http}", DEV_API_KEY, DEV_API_SECRET)
        return Node(name, process, address)

    def stop(self) -> None:
        for node in self.nodes:
            node.process.stop()
        if self.redis is not None:
            self.redis.stop()
