"""Short random ids for chat items, requests and streams."""

from __future__ import annotations

import secrets


def shortuuid(prefix: str = "") -> str:
    return f"{prefix}{secrets.token_hex(6)}"
