"""``roomd plugins``: what is installed, and whether one plugin can start.

``list`` reads entry-point metadata only (no plugin code runs); when a daemon answers on
its status endpoint, its view (agent name, serving/failed, last error) is shown instead.
``check`` loads one plugin the way the daemon does (a zygote imports it, a child runs
its prewarm) and says what it found. Exit codes: 0 ok, 1 broken, 2 usage.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import click
import msgspec

from roomd.daemon.plugins.discovery import Discovery, discover_plugins
from roomd.ipc.exits import EXIT_FAILURE, EXIT_USAGE

from .cli_config import config_or_exit, daemon_url
from .config import Config

if TYPE_CHECKING:
    from .plugin_runtime import PluginStatus

STATUS_TIMEOUT = 1.0


@click.group("plugins")
def plugins_group() -> None:
    """List installed agent plugins, or check that one loads."""


# -- list ---------------------------------------------------------------------------------
def statuses_from_discovery(discovery: Discovery, config: Config) -> list[PluginStatus]:
    """What metadata alone says of each plugin: installed, disabled or broken (with why)."""
    from .plugin_runtime import PluginStatus  # the pool and link machinery: only when used

    rows = [
        PluginStatus(name=spec.name, distribution=spec.distribution, version=spec.version,
                     target=spec.target,
                     state="installed" if config.plugins.is_enabled(spec.name) else "disabled")
        for spec in discovery.plugins
    ]
    for problem in discovery.problems:
        state = "shadowed" if problem.shadowed else "broken"
        rows.append(PluginStatus(name=problem.name, distribution=problem.distribution,
                                 version=problem.version, target=problem.target, state=state,
                                 last_error=problem.error))
    return sorted(rows, key=lambda row: (row.name, row.state == "shadowed"))


def statuses_from_daemon(config: Config) -> list[PluginStatus] | None:
    """The running daemon's plugin records from ``/status``; None when no daemon answers."""
    from .plugin_runtime import PluginStatus

    try:
        with urllib.request.urlopen(daemon_url(config, "/status"),  # noqa: S310 - loopback
                                    timeout=STATUS_TIMEOUT) as response:
            body = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None
    plugins = body.get("plugins") if isinstance(body, dict) else None
    if not isinstance(plugins, list):
        return None
    try:
        return msgspec.convert(plugins, list[PluginStatus], strict=False)
    except msgspec.ValidationError:
        return None


def _table(rows: list[PluginStatus]) -> str:
    header = ("NAME", "DISTRIBUTION", "VERSION", "AGENT_NAME", "STATE", "LAST ERROR")
    lines = [header] + [
        (row.name, row.distribution, row.version,
         "-" if row.agent_name is None else repr(row.agent_name), row.state,
         row.last_error or "-")
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True))
        + "  " + line[-1]
        for line in lines
    )


@plugins_group.command("list")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The daemon's configuration (enabled/disabled plugins, status port).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@click.option("--offline", is_flag=True, help="Do not ask a running daemon; metadata only.")
def list_plugins(config_path: str | None, as_json: bool, offline: bool) -> None:
    """Every installed plugin: name, distribution, version, agent name, state, last error.

    Without a running daemon the state comes from package metadata alone ("installed",
    "disabled", "broken"); `roomd plugins check NAME` loads one to find its agent name.
    """
    config = config_or_exit(config_path, needs_server=False)
    rows = None if offline else statuses_from_daemon(config)
    source = "daemon"
    if rows is None:
        rows, source = statuses_from_discovery(discover_plugins(), config), "metadata"
    if as_json:
        click.echo(msgspec.json.encode(rows).decode())
        return
    if not rows:
        click.echo("no plugins installed (entry point group 'roomd.agents')")
        return
    click.echo(_table(rows))
    if source == "metadata":
        click.echo("# no daemon answered: states from package metadata", err=True)


# -- check --------------------------------------------------------------------------------
class CheckReport(msgspec.Struct, kw_only=True):
    name: str
    distribution: str
    version: str
    target: str
    ok: bool
    agent_name: str | None = None
    worker_type: str | None = None
    permissions: dict[str, bool] | None = None
    overrides: dict[str, float] = msgspec.field(default_factory=dict)
    custom_request_fnc: bool = False
    seconds: float = 0.0
    error: str = ""


async def check_plugin(name: str, config: Config, discovery: Discovery) -> CheckReport:
    """Load ``name`` in a child exactly as the daemon would and prewarm one child."""
    from .plugin_runtime import PluginStartError, start_pool

    spec = discovery.get(name)
    problem = discovery.problem(name)
    if spec is None:
        assert problem is not None
        return CheckReport(name=name, distribution=problem.distribution, version=problem.version,
                           target=problem.target, ok=False, error=problem.error)
    # One attempt: a check reports the first failure instead of backing off and retrying.
    config = msgspec.structs.replace(
        config, pool=msgspec.structs.replace(config.pool, max_start_failures=1))
    started = time.monotonic()
    report = CheckReport(name=spec.name, distribution=spec.distribution, version=spec.version,
                         target=spec.target, ok=False)
    try:
        pool, description = await start_pool(spec, config, generation=0,
                                             overrides={"num_idle_processes": 1})
    except PluginStartError as exc:
        report.error = str(exc)
    else:
        await pool.aclose(timeout=5.0)
        report.ok = True
        report.agent_name = description.agent_name
        report.worker_type = description.worker_type
        report.permissions = description.permissions
        report.overrides = dict(description.overrides)
        report.custom_request_fnc = description.custom_request_fnc
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _describe_report(report: CheckReport) -> str:
    lines = [f"plugin       {report.name} ({report.distribution} {report.version}, {report.target})"]
    if report.ok:
        permissions = ", ".join(f"{k}={v}" for k, v in sorted((report.permissions or {}).items()))
        overrides = ", ".join(f"{k}={v:g}" for k, v in sorted(report.overrides.items()))
        lines += [
            f"agent_name   {report.agent_name!r}"
            + ("  (receives every new room)" if not report.agent_name else ""),
            f"worker_type  {report.worker_type}",
            f"permissions  {permissions or 'default'}",
            f"overrides    {overrides or 'none'}",
            f"request_fnc  {'custom (runs in a child)' if report.custom_request_fnc else 'accept every job'}",
            f"result       ok: imported and prewarmed in {report.seconds:.2f}s",
        ]
    else:
        lines.append(f"result       broken: {report.error}")
    return "\n".join(lines)


@plugins_group.command("check")
@click.argument("name")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Configuration whose pool limits apply (initialize_timeout, ...).")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def check(name: str, config_path: str | None, as_json: bool) -> None:
    """Load plugin NAME in a child, run its prewarm, report; exit 1 with the cause if broken."""
    config = config_or_exit(config_path, needs_server=False)
    discovery = discover_plugins()
    if discovery.get(name) is None and discovery.problem(name) is None:
        installed = ", ".join(spec.name for spec in discovery.plugins) or "none"
        click.echo(f"roomd: no plugin named {name!r} (installed: {installed})", err=True)
        sys.exit(EXIT_USAGE)
    # The pool's own log lines would bury the report; warnings and errors still go to stderr.
    from .logging import configure_logging

    configure_logging(config.daemon.log_format, "warning", stream=sys.stderr)
    report = asyncio.run(check_plugin(name, config, discovery))
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
    else:
        click.echo(_describe_report(report))
    if not report.ok:
        if not as_json:
            click.echo(f"roomd: plugin {name!r} is broken: {report.error}", err=True)
        sys.exit(EXIT_FAILURE)

