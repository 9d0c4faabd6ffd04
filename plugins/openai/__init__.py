"""Components for OpenAI-compatible HTTP APIs (OpenAI, Ollama, vLLM, llama.cpp servers).

Configured by ``base_url`` (default ``OPENAI_BASE_URL``, else OpenAI) and ``api_key``
(default ``OPENAI_API_KEY``; local servers need none). Registered in
``roomd.components`` as provider ``openai``: ``resolve("llm", "openai/gpt-4o-mini",
base_url="http://127.0.0.1:8080/v1")``; the part after the slash is the model.
"""

from __future__ import annotations

from typing import Any

from .audio import OpenAISTT, OpenAITTS
from .llm import OpenAILLM

_CLASSES: dict[str, type[Any]] = {"llm": OpenAILLM, "stt": OpenAISTT, "tts": OpenAITTS}


def component_factory(kind: str, model: str | None, **kwargs: Any) -> Any:
    """The ``roomd.components`` factory for provider ``openai``."""
    cls = _CLASSES.get(kind)
    if cls is None:
        raise ValueError(f"provider 'openai' has no {kind!r} components; kinds: {sorted(_CLASSES)}")
    if model is not None:
        kwargs["model"] = model
    return cls(**kwargs)


__all__ = ["OpenAILLM", "OpenAISTT", "OpenAITTS", "component_factory"]
