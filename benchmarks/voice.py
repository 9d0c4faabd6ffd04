"""Voice-to-voice latency of the receptionist on the local stack, in a real room.

    python benchmarks/voice.py --turns 10                 # both variants, side by side
    python benchmarks/voice.py --turns 10 --variant fast  # one of them
    python benchmarks/voice.py --variant fast,fast-no-preemptive  # a lever on and off

One turn: the console participant publishes a spoken question (tests/data), and we
measure from the end of its speech (the last frame played out) to the first agent
audio frame with sound arriving in the room. The breakdown per component comes from
the components' own metrics for the same turn: VAD end-of-speech wait (the configured
silence), STT duration, LLM time to first token (summed over the turn's LLM calls, so a
tool turn counts both), TTS time to first byte. Prints p50/p90 per variant and a markdown
table for docs/benchmarks.md.

Variants (each its own agent and room; their turns alternate, so both see the same load):
``today`` is the configuration before the latency work of issue 16 (Whisper's 30 s
window, the three-pass tool decision, a 10-item history dropped 5 at a time and the
prefix after a drop evaluated by the turn that needs it, TTS by
whole sentences with Flite's lead-in silence, no LLM warm-up, the
endpointing delay counted from the VAD's verdict -- emulated by adding the VAD's silence
to ``min_endpointing_delay``); ``fast`` is the components' and the session's defaults,
built by the receptionist's own ``load_components`` (its prewarm: the STT recognising
early) and ``warm_up`` (its entrypoint: the LLM's shared prompt prefixes evaluated),
with its session options (``SESSION_OPTIONS``: preemptive generation). The others are
``fast`` with one lever changed, to measure it alone: ``fast-no-preemptive`` (no
preemptive generation), ``fast-early-0.1`` / ``fast-early-0.3`` (the STT's early
recognition after that much quiet), ``fast-whole-clause`` (the first TTS piece ends at a
clause mark only, not before a phrase-opening word), ``fast-lead-in`` (Flite's lead-in
silence kept).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class Variant:
    name: str
    components: Callable[[], dict[str, Any]]
    session_options: dict[str, Any] = field(default_factory=dict)


def variants() -> dict[str, Variant]:
    from roomd.agents.stt import StreamAdapter
    from roomd.agents.tokenize import SentenceTokenizer
    from roomd.plugins.local.llm import LocalLLM
    from roomd.plugins.local.stt import WhisperSTT
    from roomd.plugins.local.tts import FirstClauseTokenizer, FliteTTS
    from roomd.plugins.local.vad import SileroVAD, VADOptions
    from roomd_example_receptionist.agent import load_components, warm_up
    from roomd_example_receptionist.desk import TOOL_EXAMPLES

    def today() -> dict[str, Any]:
        vad = SileroVAD.load()
        return {"vad": vad, "stt": StreamAdapter(stt=WhisperSTT.load(fit_window=False), vad=vad),
                "llm": LocalLLM.load(tool_examples=TOOL_EXAMPLES, one_pass_tools=False,
                                     max_history_items=10, history_drop_step=5, prepare_next_prefix=False),
                "tts": FliteTTS(sentence_tokenizer=SentenceTokenizer(min_sentence_len=8), lead_in=None)}

    def fast() -> dict[str, Any]:
        components = load_components()  # exactly what the receptionist's prewarm builds
        warm_up(components)  # what its entrypoint does while the greeting plays
        return components

    def fast_early(after: float) -> Callable[[], dict[str, Any]]:
        def build() -> dict[str, Any]:
            components = fast()
            wrapped = components["stt"].wrapped_stt  # the receptionist's StreamAdapter, rebuilt
            components["stt"] = StreamAdapter(stt=wrapped, vad=components["vad"], recognize_early_after=after)
            return components
        return build

    def fast_lead_in() -> dict[str, Any]:
        components = fast()
        components["tts"] = FliteTTS(lead_in=None)
        return components

    def fast_whole_clause() -> dict[str, Any]:
        components = fast()
        components["tts"] = FliteTTS(sentence_tokenizer=FirstClauseTokenizer(min_sentence_len=8, min_phrase_words=0))
        return components

    # Before issue 16 the endpointing delay started at the VAD's verdict, itself
    # min_silence_duration after the speech: the same wait as a longer delay from the speech.
    old_delay = 0.5 + VADOptions().min_silence_duration
    return {
        "today": Variant("today", today, {"min_endpointing_delay": old_delay, "preemptive_generation": False}),
        "fast": Variant("fast", fast),
        "fast-no-preemptive": Variant("fast-no-preemptive", fast, {"preemptive_generation": False}),
        "fast-early-0.1": Variant("fast-early-0.1", fast_early(0.1)),
        "fast-early-0.3": Variant("fast-early-0.3", fast_early(0.3)),
        "fast-whole-clause": Variant("fast-whole-clause", fast_whole_clause),
        "fast-lead-in": Variant("fast-lead-in", fast_lead_in),
    }


@dataclass
class Bench:
    """One variant's agent, room and console participant, and its components' metrics."""

    variant: Variant
    console: Any = None
    agent: Any = None
    stt_m: list[Any] = field(default_factory=list)
    llm_m: list[Any] = field(default_factory=list)
    tts_m: list[Any] = field(default_factory=list)
    results: list[Turn] = field(default_factory=list)

    async def start(self, address: Any) -> None:
        from agent_side import start_receptionist
        from roomd.daemon.console_session import ConsoleOptions, ConsoleSession

        components = self.variant.components()
        components["stt"].on("metrics_collected", self.stt_m.append)
        components["llm"].on("metrics_collected", self.llm_m.append)
        components["tts"].on("metrics_collected", self.tts_m.append)
        room = f"bench-{self.variant.name}-{uuid.uuid4().hex[:8]}"
        self.console = ConsoleSession(ConsoleOptions(url=address.url, api_key=address.api_key,
                                                     api_secret=address.api_secret, room=room))
        await self.console.connect()
        self.agent = await start_receptionist(address, room, components, **self.variant.session_options)
        async with asyncio.timeout(60):
            await self.console.wait_for_line(self.agent_final)  # greeting
        await wait_until_quiet(self.console, 1.0)  # the greeting has played out

    def agent_final(self, line: Any) -> bool:
        from roomd.daemon.console_session import TRANSCRIPTION_TOPIC

        return (line.topic == TRANSCRIPTION_TOPIC and line.identity != self.console.options.identity
                and line.final and bool(line.text.strip()))

    async def turn(self, name: str) -> Turn:
        from roomd.daemon.console_session import read_wav_48k

        console, agent = self.console, self.agent
        samples = read_wav_48k(ROOT / "tests" / "data" / name)
        marks = (len(self.stt_m), len(self.llm_m), len(self.tts_m), len(agent.tool_calls), len(console.lines))
        async with asyncio.timeout(60):
            ended = await console.play(samples, trailing_silence=0.0)
            await console.wait_for_line(self.agent_final, start=marks[4])
            first = console.first_sound_after(ended)
            while first is None:
                await asyncio.sleep(0.02)
                first = console.first_sound_after(ended)
            await wait_until_quiet(console, 1.0)  # the answer has played out
        llm_turn = self.llm_m[marks[1]:]
        turn = Turn(
            question=name,
            voice_to_voice=first - ended,
            stt=sum(m.duration for m in self.stt_m[marks[0]:]),
            llm_ttft=sum(m.ttft for m in llm_turn if m.ttft > 0),
            llm_calls=len(llm_turn),
            tts_ttfb=next((m.ttfb for m in self.tts_m[marks[2]:] if m.ttfb > 0), 0.0),
            tools=agent.tool_calls[marks[3]:],
        )
        self.results.append(turn)
        return turn

    async def aclose(self) -> None:
        if self.agent is not None:
            await self.agent.aclose()
        if self.console is not None:
            await self.console.aclose()


async def run(turns: int, chosen: list[Variant]) -> list[Bench]:
    from roomd.daemon.devserver import DevServer

    server = DevServer()
    address = server.start()
    benches = [Bench(v) for v in chosen]
    try:
        for bench in benches:
            await bench.start(address)
        for i in range(turns):
            name = QUESTIONS[i % len(QUESTIONS)]
            for bench in benches:
                turn = await bench.turn(name)
                print(f"{bench.variant.name:18s} turn {i + 1:2d} {name:18s} v2v {turn.voice_to_voice * 1000:6.0f} ms  "
                      f"stt {turn.stt * 1000:5.0f}  llm ttft {turn.llm_ttft * 1000:5.0f} ({turn.llm_calls} calls)  "
                      f"tts {turn.tts_ttfb * 1000:4.0f}  tools {turn.tools}", flush=True)
    finally:
        for bench in benches:
            await bench.aclose()
        server.stop()
    return benches


def report(benches: list[Bench], vad_silence: float) -> str:
    def stages(results: list[Turn]) -> list[tuple[str, list[float]]]:
        return [
            ("voice to voice (end of speech -> first agent audio)", [t.voice_to_voice for t in results]),
            ("  turns without a tool", [t.voice_to_voice for t in results if not t.tools]),
            ("  turns with a tool", [t.voice_to_voice for t in results if t.tools]),
            ("VAD end-of-speech wait (configured silence)", [vad_silence for _ in results]),
            ("STT (Whisper tiny.en, per utterance)", [t.stt for t in results]),
            ("LLM time to first token (all calls of the turn)", [t.llm_ttft for t in results]),
            ("TTS time to first audio (first chunk, Flite)", [t.tts_ttfb for t in results]),
        ]

    def cell(values: list[float], q: float) -> str:
        return f"{pct(values, q) * 1000:.0f}" if values else "-"

    columns = [stages(b.results) for b in benches]
    head = " | ".join(f"{b.variant.name} p50 ms | {b.variant.name} p90 ms" for b in benches)
    lines = [f"| stage | {head} |", "| --- |" + " ---: | ---: |" * len(benches)]
    for row, (label, _) in enumerate(columns[0]):
        cells = " | ".join(f"{cell(c[row][1], 50)} | {cell(c[row][1], 90)}" for c in columns)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--variant", default="both",
                        help="a comma-separated list of variants (" + ", ".join(variants()) + "), "
                             "or both (today,fast)")
    args = parser.parse_args()
    known = variants()
    names = ["today", "fast"] if args.variant == "both" else args.variant.split(",")
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[n] for n in names]
    load_before = os.getloadavg()[0]
    benches = asyncio.run(run(args.turns, chosen))
    load_after = os.getloadavg()[0]
    from roomd.plugins.local.vad import VADOptions

    print()
    print(f"{args.turns} turns per variant; load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end")
    print(report(benches, VADOptions().min_silence_duration))


if __name__ == "__main__":
    main()
