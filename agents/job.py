"""The job API plugin authors use inside a child: ``JobContext``, ``JobProcess``, ``AutoSubscribe``.

Objects here are built by the child runtime (``roomd.child``) after the fork, so
``livekit.rtc`` is only touched in the process that runs the job.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from livekit.protocol import agent as agent_pb

from .job_request import AcceptArguments

if TYPE_CHECKING:
    from livekit import api, rtc

    from .voice.metrics_report import LatencySample


class AutoSubscribe(str, enum.Enum):
    SUBSCRIBE_ALL = "subscribe_all"
    SUBSCRIBE_NONE = "subscribe_none"
    AUDIO_ONLY = "audio_only"
    VIDEO_ONLY = "video_only"


class JobProcess:
    """The process a job runs in. ``userdata`` carries what ``prewarm_fnc`` prepared to the job."""

    def __init__(self, *, pid: int, plugin: str = "", generation: int = 0) -> None:
        self._pid = pid
        self._plugin = plugin
        self._generation = generation
        self._userdata: dict[str, Any] = {}
        self._ipc_fileno = -1  # the child's IPC socket; private, used by tests that inject bytes

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def plugin(self) -> str:
        return self._plugin

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def userdata(self) -> dict[str, Any]:
        return self._userdata


@dataclasses.dataclass(frozen=True)
class RunningJobInfo:
    """What the supervisor's StartJob said; credentials never leave the child."""

    job: agent_pb.Job
    url: str
    token: str = dataclasses.field(repr=False)
    accept: AcceptArguments
    worker_id: str
    api_key: str = dataclasses.field(default="", repr=False)
    api_secret: str = dataclasses.field(default="", repr=False)


ShutdownCallback = Callable[[], Awaitable[None]] | Callable[[str], Awaitable[None]]

_current_job: contextvars.ContextVar[JobContext] = contextvars.ContextVar("roomd_job_context")


def get_job_context() -> JobContext:
    """The running job's context; ``RuntimeError`` outside a job."""
    try:
        return _current_job.get()
    except LookupError:
        raise RuntimeError("no job is running in this context (get_job_context() is for code "
                           "called from an entrypoint)") from None


def _default_participant_kinds() -> list[int]:
    from livekit import rtc

    return [rtc.ParticipantKind.PARTICIPANT_KIND_SIP, rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD]


MetricsReporter = Callable[["LatencySample"], None]


class JobContext:
    def __init__(self, *, proc: JobProcess, info: RunningJobInfo, room: rtc.Room,
                 metrics_reporter: MetricsReporter | None = None) -> None:
        self._proc = proc
        self._info = info
        self._room = room
        self._shutdown_callbacks: list[ShutdownCallback] = []
        self._log_context_fields: dict[str, Any] = {}
        self._shutdown_reason: str | None = None
        self._shutdown_requested = asyncio.Event()
        self._api: api.LiveKitAPI | None = None
        self._connected_once = False
        # The child runtime's way to the supervisor; the voice session reports through it.
        self._metrics_reporter = metrics_reporter

    # -- what the job is ------------------------------------------------------------------
    @property
    def room(self) -> rtc.Room:
        return self._room

    @property
    def proc(self) -> JobProcess:
        return self._proc

    @property
    def job(self) -> agent_pb.Job:
        return self._info.job

    @property
    def info(self) -> RunningJobInfo:
        return self._info

    @property
    def worker_id(self) -> str:
        return self._info.worker_id

    @property
    def log_context_fields(self) -> dict[str, Any]:
        """Fields added to every log event the job emits."""
        return self._log_context_fields

    @log_context_fields.setter
    def log_context_fields(self, value: dict[str, Any]) -> None:
        self._log_context_fields = value

    @property
    def api(self) -> api.LiveKitAPI:
        """A server API client for this job's server, built on first use and closed at job end."""
        if self._api is None:
            if not (self._info.api_key and self._info.api_secret):
                raise RuntimeError("JobContext.api needs the daemon's API key and secret, which this "
                                   "job was not given")
            from livekit import api

            url = self._info.url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
            self._api = api.LiveKitAPI(url, self._info.api_key, self._info.api_secret)
        return self._api

    # -- the room -------------------------------------------------------------------------
    async def connect(
        self,
        *,
        auto_subscribe: AutoSubscribe = AutoSubscribe.SUBSCRIBE_ALL,
        rtc_config: rtc.RtcConfiguration | None = None,
        room_options: rtc.RoomOptions | None = None,
        participant_kinds: list[int] | None = None,
    ) -> None:
        """Join the job's room with the job's token, subscribing as ``auto_subscribe`` says.
        Does nothing when the room is already connected (``AgentSession.start(room=...)``
        connects it when the entrypoint did not)."""
        from livekit import rtc

        if self._room.isconnected():
            return

        options = room_options or rtc.RoomOptions()
        # The SDK subscribes to everything itself only when nothing is filtered.
        options.auto_subscribe = auto_subscribe == AutoSubscribe.SUBSCRIBE_ALL and not participant_kinds
        if rtc_config is not None:
            options.rtc_config = rtc_config
        if auto_subscribe != AutoSubscribe.SUBSCRIBE_NONE and not options.auto_subscribe:
            kinds = participant_kinds or None

            def on_published(publication: rtc.RemoteTrackPublication,
                             participant: rtc.RemoteParticipant) -> None:
                if _wants(auto_subscribe, publication) and (kinds is None or participant.kind in kinds):
                    publication.set_subscribed(True)

            self._room.on("track_published", on_published)
        await self._room.connect(self._info.url, self._info.token, options)
        self._connected_once = True
        if auto_subscribe != AutoSubscribe.SUBSCRIBE_NONE and not options.auto_subscribe:
            for participant in self._room.remote_participants.values():
                if participant_kinds and participant.kind not in participant_kinds:
                    continue
                for publication in participant.track_publications.values():
                    if _wants(auto_subscribe, publication):
                        publication.set_subscribed(True)

    async def wait_for_participant(
        self,
        *,
        identity: str | None = None,
        timeout: float = 10.0,
        participant_kinds: list[int] | None = None,
    ) -> rtc.RemoteParticipant:
        """The first remote participant matching ``identity`` and kinds; ``TimeoutError`` after ``timeout``."""
        kinds = participant_kinds or _default_participant_kinds()

        def matches(p: rtc.RemoteParticipant) -> bool:
            return (identity is None or p.identity == identity) and p.kind in kinds

        for participant in self._room.remote_participants.values():
            if matches(participant):
                return participant
        found: asyncio.Future[rtc.RemoteParticipant] = asyncio.get_running_loop().create_future()

        def on_connected(p: rtc.RemoteParticipant) -> None:
            if matches(p) and not found.done():
                found.set_result(p)

        self._room.on("participant_connected", on_connected)
        try:
            async with asyncio.timeout(timeout):
                return await found
        except TimeoutError:
            who = f"participant {identity!r}" if identity else "a participant"
            raise TimeoutError(f"{who} did not join room {self.job.room.name!r} within {timeout}s") from None
        finally:
            self._room.off("participant_connected", on_connected)

    # -- ending ---------------------------------------------------------------------------
    def add_shutdown_callback(self, callback: ShutdownCallback) -> None:
        """Run ``callback`` (async; may take the reason) at shutdown, in the order added, each bounded."""
        if not callable(callback):
            raise TypeError(f"shutdown callback must be an async function, got {type(callback).__name__}")
        self._shutdown_callbacks.append(callback)

    def shutdown(self, reason: str = "") -> None:
        """End the job: callbacks run, the room is left, the child reports the job ended."""
        if self._shutdown_reason is None:
            self._shutdown_reason = reason or "shutdown requested"
        self._shutdown_requested.set()

    @property
    def shutdown_reason(self) -> str | None:
        return self._shutdown_reason

    async def _run_shutdown_callbacks(self, timeout_each: float) -> list[str]:
        """Run callbacks in order, each under ``timeout_each``; return the problems met."""
        problems: list[str] = []
        reason = self._shutdown_reason or ""
        for callback in self._shutdown_callbacks:
            name = getattr(callback, "__qualname__", repr(callback))
            try:
                async with asyncio.timeout(timeout_each):
                    if _takes_argument(callback):
                        await callback(reason)  # type: ignore[call-arg]
                    else:
                        await callback()  # type: ignore[call-arg]
            except TimeoutError:
                problems.append(f"shutdown callback {name} did not finish within {timeout_each}s")
            except Exception as exc:  # a callback's failure must not stop the others
                problems.append(f"shutdown callback {name} raised {type(exc).__name__}: {exc}")
        return problems

    def _report_metric(self, sample: LatencySample) -> None:
        """Best effort: a job never waits for, or fails on, its metrics."""
        if self._metrics_reporter is not None:
            self._metrics_reporter(sample)

    async def _close_api(self) -> None:
        if self._api is not None:
            await self._api.aclose()
            self._api = None


def _wants(auto_subscribe: AutoSubscribe, publication: rtc.RemoteTrackPublication) -> bool:
    from livekit import rtc

    if auto_subscribe == AutoSubscribe.AUDIO_ONLY:
        return publication.kind == rtc.TrackKind.KIND_AUDIO
    if auto_subscribe == AutoSubscribe.VIDEO_ONLY:
        return publication.kind == rtc.TrackKind.KIND_VIDEO
    return True


def _takes_argument(callback: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)


def _set_current(ctx: JobContext) -> contextvars.Token[JobContext]:
    return _current_job.set(ctx)
