"""``roomd reload`` and ``roomd service install``: the daemon as a system service.

``reload`` is what the unit's ``ExecReload=`` runs: it asks the running daemon (POST
/reload on its loopback HTTP address) and returns only once the reload is finished, so
``systemctl reload roomd`` means "done" rather than "signal sent". It finds the daemon
through the runtime file the daemon wrote (``$RUNTIME_DIRECTORY/daemon.json``), so an
edited ``daemon.http_port`` does not hide the daemon still bound to the old one. Exit
codes: 0 the reload succeeded, 1 it failed (the daemon says why, or the daemon runs
another version than the one installed), 2 no daemon could be reached (or
usage/configuration error).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from importlib.metadata import version as dist_version
from pathlib import Path

import click

from .cli_config import config_or_exit, daemon_url
from roomd.ipc.exits import EXIT_FAILURE, EXIT_OK, EXIT_UNREACHABLE

from .ops.deadlines import RELOAD_CLIENT_TIMEOUT
from .ops.install import UNIT_PATH, InstallPlan, Layout, default_source
from .ops.runtime_file import DEFAULT_DIRECTORY, FILE_NAME, read_runtime_file, runtime_directory


@click.command("reload")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The daemon's configuration file (its HTTP address, when no runtime file "
                   "says where the daemon is).")
@click.option("--url", help="The daemon's reload URL (default: from the runtime file, else the "
                            "configuration).")
@click.option("--runtime-dir", type=click.Path(file_okay=False),
              help=f"Where the running daemon wrote {FILE_NAME} (default: $RUNTIME_DIRECTORY, "
                   f"else {DEFAULT_DIRECTORY}).")
@click.option("--timeout", type=float, default=RELOAD_CLIENT_TIMEOUT, show_default=True,
              help="Seconds to wait for the reload to finish.")
def reload_command(config_path: str | None, url: str | None, runtime_dir: str | None,
                   timeout: float) -> None:
    """Reload the running daemon's configuration and plugins; wait until it is done."""
    if url is None:
        url = _running_daemon_url(config_path, runtime_dir)
    # A JSON body is what the daemon asks for: a browser page cannot send one cross-origin
    # without a CORS preflight, which the daemon never grants.
    request = urllib.request.Request(url, data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as exc:  # 409: the reload ran and failed; 403: not loopback
        body = exc.read()
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        click.echo(f"roomd reload: cannot reach the daemon at {url}: {reason}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    try:
        answer = json.loads(body)
        ok, generation, detail = bool(answer["ok"]), int(answer["generation"]), str(answer["detail"])
    except (ValueError, KeyError, TypeError):
        click.echo(f"roomd reload: unexpected answer from {url}: {body[:200]!r}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    click.echo(f"reload {'ok' if ok else 'failed'}: generation {generation}: {detail}")
    sys.exit(EXIT_OK if ok else EXIT_FAILURE)


def _running_daemon_url(config_path: str | None, runtime_dir: str | None) -> str:
    """The running daemon's reload URL: its runtime file first, the configuration second.

    The file names the address the daemon bound, which an edited configuration may no
    longer say, and the version it runs: a reload cannot turn one version into another.
    """
    directory = Path(runtime_dir) if runtime_dir else runtime_directory() or Path(DEFAULT_DIRECTORY)
    info = read_runtime_file(directory)
    if info is not None:
        installed = dist_version("roomd")
        if info.version != installed:
            click.echo(f"roomd reload: the running daemon (pid {info.pid}) is roomd {info.version} "
                       f"but {installed} is installed; a reload cannot change versions: restart "
                       "it (systemctl restart roomd)", err=True)
            sys.exit(EXIT_FAILURE)
        return info.url + "/reload"
    config = config_or_exit(config_path, needs_server=False)
    if config.daemon.http_port == 0:
        click.echo("roomd reload: daemon.http_port is 0 (a random port) and no runtime file "
                   f"in {directory}; pass --url", err=True)
        sys.exit(EXIT_UNREACHABLE)
    return daemon_url(config, "/reload")


@click.group("service")
def service_group() -> None:
    """Install roomd as a systemd service."""


@service_group.command("install")
@click.option("--prefix", default="/opt/roomd", show_default=True,
              help="Where the virtualenv goes (PREFIX/venv).")
@click.option("--root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="Install into this directory tree instead of / (staging; no systemctl).")
@click.option("--source", help="What pip installs: a wheel, a directory or a requirement "
                               "(default: where this roomd came from).")
@click.option("--pip-arg", "pip_args", multiple=True,
              help="Extra pip argument, e.g. --pip-arg=--index-url=URL (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--force", is_flag=True,
              help="Install even though the roomd package's unit exists (ours shadows it).")
def service_install(prefix: str, root: str, source: str | None, pip_args: tuple[str, ...],
                    dry_run: bool, force: bool) -> None:
    """Set up PREFIX/venv, the unit, /etc/roomd/roomd.toml and /etc/roomd/roomd.env (0600).

    Idempotent: existing configuration and secrets are never overwritten; a second run
    changes nothing it does not need to. Refused where the Debian package is installed:
    its unit would be shadowed by ours and its upgrades would no longer apply.
    """
    layout = Layout(root=Path(root), prefix=Path(prefix))
    packaged = layout.packaged_unit()
    if packaged is not None and not force:
        click.echo(f"roomd service install: the roomd package is installed ({packaged}); a unit "
                   f"in {UNIT_PATH} would shadow it and hide its upgrades. Upgrade the package "
                   "instead (apt install ./roomd_<version>_all.deb), or pass --force.", err=True)
        sys.exit(EXIT_FAILURE)
    plan = InstallPlan(layout, source=source or default_source(), pip_args=pip_args)
    steps = plan.steps()
    for step in steps:
        click.echo(("would " if dry_run else "") + step.describe())
    if dry_run:
        click.echo(f"dry run: {sum(1 for s in steps if s.needed)} change(s) planned, none made")
        return
    try:
        changed = plan.apply(steps, echo=click.echo)
    except (OSError, RuntimeError) as exc:
        click.echo(f"roomd service install: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo(f"done: {changed} change(s)")
    if plan.layout.is_live:
        click.echo("next: put LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET in "
                   f"{layout.env_file}, then: systemctl enable --now roomd")


def add_service_commands(main: click.Group) -> None:
    main.add_command(reload_command)
    main.add_command(service_group)
