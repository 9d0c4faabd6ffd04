"""``JobRequest``: what a plugin's ``request_fnc`` sees and answers.

The object only records the plugin's decision; whoever asked (the plugin host child)
sends that decision to the supervisor as a typed message.
"""

from __future__ import annotations

from livekit.protocol import agent as agent_pb
from livekit.protocol import models as models_pb

from roomd.ipc.worker import AcceptArguments, RequestDecision, default_identity

__all__ = ["AcceptArguments", "JobRequest", "RequestDecision"]


class JobRequest:
    def __init__(self, job: agent_pb.Job) -> None:
        self._job = job
        self._decision: RequestDecision | None = None

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def job(self) -> agent_pb.Job:
        return self._job

    @property
    def room(self) -> models_pb.Room:
        return self._job.room

    @property
    def publisher(self) -> models_pb.ParticipantInfo | None:
        return self._job.participant if self._job.HasField("participant") else None

    @property
    def agent_name(self) -> str:
        return self._job.agent_name

    @property
    def decision(self) -> RequestDecision | None:
        """The decision taken so far, or None if ``request_fnc`` took none."""
        return self._decision

    async def accept(
        self,
        *,
        name: str = "",
        identity: str = "",
        metadata: str = "",
        attributes: dict[str, str] | None = None,
    ) -> None:
        """Take the job. Empty ``identity`` means ``agent-<job id>``."""
        self._decide(
            RequestDecision(
                AcceptArguments(
                    name=name,
                    identity=identity or default_identity(self._job.id),
                    metadata=metadata,
                    attributes=dict(attributes or {}),
                )
            )
        )

    async def reject(self) -> None:
        self._decide(RequestDecision(None))

    def _decide(self, decision: RequestDecision) -> None:
        if self._decision is not None:
            raise RuntimeError(f"job {self._job.id} was already answered")
        self._decision = decision
