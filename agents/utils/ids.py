"""Short random ids for chat items, requests and streams, and wall-clock milliseconds."""

from __future__ import annotations

import secrets
import time


def shortuuid(prefix: str = "") -> str:
    """``prefix`` followed by 12 random hex digits."""
    return f"{prefix}{secrets.token_hex(6)}"


def time_ms() -> int:
    """Wall-clock time in whole milliseconds (rounded)."""
    return int(time.time() * 1000 + 0.5)
