"""Scripted components for testing agents without models or network.

Registered under provider ``testing`` in the ``roomd.components`` registry:
``testing/scripted`` (llm), ``testing/fake`` (stt), ``testing/tone`` (tts),
``testing/energy`` (vad); ``testing`` alone picks the one for the kind.
"""

from __future__ import annotations

from typing import Any

from .energy_vad import EnergyVAD
from .fake_stt import FakeSTT
from .realtime import ScriptedRealtimeModel, ScriptedRealtimeSession
from .scripted_llm import ScriptedLLM, ScriptedReply, tool_call
from .tone_tts import ToneTTS

_MODELS: dict[str, dict[str, type[Any]]] = {
    "llm": {"scripted": ScriptedLLM},
    "stt": {"fake": FakeSTT},
    "tts": {"tone": ToneTTS},
    "vad": {"energy": EnergyVAD},
}


def __getattr__(name: str) -> Any:
    # mock_tools lives with the voice session (the reference's place); imported on use so
    # that the scripted components stay importable without the voice pipeline.
    if name == "mock_tools":
        from ..voice import run_result

        return run_result.mock_tools
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def component_factory(kind: str, model: str | None, **kwargs: Any) -> Any:
    """The ``roomd.components`` factory for provider ``testing``."""
    models = _MODELS.get(kind)
    if models is None:
        raise ValueError(f"provider 'testing' has no {kind!r} components; kinds: {sorted(_MODELS)}")
    if model is None:
        (cls,) = models.values()
    elif model in models:
        cls = models[model]
    else:
        raise ValueError(f"provider 'testing' has no {kind} model {model!r}; models: {sorted(models)}")
    return cls(**kwargs)


__all__ = ["EnergyVAD", "FakeSTT", "ScriptedLLM", "ScriptedRealtimeModel", "ScriptedRealtimeSession", "ScriptedReply", "ToneTTS", "component_factory", "mock_tools", "tool_call"]
