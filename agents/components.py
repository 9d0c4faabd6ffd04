"""Resolve components given by name ("provider/model") through entry points.

Contract for providers: an entry point in group ``roomd.components`` whose value is a
callable ``factory(kind: str, model: str | None, **kwargs) -> component``, where
``kind`` is "llm", "stt", "tts" or "vad". Name it after the provider ("openai": gets
``model="gpt-4o-mini"`` for "openai/gpt-4o-mini") or after one exact model
("local/whisper-tiny": gets ``model=None``). The exact name wins over the provider.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, TypeAlias

ENTRY_POINT_GROUP = "roomd.components"

ComponentKind: TypeAlias = Literal["llm", "stt", "tts", "vad"]
KINDS: tuple[str, ...] = ("llm", "stt", "tts", "vad")


class ComponentError(LookupError):
    """A component name could not be turned into a component."""


class UnknownComponentError(ComponentError):
    """No installed provider matches the name."""


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of the installed entry points (providers and exact models), sorted."""
    return sorted(_entry_points())


def _base_class(kind: str) -> type[Any]:
    # Imported here so that the registry stays importable without the component stack.
    if kind == "llm":
        from .llm import LLM

        return LLM
    if kind == "stt":
        from .stt import STT

        return STT
    if kind == "tts":
        from .tts import TTS

        return TTS
    from .vad import VAD

    return VAD


def resolve(kind: ComponentKind | str, name: str, **kwargs: Any) -> Any:
    """The component ``kind`` named ``name`` (``"provider/model"`` or ``"provider"``).

    Extra keyword arguments go to the factory. Raises ``UnknownComponentError`` naming
    what was asked and listing what is installed, ``ComponentError`` when the provider
    fails to load or returns the wrong kind of object.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}; expected one of {list(KINDS)}")
    if not name or name.strip() != name:
        raise UnknownComponentError(f"invalid {kind} component name {name!r}")
    installed = _entry_points()
    provider, _, model = name.partition("/")
    if name in installed:
        entry, model_arg = installed[name], None
    elif provider in installed and model:
        entry, model_arg = installed[provider], model
    elif provider in installed and not model:
        entry, model_arg = installed[provider], None
    else:
        listing = ", ".join(sorted(installed)) or "none"
        raise UnknownComponentError(
            f"unknown {kind} component {name!r}: no provider {provider!r} in entry-point group "
            f"{ENTRY_POINT_GROUP!r}; installed providers: {listing}"
        )
    where = f"{entry.name} = {entry.value}"
    try:
        factory = entry.load()
    except Exception as exc:
        raise ComponentError(f"cannot load component provider {where!r}: {exc}") from exc
    try:
        component = factory(kind, model_arg, **kwargs)
    except Exception as exc:
        raise ComponentError(f"{kind} component {name!r} ({where}) failed to build: {exc}") from exc
    base = _base_class(kind)
    if not isinstance(component, base):
        raise ComponentError(
            f"{kind} component {name!r} ({where}) returned {type(component).__name__}, "
            f"not a {base.__module__}.{base.__qualname__}"
        )
    return component


__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "ComponentError",
    "ComponentKind",
    "UnknownComponentError",
    "available",
    "resolve",
]
