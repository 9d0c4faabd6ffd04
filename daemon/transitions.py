"""How often each state machine changed state, for ``roomd_state_transitions_total``.

One counter per daemon, made by the supervisor and handed to every machine it builds
(plugin records, links and their jobs, pools and their children); each machine's one
``_transition`` counts there after the table allowed the change. A machine built without
one (a test, a tool) gets its own, which nobody reads.
"""

from __future__ import annotations

import collections
import enum


class TransitionCounter:
    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def count(self, machine: str, old: enum.Enum, new: enum.Enum) -> None:
        self._counts[(machine, str(old.value), str(new.value))] += 1

    def counts(self) -> dict[tuple[str, str, str], int]:
        """(machine, from, to) -> how many times, since the daemon started."""
        return dict(self._counts)
