"""``Agent``: instructions, tools and (optionally) its own components and turn settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypeVar

from livekit import rtc

from .. import llm as llm_mod
from .. import stt as stt_mod
from .. import tts as tts_mod
from .. import vad as vad_mod
from ..components import resolve
from ..llm.chat_context import ChatContext, ChatMessage
from ..llm.tools import Tool, find_function_tools
from ..types import NOT_GIVEN, NotGivenOr, is_given
from . import nodes
from .realtime_generation import sync_agent
from .timed_string import TimedString

if TYPE_CHECKING:
    from .agent_session import AgentSession

logger = logging.getLogger("roomd.agents")

TurnDetectionMode: TypeAlias = Literal["vad", "stt", "manual"] | Any
""""vad" (end of speech from the VAD), "stt" (from the STT's end of speech), "manual"
(``session.commit_user_turn()``), or a turn-detector object with
``unlikely_threshold`` and ``async predict_end_of_turn(chat_ctx) -> float``."""

_MODES = ("vad", "stt", "manual", "realtime_llm")


def check_turn_detection(value: Any) -> None:
    if value is None or value is NOT_GIVEN:
        return
    if isinstance(value, str):
        if value not in _MODES:
            raise ValueError(f"unknown turn_detection {value!r}; expected one of {list(_MODES)} or a turn detector")
        return
    if not callable(getattr(value, "predict_end_of_turn", None)):
        raise TypeError(
            f"turn_detection must be a mode string or an object with predict_end_of_turn(chat_ctx), got {value!r}"
        )


def resolve_component(kind: str, value: Any, base: type[Any] | tuple[type[Any], ...]) -> Any:
    """A component given as an instance, a ``"provider/model"`` name, None or NOT_GIVEN."""
    if value is None or value is NOT_GIVEN:
        return value
    if isinstance(value, str):
        return resolve(kind, value)
    if not isinstance(value, base):
        bases = base if isinstance(base, tuple) else (base,)
        names = " or ".join(f"{b.__module__}.{b.__qualname__}" for b in bases)
        raise TypeError(f"{kind} must be a {names} or a model name, got {value!r}")
    return value


@dataclass
class ModelSettings:
    """Settings of one LLM request, given to the pipeline nodes (``tool_choice``:
    "auto", "required", "none" or a named function; NOT_GIVEN: the LLM's default)."""

    tool_choice: NotGivenOr[llm_mod.ToolChoice] = NOT_GIVEN


class Agent:
    """What the agent is: ``instructions``, tools (given, plus ``@function_tool``
    methods), its chat context, and optional per-agent components and settings that
    override the session's (NOT_GIVEN: use the session's).

    Subclass and override ``on_enter`` (e.g. to greet with ``self.session.generate_reply``),
    ``on_exit`` and ``on_user_turn_completed`` (raise ``StopResponse`` to not answer).
    A tool that returns another ``Agent`` (or ``(agent, result)``) hands the
    conversation over to it.

    ``mcp_servers`` (``llm.mcp.MCPServerHTTP`` / ``MCPServerStdio``) add their tools to the
    agent's while it is active; NOT_GIVEN uses the session's servers, None or [] none.
    """

    def __init__(
        self,
        *,
        instructions: str,
        chat_ctx: NotGivenOr[ChatContext | None] = NOT_GIVEN,
        tools: Sequence[Tool] | None = None,
        turn_detection: NotGivenOr[TurnDetectionMode | None] = NOT_GIVEN,
        stt: NotGivenOr[stt_mod.STT | str | None] = NOT_GIVEN,
        vad: NotGivenOr[vad_mod.VAD | None] = NOT_GIVEN,
        llm: NotGivenOr[llm_mod.LLM | llm_mod.RealtimeModel | str | None] = NOT_GIVEN,
        tts: NotGivenOr[tts_mod.TTS | str | None] = NOT_GIVEN,
        mcp_servers: NotGivenOr[list[Any] | None] = NOT_GIVEN,
        allow_interruptions: NotGivenOr[bool] = NOT_GIVEN,
        min_consecutive_speech_delay: NotGivenOr[float] = NOT_GIVEN,
        use_tts_aligned_transcript: NotGivenOr[bool] = NOT_GIVEN,
        min_endpointing_delay: NotGivenOr[float] = NOT_GIVEN,
        max_endpointing_delay: NotGivenOr[float] = NOT_GIVEN,
    ) -> None:
        if not isinstance(instructions, str):
            raise TypeError(f"instructions must be a str, got {type(instructions).__name__}")
        check_turn_detection(turn_detection)
        self._instructions = instructions
        self._tools: list[Tool] = list(tools or []) + [
            t for t in find_function_tools(self) if not any(t.name == g.name for g in tools or [])
        ]
        if is_given(chat_ctx) and chat_ctx is not None:
            self._chat_ctx = chat_ctx.copy(tools=self._tools)
        else:
            self._chat_ctx = ChatContext.empty(tools=self._tools)
        self._turn_detection = turn_detection
        self._stt = resolve_component("stt", stt, stt_mod.STT)
        self._vad = resolve_component("vad", vad, vad_mod.VAD)
        self._llm = resolve_component("llm", llm, (llm_mod.LLM, llm_mod.RealtimeModel))
        self._tts = resolve_component("tts", tts, tts_mod.TTS)
        # an empty list means "none" (overriding the session's), as NOT_GIVEN means "the session's"
        self._mcp_servers = None if isinstance(mcp_servers, list) and not mcp_servers else mcp_servers
        self._allow_interruptions = allow_interruptions
        self._min_consecutive_speech_delay = min_consecutive_speech_delay
        self._use_tts_aligned_transcript = use_tts_aligned_transcript
        self._min_endpointing_delay = min_endpointing_delay
        self._max_endpointing_delay = max_endpointing_delay
        self._session: AgentSession[Any] | None = None

    # -- identity and content ------------------------------------------------------------

    @property
    def label(self) -> str:
        return getattr(self, "_label", type(self).__name__)

    @property
    def instructions(self) -> str:
        return self._instructions

    @property
    def tools(self) -> list[Tool]:
        return list(self._tools)

    @property
    def chat_ctx(self) -> ChatContext:
        """A copy of the agent's conversation (change it with ``update_chat_ctx``)."""
        return self._chat_ctx.copy(tools=self._tools)

    @property
    def session(self) -> AgentSession[Any]:
        if self._session is None:
            raise RuntimeError(f"agent {self.label} is not running in a session")
        return self._session

    async def update_instructions(self, instructions: str) -> None:
        self._instructions = instructions
        await sync_agent(self)

    async def update_tools(self, tools: Sequence[Tool]) -> None:
        self._tools = list(tools)
        self._chat_ctx = self._chat_ctx.copy(tools=self._tools)
        await sync_agent(self)

    async def update_chat_ctx(self, chat_ctx: ChatContext) -> None:
        self._chat_ctx = chat_ctx.copy(tools=self._tools)
        await sync_agent(self)

    # -- per-agent overrides (NOT_GIVEN: the session's) ---------------------------------

    @property
    def turn_detection(self) -> NotGivenOr[TurnDetectionMode | None]:
        return self._turn_detection

    @property
    def stt(self) -> NotGivenOr[stt_mod.STT | None]:
        return self._stt  # type: ignore[no-any-return]

    @property
    def vad(self) -> NotGivenOr[vad_mod.VAD | None]:
        return self._vad  # type: ignore[no-any-return]

    @property
    def llm(self) -> NotGivenOr[llm_mod.LLM | llm_mod.RealtimeModel | None]:
        return self._llm  # type: ignore[no-any-return]

    @property
    def tts(self) -> NotGivenOr[tts_mod.TTS | None]:
        return self._tts  # type: ignore[no-any-return]

    @property
    def mcp_servers(self) -> NotGivenOr[list[Any] | None]:
        return self._mcp_servers

    @property
    def allow_interruptions(self) -> NotGivenOr[bool]:
        return self._allow_interruptions

    @property
    def min_consecutive_speech_delay(self) -> NotGivenOr[float]:
        return self._min_consecutive_speech_delay

    @property
    def use_tts_aligned_transcript(self) -> NotGivenOr[bool]:
        return self._use_tts_aligned_transcript

    @property
    def min_endpointing_delay(self) -> NotGivenOr[float]:
        return self._min_endpointing_delay

    @property
    def max_endpointing_delay(self) -> NotGivenOr[float]:
        return self._max_endpointing_delay

    # -- hooks ---------------------------------------------------------------------------

    async def on_enter(self) -> None:
        """The agent became the session's active agent."""

    async def on_exit(self) -> None:
        """The agent is being replaced (handoff) or the session is closing."""

    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        """The user finished a turn; ``new_message`` is about to be added to the
        conversation. Edit ``turn_ctx``/``new_message`` to change what the LLM sees for
        this reply; raise ``StopResponse`` to not reply (the message is still kept)."""

    # -- pipeline nodes: override to change what flows; ``Agent.default.<node>(self, ...)``
    #    runs the default. A node may be an async generator, or a coroutine returning an
    #    async iterable, a value (``llm_node``: a str or a ChatChunk) or None (nothing).

    def stt_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> AsyncIterable[stt_mod.SpeechEvent | str] | Any:
        """User audio to speech events (or plain final transcripts as str)."""
        return Agent.default.stt_node(self, audio, model_settings)

    def llm_node(
        self, chat_ctx: ChatContext, tools: list[Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm_mod.ChatChunk | str] | Any:
        """The request to the LLM: chat chunks (or str pieces) of the reply."""
        return Agent.default.llm_node(self, chat_ctx, tools, model_settings)

    def tts_node(self, text: AsyncIterable[str], model_settings: ModelSettings) -> AsyncIterable[rtc.AudioFrame] | Any:
        """Reply text to the audio frames the user hears."""
        return Agent.default.tts_node(self, text, model_settings)

    def transcription_node(
        self, text: AsyncIterable[str | TimedString], model_settings: ModelSettings
    ) -> AsyncIterable[str | TimedString] | Any:
        """Reply text to the agent's transcript (and the assistant message kept in the chat)."""
        return Agent.default.transcription_node(self, text, model_settings)

    def realtime_audio_output_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> AsyncIterable[rtc.AudioFrame] | Any:
        """Audio of a realtime model on its way out (unchanged by default)."""
        return Agent.default.realtime_audio_output_node(self, audio, model_settings)

    class default:
        stt_node = staticmethod(nodes.default_stt_node)
        llm_node = staticmethod(nodes.default_llm_node)
        tts_node = staticmethod(nodes.default_tts_node)
        transcription_node = staticmethod(nodes.default_transcription_node)
        realtime_audio_output_node = staticmethod(nodes.default_realtime_audio_output_node)

    def __repr__(self) -> str:
        return f"<{self.label} tools={[t.name for t in self._tools]}>"


TaskResult_T = TypeVar("TaskResult_T")


class AgentTask(Agent, Generic[TaskResult_T]):
    """An agent that runs until it has a result: ``result = await MyTask(...)`` from a
    tool or an ``on_enter`` makes it the session's active agent; its tools call
    ``self.complete(result)`` (or ``complete(exception)`` to fail the await), and the
    agent that awaited it becomes active again (its ``on_enter`` does not run twice).
    What was said during the task is added to that agent's chat context."""

    def __init__(self, *, instructions: str, chat_ctx: NotGivenOr[ChatContext] = NOT_GIVEN,
                 tools: Sequence[Tool] | None = None, turn_detection: NotGivenOr[TurnDetectionMode | None] = NOT_GIVEN,
                 stt: NotGivenOr[stt_mod.STT | None] = NOT_GIVEN, vad: NotGivenOr[vad_mod.VAD | None] = NOT_GIVEN,
                 llm: NotGivenOr[llm_mod.LLM | llm_mod.RealtimeModel | None] = NOT_GIVEN, tts: NotGivenOr[tts_mod.TTS | None] = NOT_GIVEN,
                 mcp_servers: NotGivenOr[list[Any] | None] = NOT_GIVEN,
                 allow_interruptions: NotGivenOr[bool] = NOT_GIVEN,
                 min_endpointing_delay: NotGivenOr[float] = NOT_GIVEN,
                 max_endpointing_delay: NotGivenOr[float] = NOT_GIVEN) -> None:
        super().__init__(instructions=instructions, chat_ctx=chat_ctx, tools=tools, turn_detection=turn_detection,
                         stt=stt, vad=vad, llm=llm, tts=tts, mcp_servers=mcp_servers,
                         allow_interruptions=allow_interruptions, min_endpointing_delay=min_endpointing_delay,
                         max_endpointing_delay=max_endpointing_delay)
        self._result: asyncio.Future[TaskResult_T] = asyncio.get_event_loop().create_future()
        self._started = False

    def done(self) -> bool:
        return self._result.done()

    def complete(self, result: TaskResult_T | BaseException) -> None:
        if self._result.done():
            raise RuntimeError(f"{self.label} was already completed")
        if isinstance(result, BaseException):
            self._result.set_exception(result)
        else:
            self._result.set_result(result)

    def __await__(self) -> Generator[Any, None, TaskResult_T]:
        return self._run().__await__()

    async def _run(self) -> TaskResult_T:
        from .agent_session import current_session

        session = current_session.get()
        if session is None:
            raise RuntimeError(f"{self.label} must be awaited inside an agent's on_enter or a function tool")
        if self._started:
            raise RuntimeError(f"{self.label} was already awaited")
        self._started = True
        result: TaskResult_T = await session._run_task(self, self._result)
        return result
