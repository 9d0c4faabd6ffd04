"""``AgentSession``: runs an ``Agent`` in a room (or over in-memory I/O).

Pieces: ``AudioRecognition`` turns user audio into turns; speeches (``say``,
``generate_reply``, replies to turns) run one at a time from a queue, each a chain of
LLM steps with tool calls fed back; ``Playout`` speaks them; ``RoomIO`` connects the
edges to LiveKit. States (``AgentState``, ``UserState``) change only in
``_set_agent_state``/``_set_user_state``, which emit the events.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from livekit import rtc

from .. import llm as llm_mod
from .. import stt as stt_mod
from .. import tts as tts_mod
from .. import vad as vad_mod
from ..errors import StopResponse
from ..llm.chat_context import ChatContext, ChatItem, ChatMessage, FunctionCall, FunctionCallOutput
from ..llm.execution import ToolExecution, execute_function_call, output_text
from ..llm.realtime import RealtimeModel
from ..llm.run_context import RunContext
from ..llm.tools import Tool, ToolContext
from ..stt.stt import SpeechEvent
from ..tts.stream_adapter import StreamAdapter as TTSStreamAdapter
from ..types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr, is_given
from ..utils.aio import TaskOwner, cancel_and_wait
from ..utils.events import EventEmitter
from ..vad.vad import VADEvent
from .agent import Agent, ModelSettings, TurnDetectionMode, check_turn_detection, resolve_component
from .audio_recognition import AudioRecognition, EndOfTurnInfo
from .events import (
    AgentFalseInterruptionEvent,
    AgentState,
    AgentStateChangedEvent,
    CloseEvent,
    CloseReason,
    ConversationItemAddedEvent,
    ErrorEvent,
    EventTypes,
    FunctionToolsExecutedEvent,
    MetricsCollectedEvent,
    SessionError,
    SpeechCreatedEvent,
    SpeechSource,
    UserInputTranscribedEvent,
    UserState,
    UserStateChangedEvent,
)
from .generation import LLMOutput, Playout, PlayoutResult, TTSFailed, read_llm_node, text_once
from .io import AudioInput, AudioOutput, TextOutput, UserTranscriptOutput
from .metrics import EOUMetrics
from .metrics_report import report_to_job
from .realtime_generation import RealtimeDriver, update_realtime
from .room_io import RoomInputOptions, RoomIO, RoomOutputOptions
from .run_result import RunResult, Run_T, apply_tool_mocks, record_handoff, record_item, record_speech, running
from .speech_handle import SpeechHandle, running_tool

logger = logging.getLogger("roomd.agents")

Userdata_T = TypeVar("Userdata_T")

# The session whose hook or tool is running (how ``await AgentTask(...)`` finds it).
current_session: contextvars.ContextVar[AgentSession[Any] | None] = contextvars.ContextVar(
    "roomd_current_session", default=None
)


async def _ensure_connected(room: rtc.Room) -> None:
    """Connect the job's room if the entrypoint has not (as the reference does)."""
    if room.isconnected():
        return
    from ..job import get_job_context

    try:
        job_ctx = get_job_context()
    except RuntimeError:
        job_ctx = None
    if job_ctx is None or job_ctx.room is not room:
        raise RuntimeError(
            "AgentSession.start(room=...): the room is not connected and is not the running job's room; "
            "connect it first (await room.connect(url, token))"
        )
    await job_ctx.connect()


@dataclass(frozen=True, slots=True)
class SessionConnectOptions:
    stt_conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    llm_conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    tts_conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    max_unrecoverable_errors: int = 3


@dataclass(slots=True)
class SessionInput:
    """Where user audio comes from; set ``audio`` before ``start`` to run without a room.
    ``set_audio_enabled(False)`` stops listening (frames are dropped) until re-enabled."""

    audio: AudioInput | None = None
    audio_enabled: bool = True
    video: Any = None  # video input is not supported

    def set_audio_enabled(self, enable: bool) -> None:
        self.audio_enabled = enable


@dataclass(slots=True)
class SessionOutput:
    """Where agent audio and transcripts go; set before ``start`` to run without a room.
    ``set_audio_enabled(False)``: the agent's replies are text only (transcript, chat)
    until re-enabled; ``set_transcription_enabled(False)``: no transcript is published."""

    audio: AudioOutput | None = None
    transcription: TextOutput | None = None
    user_transcription: UserTranscriptOutput | None = None
    audio_enabled: bool = True
    transcription_enabled: bool = True

    def set_audio_enabled(self, enable: bool) -> None:
        self.audio_enabled = enable

    def set_transcription_enabled(self, enable: bool) -> None:
        self.transcription_enabled = enable


@dataclass(slots=True)
class _Step:
    result: PlayoutResult
    tool_calls: list[llm_mod.FunctionToolCall] = field(default_factory=list)


@dataclass(slots=True)
class _RunningStep:
    """An LLM step under way: the LLM's text flows into the playout (TTS, transcript)."""

    out: LLMOutput
    llm_task: asyncio.Future[None]
    playout: Playout
    play_task: asyncio.Future[PlayoutResult]
    gate: asyncio.Event | None = None  # closed: made but held back (a preemptive generation)

    async def cancel(self) -> None:
        await cancel_and_wait(self.play_task, self.llm_task)


@dataclass(slots=True)
class _Preemptive:
    """A reply started on a final transcript before the turn was committed, and what it
    was made from: used when the turn commits with the same text, context and tools."""

    transcript: str
    handle: SpeechHandle
    task: asyncio.Task[None]
    agent: Agent
    chat_ctx: ChatContext  # the agent's conversation when it started (user message excluded)
    instructions: str
    tools: list[Tool]
    started_at: float = field(default_factory=time.perf_counter)

    def matches(self, transcript: str, agent: Agent, chat_ctx: ChatContext, tools: Sequence[Tool]) -> bool:
        return (transcript == self.transcript and agent is self.agent and agent.instructions == self.instructions
                and len(tools) == len(self.tools) and all(a is b for a, b in zip(tools, self.tools, strict=True))
                and chat_ctx.is_equivalent(self.chat_ctx))


class AgentSession(EventEmitter[EventTypes], Generic[Userdata_T]):
    """The runtime of a voice agent. Constructor arguments and defaults follow the
    LiveKit Agents reference; components may be instances or ``"provider/model"`` names
    (resolved through ``roomd.agents.components``); an ``Agent`` may override them.

    ``preemptive_generation``: on a final transcript (or an STT's preflight transcript)
    before the turn is committed, start the reply's LLM and TTS at once, holding its text
    and audio back; when the turn commits with the same text, and ``on_user_turn_completed``
    left the conversation and tools as they were, that reply is played; otherwise it is
    cancelled and the reply made anew. The user speaking again cancels it too.

    Not supported yet (accepted, with a warning when given):
    ``video_sampler``, ``tts_text_transforms``.
    """

    def __init__(
        self,
        *,
        turn_detection: NotGivenOr[TurnDetectionMode] = NOT_GIVEN,
        stt: NotGivenOr[stt_mod.STT | str] = NOT_GIVEN,
        vad: NotGivenOr[vad_mod.VAD] = NOT_GIVEN,
        llm: NotGivenOr[llm_mod.LLM | RealtimeModel | str] = NOT_GIVEN,
        tts: NotGivenOr[tts_mod.TTS | str] = NOT_GIVEN,
        mcp_servers: NotGivenOr[list[Any]] = NOT_GIVEN,
        userdata: NotGivenOr[Userdata_T] = NOT_GIVEN,
        allow_interruptions: bool = True,
        discard_audio_if_uninterruptible: bool = True,
        min_interruption_duration: float = 0.5,
        min_interruption_words: int = 0,
        min_endpointing_delay: float = 0.5,
        max_endpointing_delay: float = 6.0,
        max_tool_steps: int = 3,
        video_sampler: NotGivenOr[Any] = NOT_GIVEN,
        user_away_timeout: float | None = 15.0,
        false_interruption_timeout: float | None = 2.0,
        resume_false_interruption: bool = True,
        min_consecutive_speech_delay: float = 0.0,
        use_tts_aligned_transcript: NotGivenOr[bool] = NOT_GIVEN,
        tts_text_transforms: NotGivenOr[Sequence[Any] | None] = NOT_GIVEN,
        preemptive_generation: bool = False,
        conn_options: NotGivenOr[SessionConnectOptions] = NOT_GIVEN,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__()
        check_turn_detection(turn_detection)
        for name, value in (
            ("min_interruption_duration", min_interruption_duration),
            ("min_endpointing_delay", min_endpointing_delay),
            ("max_endpointing_delay", max_endpointing_delay),
            ("min_consecutive_speech_delay", min_consecutive_speech_delay),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if max_endpointing_delay < min_endpointing_delay:
            raise ValueError(
                f"max_endpointing_delay ({max_endpointing_delay}) must be >= min_endpointing_delay ({min_endpointing_delay})"
            )
        if max_tool_steps < 0 or min_interruption_words < 0:
            raise ValueError("max_tool_steps and min_interruption_words must be >= 0")
        for name, given in (("video_sampler", video_sampler), ("tts_text_transforms", tts_text_transforms)):
            if is_given(given) and given:
                logger.warning("AgentSession(%s=...) is not supported yet; ignored", name)
        self._turn_detection = turn_detection
        self._stt = resolve_component("stt", stt, stt_mod.STT)
        self._vad = resolve_component("vad", vad, vad_mod.VAD)
        self._llm = resolve_component("llm", llm, (llm_mod.LLM, RealtimeModel))
        self._tts = resolve_component("tts", tts, tts_mod.TTS)
        self._userdata = userdata
        self._mcp_servers = list(mcp_servers) if is_given(mcp_servers) and mcp_servers else None
        self._mcp_tools: list[Tool] = []  # the current agent's MCP tools (see _load_mcp_tools)
        self._mcp_connected: list[Any] = []  # servers this session connected; closed with it
        self.allow_interruptions = allow_interruptions
        self.discard_audio_if_uninterruptible = discard_audio_if_uninterruptible
        self.min_interruption_duration = min_interruption_duration
        self.min_interruption_words = min_interruption_words
        self.min_endpointing_delay = min_endpointing_delay
        self.max_endpointing_delay = max_endpointing_delay
        self.max_tool_steps = max_tool_steps
        self.user_away_timeout = user_away_timeout
        self.false_interruption_timeout = false_interruption_timeout
        self.resume_false_interruption = resume_false_interruption
        self.min_consecutive_speech_delay = min_consecutive_speech_delay
        self.use_tts_aligned_transcript = use_tts_aligned_transcript
        self.preemptive_generation = preemptive_generation
        self._conn_options = conn_options if is_given(conn_options) else SessionConnectOptions()
        self._loop = loop

        self.input = SessionInput()
        self.output = SessionOutput()
        self._history = ChatContext.empty()
        self._agent: Agent | None = None
        self._agent_state = AgentState.INITIALIZING
        self._user_state = UserState.LISTENING
        self._tasks = TaskOwner()
        self._speech_heap: list[tuple[int, int, SpeechHandle]] = []
        self._speech_seq = 0
        self._wake_scheduler = asyncio.Event()
        self._speech_tasks: set[asyncio.Task[None]] = set()
        self._live_speeches: set[SpeechHandle] = set()  # created and not done yet
        self._error_counts: dict[str, int] = {}  # unrecoverable errors in a row, by kind
        self._close_task: asyncio.Task[None] | None = None
        self._current: SpeechHandle | None = None
        self._recognition: AudioRecognition | None = None
        self._room_io: RoomIO | None = None
        self._started = False
        self._closing = False
        self._closed = asyncio.Event()
        self._away_timer: asyncio.TimerHandle | None = None
        self._paused_speech: SpeechHandle | None = None
        self._false_timer: asyncio.TimerHandle | None = None
        self._interim_words = 0
        self._tts_adapters: dict[int, TTSStreamAdapter] = {}
        self._metric_sources: list[Any] = []
        self._turn_lock = asyncio.Lock()
        self._run: RunResult[Any] | None = None  # the run being recorded (session.run / capture_run)
        self._realtime: RealtimeDriver | None = None  # when the active agent's llm is a RealtimeModel
        self._preemptive: _Preemptive | None = None  # a reply started before its turn committed

    # -- public state --------------------------------------------------------------------

    @property
    def userdata(self) -> Userdata_T:
        if not is_given(self._userdata):
            raise ValueError("AgentSession.userdata was not set (pass userdata=... or assign it)")
        return self._userdata  # type: ignore[return-value]

    @userdata.setter
    def userdata(self, value: Userdata_T) -> None:
        self._userdata = value

    @property
    def history(self) -> ChatContext:
        """Everything said and done in the session, across agents."""
        return self._history

    @property
    def current_agent(self) -> Agent:
        if self._agent is None:
            raise RuntimeError("the session has not started")
        return self._agent

    @property
    def agent_state(self) -> AgentState:
        return self._agent_state

    @property
    def user_state(self) -> UserState:
        return self._user_state

    @property
    def current_speech(self) -> SpeechHandle | None:
        return self._current

    @property
    def room_io(self) -> RoomIO | None:
        return self._room_io

    @property
    def turn_detection(self) -> NotGivenOr[TurnDetectionMode]:
        return self._turn_detection

    @property
    def conn_options(self) -> SessionConnectOptions:
        return self._conn_options

    # effective components: the agent's when it sets one, else the session's
    def _pick(self, name: str) -> Any:
        own = getattr(self._agent, name, NOT_GIVEN) if self._agent is not None else NOT_GIVEN
        value = own if is_given(own) else getattr(self, f"_{name}")
        return value if is_given(value) else None

    @property
    def stt(self) -> stt_mod.STT | None:
        return self._pick("stt")  # type: ignore[no-any-return]

    @property
    def vad(self) -> vad_mod.VAD | None:
        return self._pick("vad")  # type: ignore[no-any-return]

    @property
    def llm(self) -> llm_mod.LLM | RealtimeModel | None:
        return self._pick("llm")  # type: ignore[no-any-return]

    @property
    def tts(self) -> tts_mod.TTS | None:
        return self._pick("tts")  # type: ignore[no-any-return]

    def _agent_option(self, name: str, default: Any) -> Any:
        value = getattr(self._agent, name, NOT_GIVEN) if self._agent is not None else NOT_GIVEN
        return value if is_given(value) else default

    # -- lifecycle -----------------------------------------------------------------------

    async def start(
        self,
        agent: Agent,
        *,
        capture_run: bool = False,
        room: NotGivenOr[rtc.Room | None] = NOT_GIVEN,
        room_input_options: NotGivenOr[RoomInputOptions | None] = NOT_GIVEN,
        room_output_options: NotGivenOr[RoomOutputOptions | None] = NOT_GIVEN,
    ) -> RunResult[Any] | None:
        """Start running ``agent``. With ``room``, join it (connecting the job's room first
        when the entrypoint did not call ``ctx.connect()``) and link the first matching
        participant; else use a ``RoomIO`` started before, or ``self.input``/``self.output``
        set beforehand. ``agent.on_enter()`` runs in the background. With ``capture_run``,
        returns a ``RunResult`` recording what the agent does on entering."""
        if self._started:
            raise RuntimeError("AgentSession.start() was already called")
        if not isinstance(agent, Agent):
            raise TypeError(f"start() needs an Agent, got {agent!r}")
        self._started = True
        run = self._begin_run(RunResult(output_type=None)) if capture_run else None
        self._agent = agent
        agent._session = self
        await self._load_mcp_tools(agent)
        self._realtime = await update_realtime(self, self._realtime, agent)
        if is_given(room) and room is not None and self._room_io is None:
            await _ensure_connected(room)
            room_io = RoomIO(
                self,
                room,
                input_options=room_input_options if is_given(room_input_options) and room_input_options else RoomInputOptions(),
                output_options=room_output_options if is_given(room_output_options) and room_output_options else RoomOutputOptions(),
            )
            await room_io.start()
        if self.output.audio is not None:
            self.output.audio.on("playback_started", self._on_playback_started)
        self._watch_metrics()
        self._start_recognition()
        self._tasks.create_task(self._schedule_speeches(), name="session.scheduler")
        self._set_agent_state(AgentState.LISTENING)
        with running(run):
            record_speech(self._tasks.create_task(self._in_session(agent.on_enter, "on_enter"), name="session.on_enter"))
        # Let on_enter take its first step before returning (as the reference's start does):
        # a greeting it says at once is queued before anything the caller asks next.
        await asyncio.sleep(0)
        return run

    def run(self, *, user_input: str, output_type: type[Run_T] | None = None) -> RunResult[Run_T]:
        """Answer ``user_input`` as a user turn and record what the agent does (for tests:
        ``result = await session.run(user_input="hi"); result.expect.next_event()...``)."""
        self._need_running()
        run = self._begin_run(RunResult(user_input=user_input, output_type=output_type))
        with running(run):
            self.generate_reply(user_input=user_input)
        return run

    def _begin_run(self, run: RunResult[Run_T]) -> RunResult[Run_T]:
        if self._run is not None and not self._run.done():
            raise RuntimeError("a run is already in progress (await it before starting another)")
        self._run = run
        run._listen_for_errors(self)
        return run

    def _attach_room_io(self, room_io: RoomIO) -> None:
        """Called by ``RoomIO.start()``: its inputs and outputs become the session's."""
        if self._room_io is not None and self._room_io is not room_io:
            raise RuntimeError("the session already has a RoomIO")
        self._room_io = room_io
        self.input.audio = self.input.audio or room_io.audio_input
        self.output.audio = self.output.audio or room_io.audio_output
        self.output.transcription = self.output.transcription or room_io.text_output
        self.output.user_transcription = self.output.user_transcription or room_io.user_transcript_output
        if self._started and self.output.audio is not None:
            self.output.audio.on("playback_started", self._on_playback_started)
        if self._started and self._recognition is None:
            self._start_recognition()

    async def aclose(self) -> None:
        await self._close(CloseReason.USER_INITIATED)

    async def drain(self) -> None:
        """Let the queued speeches play out, then close."""
        await self._drained()
        await self._close(CloseReason.USER_INITIATED)

    def shutdown(self, *, drain: bool = True) -> None:
        """Close in the background (after the queued speeches when ``drain``)."""
        async def run() -> None:
            if drain:
                await self._drained()
            await self._close(CloseReason.USER_INITIATED)

        # Held in _close_task, not in self._tasks: closing cancels those, and would cancel
        # the close itself.
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(run(), name="session.shutdown")

    async def _drained(self) -> None:
        while not self._closing and (self._current is not None or self._speech_heap or self._speech_tasks_running()):
            pending = [t for t in self._speech_tasks if not t.done()]
            if pending:
                await asyncio.wait(pending)
            else:
                await asyncio.sleep(0)

    def _speech_tasks_running(self) -> bool:
        return any(not t.done() for t in self._speech_tasks)

    async def __aenter__(self) -> AgentSession[Userdata_T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _close(self, reason: CloseReason, error: SessionError | None = None) -> None:
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._cancel_preemptive()
        pending = list(self._live_speeches)
        for handle in pending:
            handle.interrupt(force=True)
        for task in self._speech_tasks:
            task.cancel()
        self._cancel_timers()
        if self._agent is not None:
            await self._guard(self._agent.on_exit(), "on_exit")
        if self._recognition is not None:
            await self._recognition.aclose()
        if self._realtime is not None:
            await self._realtime.aclose()
        await self._tasks.aclose()
        for handle in pending:
            handle._mark_done()
        if self._current is not None:
            self._current._mark_done()
        for source in self._metric_sources:
            source.off("metrics_collected", self._on_metrics)
        for adapter in self._tts_adapters.values():
            await adapter.aclose()
        if self.output.audio is not None:
            self.output.audio.off("playback_started", self._on_playback_started)
        if self._room_io is not None:
            await self._room_io.aclose()
        for server in self._mcp_connected:
            await server.aclose()
        self.emit("close", CloseEvent(reason=reason, error=error))
        if self._run is not None:
            self._run._finish()
        self._closed.set()

    @property
    def mcp_servers(self) -> list[Any] | None:
        return self._mcp_servers

    async def _load_mcp_tools(self, agent: Agent) -> None:
        """The agent's MCP servers (else the session's) give this agent's extra tools."""
        servers = agent.mcp_servers if is_given(agent.mcp_servers) else self._mcp_servers
        self._mcp_tools = []
        if servers:
            from ..llm import mcp

            self._mcp_connected.extend(s for s in servers if not s.initialized and s not in self._mcp_connected)
            self._mcp_tools = list(await mcp.load_tools(servers))

    async def _on_participant_left(self) -> None:
        await self._close(CloseReason.PARTICIPANT_DISCONNECTED)

    async def _guard(self, aw: Awaitable[Any], what: str) -> None:
        try:
            await aw
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("%s failed", what)
            self._report_error("session", self._agent or self, exc, recoverable=True)

    def _report_error(self, kind: str, source: Any, exc: BaseException, *, recoverable: bool) -> None:
        """Emit ``error``; an unrecoverable LLM/TTS error closes the session once more than
        ``max_unrecoverable_errors`` happened in a row (an STT error at once), unless a
        listener marked it recoverable."""
        label = getattr(source, "label", None) or type(source).__name__
        error = SessionError(type=f"{kind}_error", label=str(label), error=exc, recoverable=recoverable)  # type: ignore[arg-type]
        self.emit("error", ErrorEvent(error=error, source=source))
        if error.recoverable or self._closing:
            return
        count = self._error_counts[kind] = self._error_counts.get(kind, 0) + 1
        if kind in ("llm", "tts") and count <= self._conn_options.max_unrecoverable_errors:
            return
        logger.error("AgentSession is closing after an unrecoverable %s error: %s", kind, exc)
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self._close(CloseReason.ERROR, error), name="session.close_on_error"
            )

    async def _in_session(self, hook: Callable[[], Awaitable[Any]], what: str) -> None:
        """Run a hook (on_enter...) where an ``AgentTask`` can find the session. The hook is
        called here, not by the caller, so a task cancelled before it starts (the session
        closing right after start()) leaves no coroutine that was never awaited."""
        current_session.set(self)
        await self._guard(hook(), what)

    def update_options(
        self,
        *,
        min_endpointing_delay: NotGivenOr[float] = NOT_GIVEN,
        max_endpointing_delay: NotGivenOr[float] = NOT_GIVEN,
    ) -> None:
        """Change the endpointing delays for the turns to come."""
        low = min_endpointing_delay if is_given(min_endpointing_delay) else self.min_endpointing_delay
        high = max_endpointing_delay if is_given(max_endpointing_delay) else self.max_endpointing_delay
        if low < 0 or high < low:
            raise ValueError(f"need 0 <= min_endpointing_delay <= max_endpointing_delay, got {low} and {high}")
        self.min_endpointing_delay, self.max_endpointing_delay = low, high

    # -- agents --------------------------------------------------------------------------

    def update_agent(self, agent: Agent) -> None:
        """Hand the conversation to ``agent``: the current agent's ``on_exit`` runs, then
        the new one's ``on_enter`` (in the background)."""
        if not isinstance(agent, Agent):
            raise TypeError(f"update_agent() needs an Agent, got {agent!r}")
        if not self._started:
            self._agent = agent
            return
        self._tasks.create_task(self._handoff(agent), name="session.handoff")

    async def _handoff(self, agent: Agent) -> None:
        old = self._agent
        if old is agent:
            return
        if old is not None:
            await self._guard(old.on_exit(), "on_exit")
            old._session = None
        await self._activate(agent)
        # a run in progress waits for the new agent's on_enter too (its greeting...)
        record_speech(self._tasks.create_task(self._in_session(agent.on_enter, "on_enter"), name="session.on_enter"))

    async def _activate(self, agent: Agent) -> None:
        old, old_stt, old_vad, old_realtime = self._agent, self.stt, self.vad, self._realtime
        self._agent = agent
        agent._session = self
        record_handoff(old, agent)
        await self._load_mcp_tools(agent)
        self._realtime = await update_realtime(self, self._realtime, agent)
        self._watch_metrics()
        if (self.stt is not old_stt or self.vad is not old_vad or self._realtime is not old_realtime
                or type(agent).stt_node is not Agent.stt_node):
            if self._recognition is not None:
                await self._recognition.aclose()
            self._start_recognition()

    async def _run_task(self, task: Agent, result: asyncio.Future[Any]) -> Any:
        """``await AgentTask(...)``: the task is the active agent until it completes."""
        parent = self._agent
        await self._activate(task)
        enter = self._tasks.create_task(self._in_session(task.on_enter, "on_enter"), name="session.task_enter")
        try:
            return await asyncio.shield(result)
        finally:
            if not enter.done():
                await cancel_and_wait(enter)
            await self._guard(task.on_exit(), "on_exit")
            task._session = None
            if parent is not None and not self._closing:
                said = [i for i in task._chat_ctx.items if i.id != "instructions"]
                known = {i.id for i in parent._chat_ctx.items}
                parent._chat_ctx.items.extend(i for i in said if i.id not in known)
                await self._activate(parent)

    # -- conversation --------------------------------------------------------------------

    def _add_item(self, item: ChatItem, *, speech: SpeechHandle | None = None, history: bool = True) -> None:
        if speech is not None:
            speech._add_item(item)
            record_item(item, speech)
        if not history:
            return
        if self._agent is not None:
            self._agent._chat_ctx.items.append(item)
        self._history.items.append(item)
        self.emit("conversation_item_added", ConversationItemAddedEvent(item=item))

    def _request_ctx(self, agent: Agent, instructions: str | None, extra: Sequence[ChatItem] = ()) -> ChatContext:
        items: list[ChatItem] = []
        if agent.instructions:
            items.append(ChatMessage(role="system", content=[agent.instructions], id="instructions"))
        items.extend(i for i in agent._chat_ctx.items if i.id != "instructions")
        items.extend(extra)
        if instructions:
            items.append(ChatMessage(role="system", content=[instructions]))
        return ChatContext(items, tools=agent.tools)

    # -- speeches ------------------------------------------------------------------------

    def say(
        self,
        text: str | AsyncIterable[str],
        *,
        audio: NotGivenOr[AsyncIterable[rtc.AudioFrame]] = NOT_GIVEN,
        allow_interruptions: NotGivenOr[bool] = NOT_GIVEN,
        add_to_chat_ctx: bool = True,
    ) -> SpeechHandle:
        """Speak ``text`` (no LLM); with ``audio``, play those frames instead of the TTS
        (``text`` is the transcript). Returns at once; await the handle for the playout."""
        self._need_running()
        handle = SpeechHandle(allow_interruptions=self._allows(allow_interruptions))
        frames = audio if is_given(audio) else None

        async def run() -> None:
            if not await handle._wait_for_authorization():
                return
            source = text_once(text) if isinstance(text, str) else text
            await self._speak(handle, source, frames=frames,
                              on_result=self._keep_message(handle) if add_to_chat_ctx else None)

        self._start_speech(handle, run(), source="say", user_initiated=True)
        return handle

    def generate_reply(
        self,
        *,
        user_input: NotGivenOr[str] = NOT_GIVEN,
        instructions: NotGivenOr[str] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm_mod.ToolChoice] = NOT_GIVEN,
        allow_interruptions: NotGivenOr[bool] = NOT_GIVEN,
        tools: NotGivenOr[Sequence[Tool]] = NOT_GIVEN,
    ) -> SpeechHandle:
        """Have the LLM answer now. ``user_input`` joins the chat as a user message when
        this reply gets the floor (after the speeches queued before it);
        ``instructions`` are extra instructions for this reply only; ``tool_choice``
        constrains tool use (called from inside a tool, it defaults to "none"). Returns at
        once; await the handle for the playout (also from a tool, or an ``on_enter``)."""
        self._need_running()
        if not is_given(tool_choice) and running_tool.get() is not None:
            tool_choice = "none"  # a reply made from inside a tool must not call tools again
        return self._reply(
            user_message=ChatMessage(role="user", content=[user_input]) if is_given(user_input) and user_input else None,
            instructions=instructions if is_given(instructions) else None,
            tools=list(tools) if is_given(tools) else None,
            settings=ModelSettings(tool_choice=tool_choice),
            allow_interruptions=allow_interruptions,
            source="generate_reply",
            user_initiated=True,
        )

    def interrupt(self, *, force: bool = False) -> asyncio.Future[None]:
        """Stop the current speech and drop the queued ones (those that allow it, or all
        with ``force``). The future resolves when the current speech has stopped."""
        current = self._current
        self._cancel_preemptive()
        for handle in list(self._live_speeches):
            if (force or handle.allow_interruptions) and not handle.done():
                handle.interrupt(force=force)
        if current is None or current.done():
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            fut.set_result(None)
            return fut
        return asyncio.ensure_future(current._wait_for_generation_or_done())

    async def commit_user_turn(self) -> None:
        """End the user's turn now (for turn_detection="manual")."""
        if self._recognition is not None:
            await self._recognition.commit_user_turn()

    def clear_user_turn(self) -> None:
        """Forget what the user said in the current turn."""
        if self._recognition is not None:
            self._recognition.clear_user_turn()

    def _need_running(self) -> None:
        if not self._started or self._closing:
            raise RuntimeError("the AgentSession is not running (call start() first; it must not be closed)")

    def _allows(self, allow: NotGivenOr[bool]) -> bool:
        if is_given(allow):
            return allow
        return bool(self._agent_option("allow_interruptions", self.allow_interruptions))

    def _start_speech(self, handle: SpeechHandle, work: Awaitable[None], *, source: SpeechSource,
                      user_initiated: bool) -> None:
        """Own the speech's task (it waits for the floor, step by step) and queue it."""
        self._queue_speech(handle, self._speech_task(handle, work), source=source, user_initiated=user_initiated)

    def _speech_task(self, handle: SpeechHandle, work: Awaitable[None]) -> asyncio.Task[None]:
        """The task that runs a speech's ``work``; it waits for the floor once queued."""

        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except TTSFailed as failed:
                logger.error("speech %s: TTS failed: %s", handle.id, failed.cause)
                self._report_error("tts", self.tts or self, failed.cause, recoverable=False)
            except Exception as exc:
                logger.exception("speech %s failed", handle.id)
                self._report_error("session", self, exc, recoverable=True)
            finally:
                handle._mark_done()
                # not running any more, as far as the scheduler's idle check goes
                self._speech_tasks.discard(asyncio.current_task())
                self._wake_scheduler.set()

        # The task runs in a copy of the caller's context (create_task's default), so test
        # mocks and the run being recorded (session.run) follow the speech and its tools.
        task = self._tasks.create_task(run(), name=f"session.speech.{handle.id}")
        close = getattr(work, "close", None)
        if close is not None:
            # cancelled before its first step (the session closed at once), the task never
            # awaited ``work``: close it, so it is not reported as never awaited
            task.add_done_callback(lambda t: close() if t.cancelled() else None)
        return task

    def _queue_speech(self, handle: SpeechHandle, task: asyncio.Task[None], *, source: SpeechSource,
                      user_initiated: bool) -> None:
        self._live_speeches.add(handle)
        handle.add_done_callback(self._live_speeches.discard)
        record_speech(handle)
        self._speech_tasks.add(task)
        task.add_done_callback(self._speech_tasks.discard)
        self._enqueue(handle)
        self.emit("speech_created", SpeechCreatedEvent(user_initiated=user_initiated, source=source, speech_handle=handle))

    def _enqueue(self, handle: SpeechHandle, *, force: bool = False) -> None:
        # force: the next step of a speech whose tools just ran goes before anything queued
        self._speech_seq += 1
        priority = -(1 << 30) if force else -SpeechHandle.SPEECH_PRIORITY_NORMAL
        heapq.heappush(self._speech_heap, (priority, self._speech_seq, handle))
        self._wake_scheduler.set()

    async def _schedule_speeches(self) -> None:
        """Give the floor to one speech step at a time, in order; a step's tools run
        after it lost the floor, so other speeches can play meanwhile."""
        while True:
            await self._wake_scheduler.wait()
            self._wake_scheduler.clear()
            while self._speech_heap:
                _, _, handle = heapq.heappop(self._speech_heap)
                if handle.done():
                    continue
                self._current = handle
                handle._authorize_generation()
                await handle._wait_for_generation_or_done()
                self._current = None
                if self._paused_speech is handle:
                    self._end_false_interruption_wait()
                if not self._speech_heap and self._agent_state != AgentState.THINKING:
                    self._set_agent_state(AgentState.LISTENING)
                delay = float(self._agent_option("min_consecutive_speech_delay", self.min_consecutive_speech_delay))
                if delay > 0 and self._speech_heap:
                    await asyncio.sleep(delay)
            if not self._speech_tasks_running() and self._agent_state == AgentState.THINKING:
                self._set_agent_state(AgentState.LISTENING)

    def _tts_for_stream(self) -> tts_mod.TTS | None:
        tts = self.tts
        if tts is None or tts.capabilities.streaming:
            return tts
        adapter = self._tts_adapters.get(id(tts))
        if adapter is None:
            adapter = self._tts_adapters[id(tts)] = TTSStreamAdapter(tts=tts)
        return adapter

    def _sync_transcription(self) -> bool:
        if self._room_io is None:
            return False  # memory outputs: text as it comes (tests read it at once)
        sync = self._room_io.output_options.sync_transcription
        return sync if is_given(sync) else True

    def _stt_for_stream(self) -> stt_mod.STT | None:
        return self._recognition.stt if self._recognition is not None else self.stt

    def _keep_message(self, handle: SpeechHandle) -> Callable[[PlayoutResult], None]:
        """What a speech said (what was heard of it, when interrupted) joins the chat."""

        def keep(result: PlayoutResult) -> None:
            if result.heard_text or (result.text and not result.interrupted):
                self._add_item(
                    ChatMessage(role="assistant", content=[result.heard_text or result.text],
                                interrupted=result.interrupted),
                    speech=handle,
                )

        return keep

    async def _speak(self, handle: SpeechHandle, text: AsyncIterable[str], *,
                     frames: AsyncIterable[rtc.AudioFrame] | None = None,
                     settings: ModelSettings | None = None,
                     on_result: Callable[[PlayoutResult], None] | None = None) -> PlayoutResult:
        """Play text for ``handle`` until done or interrupted."""
        playout = self._playout(settings, on_result, frames=frames is not None)
        return await self._play(handle, playout, asyncio.ensure_future(playout.run(text, frames)))

    def _playout(self, settings: ModelSettings | None, on_result: Callable[[PlayoutResult], None] | None, *,
                 frames: bool = False, gate: asyncio.Event | None = None) -> Playout:
        agent = self.current_agent
        audio = self.output.audio if self.output.audio_enabled else None
        speak = audio is not None and (frames or self.tts is not None or type(agent).tts_node is not Agent.tts_node)
        aligned = self._agent_option("use_tts_aligned_transcript", self.use_tts_aligned_transcript) is True
        playout = Playout(agent=agent, model_settings=settings or ModelSettings(), audio=audio,
                          transcript=self.output.transcription if self.output.transcription_enabled else None,
                          speak=speak, aligned=aligned, sync=self._sync_transcription(),
                          speed=self._room_io.output_options.transcription_speed_factor if self._room_io else 1.0,
                          on_result=on_result, gate=gate)
        return playout

    async def _play(self, handle: SpeechHandle, playout: Playout, task: asyncio.Future[PlayoutResult]) -> PlayoutResult:
        await handle.wait_if_not_interrupted([task])
        if task.done():
            return task.result()
        await cancel_and_wait(task)
        return await playout.interrupt()

    def _reply(self, *, instructions: str | None, tools: list[Tool] | None, settings: ModelSettings,
               allow_interruptions: NotGivenOr[bool], source: SpeechSource, user_initiated: bool,
               extra: Sequence[ChatItem] = (), user_message: ChatMessage | None = None) -> SpeechHandle:
        handle = SpeechHandle(allow_interruptions=self._allows(allow_interruptions))
        work = self._run_reply(handle, instructions=instructions, tools=tools, settings=settings, extra=extra,
                               user_message=user_message)
        self._start_speech(handle, work, source=source, user_initiated=user_initiated)
        return handle

    async def _run_reply(self, handle: SpeechHandle, *, instructions: str | None, tools: list[Tool] | None,
                         settings: ModelSettings, extra: Sequence[ChatItem],
                         user_message: ChatMessage | None = None, first: _RunningStep | None = None) -> None:
        """``first``: the first step, already started (a preemptive generation)."""
        step = 0
        while True:
            if not await handle._wait_for_authorization():
                return
            if step == 0 and user_message is not None:
                # generate_reply(user_input=) joins the chat when its reply gets the floor (as
                # in the reference): after what was queued before it, e.g. an on_enter greeting
                self._add_item(user_message)
            if self._realtime is not None:
                # the model's reply takes the floor as an LLM step does (its tool rounds too)
                await self._realtime.reply(handle, instructions=instructions)
                return
            agent = self._agent
            if agent is None or self.llm is None and type(agent).llm_node is Agent.llm_node:
                logger.warning("generate_reply: the session has no LLM; nothing to say")
                return
            step_tools = list(tools) if tools is not None else [*agent.tools, *self._mcp_tools]
            self._set_agent_state(AgentState.THINKING)
            if step == 0 and first is not None:
                running = first
                if running.gate is not None:
                    running.gate.set()
            else:
                ctx = self._request_ctx(agent, instructions, extra if step == 0 else ())
                running = self._start_llm_step(handle, agent, ctx, step_tools, settings)
            done = await self._llm_step(handle, running)
            if done is None:  # failed before any output
                return
            result, calls = done.result, done.tool_calls
            if result.interrupted or not calls:
                return
            if calls:
                self._set_agent_state(AgentState.THINKING)
            handle._mark_generation_done()  # the floor is free while the tools run
            if not await self._run_tools(handle, agent, step_tools, calls):
                return
            if step >= self.max_tool_steps:
                logger.info("speech %s: max_tool_steps (%d) reached; not asking the LLM again", handle.id, self.max_tool_steps)
                return
            step += 1
            handle._num_steps += 1
            self._enqueue(handle, force=True)

    def _start_llm_step(self, handle: SpeechHandle, agent: Agent, ctx: ChatContext, tools: list[Tool],
                        settings: ModelSettings, *, gate: asyncio.Event | None = None) -> _RunningStep:
        """Start the LLM on ``ctx`` and the playout of its text (held back until ``gate``)."""
        out = LLMOutput()
        llm_task = asyncio.ensure_future(read_llm_node(agent.llm_node(ctx, tools, settings), out))
        playout = self._playout(settings, self._keep_message(handle), gate=gate)
        return _RunningStep(out, llm_task, playout, asyncio.ensure_future(playout.run(out.text)), gate)

    async def _llm_step(self, handle: SpeechHandle, running: _RunningStep) -> _Step | None:
        out, llm_task, agent = running.out, running.llm_task, self.current_agent
        try:
            result = await self._play(handle, running.playout, running.play_task)
            if result.interrupted:
                await cancel_and_wait(llm_task)
                return _Step(result=result)
            await llm_task
        except asyncio.CancelledError:
            await running.cancel()
            raise
        except TTSFailed as failed:
            await cancel_and_wait(llm_task)
            logger.error("speech %s: TTS failed: %s", handle.id, failed.cause)
            self._report_error("tts", self.tts or agent, failed.cause, recoverable=False)
            return None
        except Exception as exc:
            await cancel_and_wait(llm_task)
            logger.error("LLM step failed: %s", exc)
            self._report_error("llm", self.llm or agent, exc, recoverable=False)
            return None
        self._error_counts.pop("llm", None)
        self._error_counts.pop("tts", None)
        return _Step(result=result, tool_calls=list(out.tool_calls))

    async def _run_tools(self, handle: SpeechHandle, agent: Agent, tools: Sequence[Tool],
                         calls: list[llm_mod.FunctionToolCall]) -> bool:
        """Run the calls; True when the LLM should be asked again with their outputs."""
        function_calls = [FunctionCall(call_id=c.call_id, name=c.name, arguments=c.arguments) for c in calls]
        try:
            tool_ctx = ToolContext(apply_tool_mocks(agent, tools))
        except (TypeError, ValueError) as exc:
            self._report_error("session", agent, exc, recoverable=True)
            return False

        async def run_one(call: FunctionCall) -> ToolExecution:
            running_tool.set((handle, call))
            current_session.set(self)
            return await execute_function_call(tool_ctx, call, RunContext(session=self, speech_handle=handle, function_call=call))

        executions = await asyncio.gather(*(asyncio.ensure_future(run_one(c)) for c in function_calls))
        new_agent: Agent | None = None
        outputs: list[FunctionCallOutput | None] = []
        reply = False
        for execution in executions:
            output = execution.output
            raw = execution.raw_output
            if isinstance(raw, Agent):
                new_agent = raw
                if output is not None:
                    output.output = ""
            elif isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[0], Agent):
                new_agent = raw[0]
                if output is not None:
                    output.output = output_text(raw[1])
            elif output is not None and (raw is not None or output.is_error):
                reply = True  # a tool that returns None is silent: no spoken follow-up
            outputs.append(output)
        for call in function_calls:
            self._add_item(call, speech=handle, history=not handle.interrupted)
        for output in outputs:
            if output is not None:
                self._add_item(output, speech=handle, history=not handle.interrupted)
        if handle.interrupted:
            return False
        event = FunctionToolsExecutedEvent(function_calls=function_calls, function_call_outputs=outputs,
                                           _reply_required=reply and new_agent is None,
                                           _handoff_required=new_agent is not None)
        self.emit("function_tools_executed", event)
        if event.has_agent_handoff and new_agent is not None and new_agent is not agent:
            await self._handoff(new_agent)
            return False
        if all(e.stop_response for e in executions):
            return False
        return event.has_tool_reply and not handle.interrupted

    # -- user turns (AudioRecognition hooks) -------------------------------------------------

    def _start_recognition(self) -> None:
        self._recognition = None
        audio = self.input.audio
        if self._realtime is not None:
            if audio is not None:
                self._realtime.listen(audio)  # the realtime model hears the user itself
            return
        stt, vad = self.stt, self.vad
        if audio is None or (stt is None and vad is None):
            return
        detection = self._agent_option("turn_detection", self._turn_detection)
        if not is_given(detection) or detection is None or not isinstance(detection, str):
            detector = detection if is_given(detection) and detection is not None else None
            mode = "vad" if vad is not None else "stt"
        else:
            detector, mode = None, detection
        self._recognition = AudioRecognition(
            self,
            stt=stt,
            vad=vad,
            turn_detection=mode,
            turn_detector=detector,
            min_endpointing_delay=lambda: float(self._agent_option("min_endpointing_delay", self.min_endpointing_delay)),
            max_endpointing_delay=lambda: float(self._agent_option("max_endpointing_delay", self.max_endpointing_delay)),
            stt_conn_options=self._conn_options.stt_conn_options,
            stt_node=self._stt_node_for(self._agent),
        )
        self._recognition.start(audio)

    def _stt_node_for(self, agent: Agent | None) -> Callable[[AsyncIterable[rtc.AudioFrame]], Any] | None:
        if agent is None or type(agent).stt_node is Agent.stt_node:
            return None  # the default: the recognizer reads the STT stream itself

        def node(frames: AsyncIterable[rtc.AudioFrame]) -> Any:
            return agent.stt_node(frames, ModelSettings())

        return node

    def retrieve_chat_ctx(self) -> ChatContext:
        return self._agent.chat_ctx if self._agent is not None else ChatContext.empty()

    def on_stt_error(self, exc: BaseException) -> None:
        self._report_error("stt", self.stt or self, exc, recoverable=False)

    def input_audio_enabled(self) -> bool:
        return self.input.audio_enabled

    def discard_audio(self) -> bool:
        speech = self._current
        return not self.input.audio_enabled or (
            self.discard_audio_if_uninterruptible
            and speech is not None
            and not speech.allow_interruptions
            and self._agent_state == AgentState.SPEAKING
        )

    def on_start_of_speech(self, ev: VADEvent | None) -> None:
        self._cancel_preemptive()  # the user goes on: what it answered is stale
        self._interim_words = 0
        self._set_user_state(UserState.SPEAKING)
        if self._false_timer is not None:
            self._false_timer.cancel()
            self._false_timer = None

    def on_vad_inference_done(self, ev: VADEvent) -> None:
        if self._preemptive is not None and ev.speaking and ev.raw_accumulated_silence <= 0.0:
            self._cancel_preemptive()  # speech resumed after a pause that gave a transcript
        if ev.speaking and ev.speech_duration >= self.min_interruption_duration:
            self._maybe_interrupt()

    def on_end_of_speech(self, ev: VADEvent | None) -> None:
        self._set_user_state(UserState.LISTENING)
        if self._paused_speech is not None and self.false_interruption_timeout is not None:
            self._false_timer = asyncio.get_running_loop().call_later(
                self.false_interruption_timeout, self._on_false_interruption
            )

    def on_interim_transcript(self, ev: SpeechEvent) -> None:
        text = ev.alternatives[0].text
        self._interim_words = len(text.split())
        self._transcribed(text, is_final=False, language=ev.alternatives[0].language)
        self._confirm_interruption()
        if self.min_interruption_words and self._user_state == UserState.SPEAKING:
            self._maybe_interrupt()

    def on_final_transcript(self, ev: SpeechEvent) -> None:
        text = ev.alternatives[0].text
        self._interim_words = len(text.split())
        self._transcribed(text, is_final=True, language=ev.alternatives[0].language)
        self._confirm_interruption()

    def _transcribed(self, text: str, *, is_final: bool, language: str | None) -> None:
        identity = self._room_io.linked_participant_identity if self._room_io is not None else None
        self.emit("user_input_transcribed", UserInputTranscribedEvent(
            transcript=text, is_final=is_final, speaker_id=identity, language=language or None))
        if self.output.user_transcription is not None:
            self._tasks.create_task(self.output.user_transcription.publish(text, is_final=is_final))

    def on_preemptive_generation(self, transcript: str) -> None:
        """A transcript of the turn so far, before it is committed: with
        ``preemptive_generation``, start its reply now (held back until the turn commits)."""
        agent = self._agent
        if (not self.preemptive_generation or agent is None or self._closing or self._realtime is not None
                or not isinstance(self.llm, llm_mod.LLM)
                or (self._current is not None and not self._current.interrupted)):
            return
        chat_ctx = agent.chat_ctx
        tools = [*agent.tools, *self._mcp_tools]
        kept = self._preemptive
        if kept is not None and kept.matches(transcript, agent, chat_ctx, tools):
            return  # already under way for this very turn (a preflight, then the same final)
        self._cancel_preemptive()
        handle = SpeechHandle(allow_interruptions=self._allows(NOT_GIVEN))
        ctx = self._request_ctx(agent, None, [ChatMessage(role="user", content=[transcript])])
        work = self._preemptive_reply(handle, agent, ctx, tools)
        self._preemptive = _Preemptive(transcript, handle, self._speech_task(handle, work), agent, chat_ctx,
                                       agent.instructions, tools)

    async def _preemptive_reply(self, handle: SpeechHandle, agent: Agent, ctx: ChatContext, tools: list[Tool]) -> None:
        settings = ModelSettings()
        first = self._start_llm_step(handle, agent, ctx, tools, settings, gate=asyncio.Event())
        try:
            await self._run_reply(handle, instructions=None, tools=tools, settings=settings, extra=(), first=first)
        finally:
            await first.cancel()

    def _cancel_preemptive(self) -> None:
        kept, self._preemptive = self._preemptive, None
        if kept is not None:
            kept.handle.interrupt(force=True)  # its task stops waiting for the floor, cancels its step

    def _take_preemptive(self, message: ChatMessage, turn_ctx: ChatContext, agent: Agent) -> SpeechHandle | None:
        """The preemptive reply for this committed turn, queued, when nothing it was made
        from changed; else it is cancelled (None: make the reply anew)."""
        kept, self._preemptive = self._preemptive, None
        if kept is None:
            return None
        if not kept.handle.interrupted and kept.matches(message.text_content or "", agent, turn_ctx,
                                                        [*agent.tools, *self._mcp_tools]):
            self._queue_speech(kept.handle, kept.task, source="generate_reply", user_initiated=False)
            logger.debug("speech %s: preemptive generation used, started %.0f ms before the commit",
                         kept.handle.id, (time.perf_counter() - kept.started_at) * 1000)
            return kept.handle
        logger.debug("preemptive generation dropped: the transcript, context or tools changed by the commit")
        kept.handle.interrupt(force=True)
        return None

    async def on_end_of_turn(self, info: EndOfTurnInfo) -> None:
        # Runs in its own task: the recognizer cancels its end-of-turn wait when the user
        # speaks again, which must not cancel a turn already being handled.
        self._tasks.create_task(self._user_turn(info.transcript, info), name="session.user_turn")

    async def _user_turn_from_text(self, text: str) -> None:
        """A typed user turn (``lk.chat``): answered like a spoken one."""
        await self._user_turn(text, None)

    async def _user_turn(self, text: str, info: EndOfTurnInfo | None) -> None:
        async with self._turn_lock:
            agent = self._agent
            if agent is None or self._closing:
                return
            current = self._current
            if current is not None and current.allow_interruptions and not current.done():
                current.interrupt()
            message = ChatMessage(role="user", content=[text])
            turn_ctx = agent.chat_ctx
            known = {item.id for item in turn_ctx.items}
            started = time.perf_counter()
            stop = False
            try:
                await agent.on_user_turn_completed(turn_ctx, message)
            except StopResponse:
                stop = True
            except Exception as exc:
                logger.exception("on_user_turn_completed failed")
                self._report_error("session", agent, exc, recoverable=True)
            hook_time = time.perf_counter() - started
            self._add_item(message)
            extra = [item for item in turn_ctx.items if item.id not in known and item is not message]
            handle = None
            if stop:
                self._cancel_preemptive()
            else:
                handle = self._take_preemptive(message, turn_ctx, agent)
            if handle is None and not stop:
                handle = self._reply(instructions=None, tools=None, settings=ModelSettings(), allow_interruptions=NOT_GIVEN,
                                     source="generate_reply", user_initiated=False, extra=extra)
            if info is not None:
                self._emit_metrics(EOUMetrics(
                    timestamp=time.time(),
                    end_of_utterance_delay=time.perf_counter() - info.end_of_speech_at,
                    transcription_delay=max(0.0, info.final_transcript_at - info.end_of_speech_at),
                    on_user_turn_completed_delay=hook_time,
                    speech_id=handle.id if handle is not None else None,
                ))

    # -- interruptions -------------------------------------------------------------------

    def _maybe_interrupt(self) -> None:
        speech = self._current
        if speech is None or speech.done() or speech.interrupted or not speech.allow_interruptions:
            return
        if self.min_interruption_words and self._interim_words < self.min_interruption_words:
            return
        if self._paused_speech is speech:
            return
        audio = self.output.audio
        if (
            self.resume_false_interruption
            and self.false_interruption_timeout is not None
            and audio is not None
            and audio.can_pause
            and self._agent_state == AgentState.SPEAKING
            and self._interim_words == 0
        ):
            # Maybe a cough: hold the audio until words prove it is an interruption.
            audio.pause()
            self._paused_speech = speech
            return
        speech.interrupt()

    def _confirm_interruption(self) -> None:
        speech = self._paused_speech
        if speech is None:
            return
        self._end_false_interruption_wait()
        if not speech.done() and speech.allow_interruptions:
            speech.interrupt()

    def _end_false_interruption_wait(self) -> None:
        self._paused_speech = None
        if self._false_timer is not None:
            self._false_timer.cancel()
            self._false_timer = None

    def _on_false_interruption(self) -> None:
        self._false_timer = None
        speech = self._paused_speech
        if speech is None:
            return
        self._paused_speech = None
        if self.output.audio is not None:
            self.output.audio.resume()
        self.emit("agent_false_interruption", AgentFalseInterruptionEvent(resumed=True))

    # -- states --------------------------------------------------------------------------

    def _on_playback_started(self, at: float) -> None:
        if self._current is not None:
            self._set_agent_state(AgentState.SPEAKING)

    def _set_agent_state(self, state: AgentState) -> None:
        if state == self._agent_state:
            return
        old, self._agent_state = self._agent_state, state
        self.emit("agent_state_changed", AgentStateChangedEvent(old_state=old, new_state=state))
        self._arm_away_timer()

    def _set_user_state(self, state: UserState) -> None:
        if state == self._user_state:
            return
        old, self._user_state = self._user_state, state
        self.emit("user_state_changed", UserStateChangedEvent(old_state=old, new_state=state))
        self._arm_away_timer()

    def _arm_away_timer(self) -> None:
        if self._away_timer is not None:
            self._away_timer.cancel()
            self._away_timer = None
        if (
            self.user_away_timeout is not None
            and not self._closing
            and self._user_state == UserState.LISTENING
            and self._agent_state == AgentState.LISTENING
        ):
            self._away_timer = asyncio.get_running_loop().call_later(
                self.user_away_timeout, self._set_user_state, UserState.AWAY
            )

    def _cancel_timers(self) -> None:
        for timer in (self._away_timer, self._false_timer):
            if timer is not None:
                timer.cancel()
        self._away_timer = self._false_timer = None

    # -- metrics -------------------------------------------------------------------------

    def _watch_metrics(self) -> None:
        for component in (self.stt, self.vad, self.llm, self.tts):
            if component is not None and not any(component is s for s in self._metric_sources):
                component.on("metrics_collected", self._on_metrics)
                self._metric_sources.append(component)

    def _on_metrics(self, metrics: Any) -> None:
        self._emit_metrics(metrics)

    def _emit_metrics(self, metrics: Any) -> None:
        self.emit("metrics_collected", MetricsCollectedEvent(metrics=metrics))
        report_to_job(metrics)  # the daemon's per-agent latency histograms


__all__ = ["AgentSession", "SessionConnectOptions", "SessionInput", "SessionOutput"]
