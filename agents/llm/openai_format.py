"""Conversion between chat items and the OpenAI chat-completions message format."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from livekit import rtc

from .chat_context import (
    AudioContent,
    ChatContent,
    ChatItem,
    ChatMessage,
    FunctionCall,
    FunctionCallOutput,
    ImageContent,
)


def to_openai_messages(items: Sequence[ChatItem]) -> list[dict[str, Any]]:
    """OpenAI messages: an assistant message carries the function calls right after it.

    ``developer`` becomes ``system`` (what every OpenAI-compatible server accepts).
    """
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, ChatMessage):
            role = "system" if item.role == "developer" else item.role
            message: dict[str, Any] = {"role": role, "content": _content_to_openai(item.content)}
            if item.name:
                message["name"] = item.name
            out.append(message)
        elif isinstance(item, FunctionCall):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = out[-1] if out else None
            # Calls made in the same turn belong to one assistant message.
            if last is not None and last["role"] == "assistant" and _may_take_calls(last):
                last.setdefault("tool_calls", []).append(call)
                if last["content"] == "":
                    last["content"] = None
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutput):
            out.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
    return out


def _may_take_calls(message: dict[str, Any]) -> bool:
    # Only text (or nothing) may precede calls in one assistant message.
    return message["content"] is None or isinstance(message["content"], str)


def _content_to_openai(content: Sequence[ChatContent]) -> str | list[dict[str, Any]]:
    if all(isinstance(c, str) for c in content):
        return "\n".join(c for c in content if isinstance(c, str))
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
        elif isinstance(part, ImageContent):
            parts.append(
                {
                    "type": "image_url",
                    "image_url": {"url": _image_url(part), "detail": part.inference_detail},
                }
            )
        elif isinstance(part, AudioContent) and part.transcript:
            parts.append({"type": "text", "text": part.transcript})
    return parts


def _image_url(image: ImageContent) -> str:
    if isinstance(image.image, str):
        return image.image
    raise ValueError(
        "ImageContent holding an rtc.VideoFrame must be encoded to a data: URL before "
        "conversion to the OpenAI format"
    )


def from_openai_messages(messages: Sequence[dict[str, Any]]) -> list[ChatItem]:
    """The inverse of ``to_openai_messages`` (ids and timestamps are new)."""
    items: list[ChatItem] = []
    names: dict[str, str] = {}
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise ValueError(f"message {index}: a tool message needs tool_call_id")
            items.append(
                FunctionCallOutput(
                    call_id=call_id,
                    output=_text_of(message.get("content")),
                    name=names.get(call_id, ""),
                )
            )
            continue
        if role not in ("system", "developer", "user", "assistant"):
            raise ValueError(f"message {index}: unknown role {role!r}")
        content = _content_from_openai(message.get("content"), index)
        tool_calls = message.get("tool_calls") or []
        if content or not tool_calls:
            items.append(ChatMessage(role=role, content=content, name=message.get("name")))
        for call in tool_calls:
            function = call.get("function", {})
            arguments = function.get("arguments", "{}")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments)
            names[call["id"]] = function.get("name", "")
            items.append(FunctionCall(call_id=call["id"], name=function.get("name", ""), arguments=arguments))
    return items


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")


def _content_from_openai(content: Any, index: int) -> list[ChatContent]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [content]
    parts: list[ChatContent] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append(part["text"])
        elif kind == "image_url":
            url = part["image_url"]["url"]
            parts.append(ImageContent(image=url, inference_detail=part["image_url"].get("detail", "auto")))
        else:
            raise ValueError(f"message {index}: unsupported content part type {kind!r}")
    return parts


def audio_to_base64_wav(frames: Sequence[rtc.AudioFrame]) -> str:
    """A base64 WAV of the frames (for providers that take ``input_audio``)."""
    return base64.b64encode(rtc.combine_audio_frames(list(frames)).to_wav_bytes()).decode()
