"""What the daemon and the SDK both say about an agent: its type, its permissions, the answer to
a job request and a job's status.

These sit below both sides so that the daemon speaks of them without importing the SDK;
``roomd.agents`` re-exports them under the reference API's names.
"""

from __future__ import annotations

import dataclasses
import enum

from livekit.protocol import agent as agent_pb


class WorkerType(enum.Enum):
    """ROOM: one job per room. PUBLISHER: one job per publishing participant."""

    ROOM = agent_pb.JT_ROOM
    PUBLISHER = agent_pb.JT_PUBLISHER


@dataclasses.dataclass(frozen=True)
class WorkerPermissions:
    """What the agent participant may do in the room (sent at registration)."""

    can_publish: bool = True
    can_subscribe: bool = True
    can_publish_data: bool = True
    can_update_metadata: bool = True
    hidden: bool = False


@dataclasses.dataclass(frozen=True)
class AcceptArguments:
    """How the agent joins the room if the job is accepted."""

    name: str = ""
    identity: str = ""
    metadata: str = ""
    attributes: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RequestDecision:
    """The answer to an availability request. ``accept`` is None when rejected."""

    accept: AcceptArguments | None

    @property
    def accepted(self) -> bool:
        return self.accept is not None


def default_identity(job_id: str) -> str:
    """The agent participant's identity when ``accept()`` names none."""
    return f"agent-{job_id}"


def accept_by_default(job_id: str) -> RequestDecision:
    """What the default ``request_fnc`` decides: accept, with the default identity."""
    return RequestDecision(AcceptArguments(identity=default_identity(job_id)))


class JobStatus(enum.Enum):
    """A job's status as reported to the server (``UpdateJobStatus``)."""

    RUNNING = agent_pb.JS_RUNNING
    SUCCESS = agent_pb.JS_SUCCESS
    FAILED = agent_pb.JS_FAILED
