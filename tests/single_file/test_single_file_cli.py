"""The rest of the reference's command line on a single-file agent: ``connect``,
``download-files``, ``start --drain-timeout``, ``dev --no-watch``/``--asyncio-debug``,
``--log-level`` in any case and ``console --record``, each run as its user would."""

from __future__ import annotations

import shutil
import signal
import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from room_client import delete_room, dispatch, join
from single_file_helpers import agent_attribute, parent_pid, run_script, script_env, terminate, write_agent

from roomd.agents import WorkerOptions, cli

REFERENCE_AGENT = Path(__file__).parents[1] / "agents" / "voice" / "data" / "reference_agent.py"
LIBRARY_HOURS = Path(__file__).parents[1] / "data" / "library_hours.wav"


async def entrypoint(ctx: Any) -> None:
    pass


@pytest.mark.livekit_server
async def test_connect_sends_the_agent_to_the_named_room(livekit_server: Any, tmp_path: Path) -> None:
    room_name = f"connect-{uuid.uuid4().hex[:6]}"
    script = write_agent(tmp_path, f"single-connect-{uuid.uuid4().hex[:6]}")
    watcher = await join(livekit_server, room_name, "watcher")  # the room exists before the agent
    try:
        async with run_script(script, "connect", "--room", room_name, "--participant-identity", "watcher",
                              "--no-watch", env=script_env(livekit_server)) as run:
            child = int(await agent_attribute(watcher, "pid"))
            assert parent_pid(child) == run.proc.pid  # a prewarmed child of this worker took the job
            sent = await run.wait_for_line(lambda line: "agent sent to the room" in line)
            assert f"room={room_name}" in sent and "participant_identity=watcher" in sent
            await watcher.disconnect()
            await delete_room(livekit_server, room_name)
            terminate(run, signal.SIGTERM)
            assert await run.wait() == 0, run.output[-3000:]
    finally:
        await watcher.disconnect()


@pytest.mark.livekit_server
async def test_start_drain_timeout_bounds_the_wait_for_running_jobs(livekit_server: Any, tmp_path: Path) -> None:
    agent_name = f"single-drain-{uuid.uuid4().hex[:6]}"
    room_name = f"room-{uuid.uuid4().hex[:6]}"
    script = write_agent(tmp_path, agent_name)
    async with run_script(script, "start", "--drain-timeout", "1", env=script_env(livekit_server)) as run:
        await run.wait_for_line(lambda line: '"new": "ready"' in line)
        caller = await join(livekit_server, room_name, "caller")
        try:
            await dispatch(livekit_server, agent_name, room_name)
            await agent_attribute(caller, "pid")
            terminate(run, signal.SIGTERM)
            # The job would last as long as the room; after one second it is stopped.
            drained = await run.wait_for_line(lambda line: '"event": "draining"' in line)
            assert '"drain_timeout": 1.0' in drained
            await run.wait_for_line(lambda line: "drain timeout: stopping the jobs still running" in line)
            assert await run.wait() == 0, run.output[-3000:]
        finally:
            await caller.disconnect()
            await delete_room(livekit_server, room_name)


PLUGIN_AGENT = '''
from pathlib import Path

from roomd.agents import Plugin, WorkerOptions, cli


class VoicePack(Plugin):
    def __init__(self, fail: bool) -> None:
        super().__init__("voice-pack" + ("-broken" if fail else ""), "1.0", "voice_pack")
        self.fail = fail

    def download_files(self) -> None:
        if self.fail:
            raise RuntimeError("the mirror is down")
        (Path(__file__).parent / "voice.bin").write_bytes(b"weights")


Plugin.register_plugin(VoicePack(fail={agent_name!r} == "broken"))


async def entrypoint(ctx):
    pass


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint))
'''


async def test_download_files_runs_each_plugins_step_and_checks_the_offline_models(tmp_path: Path) -> None:
    script = write_agent(tmp_path, "ok", PLUGIN_AGENT)
    async with run_script(script, "download-files", "--log-level", "INFO", env=script_env(None)) as run:
        assert await run.wait() == 0, run.output[-3000:]
    assert (tmp_path / "voice.bin").read_bytes() == b"weights"
    assert "voice-pack: files downloaded" in run.output
    # The offline stack fetches nothing; it says which of its models are installed.
    for component in ("local/silero", "local/whisper-tiny", "local/smollm2", "local/flite", "local/piper"):
        assert f"{component}: present: " in run.output or f"{component}: missing: " in run.output, run.output


async def test_download_files_exits_1_when_a_step_fails(tmp_path: Path) -> None:
    script = write_agent(tmp_path, "broken", PLUGIN_AGENT)
    async with run_script(script, "download-files", env=script_env(None)) as run:
        assert await run.wait() == 1
    assert "voice-pack-broken: download failed: the mirror is down" in run.output


def _parsed(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the command line gives ``_serve`` (the overrides and the run's switches)."""
    seen: dict[str, Any] = {}

    def serve(opts: WorkerOptions, overrides: dict[str, Any], **kwargs: Any) -> int:
        seen.update(overrides=overrides, **kwargs)
        return 0

    monkeypatch.setattr(cli, "_serve", serve)
    result = CliRunner().invoke(cli.build_cli(WorkerOptions(entrypoint_fnc=entrypoint)), args)
    assert result.exit_code == 0, result.output
    return seen["overrides"], {k: v for k, v in seen.items() if k != "overrides"}


@pytest.mark.parametrize("level", ["INFO", "Warning", "debug", "CRITICAL"])
def test_log_level_is_taken_in_any_case(level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from roomd.agents.worker import worker_config

    overrides, _ = _parsed(["start", "--log-level", level], monkeypatch)
    config = worker_config(WorkerOptions(entrypoint_fnc=entrypoint, ws_url="ws://o:1", api_key="k", api_secret="s"),
                           overrides, environ={})
    assert config.daemon.log_level == level.lower()


def test_dev_watches_unless_told_not_to_and_can_debug_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _parsed(["dev"], monkeypatch)[1]["watch"] is True
    assert _parsed(["dev", "--no-watch"], monkeypatch)[1]["watch"] is False
    assert _parsed(["dev", "--asyncio-debug"], monkeypatch)[1]["debug"] is True
    assert _parsed(["connect", "--room", "r", "--no-watch"], monkeypatch)[1]["watch"] is False


def test_connect_needs_a_room() -> None:
    result = CliRunner().invoke(cli.build_cli(WorkerOptions(entrypoint_fnc=entrypoint)), ["connect"])
    assert result.exit_code == 2 and "Missing option '--room'" in result.output


@pytest.mark.livekit_server
async def test_console_record_writes_both_sides_of_the_conversation(livekit_server: Any, tmp_path: Path) -> None:
    agent = Path(shutil.copy(REFERENCE_AGENT, tmp_path / "agent.py"))  # the recording lands in its folder
    async with run_script(agent, "console", "--record", "--input-wav", str(LIBRARY_HOURS), "--exit-after-reply",
                          "--timeout", "90", env=script_env(livekit_server)) as run:
        assert await run.wait(timeout=120) == 0, run.output[-3000:]
    (recording,) = tmp_path.glob("console_*.wav")
    assert f"recorded the conversation to {recording}" in run.output
    with wave.open(str(recording)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 48000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    with wave.open(str(LIBRARY_HOURS)) as spoken:
        spoken_seconds = spoken.getnframes() / spoken.getframerate()
    loud = np.abs(samples) > 2000
    assert loud[:, 0].sum() / 48000 > spoken_seconds / 4  # the user's side holds the speech
    assert loud[:, 1].any()  # the agent's side holds its (tone) voice
    # The sides line up in time: the agent answered after the question began.
    assert np.argmax(loud[:, 0]) < np.flatnonzero(loud[:, 1])[-1]
