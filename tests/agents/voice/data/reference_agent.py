"""A voice agent written for the LiveKit Agents API. Moving it to roomd changed only
the imports: ``livekit.agents`` became ``roomd.agents`` and the provider plugins
(``livekit.plugins.silero``/``openai``...) became roomd's scripted testing components."""

from __future__ import annotations

import logging

from roomd.agents import Agent, AgentSession, JobContext, RunContext, WorkerOptions, function_tool
from roomd.agents.testing import EnergyVAD, FakeSTT, ScriptedLLM, ScriptedReply, ToneTTS, tool_call

logger = logging.getLogger("reference-agent")


class Assistant(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful voice assistant. Keep answers short.")

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="Greet the user and offer your help.")

    @function_tool
    async def lookup_weather(self, context: RunContext, location: str) -> str:
        """Look up the current weather.

        Args:
            location: the city to look up
        """
        logger.info("looking up the weather in %s", location)
        context.userdata["lookups"].append(location)
        return f"sunny and 21 degrees in {location}"


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    session = AgentSession(
        userdata={"lookups": []},
        vad=EnergyVAD(),
        stt=FakeSTT("what is the weather in Paris"),
        llm=ScriptedLLM([
            "Hello! How can I help you today?",
            ScriptedReply(tool_calls=[tool_call("lookup_weather", location="Paris")]),
            "It is sunny and 21 degrees in Paris.",
        ]),
        tts=ToneTTS(),
        min_endpointing_delay=0.2,
    )
    await session.start(agent=Assistant(), room=ctx.room)


if __name__ == "__main__":
    from roomd.agents import cli

    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint))
