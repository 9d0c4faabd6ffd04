"""How every state machine of the daemon changes state: the one check of a change against the
machine's table (``allowed``), and how often each changed, for ``roomd_state_transitions_total``.

One counter per daemon, made by the supervisor and handed to every machine it builds
(plugin records, links and their jobs, pools and their children); each machine's one
``_transition`` counts there after the table allowed the change. A machine built without
one (a test, a tool) gets its own, which nobody reads.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Mapping, Set
from typing import TypeVar

_S = TypeVar("_S", bound=enum.Enum)


class TransitionCounter:
    def __init__(self) -> None:
        self._counts: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def count(self, machine: str, old: enum.Enum, new: enum.Enum) -> None:
        self._counts[(machine, str(old.value), str(new.value))] += 1

    def counts(self) -> dict[tuple[str, str, str], int]:
        """(machine, from, to) -> how many times, since the daemon started."""
        return dict(self._counts)


class IllegalTransition(RuntimeError):
    """A state machine was asked for a change its table does not allow: a bug, said loudly."""


def allowed(table: Mapping[_S, Set[_S]], old: _S, new: _S, what: str) -> bool:
    """True if ``old -> new`` is a change ``table`` allows, False if there is no change (staying
    is always allowed); ``IllegalTransition`` naming ``what`` otherwise."""
    if old is new:
        return False
    if new not in table[old]:
        raise IllegalTransition(f"{what}: {old.name} -> {new.name}")
    return True
