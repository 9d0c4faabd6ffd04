"""The server link's states and the changes between them (its jobs have theirs in
daemon/jobs.py)."""

from __future__ import annotations

import enum


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    REGISTERING = "registering"
    REGISTERED = "registered"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"
    FAILED = "failed"


# A failed connect or registration retries (RECONNECTING) until ``max_retry`` gives up (FAILED);
# a lost registered connection reconnects; closing is allowed from anywhere and is final.
LINK_TRANSITIONS: dict[LinkState, frozenset[LinkState]] = {
    LinkState.CONNECTING: frozenset({LinkState.REGISTERING, LinkState.RECONNECTING, LinkState.FAILED,
                                     LinkState.CLOSED}),
    LinkState.REGISTERING: frozenset({LinkState.REGISTERED, LinkState.RECONNECTING, LinkState.FAILED,
                                      LinkState.CLOSED}),
    LinkState.REGISTERED: frozenset({LinkState.RECONNECTING, LinkState.CLOSED}),
    LinkState.RECONNECTING: frozenset({LinkState.REGISTERING, LinkState.FAILED, LinkState.CLOSED}),
    LinkState.FAILED: frozenset({LinkState.CLOSED}),
    LinkState.CLOSED: frozenset(),
}
