"""roomd's own background sounds, synthesized with numpy (made by roomd, Apache-2.0).

No recording is shipped: each clip is computed from a fixed seed the first time it is
asked for and written once, as Ogg/Opus, into the user's cache directory. The same seed
gives the same clip on every machine.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

RATE = 48000
_VERSION = 1  # bump when a recipe changes, so caches are rewritten


def _smooth(signal: np.ndarray, width: int) -> np.ndarray:
    kernel = np.ones(width, dtype=np.float64) / width
    return np.convolve(signal, kernel, mode="same")


def _seamless(signal: np.ndarray, fade: int) -> np.ndarray:
    """Fold the tail into the head so the clip loops without a click."""
    head, body, tail = signal[:fade], signal[fade:-fade], signal[-fade:]
    ramp = np.linspace(0.0, 1.0, fade)
    return np.concatenate([tail * (1 - ramp) + head * ramp, body])


def office_ambience(seconds: float = 12.0, seed: int = 7) -> np.ndarray:
    """A quiet room: ventilation rumble, a faint mains hum, distant muffled voices."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    rumble = _smooth(rng.standard_normal(n), 48)  # low-passed noise (~1 kHz and below)
    rumble /= np.abs(rumble).max()
    hum = 0.15 * np.sin(2 * np.pi * 100 * t) + 0.05 * np.sin(2 * np.pi * 200 * t)
    voices = np.zeros(n)
    for _ in range(int(seconds / 1.5)):  # syllable-like bursts of band-limited noise
        start = int(rng.uniform(0, n - RATE))
        length = int(rng.uniform(0.12, 0.35) * RATE)
        burst = _smooth(rng.standard_normal(length), 24) * np.hanning(length)
        pitch = rng.uniform(110, 220)
        burst *= 0.5 + 0.5 * np.sin(2 * np.pi * pitch * np.arange(length) / RATE)
        voices[start:start + length] += burst * rng.uniform(0.3, 0.8)
    voices = _smooth(voices, 32)
    mix = 0.5 * rumble + hum + 0.8 * voices / max(np.abs(voices).max(), 1e-9)
    return _seamless(0.12 * mix / np.abs(mix).max(), RATE // 4)


def keyboard_typing(seconds: float, *, seed: int, words_per_minute: float) -> np.ndarray:
    """Key presses: short noisy clicks with a woody resonance, in bursts of words."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n)
    mean_gap = 60.0 / (words_per_minute * 5)  # five keys per word
    at = 0.05
    while at < seconds - 0.1:
        length = int(rng.uniform(0.012, 0.025) * RATE)
        k = np.arange(length)
        decay = np.exp(-k / (length / 5))
        tone = np.sin(2 * np.pi * rng.uniform(1800, 3200) * k / RATE)
        click = (0.6 * rng.standard_normal(length) + tone) * decay * rng.uniform(0.5, 1.0)
        start = int(at * RATE)
        out[start:start + length] += click[: n - start]
        at += rng.exponential(mean_gap) + 0.04
        if rng.random() < 0.12:  # end of a word or a thought
            at += rng.uniform(0.2, 0.6)
    return 0.5 * out / np.abs(out).max()


_RECIPES: dict[str, Callable[[], np.ndarray]] = {
    "office-ambience.ogg": office_ambience,
    "keyboard-typing.ogg": lambda: keyboard_typing(8.0, seed=11, words_per_minute=70),
    "keyboard-typing2.ogg": lambda: keyboard_typing(3.5, seed=23, words_per_minute=95),
}


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/roomd/clips`` (or ``~/.cache``); a temporary folder when the home
    directory is not writable (a service user without one)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "roomd" / "clips"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"roomd-clips-{os.getuid()}"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def clip_path(name: str) -> Path:
    """The clip's file, written on first use (atomically: children may race for it)."""
    if name not in _RECIPES:
        raise ValueError(f"no built-in clip {name!r}; clips: {sorted(_RECIPES)}")
    path = cache_dir() / f"v{_VERSION}-{name}"
    if not path.exists():
        samples = _RECIPES[name]()
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".ogg")
        os.close(fd)
        try:
            write_ogg_opus(tmp, samples)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def write_ogg_opus(path: str, samples: np.ndarray, *, rate: int = RATE) -> None:
    """Encode mono float samples in [-1, 1] as Ogg/Opus with PyAV."""
    import av

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    with av.open(path, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=rate, layout="mono")
        step = rate // 50
        for start in range(0, pcm.size, step):
            chunk = pcm[start:start + step].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
