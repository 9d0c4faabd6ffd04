"""``roomd console`` against the real dev server, with a test participant as the agent."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest
from livekit import api, rtc

from roomd.daemon.console_session import CHAT_TOPIC, TRANSCRIPTION_TOPIC, ConsoleOptions, ConsoleSession, read_wav_48k
from voice_helpers import DATA

pytestmark = pytest.mark.livekit_server


def _token(address, identity: str, room: str) -> str:  # type: ignore[no-untyped-def]
    return (
        api.AccessToken(address.api_key, address.api_secret)
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )


async def test_console_sends_chat_prints_transcripts_and_records_agent_audio(livekit_server, tmp_path: Path) -> None:
    room_name = "console-test"
    fake_agent = rtc.Room()
    got_chat: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    heard_voice = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    def on_chat(reader: rtc.TextStreamReader, identity: str) -> None:
        async def read() -> None:
            text = await reader.read_all()
            if not got_chat.done():
                got_chat.set_result(text)
        tasks.add(asyncio.create_task(read()))

    async def listen(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
            if np.abs(np.frombuffer(event.frame.data, dtype=np.int16)).max(initial=0) > 1000:
                heard_voice.set()

    fake_agent.register_text_stream_handler(CHAT_TOPIC, on_chat)
    fake_agent.on("track_subscribed", lambda track, *_: tasks.add(asyncio.create_task(listen(track))))
    await fake_agent.connect(livekit_server.url, _token(livekit_server, "agent-x", room_name))
    source = rtc.AudioSource(48000, 1)
    await fake_agent.local_participant.publish_track(rtc.LocalAudioTrack.create_audio_track("voice", source))

    out = tmp_path / "agent.wav"
    console = ConsoleSession(ConsoleOptions(url=livekit_server.url, api_key=livekit_server.api_key,
                                           api_secret=livekit_server.api_secret, room=room_name, output_wav=out))
    try:
        async with asyncio.timeout(30):
            await console.connect()
            await console.send_text("hello agent")
            assert await got_chat == "hello agent"

            await fake_agent.local_participant.send_text(
                "Hello visitor.", topic=TRANSCRIPTION_TOPIC, attributes={"lk.transcription_final": "true"}
            )
            line = await console.wait_for_line(lambda l: l.topic == TRANSCRIPTION_TOPIC)
            assert (line.identity, line.text, line.final) == ("agent-x", "Hello visitor.", True)

            await console.play(read_wav_48k(DATA / "what_time.wav"), trailing_silence=0.2)
            await heard_voice.wait()  # the recording arrived as the console user's voice

            tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.int16)
            for i in range(0, tone.size, 480):
                await source.capture_frame(rtc.AudioFrame(tone[i:i + 480].tobytes(), 48000, 1, 480))
            while console.first_agent_audio_at is None:
                await asyncio.sleep(0.05)
    finally:
        await console.aclose()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await fake_agent.disconnect()
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 48000 and wav.getnframes() > 4800
        recorded = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    assert np.abs(recorded).max() > 3000  # the tone, not just silence
