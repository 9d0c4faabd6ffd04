"""Find installed agent plugins from package metadata alone.

The supervisor never imports plugin code: it reads entry points of the group
``roomd.agents`` (name, ``module:attr`` target, distribution, version) and hands the
target to child processes, which import it. Each call re-reads the metadata, so a
``pip install`` since the last call is seen by the next reload.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata

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
    error: str


@dataclasses.dataclass(frozen=True)
class Discovery:
    plugins: tuple[PluginSpec, ...]
    problems: tuple[DiscoveryProblem, ...]

    def get(self, name: str) -> PluginSpec | None:
        return next((p for p in self.plugins if p.name == name), None)


def discover_plugins(group: str = ENTRY_POINT_GROUP) -> Discovery:
    # Path finders cache directory listings; a pip install since start must be seen.
    importlib.invalidate_caches()
    seen: dict[str, PluginSpec] = {}
    problems: list[DiscoveryProblem] = []
    for entry_point in importlib.metadata.entry_points(group=group):
        dist = entry_point.dist
        dist_name = dist.metadata["Name"] if dist is not None else "<unknown>"
        dist_version = dist.version if dist is not None else "<unknown>"
        if ":" not in entry_point.value:
            problems.append(DiscoveryProblem(
                entry_point.name, dist_name,
                f"entry point value {entry_point.value!r} must be 'module:attribute' naming a WorkerOptions",
            ))
            continue
        spec = PluginSpec(entry_point.name, entry_point.value, dist_name, dist_version)
        previous = seen.get(spec.name)
        if previous is not None:
            if (previous.distribution, previous.target) == (spec.distribution, spec.target):
                continue  # the same distribution seen twice on sys.path
            problems.append(DiscoveryProblem(
                spec.name, spec.distribution,
                f"plugin name {spec.name!r} is also provided by {previous.distribution} "
                f"{previous.version}; the first one found is served",
            ))
            continue
        seen[spec.name] = spec
    return Discovery(tuple(sorted(seen.values(), key=lambda p: p.name)), tuple(problems))
