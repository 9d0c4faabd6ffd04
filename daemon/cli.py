"""The ``roomd`` command line.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import sys
from importlib.metadata import version as dist_version

import click
import tomli_w

from .cli_config import config_or_exit
from .cli_plugins import plugins_group
from .cli_service import add_service_commands
from .console import console

_CONFIG_HELP = "TOML configuration file (default: none; see etc/roomd.toml for every key)."


def roomd_version() -> str:
    return dist_version("roomd")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="roomd", prog_name="roomd")
def main() -> None:
    """roomd runs LiveKit voice-agent plugins as a supervised system service.

    Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
    """


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help=_CONFIG_HELP)
@click.option("--log-format", type=click.Choice(["auto", "json", "console"]),
              help="Log output: JSON lines, console text, or auto (console on a terminal).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              help="Lowest level logged.")
@click.option("--dev", is_flag=True, default=None,
              help="Development mode: start a local livekit-server --dev if no URL is set, and "
                   "serve the playground page (its URL is logged).")
@click.option("--http-port", type=int, help="Port of the health/status/metrics endpoint.")
def run(config_path: str | None, log_format: str | None, log_level: str | None,
        dev: bool | None, http_port: int | None) -> None:
    """Run the daemon in the foreground until SIGTERM/SIGINT (SIGHUP reloads)."""
    overrides = {
        "daemon.log_format": log_format, "daemon.log_level": log_level,
        "daemon.dev": dev, "daemon.http_port": http_port,
    }
    config = config_or_exit(config_path, overrides)
    from .supervisor import run_daemon

    sys.exit(run_daemon(config, config_path=config_path, flag_overrides=overrides))


@main.group("config")
def config_group() -> None:
    """Inspect configuration."""


@config_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def config_check(path: str | None) -> None:
    """Validate PATH (plus environment) and print the effective config, secrets masked."""
    config = config_or_exit(path, {})
    click.echo(tomli_w.dumps(config.masked()), nl=False)
    click.echo(f"# ok: {config.source}", err=True)


@main.command()
def version() -> None:
    """Print roomd's version and the versions of the LiveKit packages it uses."""
    click.echo(f"roomd {roomd_version()}")
    for dist in ("livekit", "livekit-api", "livekit-protocol"):
        click.echo(f"{dist} {dist_version(dist)}")
    click.echo(f"python {sys.version.split()[0]}")


main.add_command(plugins_group)
main.add_command(console)

add_service_commands(main)

if __name__ == "__main__":
    main()
