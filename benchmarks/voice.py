"""Voice-to-voice latency of the receptionist on the local stack, in a real room.

    python benchmarks/voice.py --turns 10

One turn: the console participant publishes a spoken question (tests/data), and we
measure from the end of its speech (the last frame played out) to the first agent
audio frame with sound arriving in the room. The breakdown per component comes from
the components' own metrics for the same turn: VAD end-of-speech wait (the configured
silence), STT duration, LLM time to first token (summed over the turn's LLM calls, so a
tool turn counts both), TTS time to first byte. Prints p50/p90 and a markdown table for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "voice_stack"))

QUESTIONS = ["library_hours.wav", "what_time.wav", "hello.wav", "pool_hours.wav"]


@dataclass
class Turn:
    question: str
    voice_to_voice: float
    stt: float = 0.0
    llm_ttft: float = 0.0
    llm_calls: int = 0
    tts_ttfb: float = 0.0
    tools: list[str] = field(default_factory=list)


async def wait_until_quiet(console, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Until the agent's track has carried no sound for ``seconds``."""
    loop = asyncio.get_running_loop()
    while True:
        loud = [at for at, rms in console.agent_audio_frames if rms > 0.003]
        if loud and loop.time() - loud[-1] >= seconds:
            return
        await asyncio.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


async def run(turns: int) -> list[Turn]:
    from agent_side import start_receptionist
    from roomd.agents.stt import StreamAdapter
    from roomd.daemon.console import TRANSCRIPTION_TOPIC, ConsoleOptions, ConsoleSession, read_wav_48k
    from roomd.daemon.devserver import DevServer
    from roomd.plugins.local.llm import LocalLLM
    from roomd.plugins.local.stt import WhisperSTT
    from roomd.plugins.local.tts import FliteTTS
    from roomd.plugins.local.vad import SileroVAD
    from roomd_example_receptionist.desk import TOOL_EXAMPLES

    vad = SileroVAD.load()
    whisper = WhisperSTT.load()
    llm = LocalLLM.load(tool_examples=TOOL_EXAMPLES)
    tts = FliteTTS()
    components = {"vad": vad, "stt": StreamAdapter(stt=whisper, vad=vad), "llm": llm, "tts": tts}
    stt_m: list = []
    llm_m: list = []
    tts_m: list = []
    whisper.on("metrics_collected", stt_m.append)
    llm.on("metrics_collected", llm_m.append)
    tts.on("metrics_collected", tts_m.append)

    server = DevServer()
    address = server.start()
    room = f"bench-{uuid.uuid4().hex[:8]}"
    console = ConsoleSession(ConsoleOptions(url=address.url, api_key=address.api_key,
                                            api_secret=address.api_secret, room=room))
    agent = None
    results: list[Turn] = []
    me = console.options.identity

    def agent_final(line) -> bool:  # type: ignore[no-untyped-def]
        return line.topic == TRANSCRIPTION_TOPIC and line.identity != me and line.final and bool(line.text.strip())

    try:
        await console.connect()
        agent = await start_receptionist(address, room, components)
        async with asyncio.timeout(60):
            await console.wait_for_line(agent_final)  # greeting
        await wait_until_quiet(console, 1.0)  # the greeting has played out
        for i in range(turns):
            name = QUESTIONS[i % len(QUESTIONS)]
            samples = read_wav_48k(ROOT / "tests" / "data" / name)
            marks = (len(stt_m), len(llm_m), len(tts_m), len(agent.tool_calls), len(console.lines))
            async with asyncio.timeout(60):
                ended = await console.play(samples, trailing_silence=0.0)
                await console.wait_for_line(agent_final, start=marks[4])
                first = console.first_sound_after(ended)
                while first is None:
                    await asyncio.sleep(0.02)
                    first = console.first_sound_after(ended)
                await wait_until_quiet(console, 1.0)  # the answer has played out
            llm_turn = llm_m[marks[1]:]
            turn = Turn(
                question=name,
                voice_to_voice=first - ended,
                stt=sum(m.duration for m in stt_m[marks[0]:]),
                llm_ttft=sum(m.ttft for m in llm_turn if m.ttft > 0),
                llm_calls=len(llm_turn),
                tts_ttfb=next((m.ttfb for m in tts_m[marks[2]:] if m.ttfb > 0), 0.0),
                tools=agent.tool_calls[marks[3]:],
            )
            results.append(turn)
            print(f"turn {i + 1:2d} {name:18s} v2v {turn.voice_to_voice * 1000:6.0f} ms  stt {turn.stt * 1000:5.0f}  "
                  f"llm ttft {turn.llm_ttft * 1000:5.0f} ({turn.llm_calls} calls)  tts {turn.tts_ttfb * 1000:4.0f}  "
                  f"tools {turn.tools}", flush=True)
    finally:
        if agent is not None:
            await agent.aclose()
        await console.aclose()
        server.stop()
    return results


def report(results: list[Turn], vad_silence: float) -> str:
    rows = [
        ("voice to voice (end of speech -> first agent audio)", [t.voice_to_voice for t in results]),
        ("VAD end-of-speech wait (configured silence)", [vad_silence for _ in results]),
        ("STT (Whisper tiny.en, per utterance)", [t.stt for t in results]),
        ("LLM time to first token (all calls of the turn)", [t.llm_ttft for t in results]),
        ("TTS time to first audio (first sentence, Flite)", [t.tts_ttfb for t in results]),
    ]
    lines = ["| stage | p50 ms | p90 ms |", "| --- | ---: | ---: |"]
    for label, values in rows:
        lines.append(f"| {label} | {pct(values, 50) * 1000:.0f} | {pct(values, 90) * 1000:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    results = asyncio.run(run(args.turns))
    from roomd.plugins.local.vad import VADOptions

    print()
    print(f"{len(results)} turns")
    print(report(results, VADOptions().min_silence_duration))


if __name__ == "__main__":
    main()
