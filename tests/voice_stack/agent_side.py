"""The agent side of the end-to-end tests and the voice benchmark: the receptionist's
AgentSession run in this process, connected to the room like a job would be."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from livekit import api, rtc


@dataclass
class RunningAgent:
    room: rtc.Room
    session: Any
    tool_calls: list[str] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)

    async def aclose(self) -> None:
        await self.session.aclose()
        await self.room.disconnect()


def agent_token(address: Any, room: str, identity: str = "receptionist") -> str:
    grants = api.VideoGrants(room_join=True, room=room, agent=True)
    return api.AccessToken(address.api_key, address.api_secret).with_identity(identity).with_kind("agent").with_grants(grants).to_jwt()


async def start_receptionist(
    address: Any, room_name: str, components: dict[str, Any], **session_options: Any
) -> RunningAgent:
    from roomd_example_receptionist.agent import build_agent, build_session

    room = rtc.Room()
    await room.connect(address.url, agent_token(address, room_name))
    session = build_session(components, **session_options)
    running = RunningAgent(room=room, session=session)

    def on_tools(event: Any) -> None:
        running.tool_calls.extend(call.name for call in event.function_calls)

    session.on("function_tools_executed", on_tools)
    session.on("metrics_collected", lambda event: running.metrics.append(event.metrics))
    await session.start(agent=build_agent(), room=room)
    return running
