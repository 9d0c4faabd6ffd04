"""The voice pipeline's own latency: end of user speech to the first agent audio frame.

Components have fixed, known latencies (scripted: LLM time to first token, TTS time to
first byte, STT instant), so what remains after subtracting them and the endpointing
delay is the framework's overhead:

    overhead = first_frame - vad_end_of_speech - min_endpointing_delay - llm_ttft - tts_ttfb

Two variants:
- memory: the session over in-memory I/O; "first frame" is when the output hands the
  first frame to its sink.
- room: the session in a real room on a local livekit-server (DevServer); a participant
  speaks tone bursts over WebRTC. Reported twice: to the AudioSource (framework) and
  to the participant's AudioStream (adds WebRTC transport and jitter buffering).

Usage: python benchmarks/pipeline.py [--turns 20] [--variant memory|room|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from livekit import api, rtc

from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ScriptedReply, ToneTTS
from roomd.agents.utils.audio import frame_rms, silence, sine, split_frame
from roomd.agents.voice import (
    Agent,
    AgentSession,
    AgentState,
    MemoryAudioInput,
    MemoryAudioOutput,
    UserState,
)

ENDPOINTING = 0.1
LLM_TTFT = 0.05
TTS_TTFB = 0.03
KNOWN = ENDPOINTING + LLM_TTFT + TTS_TTFB


def utterance() -> list[rtc.AudioFrame]:
    speech = split_frame(sine(0.3, frequency=300.0, amplitude=0.3), 0.02)
    return speech + split_frame(silence(0.4), 0.02)


def make_session() -> AgentSession[Any]:
    return AgentSession(
        vad=EnergyVAD(),
        stt=FakeSTT("hello there"),
        llm=ScriptedLLM(default=ScriptedReply(text="Sure.", ttft=LLM_TTFT)),
        tts=ToneTTS(streaming=True, latency=TTS_TTFB, seconds_per_char=0.01),
        min_endpointing_delay=ENDPOINTING,
        user_away_timeout=None,
    )


@dataclass
class Turns:
    """Timestamps (perf_counter) per turn."""

    vad_end: list[float] = field(default_factory=list)
    first_frame: list[float] = field(default_factory=list)
    received: list[float] = field(default_factory=list)


def watch(session: AgentSession[Any], turns: Turns) -> asyncio.Event:
    idle = asyncio.Event()

    def on_user(ev: Any) -> None:
        if ev.old_state == UserState.SPEAKING and ev.new_state == UserState.LISTENING:
            turns.vad_end.append(time.perf_counter())

    def on_agent(ev: Any) -> None:
        if ev.new_state == AgentState.LISTENING:
            idle.set()
        else:
            idle.clear()

    session.on("user_state_changed", on_user)
    session.on("agent_state_changed", on_agent)
    return idle


async def wait_turn(idle: asyncio.Event, turns: Turns, n: int) -> None:
    async with asyncio.timeout(10):
        while len(turns.first_frame) < n or len(turns.vad_end) < n:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)
        await idle.wait()


async def run_memory(n: int) -> Turns:
    session = make_session()
    audio_in, audio_out = MemoryAudioInput(), MemoryAudioOutput()
    session.input.audio, session.output.audio = audio_in, audio_out
    turns = Turns()
    audio_out.on("playback_started", turns.first_frame.append)
    idle = watch(session, turns)
    await session.start(Agent(instructions="bench"))
    for i in range(n):
        for frame in utterance():
            audio_in.push_frame(frame)
        await wait_turn(idle, turns, i + 1)
    await session.aclose()
    return turns


async def run_room(n: int) -> Turns:
    from roomd.daemon.devserver import DevServer, ensure_binary

    server = DevServer(ensure_binary())
    address = server.start()
    try:
        name = f"bench-{uuid.uuid4().hex[:8]}"

        async def join(identity: str) -> rtc.Room:
            tok = (api.AccessToken(address.api_key, address.api_secret).with_identity(identity)
                   .with_grants(api.VideoGrants(room_join=True, room=name)).to_jwt())
            room = rtc.Room()
            await room.connect(address.url, tok)
            return room

        user = await join("user")
        mic = rtc.AudioSource(48000, 1, queue_size_ms=200)
        await user.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("mic", mic),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )
        turns = Turns()
        expecting = asyncio.Event()  # a reply is due: the next loud frame is its first
        tasks: list[asyncio.Task[None]] = []

        async def listen(track: rtc.Track) -> None:
            async for ev in rtc.AudioStream.from_track(track=track, sample_rate=48000, num_channels=1):
                if expecting.is_set() and frame_rms(ev.frame) > 0.001:
                    turns.received.append(time.perf_counter())
                    expecting.clear()

        heard_track = asyncio.Event()

        def on_track(track: rtc.Track, *_: Any) -> None:
            if track.kind == rtc.TrackKind.KIND_AUDIO:
                tasks.append(asyncio.get_running_loop().create_task(listen(track)))
                heard_track.set()

        user.on("track_subscribed", on_track)
        agent_room = await join("agent")
        session = make_session()
        idle = watch(session, turns)
        # armed at the end of the user's speech: earlier loud frames are the previous reply's tail
        session.on("user_state_changed",
                   lambda ev: expecting.set() if ev.new_state == UserState.LISTENING else None)
        await session.start(Agent(instructions="bench"), room=agent_room)
        session.output.audio.on("playback_started", turns.first_frame.append)  # type: ignore[union-attr]
        await asyncio.wait_for(heard_track.wait(), 10)
        for i in range(n):
            await asyncio.sleep(0.2)  # let the previous reply's audio drain out of WebRTC
            for frame in utterance():
                await mic.capture_frame(frame)
            await wait_turn(idle, turns, i + 1)
            async with asyncio.timeout(5):
                while len(turns.received) < i + 1:
                    await asyncio.sleep(0.005)
        await session.aclose()
        for task in tasks:
            task.cancel()
        await user.disconnect()
        await agent_room.disconnect()
        return turns
    finally:
        server.stop()


def summary(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p50 = statistics.median(ms)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return f"{label:<46} n={len(ms):<3} p50={p50:7.2f} ms  p90={p90:7.2f} ms  max={ms[-1]:7.2f} ms"


def report(variant: str, turns: Turns) -> None:
    overhead = [f - e - KNOWN for e, f in zip(turns.vad_end, turns.first_frame, strict=False)]
    print(summary(f"{variant}: framework overhead (to the output)", overhead))
    if turns.received:
        wire = [r - e - KNOWN for e, r in zip(turns.vad_end, turns.received, strict=False)]
        print(summary(f"{variant}: overhead + WebRTC (to the participant)", wire))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--variant", choices=("memory", "room", "both"), default="both")
    args = parser.parse_args()
    print(f"known latencies: endpointing {ENDPOINTING * 1000:.0f} ms + LLM ttft {LLM_TTFT * 1000:.0f} ms "
          f"+ TTS ttfb {TTS_TTFB * 1000:.0f} ms = {KNOWN * 1000:.0f} ms (subtracted)")
    if args.variant in ("memory", "both"):
        report("memory", await run_memory(args.turns))
    if args.variant in ("room", "both"):
        report("room", await run_room(args.turns))
    return 0


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    sys.exit(asyncio.run(main()))
