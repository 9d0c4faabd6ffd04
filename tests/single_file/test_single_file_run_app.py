"""``python agent.py start|dev|console`` against the real LiveKit server: the agent runs in
a prewarmed child of the worker, SIGTERM drains and exits 0, and mistakes say what to fix."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from room_client import delete_room, dispatch, join
from single_file_helpers import (
    agent_attribute,
    children_named,
    parent_pid,
    run_script,
    script_env,
    terminate,
    write_agent,
)

pytestmark = pytest.mark.livekit_server

REFERENCE_AGENT = Path(__file__).parents[1] / "agents" / "voice" / "data" / "reference_agent.py"
LIBRARY_HOURS = Path(__file__).parents[1] / "data" / "library_hours.wav"


def _json_event(line: str) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


async def test_start_runs_the_entrypoint_in_a_prewarmed_child_and_sigterm_drains(
        livekit_server: Any, tmp_path: Path) -> None:
    agent_name = f"single-{uuid.uuid4().hex[:6]}"
    room_name = f"room-{uuid.uuid4().hex[:6]}"
    script = write_agent(tmp_path, agent_name)
    async with run_script(script, "start", env=script_env(livekit_server)) as run:
        ready = await run.wait_for_line(lambda line: _json_event(line).get("event") == "supervisor state"
                                        and _json_event(line).get("new") == "ready")
        assert _json_event(ready)["level"] == "info"  # production logs are JSON lines
        caller = await join(livekit_server, room_name, "caller")
        try:
            await dispatch(livekit_server, agent_name, room_name)
            child = int(await agent_attribute(caller, "pid"))
            assert child != run.proc.pid
            assert parent_pid(child) == run.proc.pid  # a child of the worker (its subreaper)

            terminate(run, signal.SIGTERM)
            await run.wait_for_line(lambda line: _json_event(line).get("new") == "draining")
            # Draining waits for the running job: the worker is still there, its agent in the room.
            assert run.proc.returncode is None
            assert any(p.attributes.get("pid") == str(child) for p in caller.remote_participants.values())
        finally:
            await caller.disconnect()
        await delete_room(livekit_server, room_name)  # the job ends; the drain can finish
        assert await run.wait() == 0, run.output[-3000:]
    # The room was deleted under the agent (the usual end of a job): the native SDK's teardown
    # lines ("data channel ... closed unexpectedly") are warnings, so nothing is an error.
    errors = [line for line in run.lines if _json_event(line).get("level") in ("error", "critical")]
    assert errors == [], "".join(errors[:5])


async def test_dev_takes_the_server_from_flags_and_logs_for_people(livekit_server: Any, tmp_path: Path) -> None:
    agent_name = f"single-dev-{uuid.uuid4().hex[:6]}"
    room_name = f"room-{uuid.uuid4().hex[:6]}"
    script = write_agent(tmp_path, agent_name)
    flags = ["--url", livekit_server.url, "--api-key", livekit_server.api_key,
             "--api-secret", livekit_server.api_secret]
    async with run_script(script, "dev", *flags, env=script_env(None)) as run:
        await run.wait_for_line(lambda line: "supervisor state" in line and "new=ready" in line)
        assert not any(_json_event(line) for line in run.lines)  # console lines, not JSON
        await _a_dispatched_job_runs_in_a_child_of(run, livekit_server, agent_name, room_name)
        terminate(run, signal.SIGINT)  # Ctrl-C drains as SIGTERM does
        assert await run.wait() == 0, run.output[-3000:]
    assert any("[debug" in line for line in run.lines)  # dev logs at debug


async def test_an_agent_run_as_a_module_is_imported_by_its_name(livekit_server: Any, tmp_path: Path) -> None:
    agent_name = f"single-module-{uuid.uuid4().hex[:6]}"
    room_name = f"room-{uuid.uuid4().hex[:6]}"
    package = tmp_path / "my_agents"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_agent(package, agent_name)
    async with run_script(tmp_path, "start", module="my_agents.agent", env=script_env(livekit_server)) as run:
        await run.wait_for_line(lambda line: _json_event(line).get("new") == "ready")
        await _a_dispatched_job_runs_in_a_child_of(run, livekit_server, agent_name, room_name)
        terminate(run, signal.SIGTERM)
        assert await run.wait() == 0, run.output[-3000:]


VERSIONED_AGENT = '''
from roomd.agents import JobContext, WorkerOptions, cli

VERSION = "@VERSION@"


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    await ctx.room.local_participant.set_attributes({{"version": VERSION}})


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, agent_name={agent_name!r}, num_idle_processes=1))
'''


async def test_dev_reloads_a_saved_file_and_new_jobs_run_the_new_code(livekit_server: Any, tmp_path: Path) -> None:
    agent_name = f"single-reload-{uuid.uuid4().hex[:6]}"
    rooms = [f"room-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    script = write_agent(tmp_path, agent_name, VERSIONED_AGENT.replace("@VERSION@", "one"))
    # --log-level in capitals, as the reference takes it: dev's debug lines are gone.
    async with run_script(script, "dev", "--log-level", "INFO", env=script_env(livekit_server)) as run:
        await run.wait_for_line(lambda line: "supervisor state" in line and "new=ready" in line)
        first = await join(livekit_server, rooms[0], "caller")
        second = await join(livekit_server, rooms[1], "caller")
        try:
            await dispatch(livekit_server, agent_name, rooms[0])
            assert await agent_attribute(first, "version") == "one"
            write_agent(tmp_path, agent_name, VERSIONED_AGENT.replace("@VERSION@", "two"))
            await run.wait_for_line(lambda line: "reload finished" in line and "ok=True" in line)
            await dispatch(livekit_server, agent_name, rooms[1])
            assert await agent_attribute(second, "version") == "two"
            # The first job kept its code and its room.
            assert [p.attributes.get("version") for p in first.remote_participants.values()] == ["one"]
        finally:
            await first.disconnect()
            await second.disconnect()
        for room in rooms:
            await delete_room(livekit_server, room)
        terminate(run, signal.SIGTERM)
        assert await run.wait() == 0, run.output[-3000:]
    assert not any("[debug" in line for line in run.lines), run.output[-3000:]


ENTRYPOINT_UNDER_MAIN_GUARD = '''
from roomd.agents import WorkerOptions, cli

if __name__ == "__main__":
    async def entrypoint(ctx):
        await ctx.connect()

    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, agent_name={agent_name!r}))
'''


async def test_an_entrypoint_the_children_cannot_import_stops_the_worker_with_what_to_do(
        livekit_server: Any, tmp_path: Path) -> None:
    script = write_agent(tmp_path, "never-serves", ENTRYPOINT_UNDER_MAIN_GUARD)
    # The pool retries a zygote that fails (with backoff) before calling it fatal; one try here.
    env = script_env(livekit_server, ROOMD_POOL_MAX_START_FAILURES="1")
    async with run_script(script, "start", env=env) as run:
        assert await run.wait() == 1
    assert ("agent.py, imported as a module in the agent's processes, defines no 'entrypoint'"
            in run.output), run.output[-3000:]
    assert "define 'entrypoint' at the top level of agent.py" in run.output


LAMBDA_ENTRYPOINT = '''
from roomd.agents import WorkerOptions, cli

if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=lambda ctx: ctx.connect(), agent_name={agent_name!r}))
'''


async def test_a_lambda_entrypoint_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    script = write_agent(tmp_path, "lambda", LAMBDA_ENTRYPOINT)
    async with run_script(script, "start", env=script_env(None, LIVEKIT_URL="ws://127.0.0.1:9",
                                                          LIVEKIT_API_KEY="k", LIVEKIT_API_SECRET="s")) as run:
        assert await run.wait() == 2
    assert "is a lambda or a function defined inside another function" in run.output
    assert "supervisor state" not in run.output


async def test_console_mic_without_sounddevice_is_a_usage_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("sounddevice") is not None:
        pytest.skip("sounddevice is installed here")
    script = write_agent(tmp_path, "mic")
    async with run_script(script, "console", "--mic", env=script_env(None)) as run:
        assert await run.wait() == 2
    assert "--mic needs sounddevice and an input device" in run.output


async def test_start_without_a_server_is_a_configuration_error(tmp_path: Path) -> None:
    script = write_agent(tmp_path, "nowhere")
    async with run_script(script, "start", env=script_env(None)) as run:
        assert await run.wait() == 2
    assert "livekit.url is not set" in run.output


async def test_the_reference_agent_file_offers_dev_start_and_console(tmp_path: Path) -> None:
    async with run_script(REFERENCE_AGENT, "--help", env=script_env(None)) as run:
        assert await run.wait() == 0
    commands = run.output.split("Commands:", 1)[1].split()
    assert {"dev", "start", "console"} <= set(commands)


async def test_console_speaks_the_wav_and_leaves_after_the_answer_not_the_greeting(
        livekit_server: Any, tmp_path: Path) -> None:
    """The reference agent (no agent name: dispatched to every new room) in one command."""
    room_name = f"console-{uuid.uuid4().hex[:6]}"
    async with run_script(REFERENCE_AGENT, "console", "--room", room_name, "--input-wav", str(LIBRARY_HOURS),
                          "--exit-after-reply", "--timeout", "90", env=script_env(livekit_server)) as run:
        code = await run.wait(timeout=120)
    assert code == 0, run.output[-3000:]
    greeting = run.output.find("Hello! How can I help you today?")
    answer = run.output.find("It is sunny and 21 degrees in Paris.")
    assert 0 <= greeting < answer, run.output[-3000:]
    assert "[lk.transcription] you: what is the weather in Paris" in run.output  # the agent heard the wav


async def test_console_text_mode_prints_the_answer_to_the_typed_question_before_leaving(
        livekit_server: Any, tmp_path: Path) -> None:
    room_name = f"console-{uuid.uuid4().hex[:6]}"
    async with run_script(REFERENCE_AGENT, "console", "--room", room_name, "--timeout", "90",
                          env=script_env(livekit_server), stdin=asyncio.subprocess.PIPE) as run:
        assert run.proc.stdin is not None
        run.proc.stdin.write(b"what is the weather in Paris\n")
        await run.proc.stdin.drain()
        run.proc.stdin.close()  # end of input right away: the console still waits for the answer
        code = await run.wait(timeout=120)
    assert code == 0, run.output[-3000:]
    assert "It is sunny and 21 degrees in Paris." in run.output, run.output[-3000:]


FAILING_AGENT = '''
from roomd.agents import JobContext, WorkerOptions, cli


async def entrypoint(ctx: JobContext) -> None:
    raise RuntimeError("the model file is missing")


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, agent_name={agent_name!r}, num_idle_processes=1))
'''


@pytest.mark.parametrize("mode", ["voice", "text"])
async def test_console_exits_1_with_the_error_when_the_entrypoint_fails(
        livekit_server: Any, tmp_path: Path, mode: str) -> None:
    script = write_agent(tmp_path, f"failing-{uuid.uuid4().hex[:6]}", FAILING_AGENT)
    args = ["--input-wav", str(LIBRARY_HOURS), "--exit-after-reply"] if mode == "voice" else []
    async with run_script(script, "console", *args, "--timeout", "60", env=script_env(livekit_server),
                          stdin=asyncio.subprocess.PIPE) as run:
        assert run.proc.stdin is not None
        if mode == "text":
            run.proc.stdin.write(b"hello?\n")
            await run.proc.stdin.drain()
        code = await run.wait(timeout=90)
    assert code == 1, run.output[-3000:]
    assert "the agent's job failed: RuntimeError: the model file is missing" in run.output, run.output[-3000:]
    assert "timed out" not in run.output


FAILING_AFTER_JOINING = '''
import asyncio

from roomd.agents import JobContext, WorkerOptions, cli


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    # Fails on the user's first question: by then the room has seen it (a failure within its
    # first moments there is never announced to the others).
    asked = asyncio.Event()
    ctx.room.register_text_stream_handler("lk.chat", lambda reader, identity: asked.set())
    await asked.wait()
    raise RuntimeError("the model file is missing")


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, agent_name={agent_name!r}, num_idle_processes=1))
'''


async def test_roomd_console_exits_1_when_the_agent_fails_and_leaves(livekit_server: Any, tmp_path: Path) -> None:
    """``roomd console`` does not run the agent: a failed job shows as the agent leaving."""
    agent_name = f"failing-{uuid.uuid4().hex[:6]}"
    script = write_agent(tmp_path, agent_name, FAILING_AFTER_JOINING)
    async with run_script(script, "start", env=script_env(livekit_server)) as worker:
        await worker.wait_for_line(lambda line: _json_event(line).get("new") == "ready")
        async with run_script(tmp_path, "console", "--agent-name", agent_name, "--room", f"r-{agent_name}",
                              "--timeout", "60", module="roomd.daemon.cli", env=script_env(livekit_server),
                              stdin=asyncio.subprocess.PIPE) as console:
            assert console.proc.stdin is not None
            console.proc.stdin.write(b"hello?\n")
            await console.proc.stdin.drain()
            assert await console.wait(timeout=90) == 1, console.output[-3000:]
        assert "console: the agent left the room" in console.output, console.output[-3000:] + worker.output[-6000:]
        terminate(worker, signal.SIGTERM)
        assert await worker.wait() == 0, worker.output[-3000:]


async def test_ctrl_c_in_console_leaves_the_room_drains_and_exits_while_stdin_is_still_open(
        tmp_path: Path) -> None:
    """No server named: console starts a local one, and stops it on the way out."""
    from roomd.daemon.devserver import DEV_API_KEY, DEV_API_SECRET, DevServerAddress

    agent_name = f"single-console-{uuid.uuid4().hex[:6]}"
    room_name = f"console-{uuid.uuid4().hex[:6]}"
    script = write_agent(tmp_path, agent_name)
    async with run_script(script, "console", "--room", room_name, env=script_env(None),
                          stdin=asyncio.subprocess.PIPE) as run:
        joined = await run.wait_for_line(lambda line: line.startswith("joined room"))
        url = re.search(r" at (ws://127\.0\.0\.1:\d+) ", joined)
        assert url is not None, joined
        (server,) = children_named(run.proc.pid, "livekit-server")
        local = DevServerAddress(url.group(1), DEV_API_KEY, DEV_API_SECRET)
        watcher = await join(local, room_name, "watcher")
        try:
            child = int(await agent_attribute(watcher, "pid"))  # dispatched by its agent name
            assert parent_pid(child) == run.proc.pid
        finally:
            await watcher.disconnect()
        terminate(run, signal.SIGINT)
        # No line was typed and stdin is open: the reader thread must not keep the process up.
        assert await run.wait(timeout=30) == 0, run.output[-3000:]
    assert not Path(f"/proc/{server}").exists(), "the local dev server must be stopped"


async def test_dev_without_a_server_starts_a_local_one_and_serves_there(tmp_path: Path) -> None:
    from roomd.daemon.devserver import DEV_API_KEY, DEV_API_SECRET, DevServerAddress

    agent_name = f"single-local-{uuid.uuid4().hex[:6]}"
    room_name = f"room-{uuid.uuid4().hex[:6]}"
    script = write_agent(tmp_path, agent_name)
    async with run_script(script, "dev", env=script_env(None)) as run:
        started = await run.wait_for_line(lambda line: "started local livekit-server --dev" in line)
        url = re.search(r"url=(ws://127\.0\.0\.1:\d+)", started)
        assert url is not None, started
        local = DevServerAddress(url.group(1), DEV_API_KEY, DEV_API_SECRET)
        await run.wait_for_line(lambda line: "supervisor state" in line and "new=ready" in line)
        caller = await join(local, room_name, "caller")
        try:
            await dispatch(local, agent_name, room_name)
            assert parent_pid(int(await agent_attribute(caller, "pid"))) == run.proc.pid
        finally:
            await caller.disconnect()
        await delete_room(local, room_name)
        terminate(run, signal.SIGTERM)
        assert await run.wait() == 0, run.output[-3000:]


async def _a_dispatched_job_runs_in_a_child_of(run: Any, server: Any, agent_name: str, room_name: str) -> None:
    """Dispatch ``agent_name`` to a new room: its agent's pid is a child of the script's
    worker process. The room is deleted afterwards, which ends the job."""
    caller = await join(server, room_name, "caller")
    try:
        await dispatch(server, agent_name, room_name)
        child = int(await agent_attribute(caller, "pid"))
        assert parent_pid(child) == run.proc.pid
    finally:
        await caller.disconnect()
    await delete_room(server, room_name)
