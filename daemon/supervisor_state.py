"""The supervisor's states and the changes between them (its table, read by the tests)."""

from __future__ import annotations

import enum


class SupervisorState(enum.Enum):
    STARTING = "starting"
    REGISTERING = "registering"
    READY = "ready"
    RELOADING = "reloading"
    DRAINING = "draining"
    STOPPED = "stopped"


SUPERVISOR_TRANSITIONS = {
    SupervisorState.STARTING: {SupervisorState.REGISTERING, SupervisorState.DRAINING,
                               SupervisorState.STOPPED},
    SupervisorState.REGISTERING: {SupervisorState.READY, SupervisorState.DRAINING,
                                  SupervisorState.STOPPED},
    SupervisorState.READY: {SupervisorState.RELOADING, SupervisorState.DRAINING,
                            SupervisorState.STOPPED},
    SupervisorState.RELOADING: {SupervisorState.READY, SupervisorState.DRAINING,
                                SupervisorState.STOPPED},
    SupervisorState.DRAINING: {SupervisorState.STOPPED},
    SupervisorState.STOPPED: set(),
}
