"""Wires a session to a room: the linked participant's microphone in, the agent's
track, transcripts and status (state, turn latencies) out, ``lk.chat`` text in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit import rtc

from ...utils.events import EventEmitter
from .agent_status import RoomAgentStatus
from .audio_input import RoomAudioInput
from .audio_output import RoomAudioOutput
from .chat_input import ChatCallback, RoomChatInput
from .options import RoomInputOptions, RoomOutputOptions
from .transcription import RoomTextOutput, RoomUserTranscriptOutput

logger = logging.getLogger("roomd.agents")


class RoomIO:
    """Built and started by ``AgentSession.start(room=...)``; closed with the session.

    The linked participant is ``participant_identity`` or else the first remote
    participant of an accepted kind (now or when one joins). ``on_participant_left``
    runs when it leaves and ``close_on_disconnect`` is set. With ``session``, the
    agent's state and turn latencies are published too (``RoomAgentStatus``).
    """

    def __init__(
        self,
        room: rtc.Room,
        *,
        input_options: RoomInputOptions | None = None,
        output_options: RoomOutputOptions | None = None,
        on_chat_text: ChatCallback | None = None,
        on_participant_left: Callable[[], Awaitable[None]] | None = None,
        session: EventEmitter[Any] | None = None,
    ) -> None:
        self._room = room
        self._in = input_options or RoomInputOptions()
        self._out = output_options or RoomOutputOptions()
        self._on_chat_text = on_chat_text
        self._on_participant_left = on_participant_left
        self._linked: str | None = None
        self._linked_event = asyncio.Event()
        self.audio_input: RoomAudioInput | None = None
        self.audio_output: RoomAudioOutput | None = None
        self.text_output: RoomTextOutput | None = None
        self.user_transcript_output: RoomUserTranscriptOutput | None = None
        self.chat_input: RoomChatInput | None = None
        self._left_task: asyncio.Task[None] | None = None
        self.agent_status = RoomAgentStatus(room, session) if session is not None else None

    @property
    def room(self) -> rtc.Room:
        return self._room

    @property
    def linked_participant_identity(self) -> str | None:
        return self._linked

    async def wait_for_participant(self) -> str:
        await self._linked_event.wait()
        assert self._linked is not None
        return self._linked

    async def start(self) -> None:
        if not self._room.isconnected():
            raise RuntimeError("AgentSession.start(room=...) needs a connected room (await room.connect(...) first)")
        if self._out.audio_enabled:
            self.audio_output = RoomAudioOutput(self._room, self._out)
            await self.audio_output.start()
        if self._out.transcription_enabled:
            output = self.audio_output
            self.text_output = RoomTextOutput(
                self._room, track_sid=lambda: output.track_sid if output is not None else None
            )
            self.user_transcript_output = RoomUserTranscriptOutput(
                self._room,
                participant_identity=lambda: self._linked,
                track_sid=lambda: self.audio_input.track_sid if self.audio_input is not None else None,
            )
        if self.agent_status is not None:
            self.agent_status.start()
        if self._in.audio_enabled:
            self.audio_input = RoomAudioInput(
                self._room,
                sample_rate=self._in.audio_sample_rate,
                num_channels=self._in.audio_num_channels,
                frame_size_ms=self._in.audio_frame_size_ms,
            )
        if self._in.text_enabled and self._on_chat_text is not None:
            self.chat_input = RoomChatInput(
                self._room, on_text=self._on_chat_text, accept_from=lambda: self._linked
            )
        if self._in.video_enabled:
            logger.warning("RoomInputOptions(video_enabled=True): video input is not supported yet; ignored")
        self._room.on("participant_connected", self._on_participant_connected)
        self._room.on("participant_disconnected", self._on_participant_disconnected)
        self._room.on("disconnected", self._on_room_disconnected)
        for participant in self._room.remote_participants.values():
            self._consider(participant)

    def _accepts(self, participant: rtc.RemoteParticipant) -> bool:
        if self._in.participant_identity is not None:
            return participant.identity == self._in.participant_identity
        return participant.kind in self._in.participant_kinds

    def _consider(self, participant: rtc.RemoteParticipant) -> None:
        if self._linked is not None or not self._accepts(participant):
            return
        self._linked = participant.identity
        self._linked_event.set()
        if self.audio_input is not None:
            self.audio_input.set_participant(participant.identity)
        logger.debug("session linked to participant %s", participant.identity)

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        self._consider(participant)

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity != self._linked:
            return
        if self._in.close_on_disconnect and self._on_participant_left is not None and self._left_task is None:
            self._left_task = asyncio.get_running_loop().create_task(
                self._on_participant_left(), name="room_io.participant_left"
            )
            return
        # keep listening: the next accepted participant (or the same one rejoining) is linked
        self._linked = None
        self._linked_event.clear()
        if self.audio_input is not None:
            self.audio_input.set_participant(None)
        for other in self._room.remote_participants.values():
            if other.identity != participant.identity:
                self._consider(other)

    def _on_room_disconnected(self, reason: object = None) -> None:
        # The agent left the room (job ended, server gone): nothing more can be heard or said.
        if self._on_participant_left is not None and self._left_task is None:
            self._left_task = asyncio.get_running_loop().create_task(
                self._on_participant_left(), name="room_io.room_disconnected"
            )

    async def aclose(self) -> None:
        self._room.off("disconnected", self._on_room_disconnected)
        self._room.off("participant_connected", self._on_participant_connected)
        self._room.off("participant_disconnected", self._on_participant_disconnected)
        for part in (self.chat_input, self.audio_input, self.text_output, self.user_transcript_output,
                     self.agent_status, self.audio_output):
            if part is not None:
                try:
                    await part.aclose()
                except Exception:
                    logger.exception("closing room I/O failed")
