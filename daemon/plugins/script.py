"""Single-file agents, in the worker: describe a WorkerOptions by reference and name the plugin.

The format is roomd.ipc.script; the zygote rebuilds the options from it (roomd.child.plugin).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from roomd.ipc.script import (
    MAIN,
    PARENT_ONLY_FIELDS,
    FunctionRef,
    ScriptTarget,
    ScriptTargetError,
    encode_target,
    is_function_field,
    lookup,
)

from .discovery import PluginSpec


def script_plugin(target: ScriptTarget, agent_name: str) -> PluginSpec:
    """The one plugin a single-file worker serves: named after its agent, else its file or module."""
    source = target.script or target.entrypoint_fnc.module
    name = agent_name or (Path(target.script).stem if target.script else source)
    return PluginSpec(name=name, target=encode_target(target), distribution=source, version="script")


def describe_options(options: Any) -> ScriptTarget:
    """A WorkerOptions as references and values, or ``ScriptTargetError`` naming the field to fix.

    Typed ``Any``: the daemon does not import the SDK; the options are read field by field.
    """
    try:
        options.validate()
    except ValueError as exc:
        raise ScriptTargetError(str(exc)) from None
    script: str | None = None
    values: dict[str, Any] = {}
    for field in dataclasses.fields(options):
        if field.name in PARENT_ONLY_FIELDS:
            continue
        value = getattr(options, field.name)
        if is_function_field(field.name):
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
    found = lookup(sys.modules.get(module), qualname)
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
