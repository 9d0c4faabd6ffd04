"""What a front end shows about the agent besides its words: its state, as the participant
attribute ``lk.agent.state`` (the name LiveKit front ends read), and each user turn's
latencies, as one JSON data message per update on topic ``roomd.turn_metrics``.

A turn starts when the user's message is added (spoken or typed) and collects what the
session measures next: the end-of-utterance metrics (voice only), each LLM pass's time to
first token (a tool turn has several), the first TTS segment's time to first audio, and
the time from the end of speech (typed: from the message) until the agent starts
speaking. Writes go through one task, in order, so a slow data channel never holds up
the session that emitted the event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from livekit import rtc

from ...llm.chat_context import ChatMessage
from ...llm.metrics import LLMMetrics
from ...tts.metrics import TTSMetrics
from ...utils.aio import Chan, cancel_and_wait
from ...utils.events import EventEmitter
from ..events import (
    AgentState,
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    MetricsCollectedEvent,
)
from ..metrics import EOUMetrics
from .options import ATTR_AGENT_STATE, TOPIC_TURN_METRICS

logger = logging.getLogger("roomd.agents")


@dataclass(slots=True)
class TurnMetrics:
    """One user turn's latencies in seconds; ``None`` (or empty) until measured."""

    turn: int
    input: Literal["voice", "text"]
    transcription_delay: float | None = None  # end of speech -> final transcript
    end_of_turn_delay: float | None = None  # end of speech -> turn committed
    llm_ttft: list[float] = field(default_factory=list)  # per LLM pass
    tts_ttfb: float | None = None  # first TTS segment: text in -> first audio out
    first_audio: float | None = None  # end of speech (or the typed message) -> agent speaks

    def encode(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class _State:
    value: str


@dataclass(frozen=True, slots=True)
class _Turn:
    payload: bytes


class RoomAgentStatus:
    """Follows a session's events and publishes them to ``room``; ``aclose`` detaches."""

    def __init__(self, room: rtc.Room, session: EventEmitter[Any]) -> None:
        self._room = room
        self._session = session
        self._chan: Chan[_State | _Turn] = Chan()
        self._turns = 0
        self._turn: TurnMetrics | None = None
        self._turn_origin = 0.0  # perf_counter() the turn's latencies count from
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="room_io.agent_status")
        self._session.on("agent_state_changed", self._on_state)
        self._session.on("conversation_item_added", self._on_item)
        self._session.on("metrics_collected", self._on_metrics)

    def _on_state(self, event: AgentStateChangedEvent) -> None:
        self._send(_State(AgentState(event.new_state).value))
        turn = self._turn
        if event.new_state == AgentState.SPEAKING and turn is not None and turn.first_audio is None:
            turn.first_audio = time.perf_counter() - self._turn_origin
            self._publish(turn)

    def _on_item(self, event: ConversationItemAddedEvent) -> None:
        item = event.item
        if not isinstance(item, ChatMessage) or item.role != "user":
            return
        self._turns += 1
        # Typed until end-of-utterance metrics say it was spoken (they follow at once).
        self._turn = TurnMetrics(turn=self._turns, input="text")
        self._turn_origin = time.perf_counter()

    def _on_metrics(self, event: MetricsCollectedEvent) -> None:
        turn, metrics = self._turn, event.metrics
        if turn is None:
            return
        if isinstance(metrics, EOUMetrics):
            turn.input = "voice"
            turn.transcription_delay = metrics.transcription_delay
            turn.end_of_turn_delay = metrics.end_of_utterance_delay
            self._turn_origin = time.perf_counter() - metrics.end_of_utterance_delay
        elif isinstance(metrics, LLMMetrics) and metrics.ttft >= 0:
            turn.llm_ttft.append(metrics.ttft)
        elif isinstance(metrics, TTSMetrics) and metrics.ttfb >= 0 and turn.tts_ttfb is None:
            turn.tts_ttfb = metrics.ttfb
        else:
            return
        self._publish(turn)

    def _publish(self, turn: TurnMetrics) -> None:
        self._send(_Turn(turn.encode()))

    def _send(self, item: _State | _Turn) -> None:
        if not self._chan.closed:
            self._chan.send_nowait(item)

    async def _run(self) -> None:
        participant = self._room.local_participant
        async for item in self._chan:
            try:
                if isinstance(item, _State):
                    await participant.set_attributes({ATTR_AGENT_STATE: item.value})
                else:
                    await participant.publish_data(item.payload, reliable=True,
                                                   topic=TOPIC_TURN_METRICS)
            except Exception as exc:  # a front end's view must never end the session
                logger.warning("could not publish the agent's status: %s", exc)

    async def aclose(self) -> None:
        self._session.off("agent_state_changed", self._on_state)
        self._session.off("conversation_item_added", self._on_item)
        self._session.off("metrics_collected", self._on_metrics)
        self._chan.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=2.0)
            except (TimeoutError, Exception):
                await cancel_and_wait(self._task)
