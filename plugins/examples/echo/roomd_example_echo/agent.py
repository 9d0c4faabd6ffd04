"""The echo agent: says hello in text, plays a short tone, then repeats what it hears.

It shows the whole plugin contract with nothing but the room: an entrypoint that joins,
a prewarm that prepares data once per process, and a text greeting on ``lk.chat``.
"""

from __future__ import annotations

import asyncio

import numpy as np
from livekit import rtc

from roomd.agents import AutoSubscribe, JobContext, JobProcess, WorkerOptions

SAMPLE_RATE = 48000
FRAME_SAMPLES = SAMPLE_RATE // 100  # 10 ms frames
GREETING = "Hello! I'm the roomd echo agent. Say something and I'll say it back."


def prewarm(proc: JobProcess) -> None:
    """Render the greeting tone once per process; every job in it reuses the samples."""
    seconds = 0.4
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    envelope = np.minimum(1.0, np.minimum(t, seconds - t) * 20)  # no clicks at the edges
    tone = 0.3 * np.sin(2 * np.pi * 660 * t) * envelope
    proc.userdata["tone"] = (tone * 32767).astype(np.int16)


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("echo", source)
    await ctx.room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    await ctx.room.local_participant.send_text(GREETING, topic="lk.chat")
    await _play(source, ctx.proc.userdata["tone"])

    echoes: set[asyncio.Task[None]] = set()

    def on_track(track: rtc.Track, *_: object) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            task = asyncio.create_task(_echo(track, source))
            echoes.add(task)
            task.add_done_callback(echoes.discard)

    ctx.room.on("track_subscribed", on_track)
    for participant in ctx.room.remote_participants.values():
        for publication in participant.track_publications.values():
            if publication.track is not None:
                on_track(publication.track)

    async def stop_echoes() -> None:
        for task in list(echoes):
            task.cancel()
        await asyncio.gather(*echoes, return_exceptions=True)

    ctx.add_shutdown_callback(stop_echoes)


async def _play(source: rtc.AudioSource, samples: np.ndarray) -> None:
    for start in range(0, len(samples), FRAME_SAMPLES):
        chunk = samples[start:start + FRAME_SAMPLES]
        if len(chunk) < FRAME_SAMPLES:
            chunk = np.pad(chunk, (0, FRAME_SAMPLES - len(chunk)))
        frame = rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES)
        await source.capture_frame(frame)


async def _echo(track: rtc.Track, source: rtc.AudioSource) -> None:
    async for event in rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1):
        await source.capture_frame(event.frame)


options = WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, agent_name="echo")
