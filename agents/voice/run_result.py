"""Testing an agent turn by turn: ``session.run(user_input=...)`` returns a ``RunResult``
that records what the agent did for that input (messages, tool calls and their outputs,
handoffs), and ``RunResult.expect`` walks those events with assertions.

The session reports to the run it is serving through three calls: ``_watch`` (a speech
or task the run waits for), ``_item_added`` (a chat item one of those speeches produced)
and ``_agent_handoff``. The run is done when everything it watches is done.

``mock_tools(AgentClass, {"name": fn})`` swaps tool implementations for the speeches
created inside the ``with`` block (the session runs each speech in the context of the
code that asked for it, so the mocks follow it).
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import inspect
import json
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeAlias, TypeVar

from ..llm.chat_context import ChatContext, ChatItem, ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from ..llm.tools import Tool, function_tool
from ..types import NOT_GIVEN, NotGivenOr, is_given

if TYPE_CHECKING:
    from ..llm.llm import LLM
    from .agent import Agent

Run_T = TypeVar("Run_T")

RunEventType: TypeAlias = Literal["message", "function_call", "function_call_output", "agent_handoff"]


@dataclass(slots=True)
class ChatMessageEvent:
    item: ChatMessage
    type: Literal["message"] = "message"


@dataclass(slots=True)
class FunctionCallEvent:
    item: FunctionCall
    type: Literal["function_call"] = "function_call"


@dataclass(slots=True)
class FunctionCallOutputEvent:
    item: FunctionCallOutput
    type: Literal["function_call_output"] = "function_call_output"


@dataclass(slots=True)
class AgentHandoffEvent:
    old_agent: Agent | None
    new_agent: Agent
    type: Literal["agent_handoff"] = "agent_handoff"


RunEvent: TypeAlias = ChatMessageEvent | FunctionCallEvent | FunctionCallOutputEvent | AgentHandoffEvent


class _Watchable(Protocol):
    def done(self) -> bool: ...
    def add_done_callback(self, cb: Callable[[Any], Any], /) -> None: ...


_CURRENT_RUN: contextvars.ContextVar[RunResult[Any] | None] = contextvars.ContextVar("roomd_agents_run", default=None)


def current_run() -> RunResult[Any] | None:
    """The run the running code works for: set by ``session.run``/``start(capture_run=)``
    and inherited by the speeches, tool calls and handoffs that follow from it, so a
    greeting started elsewhere does not leak into a user turn's run."""
    run = _CURRENT_RUN.get()
    return run if run is not None and not run.done() else None


@contextmanager
def running(run: RunResult[Any] | None) -> Iterator[None]:
    """Code in the block (and the tasks it creates) works for ``run`` (None: no change)."""
    if run is None:
        yield
        return
    token = _CURRENT_RUN.set(run)
    try:
        yield
    finally:
        _CURRENT_RUN.reset(token)


# The session's three reports, each a no-op outside a run.


def record_speech(speech: _Watchable) -> None:
    """A speech (or task) was created: the current run waits for it."""
    run = current_run()
    if run is not None:
        run._watch(speech)


def record_item(item: ChatItem, speech: Any) -> None:
    """``speech`` added ``item`` to the conversation."""
    run = current_run()
    if run is not None and run._watches(speech):
        run._item_added(item)


def record_handoff(old_agent: Agent | None, new_agent: Agent) -> None:
    run = current_run()
    if run is not None:
        run._agent_handoff(old_agent=old_agent, new_agent=new_agent)


class RunResult(Generic[Run_T]):
    """What the session did for one ``run`` (or, with ``start(capture_run=True)``, for
    the agent's start). ``await result`` waits until every speech it caused has played
    out; it raises ``RuntimeError`` when the session reported an error meanwhile (a
    failed LLM step, say), so a broken script does not pass as "no events"."""

    def __init__(self, *, user_input: str | None = None, output_type: type[Run_T] | None = None) -> None:
        self._user_input = user_input
        self._output_type = output_type
        self._events: list[RunEvent] = []
        self._watched: list[_Watchable] = []
        self._speech_ids: set[str] = set()
        self._errors: list[BaseException] = []
        self._final_output: Run_T | None = None
        self._done = asyncio.get_running_loop().create_future()
        self._expect: RunAssert | None = None

    @property
    def user_input(self) -> str | None:
        return self._user_input

    @property
    def events(self) -> list[RunEvent]:
        return self._events

    @property
    def expect(self) -> RunAssert:
        """Assertions over ``events``, with a cursor (``next_event``) kept between calls."""
        if self._expect is None:
            self._expect = RunAssert(self)
        return self._expect

    @property
    def final_output(self) -> Run_T:
        if not self._done.done():
            raise RuntimeError("the run is not done yet (await it first)")
        if self._final_output is None:
            raise RuntimeError("the run has no final output")
        return self._final_output

    def done(self) -> bool:
        return self._done.done()

    def __await__(self) -> Generator[Any, None, RunResult[Run_T]]:
        async def wait() -> RunResult[Run_T]:
            await asyncio.shield(self._done)
            return self

        return wait().__await__()

    # -- reported by the session -----------------------------------------------------------

    def _watch(self, what: _Watchable) -> None:
        if self._done.done():
            return
        self._watched.append(what)
        speech_id = getattr(what, "id", None)
        if isinstance(speech_id, str):
            self._speech_ids.add(speech_id)
        what.add_done_callback(self._check_done)

    def _watches(self, speech: Any) -> bool:
        return not self._done.done() and getattr(speech, "id", None) in self._speech_ids

    def _item_added(self, item: ChatItem) -> None:
        if self._done.done():
            return
        if isinstance(item, ChatMessage):
            self._events.append(ChatMessageEvent(item=item))
        elif isinstance(item, FunctionCall):
            self._events.append(FunctionCallEvent(item=item))
        elif isinstance(item, FunctionCallOutput):
            self._events.append(FunctionCallOutputEvent(item=item))

    def _agent_handoff(self, *, old_agent: Agent | None, new_agent: Agent) -> None:
        if not self._done.done():
            self._events.append(AgentHandoffEvent(old_agent=old_agent, new_agent=new_agent))

    def _listen_for_errors(self, session: Any) -> None:
        """Count the session's ``error`` events until the run is done."""

        def on_error(ev: Any) -> None:
            if not self._done.done():
                self._errors.append(ev.error)

        session.on("error", on_error)
        self._done.add_done_callback(lambda _: session.off("error", on_error))

    def _check_done(self, _: Any = None) -> None:
        # Done callbacks of tasks run on a later loop turn; a speech scheduled by the
        # finishing one has been watched by then, so "all done" means the run is over.
        if self._done.done() or not all(w.done() for w in self._watched):
            return
        if self._errors:
            first = self._errors[0]
            self._done.set_exception(RuntimeError(f"the run failed: {first}"))
            self._done.exception()  # retrieved here: a caller may never await the run
            return
        self._done.set_result(None)

    def _finish(self) -> None:
        """The session closed: its speeches are over, and so is the run."""
        self._check_done()


# -- assertions --------------------------------------------------------------------------


def _describe(event: RunEvent) -> str:
    if isinstance(event, ChatMessageEvent):
        return f"message {event.item.role}: {event.item.text_content or ''!r}"
    if isinstance(event, FunctionCallEvent):
        return f"function_call {event.item.name}({event.item.arguments})"
    if isinstance(event, FunctionCallOutputEvent):
        flag = " (error)" if event.item.is_error else ""
        return f"function_call_output {event.item.name}{flag}: {event.item.output!r}"
    return f"agent_handoff {type(event.old_agent).__name__ if event.old_agent else None} -> {type(event.new_agent).__name__}"


def _fail(events: Sequence[RunEvent], message: str, at: int | None) -> None:
    lines = [message, "run events:"]
    if not events:
        lines.append("    (none)")
    for i, event in enumerate(events):
        mark = "->" if i == at else "  "
        lines.append(f" {mark} [{i}] {_describe(event)}")
    raise AssertionError("\n".join(lines))


def _arguments_match(call: FunctionCall, expected: dict[str, Any]) -> bool:
    """Every expected argument is present with an equal value (others may exist)."""
    try:
        actual = json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        return False
    return isinstance(actual, dict) and all(k in actual and actual[k] == v for k, v in expected.items())


@dataclass(slots=True)
class _Criteria:
    type: RunEventType | None = None
    role: NotGivenOr[ChatRole] = NOT_GIVEN
    name: NotGivenOr[str] = NOT_GIVEN
    arguments: NotGivenOr[dict[str, Any]] = NOT_GIVEN
    output: NotGivenOr[str] = NOT_GIVEN
    is_error: NotGivenOr[bool] = NOT_GIVEN
    new_agent_type: NotGivenOr[type[Any]] = NOT_GIVEN

    def mismatch(self, event: RunEvent) -> str | None:
        """Why ``event`` does not match, or None when it does."""
        if self.type is not None and event.type != self.type:
            return f"expected a {self.type} event, got {event.type}"
        if isinstance(event, ChatMessageEvent):
            if is_given(self.role) and event.item.role != self.role:
                return f"expected role {self.role!r}, got {event.item.role!r}"
        elif isinstance(event, FunctionCallEvent):
            if is_given(self.name) and event.item.name != self.name:
                return f"expected a call to {self.name!r}, got {event.item.name!r}"
            if is_given(self.arguments) and not _arguments_match(event.item, self.arguments):
                return f"expected arguments including {self.arguments}, got {event.item.arguments}"
        elif isinstance(event, FunctionCallOutputEvent):
            if is_given(self.output) and event.item.output != self.output:
                return f"expected output {self.output!r}, got {event.item.output!r}"
            if is_given(self.is_error) and event.item.is_error != self.is_error:
                return f"expected is_error={self.is_error}, got {event.item.is_error}"
        elif (isinstance(event, AgentHandoffEvent) and is_given(self.new_agent_type)
              and not isinstance(event.new_agent, self.new_agent_type)):
            return f"expected a handoff to {self.new_agent_type.__name__}, got {type(event.new_agent).__name__}"
        return None


class RunAssert:
    """A cursor over a run's events: ``next_event()`` moves it, ``expect[i]`` and
    ``expect[a:b]`` look without moving, ``contains_*`` search every event."""

    def __init__(self, run: RunResult[Any]) -> None:
        self._events = run.events
        self._index = 0

    def __getitem__(self, key: int | slice) -> EventAssert | EventRangeAssert:
        if isinstance(key, slice):
            return EventRangeAssert(self._events[key], self, key)
        if not isinstance(key, int):
            raise TypeError(f"expect[...] takes an int or a slice, got {type(key).__name__}")
        n = len(self._events)
        if not -n <= key < n:
            _fail(self._events, f"no event at index {key} (the run has {n})", None)
        index = key % n
        return EventAssert(self._events[index], self, index)

    def next_event(self, *, type: RunEventType | None = None) -> Any:
        """The next event; with ``type``, the next one of that type (skipping others)."""
        while True:
            if self._index >= len(self._events):
                what = f"a {type} event" if type else "another event"
                _fail(self._events, f"expected {what}, but the run has no more events", None)
            index = self._index
            event = self._events[index]
            self._index += 1
            if type is None or event.type == type:
                return _typed_assert(event, self, index)

    def skip_next(self, count: int = 1) -> RunAssert:
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if self._index + count > len(self._events):
            _fail(self._events, f"cannot skip {count} event(s): only {len(self._events) - self._index} left", self._index)
        self._index += count
        return self

    def skip_next_event_if(
        self,
        *,
        type: RunEventType,
        role: NotGivenOr[ChatRole] = NOT_GIVEN,
        name: NotGivenOr[str] = NOT_GIVEN,
        arguments: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
        output: NotGivenOr[str] = NOT_GIVEN,
        is_error: NotGivenOr[bool] = NOT_GIVEN,
        new_agent_type: NotGivenOr[type[Agent]] = NOT_GIVEN,
    ) -> Any:
        """Step over the next event when it matches; else leave the cursor and return None."""
        if self._index >= len(self._events):
            return None
        criteria = _Criteria(type, role, name, arguments, output, is_error, new_agent_type)
        event = self._events[self._index]
        if criteria.mismatch(event) is not None:
            return None
        self._index += 1
        return _typed_assert(event, self, self._index - 1)

    def no_more_events(self) -> None:
        if self._index < len(self._events):
            left = len(self._events) - self._index
            _fail(self._events, f"expected no more events, but {left} remain", self._index)

    def _contains(self, criteria: _Criteria) -> Any:
        return _search(self._events, range(len(self._events)), criteria, self)

    def contains_message(self, *, role: NotGivenOr[ChatRole] = NOT_GIVEN) -> ChatMessageAssert:
        return self._contains(_Criteria("message", role=role))  # type: ignore[no-any-return]

    def contains_function_call(
        self, *, name: NotGivenOr[str] = NOT_GIVEN, arguments: NotGivenOr[dict[str, Any]] = NOT_GIVEN
    ) -> FunctionCallAssert:
        return self._contains(_Criteria("function_call", name=name, arguments=arguments))  # type: ignore[no-any-return]

    def contains_function_call_output(
        self, *, output: NotGivenOr[str] = NOT_GIVEN, is_error: NotGivenOr[bool] = NOT_GIVEN
    ) -> FunctionCallOutputAssert:
        return self._contains(_Criteria("function_call_output", output=output, is_error=is_error))  # type: ignore[no-any-return]

    def contains_agent_handoff(self, *, new_agent_type: NotGivenOr[type[Agent]] = NOT_GIVEN) -> AgentHandoffAssert:
        return self._contains(_Criteria("agent_handoff", new_agent_type=new_agent_type))  # type: ignore[no-any-return]


def _search(events: Sequence[RunEvent], indexes: range, criteria: _Criteria, parent: RunAssert) -> Any:
    all_events = parent._events
    for index in indexes:
        if criteria.mismatch(all_events[index]) is None:
            return _typed_assert(all_events[index], parent, index)
    wanted = {k: v for k, v in (("role", criteria.role), ("name", criteria.name), ("arguments", criteria.arguments),
                                ("output", criteria.output), ("is_error", criteria.is_error)) if is_given(v)}
    if is_given(criteria.new_agent_type):
        wanted["new_agent_type"] = criteria.new_agent_type.__name__
    where = "the run" if len(indexes) == len(all_events) else f"events {indexes.start}..{indexes.stop - 1}"
    _fail(all_events, f"no {criteria.type} event matching {wanted} in {where}", None)


class EventRangeAssert:
    """``expect[a:b]``: search a slice of the events."""

    def __init__(self, events: list[RunEvent], parent: RunAssert, rng: slice) -> None:
        self._parent = parent
        self._indexes = range(*rng.indices(len(parent._events)))

    def contains_message(self, *, role: NotGivenOr[ChatRole] = NOT_GIVEN) -> ChatMessageAssert:
        return _search(self._parent._events, self._indexes, _Criteria("message", role=role), self._parent)  # type: ignore[no-any-return]

    def contains_function_call(
        self, *, name: NotGivenOr[str] = NOT_GIVEN, arguments: NotGivenOr[dict[str, Any]] = NOT_GIVEN
    ) -> FunctionCallAssert:
        criteria = _Criteria("function_call", name=name, arguments=arguments)
        return _search(self._parent._events, self._indexes, criteria, self._parent)  # type: ignore[no-any-return]

    def contains_function_call_output(
        self, *, output: NotGivenOr[str] = NOT_GIVEN, is_error: NotGivenOr[bool] = NOT_GIVEN
    ) -> FunctionCallOutputAssert:
        criteria = _Criteria("function_call_output", output=output, is_error=is_error)
        return _search(self._parent._events, self._indexes, criteria, self._parent)  # type: ignore[no-any-return]

    def contains_agent_handoff(self, *, new_agent_type: NotGivenOr[type[Agent]] = NOT_GIVEN) -> AgentHandoffAssert:
        criteria = _Criteria("agent_handoff", new_agent_type=new_agent_type)
        return _search(self._parent._events, self._indexes, criteria, self._parent)  # type: ignore[no-any-return]


class EventAssert:
    """One event, not yet known to be of a given kind."""

    def __init__(self, event: RunEvent, parent: RunAssert, index: int = -1) -> None:
        self._event = event
        self._parent = parent
        self._index = index

    def event(self) -> RunEvent:
        return self._event

    def _check(self, criteria: _Criteria) -> None:
        why = criteria.mismatch(self._event)
        if why is not None:
            _fail(self._parent._events, f"event {self._index}: {why}", self._index)

    def is_message(self, *, role: NotGivenOr[ChatRole] = NOT_GIVEN) -> ChatMessageAssert:
        self._check(_Criteria("message", role=role))
        return ChatMessageAssert(self._event, self._parent, self._index)  # type: ignore[arg-type]

    def is_function_call(
        self, *, name: NotGivenOr[str] = NOT_GIVEN, arguments: NotGivenOr[dict[str, Any]] = NOT_GIVEN
    ) -> FunctionCallAssert:
        self._check(_Criteria("function_call", name=name, arguments=arguments))
        return FunctionCallAssert(self._event, self._parent, self._index)  # type: ignore[arg-type]

    def is_function_call_output(
        self, *, output: NotGivenOr[str] = NOT_GIVEN, is_error: NotGivenOr[bool] = NOT_GIVEN
    ) -> FunctionCallOutputAssert:
        self._check(_Criteria("function_call_output", output=output, is_error=is_error))
        return FunctionCallOutputAssert(self._event, self._parent, self._index)  # type: ignore[arg-type]

    def is_agent_handoff(self, *, new_agent_type: NotGivenOr[type[Agent]] = NOT_GIVEN) -> AgentHandoffAssert:
        self._check(_Criteria("agent_handoff", new_agent_type=new_agent_type))
        return AgentHandoffAssert(self._event, self._parent, self._index)  # type: ignore[arg-type]


class ChatMessageAssert(EventAssert):
    _event: ChatMessageEvent

    def event(self) -> ChatMessageEvent:
        return self._event

    async def judge(self, llm_v: LLM, *, intent: str) -> ChatMessageAssert:
        """Ask ``llm_v`` whether the message fulfils ``intent``; fail with its reason if not.

        The judge answers by calling ``check_intent(success, reason)``.
        """
        text = self._event.item.text_content or ""
        if not text.strip():
            _fail(self._parent._events, f"event {self._index}: the message is empty; nothing to judge", self._index)
        if not intent.strip():
            raise ValueError("judge() needs a non-empty intent")
        verdict = await _ask_judge(llm_v, text, intent)
        if verdict is None:
            _fail(self._parent._events,
                  f"event {self._index}: the judge LLM did not call check_intent(success, reason)", self._index)
        success, reason = verdict  # type: ignore[misc]
        if not success:
            _fail(self._parent._events, f"event {self._index} does not fulfil the intent {intent!r}: {reason}",
                  self._index)
        return self


class FunctionCallAssert(EventAssert):
    _event: FunctionCallEvent

    def event(self) -> FunctionCallEvent:
        return self._event


class FunctionCallOutputAssert(EventAssert):
    _event: FunctionCallOutputEvent

    def event(self) -> FunctionCallOutputEvent:
        return self._event


class AgentHandoffAssert(EventAssert):
    _event: AgentHandoffEvent

    def event(self) -> AgentHandoffEvent:
        return self._event


_ASSERTS: dict[str, type[EventAssert]] = {
    "message": ChatMessageAssert,
    "function_call": FunctionCallAssert,
    "function_call_output": FunctionCallOutputAssert,
    "agent_handoff": AgentHandoffAssert,
}


def _typed_assert(event: RunEvent, parent: RunAssert, index: int) -> Any:
    return _ASSERTS[event.type](event, parent, index)


# -- the judge ----------------------------------------------------------------------------

_JUDGE_INSTRUCTIONS = (
    "You grade one message written by a conversational agent against an intent. "
    "Decide whether the message clearly does what the intent describes; when in doubt it does not. "
    "Answer only by calling check_intent with success (true or false) and a one-sentence reason."
)


async def _ask_judge(llm_v: LLM, text: str, intent: str) -> tuple[bool, str] | None:
    @function_tool
    async def check_intent(success: bool, reason: str) -> None:
        """Record the verdict.

        Args:
            success: whether the message fulfils the intent
            reason: why, in one sentence
        """

    ctx = ChatContext.empty()
    ctx.add_message(role="system", content=_JUDGE_INSTRUCTIONS)
    ctx.add_message(role="user", content=f"Intent: {intent}\n\nMessage: {text}")
    calls = []
    async with llm_v.chat(chat_ctx=ctx, tools=[check_intent], tool_choice="required") as stream:
        async for chunk in stream:
            if chunk.delta is not None:
                calls.extend(c for c in chunk.delta.tool_calls if c.name == "check_intent")
    for call in calls:
        try:
            args = json.loads(call.arguments or "{}")
        except json.JSONDecodeError:
            continue
        if isinstance(args, dict) and isinstance(args.get("success"), bool):
            return args["success"], str(args.get("reason", ""))
    return None


# -- mock_tools ---------------------------------------------------------------------------

_MOCKS: contextvars.ContextVar[dict[type[Any], dict[str, Callable[..., Any]]]] = contextvars.ContextVar(
    "roomd_agents_mock_tools"
)


@contextmanager
def mock_tools(agent: type[Agent], mocks: dict[str, Callable[..., Any]]) -> Iterator[None]:
    """Within the block, calls of ``agent``'s tools named in ``mocks`` run the mock
    instead. A mock receives the arguments it names (and the ``RunContext`` under the
    tool's context parameter name); its result or exception counts as the tool's."""
    if not isinstance(agent, type):
        raise TypeError(f"mock_tools() needs an Agent class, got {agent!r}")
    for name, fn in mocks.items():
        if not callable(fn):
            raise TypeError(f"the mock for {name!r} is not callable: {fn!r}")
    current = _MOCKS.get({})
    merged = {**current, agent: {**current.get(agent, {}), **mocks}}
    token = _MOCKS.set(merged)
    try:
        yield
    finally:
        _MOCKS.reset(token)


def apply_tool_mocks(agent: Agent, tools: Sequence[Tool]) -> list[Tool]:
    """``tools`` with the active mocks for ``agent``'s class swapped in (same name and schema)."""
    active = _MOCKS.get({})
    mocks: dict[str, Callable[..., Any]] = {}
    for cls in reversed(type(agent).__mro__):  # the most specific class wins
        mocks.update(active.get(cls, {}))
    if not mocks:
        return list(tools)
    return [_mocked(tool, mocks[tool.name]) if tool.name in mocks else tool for tool in tools]


def _mocked(tool: Tool, mock: Callable[..., Any]) -> Tool:
    params = inspect.signature(mock).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())

    def call(**kwargs: Any) -> Any:
        return mock(**(kwargs if takes_all else {k: v for k, v in kwargs.items() if k in params}))

    clone = copy.copy(tool)  # same name, description and argument schema
    clone._fn = call
    clone._instance = None
    return clone


__all__ = [
    "AgentHandoffAssert",
    "AgentHandoffEvent",
    "ChatMessageAssert",
    "ChatMessageEvent",
    "EventAssert",
    "EventRangeAssert",
    "FunctionCallAssert",
    "FunctionCallEvent",
    "FunctionCallOutputAssert",
    "FunctionCallOutputEvent",
    "RunAssert",
    "RunEvent",
    "RunResult",
    "apply_tool_mocks",
    "current_run",
    "mock_tools",
    "record_handoff",
    "record_item",
    "record_speech",
    "running",
]
