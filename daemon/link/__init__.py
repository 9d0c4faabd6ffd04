"""The supervisor's link to a LiveKit server: one registration per agent plugin."""

from roomd.ipc.errors import ProtocolError

from .evaluators import AcceptEveryJob, PoolEvaluator, RequestEvaluator
from .server_link import (
    AgentRegistration,
    LinkFailed,
    LinkObserver,
    LinkSnapshot,
    NullObserver,
    ServerLink,
)
from .states import LINK_TRANSITIONS, LinkState
from .url import agent_websocket_url

__all__ = [
    "LINK_TRANSITIONS", "AcceptEveryJob", "AgentRegistration", "LinkFailed", "LinkObserver",
    "LinkSnapshot", "LinkState", "NullObserver", "PoolEvaluator", "ProtocolError", "RequestEvaluator", "ServerLink", "agent_websocket_url",
]
