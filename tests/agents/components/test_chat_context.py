from hypothesis import given, settings
from hypothesis import strategies as st

from roomd.agents.llm import (
    ChatContext,
    ChatMessage,
    FunctionCall,
    FunctionCallOutput,
    ImageContent,
    function_tool,
)


@function_tool
async def lookup(q: str) -> str:
    return q


def conversation() -> ChatContext:
    ctx = ChatContext.empty()
    ctx.add_message(role="system", content="You are helpful.")
    ctx.add_message(role="user", content="Weather in Paris?")
    ctx.append(
        role="assistant",
        content="Let me check.",
        tool_calls=[FunctionCall(call_id="c1", name="lookup", arguments='{"q": "Paris"}')],
    )
    ctx.append(role="tool", content="sunny", tool_call_id="c1")
    ctx.add_message(role="assistant", content="It is sunny.")
    return ctx


def test_items_have_ids_timestamps_and_text() -> None:
    ctx = conversation()
    assert len({item.id for item in ctx.items}) == len(ctx.items) == 6
    assert all(item.created_at > 0 for item in ctx.items)
    assert [m.role for m in ctx.messages] == ["system", "user", "assistant", "assistant"]
    assert ctx.messages[1].text_content == "Weather in Paris?"
    output = ctx.items[4]
    assert isinstance(output, FunctionCallOutput) and output.name == "lookup"
    assert ctx.get_by_id(output.id) is output and ctx.index_by_id(output.id) == 4


def test_append_returns_the_context_for_chaining() -> None:
    ctx = ChatContext()
    assert ctx.append(role="user", content="a").append(role="assistant", content="b") is ctx
    assert [m.text_content for m in ctx.messages] == ["a", "b"]


def test_structured_content() -> None:
    ctx = ChatContext()
    message = ctx.add_message(role="user", content=["look:", ImageContent(image="https://x/cat.png")])
    assert message.text_content == "look:"
    assert ctx.to_openai_messages() == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look:"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "auto"}},
            ],
        }
    ]


def test_copy_is_independent_and_filters() -> None:
    ctx = conversation()
    copy = ctx.copy(tools=[lookup])
    copy.add_message(role="user", content="more")
    assert len(ctx) == 6 and len(copy) == 7
    assert copy.tools == [lookup] and ctx.tools == []
    no_calls = ctx.copy(exclude_function_call=True, exclude_instructions=True)
    assert [type(i).__name__ for i in no_calls.items] == ["ChatMessage"] * 3
    assert all(m.role != "system" for m in no_calls.messages)


def test_reference_constructor_with_messages_and_metadata() -> None:
    msgs = [ChatMessage(role="user", content="hi")]
    ctx = ChatContext(messages=msgs, tools=[lookup], metadata={"k": 1})
    assert ctx.items == msgs and ctx.metadata == {"k": 1} and ctx.tools == [lookup]


def test_openai_format_groups_calls_with_the_assistant_message() -> None:
    assert conversation().to_openai_messages() == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny."},
    ]
    assert conversation().to_provider_format("openai") == conversation().to_openai_messages()


def test_openai_round_trip() -> None:
    original = conversation().to_openai_messages()
    rebuilt = ChatContext.from_openai_messages(original)
    assert rebuilt.to_openai_messages() == original
    output = rebuilt.items[4]
    assert isinstance(output, FunctionCallOutput) and output.name == "lookup"


def test_parallel_calls_without_text() -> None:
    ctx = ChatContext()
    ctx.add_message(role="user", content="both")
    ctx.insert([FunctionCall(call_id="a", name="x"), FunctionCall(call_id="b", name="y")])
    ctx.insert([FunctionCallOutput(call_id="a", output="1"), FunctionCallOutput(call_id="b", output="2")])
    messages = ctx.to_openai_messages()
    assert messages[1]["content"] is None and [c["id"] for c in messages[1]["tool_calls"]] == ["a", "b"]
    assert ChatContext.from_openai_messages(messages).to_openai_messages() == messages


def test_truncate_keeps_system_message_and_pairs() -> None:
    ctx = conversation()
    ctx.truncate(max_items=3)
    # the newest 2 after the system message would be [output c1, "It is sunny."]:
    # the output loses its call, so it goes too
    assert [type(i).__name__ for i in ctx.items] == ["ChatMessage", "ChatMessage"]
    assert ctx.items[0].role == "system"  # type: ignore[union-attr]


# -- the truncation invariant, for any conversation --------------------------------------


@st.composite
def conversations(draw: st.DrawFn) -> ChatContext:
    ctx = ChatContext()
    if draw(st.booleans()):
        ctx.add_message(role="system", content="sys")
    for turn in range(draw(st.integers(0, 8))):
        ctx.add_message(role="user", content=f"u{turn}")
        calls = draw(st.integers(0, 3))
        ids = [f"t{turn}c{i}" for i in range(calls)]
        for call_id in ids:
            ctx.insert(FunctionCall(call_id=call_id, name="f"))
        for call_id in draw(st.permutations(ids)):
            ctx.insert(FunctionCallOutput(call_id=call_id, output="o"))
        ctx.add_message(role="assistant", content=f"a{turn}")
    return ctx


@settings(max_examples=200, deadline=None)
@given(conversations(), st.integers(0, 30))
def test_truncate_never_splits_a_call_from_its_output(ctx: ChatContext, max_items: int) -> None:
    before = list(ctx.items)
    ctx.truncate(max_items=max_items)
    after = ctx.items
    assert len(after) <= max(max_items, 0)
    calls = {i.call_id for i in after if isinstance(i, FunctionCall)}
    outputs = {i.call_id for i in after if isinstance(i, FunctionCallOutput)}
    assert calls == outputs
    # order is preserved and nothing is invented
    positions = [before.index(i) for i in after]
    assert positions == sorted(positions)
    if before and isinstance(before[0], ChatMessage) and before[0].role == "system" and max_items > 0:
        assert after[0] is before[0]
    if len(before) <= max_items:
        assert after == before
