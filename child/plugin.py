"""Loading a plugin in the zygote: import its WorkerOptions from a "module:attribute" target or
rebuild a single-file agent's from its script target, and describe it for the supervisor.

The one place plugin code is imported; the daemon only reads metadata (roomd.daemon.plugins).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from types import ModuleType
from typing import Any

import msgspec

from roomd.agents.worker_options import WorkerOptions, WorkerType, _accept_every_job
from roomd.ipc import PluginDescription
from roomd.ipc.script import (
    MAIN,
    SCRIPT_MODULE,
    FunctionRef,
    ScriptTarget,
    ScriptTargetError,
    decode_target,
    is_function_field,
    is_script_target,
    lookup,
)

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
        except Exception as exc:
            problems.append(f"{info.name}: {type(exc).__name__}: {exc}")
    return problems


def _load_script(target: str) -> WorkerOptions:
    """A single-file agent (``cli.run_app``): its functions by reference, see roomd.ipc.script."""
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


def load_script_options(target: str) -> WorkerOptions:
    """Import what ``target`` refers to and rebuild the WorkerOptions from it."""
    described = decode_target(target)
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(ScriptTarget):
        if field.name == "script":
            continue
        value = getattr(described, field.name)
        if is_function_field(field.name) and value is not None:
            value = _resolve(field.name, value, described.script)
        values[field.name] = value
    return WorkerOptions(**values)


def _resolve(field: str, ref: FunctionRef, script: str | None) -> Any:
    if ref.module == MAIN:
        if script is None:
            raise ScriptTargetError(f"WorkerOptions.{field} names the script, but no script path was given")
        module = _import_script(script)
        where = os.path.basename(script)
    else:
        try:
            module = importlib.import_module(ref.module)
        except Exception as exc:
            raise ScriptTargetError(
                f"WorkerOptions.{field}: importing {ref.module!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        where = ref.module
    value = lookup(module, ref.qualname)
    if value is None:
        raise ScriptTargetError(
            f"WorkerOptions.{field}: {where}, imported as a module in the agent's processes, "
            f"defines no {ref.qualname!r}. Code under `if __name__ == \"__main__\":` runs only "
            f"in the worker; define {ref.qualname!r} at the top level of {where}")
    if not callable(value):
        raise ScriptTargetError(
            f"WorkerOptions.{field}: {where}.{ref.qualname} is a {type(value).__name__}, not a function")
    return value


def _import_script(path: str) -> ModuleType:
    loaded = sys.modules.get(SCRIPT_MODULE)
    if loaded is not None:
        return loaded
    # As Python does for a script: its folder first on the path, so its own imports work.
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, path)
    if spec is None or spec.loader is None:
        raise ScriptTargetError(f"cannot import {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[SCRIPT_MODULE] = module  # dataclasses, pickle and typing look modules up here
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError:
        del sys.modules[SCRIPT_MODULE]
        raise ScriptTargetError(f"{path} does not exist any more") from None
    except Exception as exc:
        del sys.modules[SCRIPT_MODULE]
        raise ScriptTargetError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module
