"""The conversation: messages, function calls and their outputs, in order."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from livekit import rtc

from ..types import is_given
from ..utils.ids import shortuuid

if TYPE_CHECKING:
    from .tools import Tool

ChatRole: TypeAlias = Literal["developer", "system", "user", "assistant", "tool"]
_ROLES: frozenset[str] = frozenset({"developer", "system", "user", "assistant", "tool"})


@dataclass(slots=True)
class ImageContent:
    """An image shown to the model: a URL (``https:``/``data:``) or a video frame."""

    image: str | rtc.VideoFrame
    id: str = field(default_factory=lambda: shortuuid("img_"))
    inference_detail: Literal["auto", "high", "low"] = "auto"
    mime_type: str | None = None


@dataclass(slots=True)
class AudioContent:
    """Audio given to the model; ``transcript`` is what text-only models see."""

    frame: list[rtc.AudioFrame]
    transcript: str | None = None


ChatContent: TypeAlias = str | ImageContent | AudioContent


@dataclass(slots=True)
class ChatMessage:
    role: ChatRole
    content: list[ChatContent] = field(default_factory=list)
    id: str = field(default_factory=lambda: shortuuid("item_"))
    name: str | None = None
    interrupted: bool = False
    created_at: float = field(default_factory=time.time)
    type: Literal["message"] = "message"

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"unknown chat role {self.role!r}; expected one of {sorted(_ROLES)}")
        if isinstance(self.content, (str, ImageContent, AudioContent)):
            self.content = [self.content]

    @property
    def text_content(self) -> str | None:
        """The text parts joined by newlines, or None when there is no text."""
        parts = [c for c in self.content if isinstance(c, str)]
        return "\n".join(parts) if parts else None


@dataclass(slots=True)
class FunctionCall:
    """The model asked to run a tool; ``arguments`` is the JSON text it produced."""

    call_id: str
    name: str
    arguments: str = "{}"
    id: str = field(default_factory=lambda: shortuuid("item_"))
    created_at: float = field(default_factory=time.time)
    type: Literal["function_call"] = "function_call"


@dataclass(slots=True)
class FunctionCallOutput:
    """What a tool returned (or its error), answering the call with the same ``call_id``."""

    call_id: str
    output: str
    is_error: bool = False
    name: str = ""
    id: str = field(default_factory=lambda: shortuuid("item_"))
    created_at: float = field(default_factory=time.time)
    type: Literal["function_call_output"] = "function_call_output"


ChatItem: TypeAlias = ChatMessage | FunctionCall | FunctionCallOutput


def _as_content(content: ChatContent | Sequence[ChatContent]) -> list[ChatContent]:
    if isinstance(content, (str, ImageContent, AudioContent)):
        return [content]
    return list(content)


class ChatContext:
    """An ordered list of chat items plus the tools the model may call.

    ``ChatContext(items)`` and the reference's ``ChatContext(messages=..., tools=...,
    metadata=...)`` both work. Mutating methods (``add_message``, ``append``,
    ``insert``, ``truncate``) change this context in place and return something useful
    (the item, or the context itself for chaining); ``copy`` is how to get a new one.
    """

    def __init__(
        self,
        items: Iterable[ChatItem] | None = None,
        *,
        messages: Iterable[ChatItem] | None = None,
        tools: Sequence[Tool] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if items is not None and messages is not None:
            raise TypeError("give either items or messages, not both")
        self._items: list[ChatItem] = list(items if items is not None else messages or [])
        self._tools: list[Tool] = list(tools or [])
        self._metadata: dict[str, Any] = dict(metadata or {})

    @classmethod
    def empty(cls, *, tools: Sequence[Tool] | None = None) -> ChatContext:
        return cls(tools=tools)

    # -- reading -----------------------------------------------------------------------

    @property
    def items(self) -> list[ChatItem]:
        """The live list of items (mutations are visible to the context)."""
        return self._items

    @items.setter
    def items(self, items: Iterable[ChatItem]) -> None:
        self._items = list(items)

    @property
    def messages(self) -> list[ChatMessage]:
        """The ``ChatMessage`` items only, in order (a new list)."""
        return [item for item in self._items if isinstance(item, ChatMessage)]

    @property
    def tools(self) -> list[Tool]:
        return list(self._tools)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    def get_by_id(self, item_id: str) -> ChatItem | None:
        index = self.index_by_id(item_id)
        return None if index is None else self._items[index]

    def index_by_id(self, item_id: str) -> int | None:
        for i, item in enumerate(self._items):
            if item.id == item_id:
                return i
        return None

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"ChatContext(items={len(self._items)}, tools={len(self._tools)})"

    # -- changing ----------------------------------------------------------------------

    def add_message(
        self,
        *,
        role: ChatRole,
        content: ChatContent | Sequence[ChatContent],
        id: str | None = None,
        name: str | None = None,
        interrupted: bool = False,
        created_at: float | None = None,
    ) -> ChatMessage:
        message = ChatMessage(role=role, content=_as_content(content), name=name, interrupted=interrupted)
        if id is not None:
            message.id = id
        if created_at is None:
            self._items.append(message)
        else:
            message.created_at = created_at
            self.insert(message)
        return message

    def append(
        self,
        *,
        role: ChatRole,
        content: ChatContent | Sequence[ChatContent] = "",
        name: str | None = None,
        tool_calls: Sequence[FunctionCall] | None = None,
        tool_call_id: str | None = None,
    ) -> ChatContext:
        """The reference's append: one message in the OpenAI shape, returns this context.

        ``role="tool"`` with ``tool_call_id`` records a tool output; ``tool_calls`` on an
        assistant message records the calls after its text (if any).
        """
        if role == "tool":
            if tool_call_id is None:
                raise ValueError("append(role='tool') needs tool_call_id")
            text = "\n".join(c for c in _as_content(content) if isinstance(c, str))
            call = self._find_call(tool_call_id)
            self._items.append(
                FunctionCallOutput(
                    call_id=tool_call_id,
                    output=text,
                    name=name or (call.name if call else ""),
                )
            )
            return self
        parts = [c for c in _as_content(content) if c != ""]
        if parts or not tool_calls:
            self._items.append(ChatMessage(role=role, content=parts, name=name))
        self._items.extend(tool_calls or ())
        return self

    def insert(self, item: ChatItem | Sequence[ChatItem]) -> None:
        """Insert item(s) at their place by ``created_at`` (after items of equal time).

        ``add_message`` and ``append`` add at the end instead: the order of calls.
        """
        for one in [item] if not isinstance(item, Sequence) else item:
            index = len(self._items)
            while index > 0 and self._items[index - 1].created_at > one.created_at:
                index -= 1
            self._items.insert(index, one)

    def _find_call(self, call_id: str) -> FunctionCall | None:
        for item in self._items:
            if isinstance(item, FunctionCall) and item.call_id == call_id:
                return item
        return None

    def copy(
        self,
        *,
        messages: Iterable[ChatItem] | None = None,
        tools: Sequence[Tool] | None = None,
        metadata: dict[str, Any] | None = None,
        exclude_function_call: bool = False,
        exclude_instructions: bool = False,
        exclude_empty_message: bool = False,
    ) -> ChatContext:
        """A new context (items are shared, the lists are not), optionally filtered.

        ``tools`` replaces the tool list (the reference's meaning).
        """
        items: list[ChatItem] = []
        for item in self._items if messages is None else messages:
            if exclude_function_call and isinstance(item, (FunctionCall, FunctionCallOutput)):
                continue
            if isinstance(item, ChatMessage):
                if exclude_instructions and item.role in ("system", "developer"):
                    continue
                if exclude_empty_message and not item.content:
                    continue
            items.append(item)
        return ChatContext(
            items,
            tools=self._tools if tools is None or not is_given(tools) else tools,
            metadata=self._metadata if metadata is None else metadata,
        )

    def truncate(self, *, max_items: int) -> ChatContext:
        """Keep the newest ``max_items`` items; returns this context.

        A leading system/developer message (the instructions) is kept and counts toward
        ``max_items``. A function call and its output stay together: where the cut
        would separate them, both are dropped.
        """
        if max_items < 0:
            raise ValueError(f"max_items must be >= 0, got {max_items}")
        if len(self._items) <= max_items:
            return self
        head: list[ChatItem] = []
        first = self._items[0] if self._items else None
        if isinstance(first, ChatMessage) and first.role in ("system", "developer") and max_items > 0:
            head = [first]
        budget = max_items - len(head)
        rest = self._items[len(head) :]
        tail = rest[len(rest) - budget :] if budget > 0 else []
        self._items = head + _drop_split_pairs(tail, self._items)
        return self

    def merge(
        self, other_chat_ctx: ChatContext, *, exclude_function_call: bool = False, exclude_instructions: bool = False
    ) -> ChatContext:
        """Add the items of ``other_chat_ctx`` whose ids are not here yet, each at its
        place by ``created_at``; returns this context."""
        known = {item.id for item in self._items}
        for item in other_chat_ctx.items:
            if item.id in known:
                continue
            if exclude_function_call and isinstance(item, (FunctionCall, FunctionCallOutput)):
                continue
            if exclude_instructions and isinstance(item, ChatMessage) and item.role in ("system", "developer"):
                continue
            self.insert(item)
        return self

    def find_insertion_index(self, *, created_at: float) -> int:
        """Where an item made at ``created_at`` goes: after every item not newer than it."""
        index = len(self._items)
        while index > 0 and self._items[index - 1].created_at > created_at:
            index -= 1
        return index

    @property
    def readonly(self) -> bool:
        """Whether changes are refused (see ``ReadOnlyChatContext``)."""
        return False

    def is_equivalent(self, other: ChatContext) -> bool:
        """Same items in the same order, compared by content (ids and times aside)."""
        if self is other:
            return True
        if len(self._items) != len(other.items):
            return False
        return all(_item_key(a) == _item_key(b) for a, b in zip(self._items, other.items, strict=True))

    def to_dict(
        self,
        *,
        exclude_image: bool = True,
        exclude_audio: bool = True,
        exclude_timestamp: bool = True,
        exclude_function_call: bool = False,
    ) -> dict[str, Any]:
        """A JSON-ready form (``from_dict`` reads it back). Images and audio are left out
        by default (audio frames are not JSON), as are the items' ``created_at``."""
        items: list[dict[str, Any]] = []
        for item in self._items:
            if exclude_function_call and isinstance(item, (FunctionCall, FunctionCallOutput)):
                continue
            data: dict[str, Any] = {"id": item.id, "type": item.type}
            if isinstance(item, ChatMessage):
                content: list[Any] = []
                for part in item.content:
                    if isinstance(part, str):
                        content.append(part)
                    elif isinstance(part, ImageContent) and not exclude_image:
                        if not isinstance(part.image, str):
                            raise ValueError("to_dict(exclude_image=False) needs images given as URLs")
                        content.append({"type": "image_content", "id": part.id, "image": part.image,
                                        "inference_detail": part.inference_detail, "mime_type": part.mime_type})
                    elif isinstance(part, AudioContent) and not exclude_audio:
                        content.append({"type": "audio_content", "transcript": part.transcript})
                data.update(role=item.role, content=content, interrupted=item.interrupted)
                if item.name is not None:
                    data["name"] = item.name
            elif isinstance(item, FunctionCall):
                data.update(call_id=item.call_id, arguments=item.arguments, name=item.name)
            else:
                data.update(call_id=item.call_id, output=item.output, is_error=item.is_error, name=item.name)
            if not exclude_timestamp:
                data["created_at"] = item.created_at
            items.append(data)
        return {"items": items}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatContext:
        """The context ``to_dict`` described; unknown item types are an error."""
        items: list[ChatItem] = []
        for raw in data.get("items", []):
            kind = raw.get("type")
            common: dict[str, Any] = {}
            if "id" in raw:
                common["id"] = raw["id"]
            if "created_at" in raw:
                common["created_at"] = raw["created_at"]
            if kind == "message":
                content: list[ChatContent] = []
                for part in raw.get("content", []):
                    if isinstance(part, str):
                        content.append(part)
                    elif isinstance(part, dict) and part.get("type") == "image_content":
                        content.append(ImageContent(image=part["image"], id=part.get("id") or shortuuid("img_"),
                                                    inference_detail=part.get("inference_detail", "auto"),
                                                    mime_type=part.get("mime_type")))
                    elif isinstance(part, dict) and part.get("type") == "audio_content":
                        content.append(AudioContent(frame=[], transcript=part.get("transcript")))
                items.append(ChatMessage(role=raw["role"], content=content, name=raw.get("name"),
                                         interrupted=bool(raw.get("interrupted", False)), **common))
            elif kind == "function_call":
                items.append(FunctionCall(call_id=raw["call_id"], name=raw["name"],
                                          arguments=raw.get("arguments", "{}"), **common))
            elif kind == "function_call_output":
                items.append(FunctionCallOutput(call_id=raw["call_id"], output=raw.get("output", ""),
                                                is_error=bool(raw.get("is_error", False)), name=raw.get("name", ""),
                                                **common))
            else:
                raise ValueError(f"ChatContext.from_dict: unknown item type {kind!r}")
        return cls(items)

    # -- provider formats --------------------------------------------------------------

    def to_openai_messages(self) -> list[dict[str, Any]]:
        from .openai_format import to_openai_messages

        return to_openai_messages(self._items)

    def to_provider_format(self, format: Literal["openai"] = "openai") -> list[dict[str, Any]]:
        if format != "openai":
            raise ValueError(f"unknown provider format {format!r}; supported: 'openai'")
        return self.to_openai_messages()

    @classmethod
    def from_openai_messages(
        cls, messages: Sequence[dict[str, Any]], *, tools: Sequence[Tool] | None = None
    ) -> ChatContext:
        from .openai_format import from_openai_messages

        return cls(from_openai_messages(messages), tools=tools)


def _content_key(content: ChatContent) -> Any:
    if isinstance(content, str):
        return content
    if isinstance(content, ImageContent) and isinstance(content.image, str):
        return ("image", content.image)
    return id(content)


def _item_key(item: ChatItem) -> tuple[Any, ...]:
    if isinstance(item, ChatMessage):
        return ("message", item.role, tuple(_content_key(c) for c in item.content))
    if isinstance(item, FunctionCall):
        return ("function_call", item.call_id, item.name, item.arguments)
    return ("function_call_output", item.call_id, item.output, item.is_error)


class ReadOnlyChatContext(ChatContext):
    """A view that refuses changes (what ``Agent.chat_ctx`` would expose as read-only);
    ``copy()`` gives a context that can be changed."""

    @property
    def readonly(self) -> bool:
        return True

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this chat context is read-only; use .copy() to get one you can change")

    add_message = insert = append = truncate = merge = _refuse  # type: ignore[assignment]

    def copy(self, **kwargs: Any) -> ChatContext:
        return ChatContext.copy(ChatContext(self.items, tools=self.tools, metadata=self.metadata), **kwargs)


def _drop_split_pairs(tail: list[ChatItem], everything: list[ChatItem]) -> list[ChatItem]:
    """Remove calls whose output exists but was cut, and outputs whose call was cut."""
    answered = {i.call_id for i in everything if isinstance(i, FunctionCallOutput)}
    kept_calls = {i.call_id for i in tail if isinstance(i, FunctionCall)}
    kept_outputs = {i.call_id for i in tail if isinstance(i, FunctionCallOutput)}
    result: list[ChatItem] = []
    for item in tail:
        if isinstance(item, FunctionCallOutput) and item.call_id not in kept_calls:
            continue
        if isinstance(item, FunctionCall) and item.call_id in answered and item.call_id not in kept_outputs:
            continue
        result.append(item)
    return result
