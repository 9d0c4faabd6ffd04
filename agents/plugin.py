"""``Plugin``: a provider package's registration, and ``download-files`` for every component.

As in the reference, a provider package registers a ``Plugin`` when it is imported and
overrides ``download_files()`` to fetch what its components need (models, voices), so an
image build can run ``python agent.py download-files`` once instead of the first job
waiting. roomd's own providers (entry-point group ``roomd.components``) take part too: a
provider module may define ``download_files() -> list[FilesReport]``, which prepares or
checks its files and says, per component, whether they are there.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import click

from .utils.events import EventEmitter

logger = logging.getLogger("roomd.agents.plugin")


class Plugin:
    """Subclass, then ``Plugin.register_plugin(MyPlugin())`` at import time."""

    registered_plugins: ClassVar[list[Plugin]] = []
    emitter: ClassVar[EventEmitter[Literal["plugin_registered"]]] = EventEmitter()

    def __init__(self, title: str, version: str, package: str, logger: logging.Logger | None = None) -> None:
        self._title = title
        self._version = version
        self._package = package
        self._logger = logger

    @classmethod
    def register_plugin(cls, plugin: Plugin) -> None:
        cls.registered_plugins.append(plugin)
        cls.emitter.emit("plugin_registered", plugin)

    def download_files(self) -> None:
        """Fetch the files this plugin's components need; the default has none."""

    @property
    def title(self) -> str:
        return self._title

    @property
    def version(self) -> str:
        return self._version

    @property
    def package(self) -> str:
        return self._package

    @property
    def logger(self) -> logging.Logger | None:
        return self._logger

    def __repr__(self) -> str:
        return f"{self._title} {self._version} ({self._package})"


@dataclass(frozen=True, slots=True)
class FilesReport:
    """One component's files after its provider's ``download_files()``."""

    component: str  # "local/silero"
    present: bool
    detail: str  # where the files are, or what is missing and how to install it


def _provider_steps() -> Iterable[tuple[str, Any]]:
    """(provider name, its module's ``download_files``) for each roomd component provider."""
    from .components import _entry_points

    for name, entry in sorted(_entry_points().items()):
        try:
            factory = entry.load()
        except Exception as exc:  # a provider that cannot load is reported, not fatal to the rest
            logger.warning("component provider %s cannot be loaded: %s", name, exc)
            continue
        step = getattr(sys.modules.get(getattr(factory, "__module__", "")), "download_files", None)
        if callable(step):
            yield name, step


def download_all() -> int:
    """``download-files``: every registered Plugin's step, then every provider's; prints one
    line per component with files. 1 if a step failed, else 0 (a model of a provider the
    agent may not use being absent is reported, not an error)."""
    failed = False
    for plugin in list(Plugin.registered_plugins):
        logger.info("downloading files for %r", plugin)
        try:
            plugin.download_files()
        except Exception as exc:
            logger.error("downloading files for %r failed: %s", plugin, exc)
            click.echo(f"{plugin.title}: download failed: {exc}")
            failed = True
        else:
            click.echo(f"{plugin.title}: files downloaded")
    for provider, step in _provider_steps():
        try:
            reports = step()
        except Exception as exc:
            logger.error("preparing the files of provider %s failed: %s", provider, exc)
            click.echo(f"{provider}: preparing files failed: {exc}")
            failed = True
            continue
        for report in reports or ():
            click.echo(f"{report.component}: {'present' if report.present else 'missing'}: {report.detail}")
    return 1 if failed else 0


__all__ = ["FilesReport", "Plugin", "download_all"]
