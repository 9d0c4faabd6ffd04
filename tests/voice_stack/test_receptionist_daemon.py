"""The whole path a newcomer takes: ``roomd run`` serves the installed receptionist
plugin, ``roomd console --input-wav`` dispatches it to a room by name and asks a spoken
question; the agent, running in a daemon child under uvloop, answers, and the console
prints the answer and leaves."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from livekit import api

from voice_helpers import DATA, require_local_stack, words

pytestmark = [pytest.mark.slow_models, pytest.mark.livekit_server]


async def _wait_ready(proc: asyncio.subprocess.Process, log: list[str]) -> None:
    assert proc.stdout is not None
    while True:
        raw = await proc.stdout.readline()
        if not raw:
            raise AssertionError("roomd run exited before it was ready:\n" + "".join(log[-30:]))
        line = raw.decode(errors="replace")
        log.append(line)
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "supervisor state" and event.get("new") == "ready":
            return


async def test_roomd_run_serves_the_receptionist_to_console(livekit_server, tmp_path: Path) -> None:
    require_local_stack("llama_cpp")
    try:
        from importlib.metadata import entry_points

        assert any(ep.name == "receptionist" for ep in entry_points(group="roomd.agents"))
    except AssertionError:
        pytest.skip("the receptionist example is not installed (pip install -e plugins/examples/receptionist)")
    config = tmp_path / "roomd.toml"
    config.write_text('[plugins]\nenabled = ["receptionist"]\n')
    env = dict(os.environ, LIVEKIT_URL=livekit_server.url, LIVEKIT_API_KEY=livekit_server.api_key,
               LIVEKIT_API_SECRET=livekit_server.api_secret)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "roomd.daemon.cli", "run", "--config", str(config), "--log-format", "json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    log: list[str] = []
    drain: asyncio.Task[None] | None = None
    room = "daemon-reception"
    console: asyncio.subprocess.Process | None = None
    try:
        async with asyncio.timeout(180):
            await _wait_ready(proc, log)

            async def keep_reading() -> None:  # a full pipe would stall the daemon
                assert proc.stdout is not None
                while raw := await proc.stdout.readline():
                    log.append(raw.decode(errors="replace"))

            drain = asyncio.create_task(keep_reading())
            # What a newcomer types: the console dispatches the receptionist, waits for its
            # greeting, speaks the recording and leaves once the question is answered.
            console = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "roomd.daemon.cli", "console", "--room", room, "--agent-name", "receptionist",
                "--input-wav", str(DATA / "library_hours.wav"), "--exit-after-reply", "--timeout", "150",
                env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await console.communicate()
        printed = out.decode(errors="replace")
        assert console.returncode == 0, printed + err.decode(errors="replace")[-3000:]
        agent_lines = [line.split(": ", 1)[1] for line in printed.splitlines()
                       if line.startswith("[lk.transcription] ") and not line.startswith("[lk.transcription] you:")]
        assert len(agent_lines) >= 2, printed
        assert "welcome" in words(agent_lines[0]), printed  # the greeting first...
        assert "library" in words(agent_lines[-1]), printed  # ...then the answer, the console's last line
    finally:
        # What follows tears the room down under a talking agent; the SDK logs errors about
        # that (a publisher renegotiating into a closed connection). The call itself must not.
        conversation = len(log)
        if console is not None and console.returncode is None:
            console.kill()
            await console.wait()
        async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, livekit_server.api_secret) as lk:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))  # ends the job
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if drain is not None:
            await drain
    errors = [line for line in log[:conversation] if '"level": "error"' in line]
    assert errors == [], "".join(errors[:5])
