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
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from livekit.protocol import agent as agent_pb

from roomd.ipc.tasks import TaskOwner

from .job_request import AcceptArguments, JobRequest
from .types import NotGivenOr, is_given

if TYPE_CHECKING:
    from livekit import api, rtc
    from livekit.api.access_token import Claims
    from livekit.protocol.room import DeleteRoomResponse
    from livekit.protocol.sip import SIPParticipantInfo, TransferSIPParticipantResponse

    from .voice.metrics_report import LatencySample


class AutoSubscribe(str, enum.Enum):
    SUBSCRIBE_ALL = "subscribe_all"
    SUBSCRIBE_NONE = "subscribe_none"
    AUDIO_ONLY = "audio_only"
    VIDEO_ONLY = "video_only"


class JobExecutorType(enum.Enum):
    """How jobs are isolated. roomd always runs each job in a child process."""

    PROCESS = "process"
    THREAD = "thread"


class JobProcess:
    """The process a job runs in. ``userdata`` carries what ``prewarm_fnc`` prepared to the job."""

    def __init__(
        self,
        *,
        pid: int,
        plugin: str = "",
        generation: int = 0,
        executor_type: JobExecutorType = JobExecutorType.PROCESS,
        user_arguments: Any | None = None,
        http_proxy: str | None = None,
    ) -> None:
        self._pid = pid
        self._plugin = plugin
        self._generation = generation
        self._executor_type = executor_type
        self._user_arguments = user_arguments
        self._http_proxy = http_proxy
        self._userdata: dict[Any, Any] = {}
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
    def executor_type(self) -> JobExecutorType:
        return self._executor_type

    @property
    def user_arguments(self) -> Any | None:
        return self._user_arguments

    @property
    def http_proxy(self) -> str | None:
        return self._http_proxy

    @property
    def userdata(self) -> dict[Any, Any]:
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

    @property
    def accept_arguments(self) -> AcceptArguments:
        """The reference's name for ``accept``."""
        return self.accept


ShutdownCallback = Callable[[], Awaitable[None]] | Callable[[str], Awaitable[None]]
ParticipantEntrypoint = Callable[["JobContext", "rtc.RemoteParticipant"], Coroutine[Any, Any, None]]
ParticipantKinds = list[int] | int

log = logging.getLogger("roomd.agents.job")
_T = TypeVar("_T")

_current_job: contextvars.ContextVar[JobContext] = contextvars.ContextVar("roomd_job_context")


def get_job_context() -> JobContext:
    """The running job's context; ``RuntimeError`` outside a job."""
    try:
        return _current_job.get()
    except LookupError:
        raise RuntimeError("no job is running in this context (get_job_context() is for code "
                           "called from an entrypoint)") from None


get_current_job_context = get_job_context  # the reference's older name
JobAcceptArguments = AcceptArguments  # the reference's name for what request.accept() takes
__all__ = ["AutoSubscribe", "JobAcceptArguments", "JobContext", "JobExecutorType", "JobProcess", "JobRequest",
           "RunningJobInfo", "get_current_job_context", "get_job_context"]


def __getattr__(name: str) -> Any:
    # DEFAULT_PARTICIPANT_KINDS needs livekit.rtc, which this module only imports in the job
    if name == "DEFAULT_PARTICIPANT_KINDS":
        return _default_participant_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _default_participant_kinds() -> list[int]:
    from livekit import rtc

    return [rtc.ParticipantKind.PARTICIPANT_KIND_SIP, rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD]


def _kind_matches(kind: ParticipantKinds | None, participant: rtc.RemoteParticipant) -> bool:
    if kind is None:
        return True
    if isinstance(kind, list):
        return participant.kind in kind
    return bool(participant.kind == kind)


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
        self._connect_lock = asyncio.Lock()
        self._connected_once = False
        self._participant_entrypoints: list[tuple[ParticipantEntrypoint, ParticipantKinds]] = []
        # (identity, entrypoint) -> its task: one run per participant and entrypoint at a time
        self._participant_tasks: dict[tuple[str, ParticipantEntrypoint], asyncio.Task[None]] = {}
        # delete_room(), SIP calls and participant entrypoints: tasks that end with the job.
        # roomd.ipc's owner, not utils.aio's: that package would import livekit.rtc into the
        # zygote, before the fork.
        self._tasks = TaskOwner(f"job {self._info.job.id}")
        # The child runtime's way to the supervisor; the voice session reports through it.
        self._metrics_reporter = metrics_reporter
        room.on("participant_connected", self._participant_available)

    # -- what the job is ------------------------------------------------------------------
    @property
    def room(self) -> rtc.Room:
        """The job's room; not connected until ``connect()`` (or ``AgentSession.start``)."""
        return self._room

    @property
    def agent(self) -> rtc.LocalParticipant:
        """The agent's own participant in the room."""
        return self._room.local_participant

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

            from roomd.ipc.urls import http_url

            self._api = api.LiveKitAPI(http_url(self._info.url), self._info.api_key, self._info.api_secret)
        return self._api

    def token_claims(self) -> Claims:
        """The claims of the job's access token (identity, grants, attributes), unverified:
        the server that issued it already checked it."""
        from livekit import api

        return api.TokenVerifier().verify(self._info.token, verify_signature=False)

    # -- the room -------------------------------------------------------------------------
    async def connect(
        self,
        *,
        e2ee: rtc.E2EEOptions | None = None,
        auto_subscribe: AutoSubscribe = AutoSubscribe.SUBSCRIBE_ALL,
        rtc_config: rtc.RtcConfiguration | None = None,
    ) -> None:
        """Join the job's room with the job's token, subscribing as ``auto_subscribe`` says.

        A second call (or one after ``AgentSession.start`` joined) does nothing. Participant
        entrypoints start for everyone already in the room."""
        from livekit import rtc

        async with self._connect_lock:
            if self._connected_once:
                return
            if self._room.isconnected():  # joined by someone else (e.g. the session): adopt it
                self._connected_once = True
                for participant in list(self._room.remote_participants.values()):
                    self._participant_available(participant)
                return
            # The SDK subscribes to everything itself; the other modes subscribe here.
            options = rtc.RoomOptions(auto_subscribe=auto_subscribe == AutoSubscribe.SUBSCRIBE_ALL)
            if e2ee is not None:
                options.e2ee = e2ee
            if rtc_config is not None:
                options.rtc_config = rtc_config
            await self._room.connect(self._info.url, self._info.token, options)
            self._connected_once = True
            if auto_subscribe in (AutoSubscribe.AUDIO_ONLY, AutoSubscribe.VIDEO_ONLY):
                self._subscribe_by_kind(auto_subscribe)
            for participant in list(self._room.remote_participants.values()):
                self._participant_available(participant)

    def _subscribe_by_kind(self, auto_subscribe: AutoSubscribe) -> None:
        def on_published(publication: rtc.RemoteTrackPublication, _: rtc.RemoteParticipant) -> None:
            if _wants(auto_subscribe, publication):
                publication.set_subscribed(True)

        self._room.on("track_published", on_published)
        for participant in self._room.remote_participants.values():
            for publication in participant.track_publications.values():
                on_published(publication, participant)

    async def wait_for_participant(
        self,
        *,
        identity: str | None = None,
        kind: ParticipantKinds | None = None,
    ) -> rtc.RemoteParticipant:
        """The first remote participant with ``identity`` (any, if None) of the given kinds
        (SIP and standard by default); returns at once if one is already in the room.
        Waits as long as it takes: wrap it in ``asyncio.wait_for`` to bound it."""
        from .utils.participant import wait_for_participant

        kinds = _default_participant_kinds() if kind is None else kind
        return await wait_for_participant(self._room, identity=identity, kind=kinds)

    def add_participant_entrypoint(
        self,
        entrypoint_fnc: ParticipantEntrypoint,
        *_: Any,
        kind: ParticipantKinds | None = None,
    ) -> None:
        """Run ``entrypoint_fnc(ctx, participant)`` for every participant of the given kinds
        (SIP and standard by default) that is in the room or joins it; several entrypoints
        run side by side. Their tasks end with the job."""
        if any(fnc == entrypoint_fnc for fnc, _kind in self._participant_entrypoints):
            raise ValueError(f"participant entrypoint {getattr(entrypoint_fnc, '__qualname__', entrypoint_fnc)!r} "
                             "was already added")
        self._participant_entrypoints.append(
            (entrypoint_fnc, _default_participant_kinds() if kind is None else kind))
        if self._room.isconnected():
            for participant in list(self._room.remote_participants.values()):
                self._participant_available(participant, only=entrypoint_fnc)

    def _participant_available(self, participant: rtc.RemoteParticipant,
                               only: ParticipantEntrypoint | None = None) -> None:
        for fnc, kind in self._participant_entrypoints:
            if (only is not None and fnc != only) or not _kind_matches(kind, participant):
                continue
            key = (participant.identity, fnc)
            if key in self._participant_tasks:
                # Same identity back before its previous run ended: the reference warns and runs again.
                log.warning("participant %r rejoined while its entrypoint %s still runs",
                            participant.identity, getattr(fnc, "__qualname__", fnc))
            task = self._own_task(self._run_participant_entrypoint(fnc, participant),
                                              name=f"participant entrypoint {participant.identity}")
            self._participant_tasks[key] = task
            task.add_done_callback(self._forget_participant_task(key))

    def _forget_participant_task(self, key: tuple[str, ParticipantEntrypoint]) -> Callable[[asyncio.Task[None]], None]:
        def forget(task: asyncio.Task[None]) -> None:
            if self._participant_tasks.get(key) is task:  # not a newer run for the same identity
                del self._participant_tasks[key]

        return forget

    async def _run_participant_entrypoint(self, fnc: ParticipantEntrypoint,
                                          participant: rtc.RemoteParticipant) -> None:
        try:
            await fnc(self, participant)
        except Exception:  # one participant's failure does not end the job, as in the reference
            log.exception("participant entrypoint %s raised for %r",
                          getattr(fnc, "__qualname__", fnc), participant.identity)

    # -- server requests ------------------------------------------------------------------
    def delete_room(self) -> asyncio.Future[DeleteRoomResponse]:
        """Delete the job's room on the server (everyone is disconnected, the job ends)."""
        from livekit import api

        request = api.DeleteRoomRequest(room=self._room_name())
        return self._own_task(self.api.room.delete_room(request), name="delete room")

    def add_sip_participant(
        self,
        *,
        call_to: str,
        trunk_id: str,
        participant_identity: str,
        participant_name: NotGivenOr[str] = "SIP-participant",
    ) -> asyncio.Future[SIPParticipantInfo]:
        """Dial ``call_to`` through the outbound SIP trunk ``trunk_id`` into this room."""
        from livekit import api

        request = api.CreateSIPParticipantRequest(
            room_name=self._room_name(), participant_identity=participant_identity,
            sip_trunk_id=trunk_id, sip_call_to=call_to,
            participant_name=participant_name if is_given(participant_name) else None,
        )
        return self._own_task(self.api.sip.create_sip_participant(request),
                                          name="add SIP participant")

    def transfer_sip_participant(
        self,
        participant: rtc.RemoteParticipant | str,
        transfer_to: str,
        play_dialtone: bool = False,
    ) -> asyncio.Future[TransferSIPParticipantResponse]:
        """Transfer a SIP participant (object or identity) to ``transfer_to``."""
        from livekit import api, rtc

        if isinstance(participant, rtc.RemoteParticipant):
            if participant.kind != rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
                raise ValueError(f"participant {participant.identity!r} is not a SIP participant")
            identity = participant.identity
        else:
            identity = participant
        request = api.TransferSIPParticipantRequest(
            room_name=self._room_name(), participant_identity=identity, transfer_to=transfer_to,
            play_dialtone=play_dialtone,
        )
        return self._own_task(self.api.sip.transfer_sip_participant(request),
                                          name="transfer SIP participant")

    def _room_name(self) -> str:
        # Before connect() the room object has no name yet; the job always knows it.
        return self._room.name or self._info.job.room.name

    # -- ending ---------------------------------------------------------------------------
    def add_shutdown_callback(self, callback: ShutdownCallback) -> None:
        """Run ``callback`` (async; with the reason if it takes an argument) at shutdown,
        in the order added, each bounded."""
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
        """Run callbacks in order, each under ``timeout_each``; return the problems met.
        Then give the job's server requests up to ``timeout_each`` to finish, and end the
        participant entrypoints."""
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
        entrypoints = set(self._participant_tasks.values())
        requests = [t for t in self._tasks.tasks if t not in entrypoints]
        if requests:  # a delete_room() from a callback should reach the server
            await asyncio.wait(requests, timeout=timeout_each)
        await self._cancel_tasks()
        return problems

    def _own_task(self, coro: Coroutine[Any, Any, _T], *, name: str) -> asyncio.Task[_T]:
        return self._tasks.spawn(coro, name)

    async def _cancel_tasks(self) -> None:
        # The owner stays open: an entrypoint being cancelled may still send a request.
        pending = [t for t in self._tasks.tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _report_metric(self, sample: LatencySample) -> None:
        """Best effort: a job never waits for, or fails on, its metrics."""
        if self._metrics_reporter is not None:
            self._metrics_reporter(sample)

    async def _close_api(self) -> None:
        await self._tasks.aclose(timeout=None)
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
