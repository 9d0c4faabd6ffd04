"""The messages between the supervisor and a child, as one tagged union of msgspec Structs.

Each message is a frozen Struct whose class name is its tag on the wire; msgpack is the
encoding. Adding a field with a default is compatible; anything else bumps
``PROTOCOL_VERSION``, which both sides check in their first ``Hello``.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# The exit codes a child uses on purpose live in roomd.ipc.exits; re-exported with the messages.
from .exits import EXIT_INIT_FAILED as EXIT_INIT_FAILED
from .exits import EXIT_INTERNAL_ERROR as EXIT_INTERNAL_ERROR
from .exits import EXIT_OK as EXIT_OK
from .exits import EXIT_PROTOCOL_ERROR as EXIT_PROTOCOL_ERROR
from .exits import EXIT_RETIRED as EXIT_RETIRED

PROTOCOL_VERSION = 2  # 2: JobEnding / StatusReported before the agent leaves its room

JobStatusName = Literal["SUCCESS", "FAILED"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class _Message(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    pass


class Hello(_Message, frozen=True):
    protocol_version: int
    pid: int


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The part of the pool's limits a child enforces itself."""

    initialize_timeout: float
    shutdown_timeout: float
    max_jobs_per_process: int
    log_level: LogLevel = "info"
    log_rate: float = 200.0  # log events per second, sustained
    log_burst: int = 1000


class Initialize(_Message, frozen=True):
    target: str  # "module:attribute" naming the plugin's WorkerOptions
    plugin: str
    generation: int
    limits: Limits
    run_prewarm: bool = True  # False for a plugin-host child that only evaluates job requests


class Initialized(_Message, frozen=True):
    error: str = ""  # empty when initialize_process_fnc and prewarm_fnc succeeded


class Ping(_Message, frozen=True):
    seq: int
    supervisor_ts: float  # time.monotonic() when sent; CLOCK_MONOTONIC is system-wide


class Pong(_Message, frozen=True):
    seq: int
    supervisor_ts: float  # echoed
    child_ts: float  # time.monotonic() when the child's loop handled the Ping


class ParticipantInfo(msgspec.Struct, frozen=True, kw_only=True):
    """How the agent joins the room (the accept arguments of the job request)."""

    identity: str
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = msgspec.field(default_factory=dict)


class StartJob(_Message, frozen=True):
    job: bytes  # livekit.protocol.agent.Job, serialized
    url: str
    token: str
    accept: ParticipantInfo
    worker_id: str
    # Server API credentials for JobContext.api. They stay inside the child and are never logged.
    api_key: str = ""
    api_secret: str = ""

    def __repr__(self) -> str:  # keep secrets out of any accidental repr
        return f"StartJob(url={self.url!r}, worker_id={self.worker_id!r}, <{len(self.job)} job bytes>)"


class JobStarted(_Message, frozen=True):
    job_id: str


class JobEnded(_Message, frozen=True):
    job_id: str
    status: JobStatusName
    error: str = ""
    reason: str = ""  # why it ended (entrypoint returned, shutdown(...), room disconnected)


class JobEnding(_Message, frozen=True):
    """The job's final status, sent while the agent is still in its room.

    livekit-server records a job whose agent leaves the room before its final
    ``UpdateJobStatus`` as FAILED ("agent worker left the room"), so the child waits for
    ``StatusReported`` (bounded) before it disconnects, then sends ``JobEnded``.
    """

    job_id: str
    status: JobStatusName
    error: str = ""
    reason: str = ""


class StatusReported(_Message, frozen=True):
    """The server has processed the job's final status: the agent may leave its room."""

    job_id: str


class Shutdown(_Message, frozen=True):
    reason: str


class ShutdownAck(_Message, frozen=True):
    pass


class Exiting(_Message, frozen=True):
    reason: str
    exit_code: int = 0


class Log(_Message, frozen=True):
    level: LogLevel
    event: str
    logger: str = ""
    fields: dict[str, Any] = msgspec.field(default_factory=dict)  # JSON-able values only


class MetricSample(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: Literal["counter", "gauge", "histogram"]
    value: float
    labels: dict[str, str] = msgspec.field(default_factory=dict)


class Metrics(_Message, frozen=True):
    samples: list[MetricSample]


class DumpStacks(_Message, frozen=True):
    reason: str = ""


class PluginDescription(_Message, frozen=True):
    agent_name: str
    worker_type: Literal["room", "publisher"]
    permissions: dict[str, bool] | None = None
    # WorkerOptions limit fields the plugin set (None fields are left out), keyed by PoolConfig name.
    overrides: dict[str, float] = msgspec.field(default_factory=dict)
    custom_request_fnc: bool = False  # False: request_fnc is the default "accept every job"
    error: str = ""


class EvaluateRequest(_Message, frozen=True):
    request_id: int
    job: bytes  # livekit.protocol.agent.Job, serialized


class RequestEvaluated(_Message, frozen=True):
    request_id: int
    accept: ParticipantInfo | None = None  # None: rejected (or failed, see error)
    error: str = ""


Message = (
    Hello | Initialize | Initialized | Ping | Pong | StartJob | JobStarted | JobEnding | StatusReported
    | JobEnded | Shutdown
    | ShutdownAck | Exiting | Log | Metrics | DumpStacks
    | EvaluateRequest | RequestEvaluated
)

ALL_MESSAGE_TYPES: tuple[type[Any], ...] = Message.__args__
