"""Loading a plugin's WorkerOptions from its "module:attribute" target and describing it."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

from roomd.agents.worker_options import WorkerOptions, WorkerType, _accept_every_job
from roomd.ipc import PluginDescription
from roomd.plugins.script import is_script_target, load_script_options

# WorkerOptions field -> PoolConfig key it overrides for this plugin.
LIMIT_FIELDS = {
    "num_idle_processes": "num_idle_processes",
    "max_jobs_per_process": "max_jobs_per_process",
    "initialize_process_timeout": "initialize_timeout",
    "shutdown_process_timeout": "shutdown_timeout",
    "job_memory_warn_mb": "job_memory_warn_mb",
    "job_memory_limit_mb": "job_memory_limit_mb",
    "max_jobs": "max_jobs",
    "load_threshold": "load_threshold",
    "drain_timeout": "drain_timeout",
}


class PluginLoadError(Exception):
    pass


def load_options(target: str) -> WorkerOptions:
    if is_script_target(target):
        return _load_script(target)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise PluginLoadError(f"plugin target {target!r} must be 'module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PluginLoadError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise PluginLoadError(f"{module_name!r} has no attribute {attr!r}") from None
    if not isinstance(value, WorkerOptions):
        raise PluginLoadError(f"{target} is a {type(value).__name__}, not a roomd.agents.WorkerOptions")
    try:
        value.validate()
    except ValueError as exc:
        raise PluginLoadError(f"{target}: {exc}") from None
    return value


def import_whole_package(target: str) -> list[str]:
    """Import every module of the plugin's top-level package now, in the zygote.

    A generation's children are forked from its zygote, so what the zygote imported is that
    generation's code for as long as it lives. A module the plugin imports lazily (inside a
    function) would otherwise be read from disk when first used, possibly from the files of a
    later ``pip install`` while this generation is still kept. Returns the problems ("module:
    error") of modules that could not be imported; those stay lazy.
    """
    if is_script_target(target):
        return []  # a single file has no package to pin
    top = target.partition(":")[0].split(".")[0]
    package = sys.modules.get(top)
    paths = getattr(package, "__path__", None)
    if package is None or paths is None:
        return []  # a plain module: it was imported whole
    problems = []
    for info in pkgutil.walk_packages(paths, prefix=f"{top}.", onerror=lambda name: problems.append(
            f"{name}: cannot be listed")):
        if info.name.rsplit(".", 1)[-1] == "__main__" or info.name in sys.modules:
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # noqa: BLE001 - whatever fails stays lazy, and is reported
            problems.append(f"{info.name}: {type(exc).__name__}: {exc}")
    return problems


def _load_script(target: str) -> WorkerOptions:
    """A single-file agent (``cli.run_app``): its functions by reference, see roomd.plugins.script."""
    try:
        options = load_script_options(target)
        options.validate()
    except ValueError as exc:  # ScriptTargetError included: its message says what to fix
        raise PluginLoadError(str(exc)) from None
    return options


def describe(options: WorkerOptions) -> PluginDescription:
    overrides = {
        key: float(getattr(options, field))
        for field, key in LIMIT_FIELDS.items()
        if getattr(options, field) is not None
    }
    permissions = None
    if options.permissions is not None:
        p = options.permissions
        permissions = {"can_publish": p.can_publish, "can_subscribe": p.can_subscribe,
                       "can_publish_data": p.can_publish_data,
                       "can_update_metadata": p.can_update_metadata, "hidden": p.hidden}
    return PluginDescription(
        agent_name=options.agent_name,
        worker_type="publisher" if options.worker_type == WorkerType.PUBLISHER else "room",
        permissions=permissions,
        overrides=overrides,
        custom_request_fnc=options.request_fnc is not _accept_every_job,
    )
