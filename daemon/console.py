"""``roomd console``: talk to an agent from a terminal, as a participant of a room.

Text: each stdin line goes to the room on topic ``lk.chat``; what arrives on
``lk.transcription`` (the agent's replies, the user's transcripts) and ``lk.chat`` is
printed. Voice: ``--input-wav`` publishes a recording as your microphone (then
silence, so the agent hears the end of your turn), ``--output-wav`` records the
agent's audio, and ``--mic`` uses the sound card when ``sounddevice`` and a device are
present. Without a server URL it starts a local dev server.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import click
import numpy as np

from roomd.ipc.exits import exit_now

from .console_session import FRAME, RATE, AgentLeft, ConsoleOptions, ConsoleSession, Line, read_wav_48k


async def _stdin_lines() -> asyncio.Queue[str | None]:
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def pump() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    # A daemon thread, not the loop's executor: read() cannot be interrupted, and neither
    # asyncio.run's shutdown nor interpreter exit may wait for a line nobody types.
    threading.Thread(target=pump, name="console stdin", daemon=True).start()
    return queue


def _report_mic_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        click.echo(f"console: the microphone stopped: {task.exception()}", err=True)


async def _mic(session: ConsoleSession) -> None:
    """Sound card to the room (when sounddevice and an input device are present)."""
    import sounddevice as sd  # optional

    loop = asyncio.get_running_loop()
    blocks: asyncio.Queue[np.ndarray] = asyncio.Queue()

    def callback(indata, frames, time_info, status) -> None:  # type: ignore[no-untyped-def]
        loop.call_soon_threadsafe(blocks.put_nowait, indata[:, 0].copy())

    with sd.InputStream(samplerate=RATE, channels=1, dtype="int16", blocksize=FRAME, callback=callback):
        while True:
            block = await blocks.get()
            session._speech.put_nowait((block, asyncio.get_running_loop().create_future()))


async def run_console(options: ConsoleOptions, *, exit_after_reply: bool, timeout: float | None,
                      failure: asyncio.Future[str] | None = None) -> int:
    """Talk to the agent; 0 once done, 1 on timeout, when the agent leaves before answering,
    or when ``failure`` (the agent's job failed, with the error) resolves first."""

    def show(line: Line) -> None:
        if line.final and line.text.strip():
            who = "you" if line.identity == options.identity else line.identity
            click.echo(f"[{line.topic}] {who}: {line.text}")

    session = ConsoleSession(options, on_line=show)
    await session.connect()
    click.echo(f"joined room {options.room!r} at {options.url} as {options.identity!r}", err=True)
    talk = asyncio.ensure_future(_converse(session, exit_after_reply=exit_after_reply))
    # The agent leaving ends the conversation even while stdin stays open.
    gone = asyncio.ensure_future(session._until(lambda: False))
    watched: set[asyncio.Future[Any]] = {talk, gone}
    if failure is not None:
        watched.add(failure)
    try:
        async with asyncio.timeout(timeout):
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if failure is not None and failure.done():
            click.echo(f"console: the agent's job failed: {failure.result()}", err=True)
            return 1
        if talk.done():
            return talk.result()
        gone.result()  # raises AgentLeft
        return 1
    except TimeoutError:
        click.echo(f"console: timed out after {timeout}s", err=True)
        return 1
    except AgentLeft as exc:
        if session.answered():
            click.echo("console: the agent left the room", err=True)
            return 0
        click.echo(f"console: {exc}", err=True)
        return 1
    finally:
        for task in (talk, gone):
            task.cancel()
        await asyncio.gather(talk, gone, return_exceptions=True)
        await session.aclose()


async def _converse(session: ConsoleSession, *, exit_after_reply: bool) -> int:
    """Speak the recording and/or send stdin's lines; with a question asked, wait for its answer."""
    loop = asyncio.get_running_loop()
    asked: float | None = None  # loop time of the last question, spoken or typed
    if session.options.input_wav is not None:
        await session.wait_until_agent_listens()
        asked = session.asked_at = loop.time()
        await session.play(read_wav_48k(session.options.input_wav))
        if exit_after_reply:
            await session.wait_for_reply(asked)
            await session.play_silence(1.0)  # let the reply's audio reach the recorder
            return 0
    # Not a TaskGroup: it would wrap AgentLeft in an ExceptionGroup.
    mic = asyncio.ensure_future(_mic(session)) if session.options.mic else None
    if mic is not None:
        mic.add_done_callback(_report_mic_failure)
    try:
        lines = await _stdin_lines()
        while (text := await lines.get()) is not None:
            if text.strip():
                if asked is None:
                    await session.wait_until_agent_listens()  # a line sent before is lost
                asked = session.asked_at = loop.time()
                await session.send_text(text)
    finally:
        if mic is not None:
            mic.cancel()
            await asyncio.gather(mic, return_exceptions=True)
    if asked is not None:
        await session.wait_for_reply(asked)  # stdin closed: the last question's answer, then leave
    await asyncio.sleep(0)  # let the last text go out before leaving
    return 0


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def require_microphone() -> None:
    """A usage error unless ``--mic`` can work here (sounddevice, PortAudio and a device)."""
    try:
        import sounddevice as sd

        sd.query_devices(kind="input")
    except Exception as exc:  # no module, no PortAudio, or no device
        raise click.UsageError(f"--mic needs sounddevice and an input device: {exc}") from exc


@click.command("console")
@click.option("--url", envvar="LIVEKIT_URL", help="Server URL (default LIVEKIT_URL; else the dev server of `roomd run --dev` on 127.0.0.1:7880, else a new dev server).")
@click.option("--api-key", envvar="LIVEKIT_API_KEY", help="Default LIVEKIT_API_KEY.")
@click.option("--api-secret", envvar="LIVEKIT_API_SECRET", help="Default LIVEKIT_API_SECRET.")
@click.option("--room", default="console", show_default=True)
@click.option("--identity", default="console-user", show_default=True)
@click.option("--agent-name", help="Dispatch this agent to the room (AgentDispatchService).")
@click.option("--input-wav", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Publish this 16-bit mono WAV as your voice.")
@click.option("--output-wav", type=click.Path(dir_okay=False, path_type=Path), help="Record the agent's audio here.")
@click.option("--mic", is_flag=True, help="Use the microphone (needs sounddevice and an input device).")
@click.option("--exit-after-reply/--stay", default=None,
              help="With --input-wav: leave after the agent's reply (default when stdin is not a terminal).")
@click.option("--timeout", type=float, help="Leave after this many seconds.")
def console(url: str | None, api_key: str | None, api_secret: str | None, room: str, identity: str,
            agent_name: str | None, input_wav: Path | None, output_wav: Path | None, mic: bool,
            exit_after_reply: bool | None, timeout: float | None) -> None:
    """Join a room and talk to an agent: type text, or speak with --input-wav / --mic."""
    if mic:
        require_microphone()
    if exit_after_reply is None:
        exit_after_reply = input_wav is not None and not sys.stdin.isatty()
    server = None
    if not url:
        from roomd.daemon.devserver import DevServer, find_running_dev_server

        address = find_running_dev_server()  # the one `roomd run --dev` started
        if address is not None:
            click.echo(f"using the dev server at {address.url}", err=True)
        else:
            server = DevServer()
            address = server.start()
            click.echo(f"started a dev server at {address.url} (key {address.api_key}); "
                       "agents must register with it", err=True)
        url, api_key, api_secret = address.url, address.api_key, address.api_secret
    if (not api_key or not api_secret) and _is_loopback(url):
        from roomd.daemon.devserver import DEV_API_KEY, DEV_API_SECRET

        # A local server without credentials given: the dev server's, which are no secret.
        api_key, api_secret = api_key or DEV_API_KEY, api_secret or DEV_API_SECRET
    if not api_key or not api_secret:
        raise click.UsageError("--api-key and --api-secret (or LIVEKIT_API_KEY/LIVEKIT_API_SECRET) are required")
    options = ConsoleOptions(url=url, api_key=api_key, api_secret=api_secret, room=room, identity=identity,
                             agent_name=agent_name, input_wav=input_wav, output_wav=output_wav, mic=mic)
    try:
        code = asyncio.run(run_console(options, exit_after_reply=exit_after_reply, timeout=timeout))
    finally:
        if server is not None:
            server.stop()
    exit_now(code)  # the room is left and every file written by now
