"""A single-file agent's WorkerOptions, described by reference in the worker and rebuilt
from the script file the way a zygote does (no server, no processes)."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from roomd.agents import WorkerOptions, WorkerPermissions, WorkerType
from roomd.agents.worker import plugin_spec, worker_config
from roomd.child.plugin import PluginLoadError, describe, load_options
from roomd.daemon.plugins.script import describe_options
from roomd.ipc.script import (
    PARENT_ONLY_FIELDS,
    SCRIPT_MODULE,
    FunctionRef,
    ScriptTarget,
    ScriptTargetError,
    encode_target,
)


async def entrypoint(ctx: Any) -> None:
    """A module-level function: reachable by import, as a child needs."""


def prewarm(proc: Any) -> None:
    pass


class Holder:
    @staticmethod
    async def static_entry(ctx: Any) -> None:
        pass

    async def bound_entry(self, ctx: Any) -> None:
        pass


@pytest.fixture
def fresh_script_module() -> Iterator[None]:
    """Each test imports its script afresh, as each zygote does."""
    saved = list(sys.path)
    sys.modules.pop(SCRIPT_MODULE, None)
    yield
    sys.modules.pop(SCRIPT_MODULE, None)
    sys.path[:] = saved


def test_every_worker_options_field_travels_or_stays_in_the_worker_on_purpose() -> None:
    carried = {f.name for f in msgspec.structs.fields(ScriptTarget)} - {"script"}
    assert carried | PARENT_ONLY_FIELDS == {f.name for f in dataclasses.fields(WorkerOptions)}
    assert not carried & PARENT_ONLY_FIELDS


def test_options_of_an_importable_module_round_trip_with_their_values() -> None:
    options = WorkerOptions(
        entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, agent_name="front-desk",
        worker_type=WorkerType.PUBLISHER, permissions=WorkerPermissions(hidden=True, can_publish=False),
        num_idle_processes=1, job_memory_limit_mb=300.0, max_jobs=4, drain_timeout=12,
    )
    target = describe_options(options)
    assert target.script is None
    assert target.entrypoint_fnc == FunctionRef(__name__, "entrypoint")
    rebuilt = load_options(encode_target(target))
    assert rebuilt.entrypoint_fnc is entrypoint
    assert rebuilt.prewarm_fnc is prewarm
    assert rebuilt.request_fnc is options.request_fnc  # the default, found in worker_options
    assert describe(rebuilt) == describe(options)
    assert (rebuilt.agent_name, rebuilt.worker_type, rebuilt.permissions) == (
        "front-desk", WorkerType.PUBLISHER, WorkerPermissions(hidden=True, can_publish=False))


def test_static_methods_are_found_through_their_class() -> None:
    rebuilt = load_options(encode_target(describe_options(WorkerOptions(entrypoint_fnc=Holder.static_entry))))
    assert rebuilt.entrypoint_fnc is Holder.static_entry


def test_server_credentials_never_enter_the_childrens_command_line() -> None:
    options = WorkerOptions(entrypoint_fnc=entrypoint, ws_url="ws://127.0.0.1:1",
                            api_key="the-key", api_secret="the-secret-value")
    target = encode_target(describe_options(options))
    assert "the-secret-value" not in target and "the-key" not in target and "127.0.0.1:1" not in target


@pytest.mark.parametrize(("make", "says"), [
    (lambda: (lambda ctx: None), "lambda or a function defined inside another function"),
    (lambda: Holder().bound_entry, "method bound to an object"),
    (lambda: _nested(), "lambda or a function defined inside another function"),
])
def test_functions_a_child_cannot_import_are_refused_in_the_worker(make: Any, says: str) -> None:
    with pytest.raises(ScriptTargetError, match=says):
        plugin_spec(WorkerOptions(entrypoint_fnc=make()))


def _nested() -> Any:
    async def inner(ctx: Any) -> None:
        pass

    return inner


def test_invalid_options_are_refused_with_the_field_named() -> None:
    with pytest.raises(ScriptTargetError, match="entrypoint_fnc must be an async function"):
        describe_options(WorkerOptions())


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "my_agent.py"
    path.write_text(textwrap.dedent(body))
    return path


def _main_target(path: Path, qualname: str = "entrypoint") -> str:
    return encode_target(ScriptTarget(
        script=str(path), entrypoint_fnc=FunctionRef("__main__", qualname), prewarm_fnc=None,
        request_fnc=FunctionRef("roomd.agents.worker_options", "_accept_every_job"),
        initialize_process_fnc=None, load_fnc=None, worker_type=WorkerType.ROOM, permissions=None,
        max_retry=3, agent_name="", load_threshold=None, max_jobs=None, num_idle_processes=None,
        max_jobs_per_process=None, initialize_process_timeout=None, shutdown_process_timeout=None,
        job_memory_warn_mb=None, job_memory_limit_mb=None, drain_timeout=None))


def test_a_script_is_imported_under_another_name_so_its_main_block_does_not_run(
        tmp_path: Path, fresh_script_module: None) -> None:
    (tmp_path / "helper_for_my_agent.py").write_text("GREETING = 'hi'\n")
    path = _script(tmp_path, """
        import helper_for_my_agent  # a sibling module, found as Python finds it for a script
        RAN_MAIN = False

        async def entrypoint(ctx):
            return helper_for_my_agent.GREETING

        if __name__ == "__main__":
            RAN_MAIN = True
    """)
    options = load_options(_main_target(path))
    module = sys.modules[SCRIPT_MODULE]
    assert options.entrypoint_fnc is module.entrypoint
    assert module.RAN_MAIN is False
    sys.modules.pop("helper_for_my_agent", None)


def test_a_function_defined_under_the_main_guard_is_a_clear_error(
        tmp_path: Path, fresh_script_module: None) -> None:
    path = _script(tmp_path, """
        if __name__ == "__main__":
            async def entrypoint(ctx):
                pass
    """)
    with pytest.raises(PluginLoadError) as failure:
        load_options(_main_target(path))
    message = str(failure.value)
    assert "my_agent.py, imported as a module in the agent's processes, defines no 'entrypoint'" in message
    assert "define 'entrypoint' at the top level of my_agent.py" in message


def test_a_script_that_raises_on_import_names_the_error(tmp_path: Path, fresh_script_module: None) -> None:
    path = _script(tmp_path, "raise RuntimeError('no model file')\n")
    with pytest.raises(PluginLoadError, match=r"importing .*my_agent.py failed: RuntimeError: no model file"):
        load_options(_main_target(path))
    assert SCRIPT_MODULE not in sys.modules


def test_worker_config_flags_beat_environment_beat_options() -> None:
    options = WorkerOptions(entrypoint_fnc=entrypoint, ws_url="ws://options:1", api_key="opt-key",
                            api_secret="opt-secret")
    from_options = worker_config(options, environ={})
    assert (from_options.livekit.url, from_options.livekit.api_key) == ("ws://options:1", "opt-key")
    from_env = worker_config(options, environ={"LIVEKIT_URL": "ws://env:2"})
    assert (from_env.livekit.url, from_env.livekit.api_key) == ("ws://env:2", "opt-key")
    from_flag = worker_config(options, {"livekit.url": "ws://flag:3", "livekit.api_key": None},
                              environ={"LIVEKIT_URL": "ws://env:2"})
    assert (from_flag.livekit.url, from_flag.livekit.api_key) == ("ws://flag:3", "opt-key")


def test_worker_config_takes_the_options_retry_and_drain_unless_the_environment_sets_them() -> None:
    options = WorkerOptions(entrypoint_fnc=entrypoint, ws_url="ws://options:1", api_key="k",
                            api_secret="s", max_retry=5, drain_timeout=42.0)
    config = worker_config(options, environ={})
    assert (config.link.max_retry, config.daemon.drain_timeout) == (5, 42.0)
    deployed = worker_config(options, environ={"ROOMD_LINK_MAX_RETRY": "9",
                                               "ROOMD_DAEMON_DRAIN_TIMEOUT": "7"})
    assert (deployed.link.max_retry, deployed.daemon.drain_timeout) == (9, 7.0)
    assert worker_config(WorkerOptions(entrypoint_fnc=entrypoint, ws_url="ws://o:1", api_key="k",
                                       api_secret="s"), environ={}).link.max_retry == 3


# inspect.signature(livekit.agents.WorkerOptions) in livekit-agents 1.2.11, by name.
REFERENCE_FIELDS = {
    "entrypoint_fnc", "request_fnc", "prewarm_fnc", "load_fnc", "job_executor_type", "load_threshold",
    "job_memory_warn_mb", "job_memory_limit_mb", "drain_timeout", "num_idle_processes",
    "shutdown_process_timeout", "initialize_process_timeout", "permissions", "agent_name", "worker_type",
    "max_retry", "ws_url", "api_key", "api_secret", "_worker_token", "host", "port", "http_proxy",
    "multiprocessing_context", "prometheus_port",
}


def test_worker_options_take_every_field_of_the_reference() -> None:
    assert {f.name for f in dataclasses.fields(WorkerOptions)} >= REFERENCE_FIELDS


def test_settings_roomd_does_not_apply_are_accepted_and_logged_once_by_the_worker(
        caplog: pytest.LogCaptureFixture) -> None:
    from roomd.agents import JobExecutorType, Worker

    options = WorkerOptions(entrypoint_fnc=entrypoint, ws_url="ws://127.0.0.1:1", api_key="k", api_secret="s",
                            job_executor_type=JobExecutorType.THREAD, multiprocessing_context="spawn",
                            http_proxy="http://proxy:3128", prometheus_port=9100, _worker_token="t")
    with caplog.at_level("WARNING", logger="roomd.agents.worker"):
        Worker(options, config=worker_config(options, environ={}))
    said = [r.getMessage() for r in caplog.records if r.name == "roomd.agents.worker"]
    for name in ("job_executor_type", "multiprocessing_context", "http_proxy", "prometheus_port", "_worker_token"):
        assert sum(f"WorkerOptions.{name}=" in line for line in said) == 1, said
    assert all("has no effect on roomd" in line for line in said)
    caplog.clear()
    with caplog.at_level("WARNING", logger="roomd.agents.worker"):
        Worker(WorkerOptions(entrypoint_fnc=entrypoint), config=worker_config(options, environ={}))
    assert not caplog.records  # the defaults say nothing
