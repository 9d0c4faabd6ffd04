"""The receptionist agent: the offline voice stack by default, two tools.

Models load once per process in ``prewarm`` (``JobProcess.userdata``), so a job starts
talking without waiting for them. Set ``ROOMD_RECEPTIONIST_LLM`` (and ``..._STT`` /
``..._TTS``) to a component name such as ``openai/gpt-4o-mini`` to use another provider.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from roomd.agents import JobContext, JobProcess, WorkerOptions
from roomd.agents.components import resolve

from .desk import GREETING, INSTRUCTIONS, TOOL_EXAMPLES, make_tools

# Seconds of quiet before the local STT starts on the speech so far. A pause inside the
# question costs a recognition that is thrown away when the speech goes on (~0.1-0.2 s of
# CPU); benchmarks/voice.py measured 0.1 against 0.2 side by side (docs/benchmarks.md).
EARLY_RECOGNITION = 0.1
DEFAULTS = {"vad": "local/silero", "stt": "local/whisper-tiny", "llm": "local/smollm2", "tts": "local/flite"}
# The session's options beyond the reference's defaults: the reply starts on the early
# transcript, during the end-of-speech silence, and is played if the turn ends there.
SESSION_OPTIONS: dict[str, Any] = {"preemptive_generation": True}


def component_names() -> dict[str, str]:
    return {kind: os.environ.get(f"ROOMD_RECEPTIONIST_{kind.upper()}", name) for kind, name in DEFAULTS.items()}


def load_components() -> dict[str, Any]:
    """The four components, built (and their models loaded) now."""
    names = component_names()
    built: dict[str, Any] = {}
    for kind, name in names.items():
        kwargs: dict[str, Any] = {"tool_examples": TOOL_EXAMPLES} if name in ("local/smollm2", "local") and kind == "llm" else {}
        built[kind] = resolve(kind, name, **kwargs)
    from roomd.agents.stt import StreamAdapter
    from roomd.plugins.local.stt import WhisperSTT

    if isinstance(built["stt"], WhisperSTT):
        # Recognise as soon as the speech has been quiet briefly, not after the VAD's whole
        # end-of-speech silence: the transcript is then ready when the turn ends.
        built["stt"] = StreamAdapter(stt=built["stt"], vad=built["vad"], recognize_early_after=EARLY_RECOGNITION)
    return built


def warm_up(components: dict[str, Any]) -> None:
    """Blocking: let the local LLM evaluate the prompt prefixes every turn shares (the
    instructions, the tool examples) now rather than on the first turn. Seconds on 2
    cores, so not in prewarm (a child must initialise within 10 s): the entrypoint runs
    it while the greeting plays."""
    from roomd.plugins.local.llm import LocalLLM

    if isinstance(components["llm"], LocalLLM):
        components["llm"].warm(instructions=INSTRUCTIONS, tools=make_tools())


def prewarm(proc: JobProcess) -> None:
    proc.userdata["components"] = load_components()


def build_agent() -> Any:
    from roomd.agents.voice import Agent

    class Receptionist(Agent):
        def __init__(self) -> None:
            super().__init__(instructions=INSTRUCTIONS, tools=make_tools())

        async def on_enter(self) -> None:
            self.session.say(GREETING)

    return Receptionist()


def build_session(components: dict[str, Any], **options: Any) -> Any:
    """The session over ``components``; ``options`` are more ``AgentSession`` arguments
    (over ``SESSION_OPTIONS``)."""
    from roomd.agents.voice import AgentSession

    return AgentSession(
        vad=components["vad"], stt=components["stt"], llm=components["llm"], tts=components["tts"],
        **{**SESSION_OPTIONS, **options},
    )


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    components = ctx.proc.userdata.get("components") or load_components()
    session = build_session(components)
    await session.start(agent=build_agent(), room=ctx.room)
    await asyncio.to_thread(warm_up, components)


options = WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, agent_name="receptionist")
