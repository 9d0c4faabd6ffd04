"""Where the agent websocket lives on a LiveKit server."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

_WS_SCHEME = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def agent_websocket_url(server_url: str) -> str:
    """``http(s)://host/base`` -> ``ws(s)://host/base/agent``, keeping any base path."""
    parts = urlsplit(server_url)
    scheme = _WS_SCHEME.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"LiveKit URL must be ws://, wss://, http:// or https://, got {server_url!r}")
    path = parts.path.rstrip("/") + "/agent"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))
