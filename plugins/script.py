"""Single-file agents: a WorkerOptions described by reference, so a child can rebuild it.

A function cannot cross a pipe, and a script run as ``python agent.py`` is the module
``__main__`` of its own process only. So the worker that runs the script describes its
WorkerOptions as references (the script's file, then module and qualified name of each
``*_fnc``) plus the plain values. The zygote imports the same file under another name
(code under ``if __name__ == "__main__":`` does not run there, as with multiprocessing's
spawn) and rebuilds the options from what it finds. The description travels as the
plugin's target string, ``script:`` followed by JSON, so nothing else in the pool changes.

The server address and credentials are the worker's business and never go into a child's
command line.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import sys
from types import ModuleType
from typing import Any

import msgspec

from roomd.agents.worker_options import WorkerOptions, WorkerPermissions, WorkerType

TARGET_PREFIX = "script:"
# The script's module name inside the agent's processes: not "__main__", so the script's
# start-up code (``cli.run_app(...)``) does not run again there.
SCRIPT_MODULE = "__roomd_main__"
MAIN = "__main__"
# WorkerOptions fields used only by the worker process itself (where to connect, with which
# secret, where to serve HTTP): children get these from the supervisor, never from argv.
PARENT_ONLY_FIELDS = frozenset({"ws_url", "api_key", "api_secret", "port", "host"})


class ScriptTargetError(ValueError):
    """The options cannot be described by reference, or not rebuilt from one; says what to do."""


class FunctionRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    module: str  # "__main__" means the script file of the worker
    qualname: str


class ScriptTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything a child needs to rebuild a WorkerOptions: one field per WorkerOptions field
    except ``PARENT_ONLY_FIELDS``, plus the script's path."""

    script: str | None  # absolute path of the worker's __main__ file, if a function lives there
    entrypoint_fnc: FunctionRef
    prewarm_fnc: FunctionRef | None
    request_fnc: FunctionRef
    initialize_process_fnc: FunctionRef | None
    load_fnc: FunctionRef | None
    worker_type: WorkerType
    permissions: WorkerPermissions | None
    max_retry: int
    agent_name: str
    load_threshold: float | None
    max_jobs: int | None
    num_idle_processes: int | None
    max_jobs_per_process: int | None
    initialize_process_timeout: float | None
    shutdown_process_timeout: float | None
    job_memory_warn_mb: float | None
    job_memory_limit_mb: float | None
    drain_timeout: float | None


def _is_function_field(name: str) -> bool:
    return name.endswith("_fnc")


# -- in the worker: describe ----------------------------------------------------------------
def describe_options(options: WorkerOptions) -> ScriptTarget:
    """The options as references and values, or ``ScriptTargetError`` naming the field to fix."""
    try:
        options.validate()
    except ValueError as exc:
        raise ScriptTargetError(str(exc)) from None
    script: str | None = None
    values: dict[str, Any] = {}
    for field in dataclasses.fields(WorkerOptions):
        if field.name in PARENT_ONLY_FIELDS:
            continue
        value = getattr(options, field.name)
        if _is_function_field(field.name):
            if value is None:
                values[field.name] = None
                continue
            ref, path = _reference(field.name, value)
            script = path or script
            values[field.name] = ref
        else:
            values[field.name] = value
    # A WorkerOptions field added without a place here fails at once (unexpected keyword).
    return ScriptTarget(script=script, **values)


def _reference(field: str, fn: Any) -> tuple[FunctionRef, str | None]:
    what = f"WorkerOptions.{field}"
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise ScriptTargetError(
            f"{what} is a {type(fn).__name__} object; the agent's processes find it by import, "
            "so it must be a function defined with `def` at the top level of a module")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise ScriptTargetError(
            f"{what} ({qualname}) is a lambda or a function defined inside another function; "
            "the agent's processes find it by import, so define it with `def` at the top level "
            "of the file")
    if inspect.ismethod(fn) and not inspect.isclass(fn.__self__):
        raise ScriptTargetError(
            f"{what} ({qualname}) is a method bound to an object, which the agent's processes "
            "cannot rebuild; use a top-level function")
    found = _lookup(sys.modules.get(module), qualname)
    if found is not fn and not _same_method(found, fn):
        raise ScriptTargetError(
            f"{what} ({module}.{qualname}) is not reachable under that name (a decorator that "
            "returns another object, or a name bound to something else); bind the function to "
            "a top-level name")
    path: str | None = None
    if module == MAIN:
        main = sys.modules[MAIN]
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name and spec.name != MAIN:
            module = spec.name  # run with ``python -m package.agent``: importable by name
        else:
            file = getattr(main, "__file__", None)
            if not file:
                raise ScriptTargetError(
                    f"{what} ({qualname}) was defined in an interactive session or `python -c`; "
                    "put the agent in a file and run `python agent.py dev`")
            path = os.path.abspath(file)
    return FunctionRef(MAIN if path else module, qualname), path


def _same_method(found: Any, fn: Any) -> bool:
    # classmethods and bound methods compare equal, not identical, on each attribute access
    return found is not None and inspect.ismethod(fn) and found == fn


def _lookup(module: ModuleType | None, qualname: str) -> Any:
    value: Any = module
    for part in qualname.split("."):
        if value is None:
            return None
        value = getattr(value, part, None)
    return value


def encode_target(target: ScriptTarget) -> str:
    return TARGET_PREFIX + msgspec.json.encode(target).decode()


def is_script_target(target: str) -> bool:
    return target.startswith(TARGET_PREFIX)


# -- in the zygote: rebuild -----------------------------------------------------------------
def decode_target(target: str) -> ScriptTarget:
    if not is_script_target(target):
        raise ScriptTargetError(f"not a script target: {target[:40]!r}")
    try:
        return msgspec.json.decode(target[len(TARGET_PREFIX):], type=ScriptTarget)
    except msgspec.DecodeError as exc:
        raise ScriptTargetError(f"bad script target: {exc}") from None


def load_script_options(target: str) -> WorkerOptions:
    """Import what ``target`` refers to and rebuild the WorkerOptions from it."""
    described = decode_target(target)
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(ScriptTarget):
        if field.name == "script":
            continue
        value = getattr(described, field.name)
        if _is_function_field(field.name) and value is not None:
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
    value = _lookup(module, ref.qualname)
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
