"""The whole path a newcomer takes: ``roomd run`` serves the installed receptionist
plugin, ``roomd console`` (its session class) dispatches it to a room by name and asks
a spoken question; the agent, running in a daemon child under uvloop, answers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from livekit import api

from roomd.daemon.console import TRANSCRIPTION_TOPIC, ConsoleOptions, ConsoleSession, read_wav_48k
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
    console = ConsoleSession(ConsoleOptions(url=livekit_server.url, api_key=livekit_server.api_key,
                                            api_secret=livekit_server.api_secret, room=room,
                                            agent_name="receptionist"))
    try:
        async with asyncio.timeout(120):
            await _wait_ready(proc, log)

            async def keep_reading() -> None:  # a full pipe would stall the daemon
                assert proc.stdout is not None
                while raw := await proc.stdout.readline():
                    log.append(raw.decode(errors="replace"))

            drain = asyncio.create_task(keep_reading())
            await console.connect()  # dispatches the receptionist by name
            me = console.options.identity

            def agent_final(line) -> bool:  # type: ignore[no-untyped-def]
                return line.topic == TRANSCRIPTION_TOPIC and line.identity != me and line.final and bool(line.text)

            greeting = await console.wait_for_line(agent_final)
            assert "welcome" in words(greeting.text)
            start = len(console.lines)
            await console.play(read_wav_48k(DATA / "library_hours.wav"))
            answer = await console.wait_for_line(agent_final, start=start)
            assert "library" in words(answer.text), answer.text
    finally:
        # What follows tears the room down under a talking agent; the SDK logs errors about
        # that (a publisher renegotiating into a closed connection). The call itself must not.
        conversation = len(log)
        await console.aclose()
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
