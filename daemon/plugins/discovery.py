"""Find installed agent plugins from package metadata alone.

The supervisor never imports plugin code: it reads entry points of the group
``roomd.agents`` (name, ``module:attribute`` target, distribution, version) and hands the
target to child processes, which import it. Each call re-reads the metadata, so a
``pip install`` since the last call is seen by the next reload.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import os
import re
from collections.abc import Iterable

ENTRY_POINT_GROUP = "roomd.agents"


@dataclasses.dataclass(frozen=True)
class PluginSpec:
    """One installed plugin, as its distribution's metadata describes it."""

    name: str  # the entry point name: what config and the CLI call the plugin
    target: str  # "module:attribute", resolving to a WorkerOptions
    distribution: str
    version: str

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]


@dataclasses.dataclass(frozen=True)
class DiscoveryProblem:
    """An entry point that cannot be served, with the reason (e.g. a duplicate name)."""

    name: str
    distribution: str
    version: str
    target: str
    error: str
    # True when another distribution serves this name: the name itself is not broken.
    shadowed: bool = False


@dataclasses.dataclass(frozen=True)
class Discovery:
    plugins: tuple[PluginSpec, ...]
    problems: tuple[DiscoveryProblem, ...]

    def get(self, name: str) -> PluginSpec | None:
        return next((p for p in self.plugins if p.name == name), None)

    def problem(self, name: str) -> DiscoveryProblem | None:
        """The problem that keeps ``name`` from being served at all (not a shadowed duplicate)."""
        return next((p for p in self.problems if p.name == name and not p.shadowed), None)


def discover_plugins(group: str = ENTRY_POINT_GROUP) -> Discovery:
    # Path finders cache directory listings; a pip install since start must be seen.
    importlib.invalidate_caches()
    seen: dict[str, PluginSpec] = {}
    problems: list[DiscoveryProblem] = []
    for dist in _installed_distributions():
        dist_name = dist.metadata["Name"] or "<unknown>"
        for entry_point in dist.entry_points.select(group=group):
            problem = _check_target(entry_point.value)
            if problem:
                problems.append(DiscoveryProblem(entry_point.name, dist_name, dist.version,
                                                 entry_point.value, problem))
                continue
            spec = PluginSpec(entry_point.name, entry_point.value, dist_name, dist.version)
            previous = seen.get(spec.name)
            if previous is not None:
                problems.append(DiscoveryProblem(
                    spec.name, spec.distribution, spec.version, spec.target,
                    f"plugin name {spec.name!r} is also provided by {previous.distribution} "
                    f"{previous.version}, which is served", shadowed=True,
                ))
                continue
            seen[spec.name] = spec
    return Discovery(tuple(sorted(seen.values(), key=lambda p: p.name)), tuple(problems))


def _check_target(value: str) -> str:
    """Why ``value`` cannot name a WorkerOptions, judged without running plugin code; or ''."""
    module, sep, attr = value.partition(":")
    module, attr = module.strip(), attr.strip()
    if not sep or not module or not attr:
        return f"entry point value {value!r} must be 'module:attribute' naming a WorkerOptions"
    top = module.split(".")[0]
    # Only the top-level name: finding a submodule would import (run) its parent package.
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:
        return f"module {top!r} cannot be found: {exc}"
    if found is None:
        return f"module {top!r} is not installed (no such module on the Python path)"
    return ""


def _installed_distributions() -> Iterable[importlib.metadata.Distribution]:
    """Each installed distribution once: the one Python would import from.

    The first path entry holding a distribution wins, as for imports. Within one entry
    there can be several metadata folders of the same project: ``pip install --target
    DIR --upgrade`` replaces the code but leaves the old version's ``.dist-info`` beside
    the new one. The most recently written one describes the code on disk.
    """
    chosen: dict[str, tuple[str, float, importlib.metadata.Distribution]] = {}
    order: list[str] = []
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        location = str(dist.locate_file(""))
        written = _metadata_mtime(dist)
        previous = chosen.get(key)
        if previous is None:
            chosen[key] = (location, written, dist)
            order.append(key)
        elif previous[0] == location and written > previous[1]:
            chosen[key] = (location, written, dist)
    return [chosen[key][2] for key in order]


def _metadata_mtime(dist: importlib.metadata.Distribution) -> float:
    # ``_path`` is the metadata folder of a PathDistribution (every installed wheel); other
    # kinds of distribution have no folder to compare and count as oldest.
    path = getattr(dist, "_path", None)
    if path is None:
        return 0.0
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
