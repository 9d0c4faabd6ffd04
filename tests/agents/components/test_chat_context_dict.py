"""ChatContext's dict form, equivalence, insertion order and read-only views, and
LLMStream.to_str_iterable (issue 11, item 6)."""

from __future__ import annotations

import json

import pytest

from roomd.agents import ChatContext, ChatMessage, FunctionCall, FunctionCallOutput
from roomd.agents.llm import ImageContent
from roomd.agents.llm.chat_context import ReadOnlyChatContext
from roomd.agents.testing import ScriptedLLM


def sample() -> ChatContext:
    ctx = ChatContext.empty()
    ctx.add_message(role="system", content="rules")
    ctx.add_message(role="user", content=["hi", ImageContent(image="https://example.com/a.png")])
    ctx.items.append(FunctionCall(call_id="c1", name="lookup", arguments='{"q": 1}'))
    ctx.items.append(FunctionCallOutput(call_id="c1", name="lookup", output="found", is_error=False))
    ctx.add_message(role="assistant", content="done")
    return ctx


def test_to_dict_is_json_and_round_trips() -> None:
    ctx = sample()
    data = ctx.to_dict()
    json.dumps(data)  # plain JSON
    assert [i["type"] for i in data["items"]] == ["message", "message", "function_call", "function_call_output", "message"]
    assert data["items"][1]["content"] == ["hi"]  # images left out by default
    assert "created_at" not in data["items"][0]
    back = ChatContext.from_dict(data)
    assert [i.id for i in back.items] == [i.id for i in ctx.items]
    assert back.items[2].arguments == '{"q": 1}' and back.items[3].output == "found"


def test_to_dict_options() -> None:
    ctx = sample()
    full = ctx.to_dict(exclude_image=False, exclude_timestamp=False, exclude_function_call=True)
    assert [i["type"] for i in full["items"]] == ["message", "message", "message"]
    assert full["items"][1]["content"][1]["image"] == "https://example.com/a.png"
    back = ChatContext.from_dict(full)
    assert back.items[0].created_at == ctx.items[0].created_at
    assert isinstance(back.items[1].content[1], ImageContent)
    with pytest.raises(ValueError, match="unknown item type"):
        ChatContext.from_dict({"items": [{"type": "agent_handoff"}]})


def test_is_equivalent_ignores_ids_and_times() -> None:
    a, b = sample(), ChatContext.from_dict(sample().to_dict(exclude_image=False))
    assert a.is_equivalent(b)
    b.add_message(role="user", content="more")
    assert not a.is_equivalent(b)


def test_find_insertion_index_and_insert_keep_time_order() -> None:
    ctx = ChatContext.empty()
    early = ChatMessage(role="user", content=["1"], created_at=10.0)
    late = ChatMessage(role="user", content=["3"], created_at=30.0)
    ctx.items.extend([early, late])
    assert ctx.find_insertion_index(created_at=20.0) == 1
    assert ctx.find_insertion_index(created_at=5.0) == 0
    assert ctx.find_insertion_index(created_at=30.0) == 2
    ctx.insert(ChatMessage(role="user", content=["2"], created_at=20.0))
    assert [m.text_content for m in ctx.messages] == ["1", "2", "3"]


def test_readonly_view_refuses_changes_but_copies() -> None:
    ctx = sample()
    assert ctx.readonly is False
    view = ReadOnlyChatContext(ctx.items)
    assert view.readonly is True
    with pytest.raises(RuntimeError, match="read-only"):
        view.add_message(role="user", content="x")
    copy = view.copy(exclude_function_call=True)
    assert copy.readonly is False and len(copy.items) == 3


def test_merge_with_filters() -> None:
    target = ChatContext.empty()
    target.merge(sample(), exclude_function_call=True, exclude_instructions=True)
    assert [m.role for m in target.messages] == ["user", "assistant"]
    assert not any(isinstance(i, FunctionCall) for i in target.items)


async def test_llm_stream_to_str_iterable() -> None:
    llm = ScriptedLLM(["one two three"])
    async with llm.chat(chat_ctx=ChatContext.empty()) as stream:
        pieces = [p async for p in stream.to_str_iterable()]
    assert "".join(pieces) == "one two three" and len(pieces) > 1
