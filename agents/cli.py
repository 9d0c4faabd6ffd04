"""``cli.run_app(WorkerOptions(...))``: a single-file agent's command line.

``python agent.py start`` serves the agent in production (JSON logs), ``dev`` serves it
with readable debug logs and a local ``livekit-server --dev`` when no server is named, and
``console`` serves it and joins a room as you (text, or ``--input-wav``) in one command.
Each runs the daemon's own supervisor (prewarmed children, the same server link) through
``Worker``; configuration is the daemon's (``LIVEKIT_*`` and ``ROOMD_<SECTION>_<KEY>``
variables), with the flags on top.

Exit codes as ``roomd``: 0 ok, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from roomd.ipc.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, exit_now

from .worker_options import WorkerOptions

if TYPE_CHECKING:
    from .worker import Worker

# As the reference: any case ("INFO" or "info"); the value is given on in lower case.
_LEVELS = click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False)


def run_app(opts: WorkerOptions) -> None:
    """Parse the command line (``sys.argv``), run the chosen subcommand and exit."""
    build_cli(opts)(prog_name=os.path.basename(sys.argv[0]) or "agent")


def _lower(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return value.lower() if value else value


def _server_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--url", help="LiveKit server URL [default: LIVEKIT_URL, else WorkerOptions.ws_url]."),
        click.option("--api-key", help="[default: LIVEKIT_API_KEY, else WorkerOptions.api_key]"),
        click.option("--api-secret", help="[default: LIVEKIT_API_SECRET, else WorkerOptions.api_secret]"),
        click.option("--log-level", type=_LEVELS, callback=_lower, help="Lowest level logged (any case)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _dev_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--watch/--no-watch", default=True, show_default=True,
                     help="Reload when a .py file in the agent's folder is saved."),
        click.option("--asyncio-debug/--no-asyncio-debug", default=False,
                     help="Run the worker's event loop in debug mode (slow callbacks are logged)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_cli(opts: WorkerOptions) -> click.Group:
    """The command group for ``opts``; ``run_app`` runs it on ``sys.argv``."""

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    def app() -> None:
        """Run this agent on roomd: prewarmed child processes, one server registration.

        Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
        """

    @app.command()
    @_server_options
    @click.option("--drain-timeout", type=click.FloatRange(min=0),
                  help="Seconds running jobs get to end after SIGTERM [default: WorkerOptions.drain_timeout, "
                       "else the daemon's]. ")
    def start(url: str | None, api_key: str | None, api_secret: str | None, log_level: str | None,
              drain_timeout: float | None) -> None:
        """Serve the agent in production: JSON logs on stdout, SIGTERM drains, SIGHUP reloads."""
        overrides = _overrides(url, api_key, api_secret, log_level=log_level, log_format="json")
        overrides["daemon.drain_timeout"] = drain_timeout
        _exit(_serve(opts, overrides))

    @app.command()
    @_server_options
    @_dev_options
    def dev(url: str | None, api_key: str | None, api_secret: str | None, log_level: str | None,
            watch: bool, asyncio_debug: bool) -> None:
        """Serve the agent while developing: readable debug logs, a local ``livekit-server
        --dev`` when no server URL is set, and (unless --no-watch) a reload whenever a .py
        file in the agent's folder is saved (new jobs run the new code)."""
        _exit(_serve(opts, _overrides(url, api_key, api_secret, log_level=log_level or "debug",
                                      log_format="console", dev=True), watch=watch, debug=asyncio_debug))

    @app.command()
    @_server_options
    @_dev_options
    @click.option("--room", required=True, help="The room the agent joins.")
    @click.option("--participant-identity",
                  help="The participant the job is for; roomd dispatches a room job through the server, "
                       "so the entrypoint finds this participant with ctx.wait_for_participant(identity=...).")
    def connect(url: str | None, api_key: str | None, api_secret: str | None, log_level: str | None,
                watch: bool, asyncio_debug: bool, room: str, participant_identity: str | None) -> None:
        """Serve the agent as ``dev`` does and send it to one room now (an agent dispatch)."""
        _exit(_serve(opts, _overrides(url, api_key, api_secret, log_level=log_level or "debug",
                                      log_format="console", dev=True),
                     watch=watch, debug=asyncio_debug,
                     connect=_Connect(room=room, participant_identity=participant_identity)))

    @app.command("download-files")
    @click.option("--log-level", type=_LEVELS, callback=_lower, default="info", show_default=True,
                  help="Lowest level logged (any case).")
    def download_files(log_level: str) -> None:
        """Run every component's download or preparation step (models, voices), so the first
        job does not wait for them; the offline stack says which of its models are installed."""
        from roomd.daemon.embed import configure_logging

        from .plugin import download_all

        configure_logging("console", log_level, stream=sys.stderr)  # stdout: one line per component
        _exit(download_all())

    @app.command()
    @_server_options
    @click.option("--room", help="Room to join [default: a new room console-<random>].")
    @click.option("--identity", default="console-user", show_default=True)
    @click.option("--input-wav", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Publish this 16-bit mono WAV as your voice.")
    @click.option("--output-wav", type=click.Path(dir_okay=False, path_type=Path),
                  help="Record the agent's audio here.")
    @click.option("--record", is_flag=True,
                  help="Record the conversation (you left, the agent right) to console_<time>.wav here.")
    @click.option("--mic", is_flag=True, help="Use the microphone (needs sounddevice and an input device).")
    @click.option("--exit-after-reply/--stay", default=None,
                  help="With --input-wav: leave after the agent's reply (default when stdin is not a terminal).")
    @click.option("--timeout", type=float, help="Leave after this many seconds.")
    def console(url: str | None, api_key: str | None, api_secret: str | None, log_level: str | None,
                room: str | None, identity: str, input_wav: Path | None, output_wav: Path | None,
                record: bool, mic: bool, exit_after_reply: bool | None, timeout: float | None) -> None:
        """Serve the agent and talk to it: stdin lines go to the room as chat, replies are
        printed; --input-wav speaks a recording, --mic your voice. Logs go to stderr. With a
        question asked, the console leaves once it is answered (after the recording, or when
        stdin ends); it exits 1 if the agent's job fails or the agent leaves first."""
        if mic:
            from roomd.daemon.embed import require_microphone

            require_microphone()
        if exit_after_reply is None:
            exit_after_reply = input_wav is not None and not sys.stdin.isatty()
        recording = Path(f"console_{time.strftime('%Y-%m-%d_%H-%M-%S')}.wav").resolve() if record else None
        talk = _Talk(room=room or f"console-{secrets.token_hex(4)}", identity=identity,
                     input_wav=input_wav, output_wav=output_wav, record=recording, mic=mic,
                     exit_after_reply=exit_after_reply, timeout=timeout)
        overrides = _overrides(url, api_key, api_secret, log_level=log_level or "warning",
                               log_format="console", dev=True)
        code = _serve(opts, overrides, talk=talk)
        if recording is not None and recording.exists():
            click.echo(f"recorded the conversation to {recording}", err=True)
        # The console reads stdin in an executor thread that no Python call can interrupt;
        # interpreter exit would join it, so waiting for a line nobody types. Everything
        # we own (worker, children, dev server) is stopped by now: leave without the join.
        exit_now(code)

    return app


def _overrides(url: str | None, api_key: str | None, api_secret: str | None, *, log_level: str | None,
               log_format: str, dev: bool | None = None) -> dict[str, Any]:
    return {"livekit.url": url, "livekit.api_key": api_key, "livekit.api_secret": api_secret,
            "daemon.log_level": log_level, "daemon.log_format": log_format, "daemon.dev": dev}


def _exit(code: int) -> NoReturn:
    sys.exit(code)


@dataclass(frozen=True, slots=True)
class _Talk:
    """What ``console`` does once the worker is serving (options of a ConsoleSession)."""

    room: str
    identity: str
    input_wav: Path | None
    output_wav: Path | None
    record: Path | None
    mic: bool
    exit_after_reply: bool
    timeout: float | None


@dataclass(frozen=True, slots=True)
class _Connect:
    """What ``connect`` does once the worker is serving: send the agent to ``room``."""

    room: str
    participant_identity: str | None


def _serve(opts: WorkerOptions, overrides: dict[str, Any], *, talk: _Talk | None = None,
           watch: bool = False, debug: bool = False, connect: _Connect | None = None) -> int:
    from roomd.daemon.embed import ConfigError, DevServerError, ScriptTargetError, configure_logging, dev_server_for

    from .worker import Worker, worker_config

    try:
        config = worker_config(opts, overrides)
    except ConfigError as exc:
        click.echo(f"roomd: configuration error: {exc}", err=True)
        return EXIT_USAGE
    # The console's own lines are stdout; its logs must not interleave with them.
    configure_logging(config.daemon.log_format, config.daemon.log_level,
                      stream=sys.stderr if talk is not None else None)
    try:
        with dev_server_for(config) as config:
            try:
                worker = Worker(opts, config=config)
            except ScriptTargetError as exc:  # a function the children cannot import: say why now
                click.echo(f"roomd: {exc}", err=True)
                return EXIT_USAGE
            if talk is None:
                folder = worker.script.parent if watch and worker.script is not None else None
                return _run_loop(_run_worker(worker, folder, connect), debug=debug)
            return _run_loop(_run_console(worker, talk), abandon_threads=True)
    except DevServerError as exc:
        click.echo(f"roomd: dev server failed: {exc}", err=True)
        return EXIT_FAILURE


def _run_loop(main: Any, *, abandon_threads: bool = False, debug: bool = False) -> int:
    import uvloop

    if not abandon_threads:
        return int(uvloop.run(main, debug=debug or None))
    # Not uvloop.run: its shutdown waits for the default executor's threads, and the
    # console's stdin reader stays blocked in read() until a line is typed.
    loop = uvloop.new_event_loop()
    try:
        code = int(loop.run_until_complete(main))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()  # shuts the executor down without waiting for it
    return code


async def _run_worker(worker: Worker, watch: Path | None = None, connect: _Connect | None = None) -> int:
    from roomd.ipc.tasks import TaskOwner

    from .worker import WorkerError

    tasks = TaskOwner("dev")
    if watch is not None:
        tasks.spawn(_reload_on_change(worker, watch), "reload on change")
    if connect is not None:
        tasks.spawn(_dispatch_when_serving(worker, connect), "dispatch")
    try:
        await worker.run()
    except WorkerError as exc:
        click.echo(f"roomd: {exc}", err=True)
        return EXIT_FAILURE
    finally:
        await tasks.aclose()
    return EXIT_OK


async def _dispatch_when_serving(worker: Worker, connect: _Connect) -> None:
    """``connect``: once registered, ask the server to send this agent to the room (which
    it creates if needed); the job then runs as any dispatched job does."""
    import structlog
    from livekit import api

    from roomd.ipc.urls import http_url

    log = structlog.get_logger("roomd.agents.cli")
    serving = asyncio.Event()
    worker.on("worker_registered", lambda _worker_id: serving.set())
    await serving.wait()
    livekit = worker.config.livekit
    async with api.LiveKitAPI(http_url(livekit.url), livekit.api_key, livekit.api_secret) as lkapi:
        dispatch = await lkapi.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=worker.options.agent_name, room=connect.room))
    log.info("agent sent to the room", room=connect.room, dispatch_id=dispatch.id,
             participant_identity=connect.participant_identity)


def _sources(folder: Path) -> dict[Path, tuple[int, int]]:
    found = {}
    for path in folder.glob("*.py"):
        with contextlib.suppress(OSError):  # removed between the listing and the stat
            stat = path.stat()
            found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


async def _reload_on_change(worker: Worker, folder: Path, interval: float = 0.5) -> None:
    """Dev mode: reload when a .py file of the agent's folder changes.

    Polling: a stat of a few files twice a second costs nothing and needs no inotify package.
    A change seen before the worker serves waits until it does (a reload needs READY).
    """
    import structlog

    log = structlog.get_logger("roomd.agents.cli")
    seen = _sources(folder)
    serving = asyncio.Event()
    worker.on("worker_registered", lambda _worker_id: serving.set())
    while True:
        await asyncio.sleep(interval)
        now = _sources(folder)
        if now == seen or not serving.is_set() or worker.draining:
            continue
        changed = sorted(p.name for p in now.keys() | seen.keys() if now.get(p) != seen.get(p))
        seen = now
        log.info("source changed; reloading", files=changed)
        result = await worker.reload()
        (log.info if result.ok else log.error)("reload finished", ok=result.ok, generation=result.generation,
                                              detail=result.detail)


async def _run_console(worker: Worker, talk: _Talk) -> int:
    from roomd.daemon.embed import ConsoleOptions, run_console
    from roomd.ipc.tasks import TaskOwner

    from .worker import JobEnded, WorkerError

    livekit = worker.config.livekit
    options = ConsoleOptions(url=livekit.url, api_key=livekit.api_key, api_secret=livekit.api_secret,
                             room=talk.room, identity=talk.identity,
                             # No agent name: the server dispatches the agent to every new room.
                             agent_name=worker.options.agent_name or None,
                             input_wav=talk.input_wav, output_wav=talk.output_wav, record=talk.record,
                             mic=talk.mic)
    registered = asyncio.Event()
    worker.on("worker_registered", lambda _worker_id: registered.set())
    # The console's room is the worker's only job: its failure ends the conversation.
    failure: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_job_ended(ended: JobEnded) -> None:
        if ended.failed and not failure.done():
            failure.set_result(ended.error)

    worker.on("job_ended", on_job_ended)
    tasks = TaskOwner("console")
    try:
        running = tasks.spawn(worker.run(), "worker")
        ready = tasks.spawn(registered.wait(), "registration")
        await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not registered.is_set():
            await running  # the worker stopped before serving: its error says why
            return EXIT_FAILURE
        click.echo(f"agent {worker.plugin.name!r} is serving; joining room {talk.room!r}", err=True)
        session = tasks.spawn(run_console(options, exit_after_reply=talk.exit_after_reply,
                                          timeout=talk.timeout, failure=failure), "console")
        # Ctrl-C drains the worker; the console must leave too, or the job (and so the
        # drain) would wait for a room that never empties.
        worker.on("worker_draining", session.cancel)
        await asyncio.wait({session})
        code = EXIT_OK if session.cancelled() else int(session.result())
        await _end_room(options)  # ends the agent's job now rather than at the room's timeout
        await worker.drain()
        await running
        return code
    except WorkerError as exc:
        click.echo(f"roomd: {exc}", err=True)
        return EXIT_FAILURE
    finally:
        await worker.aclose()
        await tasks.aclose()


async def _end_room(options: Any) -> None:
    from livekit import api

    from roomd.ipc.urls import http_url

    async with api.LiveKitAPI(http_url(options.url), options.api_key, options.api_secret) as lkapi:
        with contextlib.suppress(api.TwirpError):  # already gone
            await lkapi.room.delete_room(api.DeleteRoomRequest(room=options.room))
