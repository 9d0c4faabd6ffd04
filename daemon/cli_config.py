"""Loading the configuration for a ``roomd`` command: a bad file is one line and exit 2."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import click

from roomd.ipc.exits import EXIT_USAGE

from .config import Config, ConfigError, load_config
from .ops.runtime_file import loopback_url


def config_or_exit(path: str | None, overrides: Mapping[str, Any] | None = None, *,
                   needs_server: bool = True) -> Config:
    """The effective configuration, or exit 2 with the error.

    ``needs_server=False`` is for commands that never talk to a LiveKit server (plugins,
    reload): they do not demand its URL and credentials, the check dev mode also skips;
    everything else is validated as for ``run``.
    """
    layered = dict(overrides or {})
    if not needs_server:
        layered["daemon.dev"] = True
    try:
        return load_config(path, overrides=layered)
    except ConfigError as exc:
        click.echo(f"roomd: configuration error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def daemon_url(config: Config, path: str) -> str:
    """Where a command reaches the running daemon's HTTP endpoint (``path`` like "/status")."""
    return loopback_url(config.daemon.http_host, config.daemon.http_port) + path
