"""Single-file agents: the wire form of a WorkerOptions described by reference.

A function cannot cross a pipe, and a script run as ``python agent.py`` is the module
``__main__`` of its own process only. So the worker that runs the script describes its
WorkerOptions as references (the script's file, then module and qualified name of each
``*_fnc``) plus the plain values. The zygote imports the same file under another name
(code under ``if __name__ == "__main__":`` does not run there, as with multiprocessing's
spawn) and rebuilds the options from what it finds. The description travels as the
plugin's target string, ``script:`` followed by JSON, so nothing else in the pool changes.

The server address and credentials are the worker's business and never go into a child's
command line.

The worker describes (roomd.daemon.plugins.script), the zygote rebuilds (roomd.child.plugin);
this module is the format both read.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import msgspec

from .worker import WorkerPermissions, WorkerType

TARGET_PREFIX = "script:"
# The script's module name inside the agent's processes: not "__main__", so the script's
# start-up code (``cli.run_app(...)``) does not run again there.
SCRIPT_MODULE = "__roomd_main__"
MAIN = "__main__"
# WorkerOptions fields used only by the worker process itself (where to connect, with which
# secret, where to serve HTTP): children get these from the supervisor, never from argv. The
# reference's settings roomd does not apply (how jobs are isolated, a proxy, a token) stay
# there too: the worker logs them, the children never need them.
PARENT_ONLY_FIELDS = frozenset({"ws_url", "api_key", "api_secret", "port", "host", "job_executor_type",
                                "multiprocessing_context", "http_proxy", "prometheus_port", "_worker_token"})


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


def is_function_field(name: str) -> bool:
    return name.endswith("_fnc")


def lookup(module: ModuleType | None, qualname: str) -> Any:
    """The object ``qualname`` names inside ``module`` (dotted for nested), or None."""
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


def decode_target(target: str) -> ScriptTarget:
    if not is_script_target(target):
        raise ScriptTargetError(f"not a script target: {target[:40]!r}")
    try:
        return msgspec.json.decode(target[len(TARGET_PREFIX):], type=ScriptTarget)
    except msgspec.DecodeError as exc:
        raise ScriptTargetError(f"bad script target: {exc}") from None
