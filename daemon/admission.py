"""Admission: may this daemon take one more job right now?

The daemon's ``Admission`` holds the daemon-wide budget (``max_jobs``, load threshold,
draining). Each plugin's link asks a child ``Admission`` whose parent is the daemon's:
it adds the plugin's own limits (from its WorkerOptions or the operator's per-plugin
options), and a slot it reserves is reserved in the parent too. A ``Reservation`` holds a
slot from before we answer an offer until the job ends (or the offer falls through), so
a burst of concurrent offers can never over-commit: the check and the reservation are
one synchronous step on the event loop.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Callable


class Decision(enum.Enum):
    """Why an offer was answered the way it was (a metric label: keep the set small)."""

    ACCEPTED = "accepted"
    DRAINING = "draining"
    NO_SLOT = "no_slot"
    OVERLOADED = "overloaded"
    WRONG_AGENT = "wrong_agent"
    REJECTED_BY_PLUGIN = "rejected_by_plugin"
    PLUGIN_ERROR = "plugin_error"
    LAUNCH_FAILED = "launch_failed"
    ASSIGNMENT_TIMEOUT = "assignment_timeout"
    WITHDRAWN = "withdrawn"  # accepted, then terminated (or we stopped) before its assignment


class Reservation:
    """A job slot held in an admission and its parents; ``release()`` is idempotent so every
    exit path may call it."""

    def __init__(self, admission: Admission) -> None:
        self._admission: Admission | None = admission

    def release(self) -> None:
        admission, self._admission = self._admission, None
        while admission is not None:
            admission._release()
            admission = admission.parent

    @property
    def held(self) -> bool:
        return self._admission is not None


@dataclasses.dataclass(frozen=True)
class Refusal:
    decision: Decision
    detail: str


class Admission:
    def __init__(
        self,
        *,
        max_jobs: int,
        load_threshold: float,
        load: Callable[[], float],
        on_change: Callable[[], None] | None = None,
        parent: Admission | None = None,
    ) -> None:
        """``max_jobs`` 0 means no count limit; ``load()`` returns the current load in 0..1."""
        self.parent = parent
        self._max_jobs = max_jobs
        self._load_threshold = load_threshold
        self._load = load
        self._in_use = 0
        self._draining = False
        self._listeners: list[Callable[[], None]] = [on_change] if on_change else []
        self.decisions: collections.Counter[Decision] = collections.Counter()
        if parent is not None:
            parent.add_listener(self._changed)  # the daemon's budget is ours too

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def draining(self) -> bool:
        return self._draining

    def slot_use(self) -> float:
        """The share of job slots reserved (jobs running, offers still being answered or
        waiting for their assignment), 0..1: the fullest of this admission and its parents; 0
        where ``max_jobs`` is 0 (no count limit)."""
        own = min(1.0, self._in_use / self._max_jobs) if self._max_jobs else 0.0
        return max(own, self.parent.slot_use()) if self.parent is not None else own

    def load(self) -> float:
        return self._load()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Called whenever availability may have changed (slots, draining)."""
        self._listeners.append(listener)

    def reconfigure(self, *, max_jobs: int, load_threshold: float) -> None:
        self._max_jobs, self._load_threshold = max_jobs, load_threshold
        self._changed()

    def start_draining(self) -> None:
        self._draining = True
        self._changed()

    def is_full(self) -> bool:
        return self.refusal() is not None

    def refusal(self) -> Refusal | None:
        """Why a new job would be refused now, or None if it would be taken."""
        if self._draining:
            return Refusal(Decision.DRAINING, "the daemon is draining")
        if self._max_jobs and self._in_use >= self._max_jobs:
            return Refusal(Decision.NO_SLOT, f"{self._in_use} of max_jobs={self._max_jobs} slots in use")
        load = self._load()
        if load >= self._load_threshold:
            return Refusal(Decision.OVERLOADED,
                           f"load {load:.2f} >= load_threshold {self._load_threshold:.2f}")
        return self.parent.refusal() if self.parent is not None else None

    def try_reserve(self) -> Reservation | Refusal:
        refusal = self.refusal()
        if refusal is not None:
            return refusal
        admission: Admission | None = self
        while admission is not None:
            admission._in_use += 1
            admission._changed()
            admission = admission.parent
        return Reservation(self)

    def count(self, decision: Decision) -> None:
        self.decisions[decision] += 1
        if self.parent is not None:
            self.parent.count(decision)

    def _release(self) -> None:
        self._in_use -= 1
        self._changed()

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()
