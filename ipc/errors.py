"""The protocol's one error type: anything a peer sends that we cannot accept."""

from __future__ import annotations


class ProtocolError(Exception):
    """A malformed, oversized or unexpected frame or message; the channel cannot continue."""


class ChannelClosed(Exception):
    """The peer closed its end (it exited, or closed the socket)."""
