"""Transcripts as LiveKit text streams on ``lk.transcription`` (what front ends show).

Writes go through a queue drained by one task, so a slow data channel never holds up
the audio path that reports the text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from livekit import rtc

from ...utils.aio import Chan, cancel_and_wait
from ...utils.ids import shortuuid
from ..io import TextOutput, UserTranscriptOutput
from .options import (
    ATTR_SEGMENT_ID,
    ATTR_TRANSCRIBED_TRACK_ID,
    ATTR_TRANSCRIPTION_FINAL,
    TOPIC_TRANSCRIPTION,
)

logger = logging.getLogger("roomd.agents")


@dataclass(frozen=True, slots=True)
class _Text:
    text: str


@dataclass(frozen=True, slots=True)
class _End:
    written: asyncio.Future[None] | None = None  # resolved once the segment's stream is closed


@dataclass(frozen=True, slots=True)
class _Whole:
    text: str
    is_final: bool


class _Writer:
    """Owns the queue and the task that writes it to the room."""

    def __init__(self, run: Callable[[Chan[_Text | _End | _Whole]], object]) -> None:
        self.chan: Chan[_Text | _End | _Whole] = Chan()
        self.task = asyncio.get_running_loop().create_task(run(self.chan), name="transcription_writer")  # type: ignore[arg-type]

    async def aclose(self) -> None:
        self.chan.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=2.0)
        except (TimeoutError, Exception):
            await cancel_and_wait(self.task)


class RoomTextOutput(TextOutput):
    """The agent's transcript: one text stream per segment, written as the text comes,
    closed with ``lk.transcription_final="true"``."""

    def __init__(self, room: rtc.Room, *, track_sid: Callable[[], str | None]) -> None:
        self._room = room
        self._track_sid = track_sid
        self._writer = _Writer(self._run)

    async def capture_text(self, text: str) -> None:
        if text and not self._writer.chan.closed:
            self._writer.chan.send_nowait(_Text(text))

    async def flush(self) -> None:
        """End the segment, and wait (up to 2 s) until it is out: a speech is done when
        its transcript has reached the room (a tool may delete the room right after)."""
        if self._writer.chan.closed:
            return
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writer.chan.send_nowait(_End(written))
        try:
            await asyncio.wait_for(asyncio.shield(written), timeout=2.0)
        except TimeoutError:
            logger.warning("the agent transcript is slow to reach the room; not waiting for it")

    async def _run(self, chan: Chan[_Text | _End | _Whole]) -> None:
        stream: rtc.TextStreamWriter | None = None
        segment_id = shortuuid("SG_")
        async for item in chan:
            try:
                if isinstance(item, _Text):
                    if stream is None:
                        attributes = {ATTR_SEGMENT_ID: segment_id, ATTR_TRANSCRIPTION_FINAL: "false"}
                        if sid := self._track_sid():
                            attributes[ATTR_TRANSCRIBED_TRACK_ID] = sid
                        stream = await self._room.local_participant.stream_text(
                            topic=TOPIC_TRANSCRIPTION, attributes=attributes
                        )
                    await stream.write(item.text)
                elif isinstance(item, _End):
                    if stream is not None:
                        await stream.aclose(attributes={ATTR_TRANSCRIPTION_FINAL: "true"})
                    stream, segment_id = None, shortuuid("SG_")
                    if item.written is not None and not item.written.done():
                        item.written.set_result(None)
            except Exception as exc:  # a dropped transcript must not end the session
                logger.warning("could not publish the agent transcript: %s", exc)
                stream = None
                if isinstance(item, _End) and item.written is not None and not item.written.done():
                    item.written.set_result(None)
        if stream is not None:
            try:
                await stream.aclose(attributes={ATTR_TRANSCRIPTION_FINAL: "true"})
            except Exception:
                pass

    async def aclose(self) -> None:
        await self._writer.aclose()


class RoomUserTranscriptOutput(UserTranscriptOutput):
    """The user's transcript, published by the agent on the user's behalf: each interim
    or final version is a whole text stream; versions of one utterance share a segment
    id, and ``lk.transcribed_track_id`` names the user's microphone track."""

    def __init__(
        self,
        room: rtc.Room,
        *,
        participant_identity: Callable[[], str | None],
        track_sid: Callable[[], str | None],
    ) -> None:
        self._room = room
        self._identity = participant_identity
        self._track_sid = track_sid
        self._writer = _Writer(self._run)

    async def publish(self, text: str, *, is_final: bool) -> None:
        if not self._writer.chan.closed:
            self._writer.chan.send_nowait(_Whole(text, is_final))

    async def _run(self, chan: Chan[_Text | _End | _Whole]) -> None:
        segment_id = shortuuid("SG_")
        async for item in chan:
            if not isinstance(item, _Whole):
                continue
            attributes = {
                ATTR_SEGMENT_ID: segment_id,
                ATTR_TRANSCRIPTION_FINAL: "true" if item.is_final else "false",
            }
            if sid := self._track_sid():
                attributes[ATTR_TRANSCRIBED_TRACK_ID] = sid
            try:
                stream = await self._room.local_participant.stream_text(
                    topic=TOPIC_TRANSCRIPTION,
                    attributes=attributes,
                    sender_identity=self._identity() or None,
                )
                await stream.write(item.text)
                await stream.aclose()
            except Exception as exc:
                logger.warning("could not publish the user transcript: %s", exc)
            if item.is_final:
                segment_id = shortuuid("SG_")

    async def aclose(self) -> None:
        await self._writer.aclose()
