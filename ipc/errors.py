"""The errors of the layer both sides share: a peer broke the protocol, a peer went away, the
server did not assign an accepted job in time."""

from __future__ import annotations


class ProtocolError(Exception):
    """A peer (a child, the LiveKit server) sent a malformed, oversized or unexpected frame or
    message; the connection cannot continue."""


class ChannelClosed(Exception):
    """The peer closed its end (it exited, or closed the socket)."""


class AssignmentTimeoutError(Exception):
    """The server did not send the JobAssignment in time after we accepted a job."""
