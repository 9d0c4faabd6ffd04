"""Where the running daemon can be reached: ``$RUNTIME_DIRECTORY/daemon.json``.

The daemon writes it once its HTTP endpoint is bound (and removes it when it stops);
``roomd reload`` reads it to find the daemon that is running rather than the one the
configuration file describes now: the file may have been edited since (a new
``daemon.http_port``), and only the running daemon knows the address it bound.

Under systemd, ``RuntimeDirectory=roomd`` gives ``/run/roomd`` and the variable to every
``Exec*=`` command; systemd removes the directory when the service stops. Outside systemd
the variable is usually unset and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

FILE_NAME = "daemon.json"
DEFAULT_DIRECTORY = "/run/roomd"  # RuntimeDirectory=roomd, for an operator's shell


class RuntimeInfo(msgspec.Struct, frozen=True, kw_only=True):
    pid: int
    version: str
    url: str  # the base URL of the HTTP endpoint as bound, e.g. http://127.0.0.1:8081


def loopback_url(host: str, port: int) -> str:
    """The base URL a local client uses for a listener on ``host``:``port``.

    A wildcard listener also answers on loopback, the only place ``/reload`` is obeyed.
    """
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def runtime_directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """The service's runtime directory from ``$RUNTIME_DIRECTORY`` (the first of several)."""
    value = (os.environ if environ is None else environ).get("RUNTIME_DIRECTORY", "")
    first = value.split(":", 1)[0]
    return Path(first) if first else None


def write_runtime_file(directory: Path, info: RuntimeInfo) -> Path:
    """Write atomically: a reader never sees half a file."""
    path = directory / FILE_NAME
    partial = directory / f".{FILE_NAME}.{info.pid}"
    partial.write_bytes(msgspec.json.encode(info))
    os.replace(partial, path)
    return path


def remove_runtime_file(directory: Path, pid: int) -> None:
    """Remove the file if it is still ours (a newer daemon may have replaced it)."""
    info = read_runtime_file(directory, check_alive=False)
    if info is not None and info.pid == pid:
        (directory / FILE_NAME).unlink(missing_ok=True)


def read_runtime_file(directory: Path, *, check_alive: bool = True) -> RuntimeInfo | None:
    """The running daemon's card, or None: no file, an unreadable one, or a dead pid."""
    try:
        info = msgspec.json.decode((directory / FILE_NAME).read_bytes(), type=RuntimeInfo)
    except (OSError, msgspec.ValidationError, msgspec.DecodeError):
        return None
    if check_alive and not _alive(info.pid):
        return None  # left behind by a daemon that was killed
    return info



def _alive(pid: int) -> bool:
    # Not psutil.pid_exists: it also looks in /proc, which ProtectProc=invisible with
    # PrivateUsers= empties of every other process, the daemon included, for ExecReload.
    # pidfd_open(2) needs no permission on the process, only that it exists.
    try:
        os.close(os.pidfd_open(pid))
    except ProcessLookupError:
        return False
    except OSError:
        return True  # no pidfd support: trust the file rather than refuse to reload
    return True
