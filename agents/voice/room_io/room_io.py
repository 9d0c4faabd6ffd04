"""Wires a session to a room: the linked participant's microphone in, the agent's
track and transcripts out, ``lk.chat`` text in."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from livekit import rtc
from livekit.rtc._proto.track_pb2 import TF_PRECONNECT_BUFFER as _PRECONNECT_BUFFER

from ...types import is_given
from ...utils.aio import TaskOwner
from .audio_input import RoomAudioInput
from .agent_status import RoomAgentStatus
from .audio_output import RoomAudioOutput
from .chat_input import RoomChatInput
from .options import TOPIC_PRE_CONNECT_AUDIO, RoomInputOptions, RoomOutputOptions, TextInputEvent
from .transcription import RoomTextOutput, RoomUserTranscriptOutput

if TYPE_CHECKING:
    from ..agent_session import AgentSession

logger = logging.getLogger("roomd.agents")


class RoomIO:
    """The session's inputs and outputs in ``room``. ``AgentSession.start(room=...)`` makes
    one; build it yourself (``RoomIO(session, room)``, ``await start()``, then
    ``session.start(agent)``) to switch the linked participant at run time with
    ``set_participant(identity)`` / ``unset_participant()``.

    The linked participant is ``participant``, else ``participant_identity``, else the
    first remote participant of an accepted kind (now or when one joins). When it leaves
    and ``close_on_disconnect`` is set the session closes (and with
    ``delete_room_on_close`` the room is deleted).
    """

    def __init__(
        self,
        agent_session: AgentSession[Any],
        room: rtc.Room,
        *,
        participant: rtc.RemoteParticipant | str | None = None,
        input_options: RoomInputOptions | None = None,
        output_options: RoomOutputOptions | None = None,
    ) -> None:
        self._session = agent_session
        self._room = room
        self._in = input_options or RoomInputOptions()
        self._out = output_options or RoomOutputOptions()
        wanted = participant.identity if isinstance(participant, rtc.RemoteParticipant) else participant
        if wanted is None and is_given(self._in.participant_identity):
            wanted = self._in.participant_identity
        self._wanted: str | None = wanted
        self._linked: str | None = None
        self._linked_event = asyncio.Event()
        self._subscribed_fut: asyncio.Future[None] = asyncio.get_event_loop().create_future()
        self.audio_input: RoomAudioInput | None = None
        self.audio_output: RoomAudioOutput | None = None
        self.text_output: RoomTextOutput | None = None
        self.user_transcript_output: RoomUserTranscriptOutput | None = None
        self.chat_input: RoomChatInput | None = None
        # The agent's state and each turn's latencies, for front ends (the playground).
        self.agent_status = RoomAgentStatus(room, agent_session)
        self._tasks = TaskOwner()
        self._pre_connect: Any = None  # starts the wait for pre-connect audio
        self._left = False
        self._left_task: asyncio.Task[None] | None = None
        self._job_ctx: Any = None  # the job whose room this is (for delete_room_on_close)
        self._started = False

    # -- reading -------------------------------------------------------------------------

    @property
    def room(self) -> rtc.Room:
        return self._room

    @property
    def linked_participant(self) -> rtc.RemoteParticipant | None:
        return self._room.remote_participants.get(self._linked) if self._linked else None

    @property
    def linked_participant_identity(self) -> str | None:
        return self._linked

    @property
    def input_options(self) -> RoomInputOptions:
        return self._in

    @property
    def output_options(self) -> RoomOutputOptions:
        return self._out

    @property
    def transcription_output(self) -> RoomTextOutput | None:
        return self.text_output

    @property
    def video_input(self) -> None:
        return None  # video input is not supported

    @property
    def subscribed_fut(self) -> asyncio.Future[None]:
        """Resolves when the linked participant's microphone is being read."""
        return self._subscribed_fut

    async def wait_for_participant(self) -> str:
        await self._linked_event.wait()
        assert self._linked is not None
        return self._linked

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        from ..agent_session import _ensure_connected

        if self._started:
            raise RuntimeError("RoomIO.start() was already called")
        self._started = True
        await _ensure_connected(self._room)
        from ...job import get_job_context

        try:
            self._job_ctx = get_job_context()
        except RuntimeError:
            self._job_ctx = None
        self.agent_status.start()
        if self._out.audio_enabled is not False:
            self.audio_output = RoomAudioOutput(self._room, self._out)
            await self.audio_output.start()
        if self._out.transcription_enabled is not False:
            output = self.audio_output
            self.text_output = RoomTextOutput(
                self._room, track_sid=lambda: output.track_sid if output is not None else None
            )
            self.user_transcript_output = RoomUserTranscriptOutput(
                self._room,
                participant_identity=lambda: self._linked,
                track_sid=lambda: self.audio_input.track_sid if self.audio_input is not None else None,
            )
        if self._in.audio_enabled is not False:
            self.audio_input = RoomAudioInput(
                self._room,
                sample_rate=self._in.audio_sample_rate,
                num_channels=self._in.audio_num_channels,
                frame_size_ms=self._in.audio_frame_size_ms,
            )
            if self._in.pre_connect_audio:
                self._listen_pre_connect_audio(self.audio_input)
        if self._in.text_enabled is not False:
            self.chat_input = RoomChatInput(self._room, on_text=self._on_chat_text, accept_from=lambda: self._linked)
        if self._in.video_enabled is True:
            logger.warning("RoomInputOptions(video_enabled=True): video input is not supported yet; ignored")
        if self._in.noise_cancellation is not None:
            logger.info("RoomInputOptions(noise_cancellation=...) has no effect in roomd")
        self._room.on("participant_connected", self._on_participant_connected)
        self._room.on("participant_disconnected", self._on_participant_disconnected)
        self._room.on("disconnected", self._on_room_disconnected)
        self._room.on("track_subscribed", self._on_track_subscribed)
        self._session._attach_room_io(self)
        for participant in self._room.remote_participants.values():
            self._consider(participant)

    async def aclose(self) -> None:
        self._room.off("disconnected", self._on_room_disconnected)
        self._room.off("participant_connected", self._on_participant_connected)
        self._room.off("participant_disconnected", self._on_participant_disconnected)
        self._room.off("track_subscribed", self._on_track_subscribed)
        if self.audio_input is not None and self._in.pre_connect_audio:
            try:
                self._room.unregister_byte_stream_handler(TOPIC_PRE_CONNECT_AUDIO)
            except Exception:
                pass
        await self._tasks.aclose()
        for part in (self.chat_input, self.audio_input, self.text_output, self.user_transcript_output,
                     self.agent_status, self.audio_output):
            if part is not None:
                try:
                    await part.aclose()
                except Exception:
                    logger.exception("closing room I/O failed")

    # -- the linked participant ------------------------------------------------------------

    def set_participant(self, participant_identity: str | None) -> None:
        """Listen to ``participant_identity`` from now on (None: the first that matches)."""
        self._wanted = participant_identity
        self._unlink()
        for participant in self._room.remote_participants.values():
            self._consider(participant)

    def unset_participant(self) -> None:
        """Stop listening to anyone until ``set_participant``."""
        self._wanted = None
        self._unlink()
        self._linking_paused = True

    _linking_paused = False

    def _unlink(self) -> None:
        self._linking_paused = False
        self._linked = None
        self._linked_event.clear()
        if self.audio_input is not None:
            self.audio_input.set_participant(None)

    def _accepts(self, participant: rtc.RemoteParticipant) -> bool:
        if self._linking_paused:
            return False
        if self._wanted is not None:
            return participant.identity == self._wanted
        return participant.kind in self._in.kinds

    def _consider(self, participant: rtc.RemoteParticipant) -> None:
        if self._linked is not None or not self._accepts(participant):
            return
        self._linked = participant.identity
        self._linked_event.set()
        if self.audio_input is not None:
            self.audio_input.set_participant(participant.identity)
        self._check_microphone(participant)
        logger.debug("session linked to participant %s", participant.identity)

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        self._consider(participant)

    def _on_track_subscribed(self, track: rtc.Track, publication: rtc.RemoteTrackPublication,
                             participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self._linked:
            self._check_microphone(participant)

    def _check_microphone(self, participant: rtc.RemoteParticipant) -> None:
        """The linked participant's microphone is (now) subscribed: say so, and expect its
        pre-connect audio when the client recorded some."""
        for publication in participant.track_publications.values():
            if publication.source != rtc.TrackSource.SOURCE_MICROPHONE or publication.track is None:
                continue
            if not self._subscribed_fut.done():
                self._subscribed_fut.set_result(None)
            features = list(getattr(publication, "audio_features", []) or [])
            if self._pre_connect is not None and _PRECONNECT_BUFFER in features:
                self._pre_connect()

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity != self._linked:
            return
        if self._in.close_on_disconnect:
            self._leave("participant_left")
            return
        # keep listening: the next accepted participant (or the same one rejoining) is linked
        self._unlink()
        for other in self._room.remote_participants.values():
            if other.identity != participant.identity:
                self._consider(other)

    def _on_room_disconnected(self, reason: object = None) -> None:
        # The agent left the room (job ended, server gone): nothing more can be heard or said.
        self._leave("room_disconnected")

    def _leave(self, why: str) -> None:
        if self._left:
            return
        self._left = True
        # Not one of self._tasks: closing the session closes this RoomIO, which must not
        # cancel the close it is part of.
        self._left_task = asyncio.get_running_loop().create_task(
            self._close_session(delete=why == "participant_left"), name=f"room_io.{why}"
        )

    async def _close_session(self, *, delete: bool) -> None:
        await self._session._on_participant_left()
        if delete and self._in.delete_room_on_close:
            from livekit import api

            try:
                if self._job_ctx is None:
                    raise RuntimeError("no job context (the room's API credentials come from the job)")
                await self._job_ctx.api.room.delete_room(api.DeleteRoomRequest(room=self._room.name))
            except Exception as exc:
                logger.warning("could not delete the room on close: %s", exc)

    # -- text and pre-connect audio ----------------------------------------------------------

    async def _on_chat_text(self, text: str, identity: str, info: Any) -> None:
        participant = self._room.remote_participants.get(identity) or identity
        result = self._in.text_input_cb(self._session, TextInputEvent(text=text, info=info, participant=participant))
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            await result

    def _listen_pre_connect_audio(self, audio_input: RoomAudioInput) -> None:
        received: asyncio.Future[list[rtc.AudioFrame]] = asyncio.get_running_loop().create_future()

        def on_stream(reader: rtc.ByteStreamReader, identity: str) -> None:
            self._tasks.create_task(read(reader, identity), name="room_io.pre_connect_audio")

        async def read(reader: rtc.ByteStreamReader, identity: str) -> None:
            attributes = reader.info.attributes or {}
            rate = int(attributes.get("sampleRate", self._in.audio_sample_rate))
            channels = int(attributes.get("channels", 1))
            data = bytearray()
            async for chunk in reader:
                data.extend(chunk)
            samples = len(data) // (2 * channels)
            frames = [rtc.AudioFrame(bytes(data[: samples * 2 * channels]), rate, channels, samples)] if samples else []
            if frames and rate != self._in.audio_sample_rate:
                resampler = rtc.AudioResampler(rate, self._in.audio_sample_rate, num_channels=channels)
                frames = [*resampler.push(frames[0]), *resampler.flush()]
            if not received.done():
                received.set_result(frames)

        async def wait() -> None:
            try:
                frames = await asyncio.wait_for(asyncio.shield(received), self._in.pre_connect_audio_timeout)
            except TimeoutError:
                frames = []
            audio_input.release(frames)

        def expect() -> None:
            if self._pre_connect is None:
                return
            self._pre_connect = None  # once per session
            audio_input.hold()
            self._tasks.create_task(wait(), name="room_io.pre_connect_wait")

        try:
            self._room.register_byte_stream_handler(TOPIC_PRE_CONNECT_AUDIO, on_stream)
        except Exception as exc:  # another handler already owns the topic
            logger.warning("pre-connect audio is not available: %s", exc)
            return
        self._pre_connect = expect
