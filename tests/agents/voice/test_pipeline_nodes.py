"""Overriding an Agent's pipeline nodes changes what flows through the session
(issue 11, item 2): llm_node, tts_node, transcription_node, stt_node,
realtime_audio_output_node, Agent.default, ModelSettings, TimedString."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import numpy as np
from session_helpers import TIMEOUT
from voice_audio import utterance

from roomd.agents import NOT_GIVEN, Agent, ChatContext, FunctionTool, ModelSettings, StopResponse
from roomd.agents.llm import ChatChunk, ChatMessage, ChoiceDelta
from roomd.agents.stt import SpeechEvent
from roomd.agents.testing import ScriptedLLM, ToneTTS
from roomd.agents.voice.io import TimedString
from roomd.agents.voice.agent import ModelSettings as ModelSettingsAtAgent
from livekit import rtc


def assistant(ctx: ChatContext) -> list[str]:
    return [m.text_content or "" for m in ctx.messages if m.role == "assistant"]


async def reply_to(h: Any, text: str = "hi") -> None:
    await asyncio.wait_for(h.session.generate_reply(user_input=text), TIMEOUT)


def test_model_settings_is_the_same_class_at_both_paths() -> None:
    assert ModelSettings is ModelSettingsAtAgent
    assert ModelSettings().tool_choice is NOT_GIVEN
    assert ModelSettings(tool_choice="required").tool_choice == "required"


async def test_llm_node_may_return_a_plain_string(make: Any) -> None:
    class Fixed(Agent):
        async def llm_node(self, chat_ctx: ChatContext, tools: list[FunctionTool], model_settings: ModelSettings) -> str:
            return "We are closed on Sundays."

    llm = ScriptedLLM([])
    h = await make(Fixed(instructions="x"), llm=llm)
    await reply_to(h)
    assert assistant(h.session.history) == ["We are closed on Sundays."]
    assert llm.requests == []  # the default node (the LLM) never ran
    assert h.session.tts.requests == ["We are closed on Sundays."]  # type: ignore[union-attr]


async def test_llm_node_may_yield_strings_built_on_the_default(make: Any) -> None:
    class Shout(Agent):
        async def llm_node(self, chat_ctx: ChatContext, tools: list[FunctionTool],
                           model_settings: ModelSettings) -> AsyncIterator[str]:
            async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
                if chunk.delta and chunk.delta.content:
                    yield chunk.delta.content.upper()

    h = await make(Shout(instructions="x"), llm=ScriptedLLM(["quiet please"]))
    await reply_to(h)
    assert assistant(h.session.history) == ["QUIET PLEASE"]


async def test_llm_node_may_return_an_iterable_of_chat_chunks(make: Any) -> None:
    class Chunks(Agent):
        async def llm_node(self, chat_ctx: ChatContext, tools: list[FunctionTool],
                           model_settings: ModelSettings) -> AsyncIterable[ChatChunk]:
            async def gen() -> AsyncIterator[ChatChunk]:
                for word in ("one ", "two"):
                    yield ChatChunk(id="c", delta=ChoiceDelta(role="assistant", content=word))

            return gen()

    h = await make(Chunks(instructions="x"), llm=ScriptedLLM([]))
    await reply_to(h)
    assert assistant(h.session.history) == ["one two"]


async def test_llm_node_sees_tool_choice_and_may_add_tools_for_one_call(make: Any) -> None:
    seen: list[tuple[Any, list[str]]] = []

    class Temporary(Agent):
        def llm_node(self, chat_ctx: ChatContext, tools: list[FunctionTool], model_settings: ModelSettings) -> Any:
            from roomd.agents import function_tool

            async def _weather(location: str) -> str:
                return "sunny"

            tools.append(function_tool(_weather, name="get_weather", description="Weather"))
            seen.append((model_settings.tool_choice, [t.name for t in tools]))
            return Agent.default.llm_node(self, chat_ctx, tools, model_settings)

    class ToolsSeen(ScriptedLLM):
        given: list[list[str]] = []

        def chat(self, *, tools: Any = None, **kwargs: Any) -> Any:
            self.given.append([t.name for t in tools or []])
            return super().chat(tools=tools, **kwargs)

    agent = Temporary(instructions="x")
    llm = ToolsSeen(["ok"])
    h = await make(agent, llm=llm)
    await asyncio.wait_for(h.session.generate_reply(tool_choice="none"), TIMEOUT)
    assert seen == [("none", ["get_weather"])]
    assert agent.tools == []  # added for that call only
    assert llm.given == [["get_weather"]]


async def test_tts_node_filters_text_and_transforms_frames(make: Any) -> None:
    class Quiet(Agent):
        async def tts_node(self, text: AsyncIterable[str], model_settings: ModelSettings) -> AsyncIterator[rtc.AudioFrame]:
            async def no_stars() -> AsyncIterator[str]:
                async for piece in text:
                    yield piece.replace("*", "")

            async for frame in Agent.default.tts_node(self, no_stars(), model_settings):
                samples = np.frombuffer(frame.data, dtype=np.int16) // 2
                yield rtc.AudioFrame(samples.astype(np.int16).tobytes(), frame.sample_rate, frame.num_channels,
                                     frame.samples_per_channel)

    tts = ToneTTS()
    h = await make(Quiet(instructions="x"), llm=ScriptedLLM(["*Hello* there"]), tts=tts)
    await reply_to(h)
    assert "".join(tts.requests) == "Hello there"  # the TTS never saw the stars
    # the transcript and the chat still carry the text the LLM wrote
    assert assistant(h.session.history) == ["*Hello* there"]
    loudest = max(int(np.abs(np.frombuffer(f.data, dtype=np.int16)).max()) for f in h.audio_out.frames)
    plain = ToneTTS()
    full = await plain.synthesize("Hello there").collect()
    # halved (within what resampling to the output rate adds)
    assert loudest < 0.6 * int(np.abs(np.frombuffer(full.data, dtype=np.int16)).max())


async def test_transcription_node_rewrites_the_transcript_and_the_message(make: Any) -> None:
    class Redact(Agent):
        async def transcription_node(self, text: AsyncIterable[str], model_settings: ModelSettings) -> Any:
            async def gen() -> AsyncIterator[str]:
                async for piece in text:
                    yield piece.replace("1234", "****")

            return Agent.default.transcription_node(self, gen(), model_settings)

    h = await make(Redact(instructions="x"), llm=ScriptedLLM(["Your code is 1234"]))
    await reply_to(h)
    assert "".join(h.text_out.segments) == "Your code is ****"
    assert assistant(h.session.history) == ["Your code is ****"]
    assert "1234" in "".join(h.session.tts.requests)  # type: ignore[union-attr]


async def test_transcription_node_gets_tts_timed_strings_and_may_retime_them(make: Any) -> None:
    received: list[TimedString] = []

    class Timed(Agent):
        async def transcription_node(self, text: AsyncIterable[str | TimedString],
                                     model_settings: ModelSettings) -> AsyncIterator[str | TimedString]:
            async for chunk in text:
                assert isinstance(chunk, TimedString)
                received.append(chunk)
                yield TimedString(chunk.upper(), start_time=chunk.start_time * 2, end_time=chunk.end_time * 2)

    tts = ToneTTS(streaming=True)
    h = await make(Timed(instructions="x"), llm=ScriptedLLM(["First part. Second part."]), tts=tts,
                   use_tts_aligned_transcript=True)
    await reply_to(h)
    assert received and "".join(received).replace(" ", "") == "Firstpart.Secondpart."
    assert received[0].start_time == 0.0
    for a, b in zip(received, received[1:], strict=False):
        assert a.end_time == b.start_time and a.start_time < a.end_time
    assert abs(received[-1].end_time - h.audio_out.heard_duration) < 0.05
    assert assistant(h.session.history) == ["".join(received).upper()]


async def test_on_user_turn_completed_can_stop_the_response(make: Any) -> None:
    class Gate(Agent):
        async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
            if "secret" in (new_message.text_content or ""):
                raise StopResponse()
            turn_ctx.add_message(role="system", content="the user is a member")

    llm = ScriptedLLM(["Welcome back."])
    h = await make(Gate(instructions="x"), llm=llm, stt=_texts("the secret word"))
    for frame in utterance():
        h.audio_in.push_frame(frame)
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "role", "") == "user")
    await asyncio.sleep(0.2)
    assert llm.requests == [] and assistant(h.session.history) == []


def _texts(*transcripts: str) -> Any:
    from roomd.agents.testing import FakeSTT

    return FakeSTT(list(transcripts))


async def test_stt_node_may_yield_plain_text_transcripts(make: Any) -> None:
    heard_frames: list[int] = []

    class Keyword(Agent):
        async def stt_node(self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings) -> AsyncIterator[Any]:
            async for ev in Agent.default.stt_node(self, audio, model_settings):
                if isinstance(ev, SpeechEvent) and ev.alternatives and ev.type.value == "final_transcript":
                    heard_frames.append(1)
                    yield ev.alternatives[0].text.replace("time", "hour")
                elif ev.type.value != "final_transcript":
                    yield ev

    llm = ScriptedLLM(["Three o'clock."])
    h = await make(Keyword(instructions="x"), llm=llm)
    for frame in utterance():
        h.audio_in.push_frame(frame)
    await h.events.wait("conversation_item_added", lambda ev: getattr(ev.item, "role", "") == "assistant")
    users = [m.text_content for m in h.session.history.messages if m.role == "user"]
    assert users == ["what hour is it"] and heard_frames == [1]


async def test_realtime_audio_output_node_default_passes_frames_through() -> None:
    frames = [rtc.AudioFrame(b"\x00\x00" * 480, 48000, 1, 480) for _ in range(3)]

    async def source() -> AsyncIterator[rtc.AudioFrame]:
        for f in frames:
            yield f

    agent = Agent(instructions="x")
    out = [f async for f in Agent.default.realtime_audio_output_node(agent, source(), ModelSettings())]
    assert out == frames
