"""``roomd reload`` and ``roomd service install``: the daemon as a system service.

``reload`` is what the unit's ``ExecReload=`` runs: it asks the running daemon (POST
/reload on its loopback HTTP address) and returns only once the reload is finished, so
``systemctl reload roomd`` means "done" rather than "signal sent". Exit codes: 0 the
reload succeeded, 1 it failed (the daemon says why), 2 no daemon could be reached (or
usage/configuration error).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import click

from .cli_config import config_or_exit, daemon_url
from .ops.install import InstallPlan, Layout, default_source

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_UNREACHABLE = 2
RELOAD_TIMEOUT = 900.0  # a reload prewarms a new generation: initialize timeouts and backoffs


@click.command("reload")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The daemon's configuration file (for its HTTP address).")
@click.option("--url", help="The daemon's reload URL (default: from the configuration).")
@click.option("--timeout", type=float, default=RELOAD_TIMEOUT, show_default=True,
              help="Seconds to wait for the reload to finish.")
def reload_command(config_path: str | None, url: str | None, timeout: float) -> None:
    """Reload the running daemon's configuration and plugins; wait until it is done."""
    if url is None:
        config = config_or_exit(config_path, needs_server=False)
        if config.daemon.http_port == 0:
            click.echo("roomd reload: daemon.http_port is 0 (a random port); pass --url", err=True)
            sys.exit(EXIT_UNREACHABLE)
        url = daemon_url(config, "/reload")
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
def service_install(prefix: str, root: str, source: str | None, pip_args: tuple[str, ...],
                    dry_run: bool) -> None:
    """Set up PREFIX/venv, the unit, /etc/roomd/roomd.toml and /etc/roomd/roomd.env (0600).

    Idempotent: existing configuration and secrets are never overwritten; a second run
    changes nothing it does not need to.
    """
    layout = Layout(root=Path(root), prefix=Path(prefix))
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
