"""The states of a pool child and of a plugin's pool, each with its allowed transitions (checked
by ``allowed``, transitions.py), and why a child ended."""

from __future__ import annotations

import enum


class ChildState(enum.Enum):
    SPAWNING = "spawning"  # forked, handshake and prewarm under way
    IDLE = "idle"  # prewarmed, waiting for StartJob
    ASSIGNED = "assigned"  # StartJob sent, JobStarted not yet seen
    RUNNING = "running"  # the entrypoint runs
    STOPPING = "stopping"  # Shutdown sent, or retiring after its last job
    EXITED = "exited"


CHILD_TRANSITIONS: dict[ChildState, frozenset[ChildState]] = {
    ChildState.SPAWNING: frozenset({ChildState.IDLE, ChildState.STOPPING, ChildState.EXITED}),
    ChildState.IDLE: frozenset({ChildState.ASSIGNED, ChildState.STOPPING, ChildState.EXITED}),
    ChildState.ASSIGNED: frozenset({ChildState.RUNNING, ChildState.IDLE, ChildState.STOPPING,
                                    ChildState.EXITED}),
    ChildState.RUNNING: frozenset({ChildState.IDLE, ChildState.STOPPING, ChildState.EXITED}),
    ChildState.STOPPING: frozenset({ChildState.EXITED}),
    ChildState.EXITED: frozenset(),
}


class PoolState(enum.Enum):
    STARTING = "starting"  # zygote starting, no child prewarmed yet
    READY = "ready"
    BACKOFF = "backoff"  # start failures: waiting before the next attempt
    FATAL = "fatal"  # too many consecutive start failures: no more attempts until reset()
    CLOSING = "closing"
    CLOSED = "closed"


class ExitReason(enum.StrEnum):
    """Why a child ended; the values are the ``reason`` label of the restart metrics and logs."""

    RETIRED = "retired"  # served max_jobs_per_process jobs
    SHUTDOWN = "shutdown"  # asked to stop, did so
    INIT_FAILED = "init_failed"
    INIT_TIMEOUT = "init_timeout"
    PROTOCOL_ERROR = "protocol_error"
    STOP_TIMEOUT = "stop_timeout"
    UNRESPONSIVE = "unresponsive"
    MEMORY_LIMIT = "memory_limit"
    KILLED = "killed"  # a signal nobody in roomd sent
    CRASHED = "crashed"


POOL_TRANSITIONS: dict[PoolState, frozenset[PoolState]] = {
    PoolState.STARTING: frozenset({PoolState.READY, PoolState.BACKOFF, PoolState.FATAL, PoolState.CLOSING}),
    PoolState.READY: frozenset({PoolState.BACKOFF, PoolState.FATAL, PoolState.CLOSING}),
    PoolState.BACKOFF: frozenset({PoolState.STARTING, PoolState.READY, PoolState.FATAL, PoolState.CLOSING}),
    PoolState.FATAL: frozenset({PoolState.STARTING, PoolState.CLOSING}),
    PoolState.CLOSING: frozenset({PoolState.CLOSED}),
    PoolState.CLOSED: frozenset(),
}


# How /status and roomd_children show the child that answers the plugin's request_fnc: it
# is IDLE between questions, but it never takes a job.
REQUEST_HOST_STATE = "request_host"
