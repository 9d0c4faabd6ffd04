"""``from roomd.plugins import openai``: components for OpenAI-compatible HTTP APIs (OpenAI,
Ollama, vLLM, llama.cpp's server...), with the class names and constructors of
livekit-plugins-openai: ``openai.LLM``, ``openai.STT``, ``openai.TTS``.

``base_url`` defaults to ``OPENAI_BASE_URL``, else OpenAI; ``api_key`` to
``OPENAI_API_KEY`` (local servers need none). Also registered in ``roomd.components``
as provider ``openai``: ``resolve("llm", "openai/gpt-4o-mini", base_url=...)``; the part
after the slash is the model.
"""

from __future__ import annotations

from typing import Any

from .audio import STT, TTS, OpenAISTT, OpenAITTS
from .llm import LLM, OpenAILLM

_CLASSES: dict[str, type[Any]] = {"llm": LLM, "stt": STT, "tts": TTS}


def component_factory(kind: str, model: str | None, **kwargs: Any) -> Any:
    """The ``roomd.components`` factory for provider ``openai``."""
    cls = _CLASSES.get(kind)
    if cls is None:
        raise ValueError(f"provider 'openai' has no {kind!r} components; kinds: {sorted(_CLASSES)}")
    if model is not None:
        kwargs["model"] = model
    return cls(**kwargs)


__all__ = ["LLM", "STT", "TTS", "OpenAILLM", "OpenAISTT", "OpenAITTS", "component_factory"]
