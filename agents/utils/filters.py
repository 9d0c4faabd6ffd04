"""Smoothing helpers for noisy measurements (speaking rate, probabilities, latencies)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ExpFilter:
    """Exponential smoothing: each ``apply(exp, sample)`` keeps ``alpha ** exp`` of the
    current value and takes the rest from ``sample`` (``exp`` scales the step, e.g. by
    the time since the last sample). The first sample is taken as is. ``max_val``
    (when not -1) caps the result. ``filtered()`` is -1 before any sample."""

    def __init__(self, alpha: float, max_val: float = -1.0) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self._alpha = alpha
        self._max_val = max_val
        self._value: float | None = None

    def reset(self, alpha: float = -1.0) -> None:
        if alpha != -1.0:
            self._alpha = alpha
        self._value = None

    def apply(self, exp: float, sample: float) -> float:
        if self._value is None:
            value = sample
        else:
            keep = self._alpha**exp
            value = keep * self._value + (1.0 - keep) * sample
        if self._max_val != -1.0:
            value = min(value, self._max_val)
        self._value = value
        return value

    def filtered(self) -> float:
        return -1.0 if self._value is None else self._value

    def update_base(self, alpha: float) -> None:
        self._alpha = alpha


class MovingAverage:
    """Mean of the last ``window_size`` samples (of fewer until that many arrived)."""

    def __init__(self, window_size: int) -> None:
        if window_size <= 0:
            raise ValueError(f"window_size must be positive, got {window_size}")
        self._window = window_size
        self._samples: list[float] = []
        self._next = 0  # slot the next sample overwrites once the window is full

    def add_sample(self, sample: float) -> None:
        if len(self._samples) < self._window:
            self._samples.append(sample)
        else:
            self._samples[self._next] = sample
            self._next = (self._next + 1) % self._window

    def get_avg(self) -> float:
        return sum(self._samples) / len(self._samples) if self._samples else 0.0

    def reset(self) -> None:
        self._samples.clear()
        self._next = 0

    def size(self) -> int:
        return len(self._samples)


class BoundedDict(OrderedDict[K, V]):
    """A dict that forgets its oldest entries beyond ``maxsize`` (None: unbounded).

    Setting an existing key updates it in place (its age is kept)."""

    def __init__(self, maxsize: int | None = None) -> None:
        super().__init__()
        if maxsize is not None and maxsize <= 0:
            raise ValueError(f"maxsize must be positive, got {maxsize}")
        self.maxsize = maxsize

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        if self.maxsize is not None:
            while len(self) > self.maxsize:
                self.popitem(last=False)
