"""``AgentSession(preemptive_generation=True)``: the reply starts on the final transcript,
before the turn commits, and is played when the committed turn is the same; it is
cancelled and made anew when the transcript or the context changed (issue 16)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from session_helpers import TIMEOUT
from voice_audio import quiet, tone

from roomd.agents.llm import ChatContext, ChatMessage
from roomd.agents.testing import FakeSTT, ScriptedLLM
from roomd.agents.voice import Agent


class Echo(ScriptedLLM):
    """Answers "You said: <last user message>", and notes for each request how many
    user messages the session's history held then (0: the turn was not committed yet)."""

    def __init__(self, session_history: list[Any]) -> None:
        super().__init__(default=self._answer)
        self._history = session_history
        self.committed_users: list[int] = []

    def _answer(self, ctx: ChatContext) -> str:
        history = self._history[0]
        self.committed_users.append(sum(1 for m in history.messages if m.role == "user"))
        return f"You said: {last_user(ctx)}."


def last_user(ctx: ChatContext) -> str:
    return [m.text_content or "" for m in ctx.messages if m.role == "user"][-1]


def said(h: Any) -> list[str]:
    return [m.text_content or "" for m in h.session.history.messages if m.role == "assistant"]


async def until(predicate: Any) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not predicate():
            await asyncio.sleep(0.01)


async def answer(make: Any, agent: Agent, *, preemptive: bool, stt: Any = None, delay: float = 0.4) -> tuple[Any, Echo]:
    holder: list[Any] = []
    llm = Echo(holder)
    h = await make(agent, llm=llm, preemptive_generation=preemptive, min_endpointing_delay=delay,
                   **({"stt": stt} if stt is not None else {}))
    holder.append(h.session.history)
    return h, llm


@pytest.mark.parametrize("preemptive", [True, False])
async def test_the_reply_started_before_the_commit_is_the_one_played(make: Any, preemptive: bool) -> None:
    h, llm = await answer(make, Agent(instructions="Echo."), preemptive=preemptive)
    for frame in tone(0.4) + quiet(0.6):
        h.audio_in.push_frame(frame)
    await until(lambda: said(h))
    await until(lambda: h.session.current_speech is None)
    # one LLM request either way; with preemptive generation it was made on the final
    # transcript, before the user's message joined the conversation
    assert [last_user(r) for r in llm.requests] == ["what time is it"]
    assert llm.committed_users == [0 if preemptive else 1]
    assert said(h) == ["You said: what time is it."]
    assert h.text_out.segments == ["You said: what time is it."]
    assert [m.role for m in h.session.history.messages] == ["user", "assistant"]
    assert len(h.events.events["speech_created"]) == 1


async def test_a_changed_transcript_cancels_the_speculation_and_answers_anew(make: Any) -> None:
    stt = FakeSTT(["what time", "is it"], interim_results=False)
    h, llm = await answer(make, Agent(instructions="Echo."), preemptive=True, stt=stt, delay=1.0)
    for frame in tone(0.3) + quiet(0.35):
        h.audio_in.push_frame(frame)
    await until(lambda: len(llm.requests) == 1)  # speculating on "what time"
    assert said(h) == [] and llm.committed_users == [0]
    for frame in tone(0.3) + quiet(0.6):  # the user goes on before the turn commits
        h.audio_in.push_frame(frame)
    await until(lambda: said(h))
    await until(lambda: h.session.current_speech is None)
    assert [last_user(r) for r in llm.requests] == ["what time", "what time is it"]
    # the reply to "what time" was never heard nor kept
    assert said(h) == ["You said: what time is it."]
    assert h.text_out.segments == ["You said: what time is it."]
    assert [m.text_content for m in h.session.history.messages if m.role == "user"] == ["what time is it"]
    assert len(h.events.events["speech_created"]) == 1


async def test_a_context_changed_by_on_user_turn_completed_makes_the_reply_anew(make: Any) -> None:
    class Noting(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="Echo.")

        async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
            turn_ctx.add_message(role="system", content="The caller is Ana.")

    h, llm = await answer(make, Noting(), preemptive=True)
    for frame in tone(0.4) + quiet(0.6):
        h.audio_in.push_frame(frame)
    await until(lambda: said(h))
    await until(lambda: h.session.current_speech is None)
    # speculated on the context without the note, then asked again with it
    assert len(llm.requests) == 2
    assert llm.committed_users == [0, 1]
    assert "The caller is Ana." not in [m.text_content for m in llm.requests[0].messages]
    assert "The caller is Ana." in [m.text_content for m in llm.requests[1].messages]
    assert said(h) == ["You said: what time is it."]
    assert h.text_out.segments == ["You said: what time is it."]
    assert len(h.events.events["speech_created"]) == 1


async def test_a_preemptive_tool_call_runs_only_once_the_turn_is_committed(make: Any) -> None:
    from roomd.agents import function_tool
    from roomd.agents.testing import ScriptedReply, tool_call

    seen_users: list[int] = []

    class Clock(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="Tell the time.")

        @function_tool
        async def get_time(self) -> str:
            """The current time."""
            seen_users.append(sum(1 for m in self.session.history.messages if m.role == "user"))
            return "noon"

    asked_with_users: list[int] = []

    def decide(ctx: ChatContext) -> ScriptedReply:
        asked_with_users.append(sum(1 for m in h.session.history.messages if m.role == "user"))
        return ScriptedReply("", tool_calls=[tool_call("get_time")])

    llm = ScriptedLLM([decide, "It is noon."])
    h = await make(Clock(), llm=llm, preemptive_generation=True, min_endpointing_delay=0.4)
    for frame in tone(0.4) + quiet(0.6):
        h.audio_in.push_frame(frame)
    await until(lambda: said(h))
    await until(lambda: h.session.current_speech is None)
    # the call was decided speculatively, but the tool ran after the user's turn joined
    assert asked_with_users == [0]
    assert seen_users == [1]
    assert len(llm.requests) == 2
    assert said(h) == ["It is noon."]
    assert [type(i).__name__ for i in h.session.history.items] == [
        "ChatMessage", "FunctionCall", "FunctionCallOutput", "ChatMessage"]
