"""The LiveKit server's HTTP API address from its websocket URL, for every caller of the API."""

from __future__ import annotations


def http_url(url: str) -> str:
    """``ws://`` -> ``http://``, ``wss://`` -> ``https://``; an http(s) URL is returned as it is."""
    if url.startswith("wss://"):
        return "https://" + url[len("wss://"):]
    if url.startswith("ws://"):
        return "http://" + url[len("ws://"):]
    return url
