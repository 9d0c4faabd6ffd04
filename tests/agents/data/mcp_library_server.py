"""A small MCP server for the tests (FastMCP from the official SDK).

    python mcp_library_server.py stdio
    python mcp_library_server.py streamable-http PORT    # http://127.0.0.1:PORT/mcp
    python mcp_library_server.py sse PORT                # http://127.0.0.1:PORT/sse
"""

from __future__ import annotations

import sys

from mcp.server.fastmcp import FastMCP

HOURS = {"central": "9:00 to 17:00", "harbour": "10:00 to 14:00"}

server = FastMCP("roomd-test-library", host="127.0.0.1", port=int(sys.argv[2]) if len(sys.argv) > 2 else 8000)


@server.tool()
def opening_hours(branch: str) -> str:
    """The opening hours of a library branch."""
    if branch not in HOURS:
        raise ValueError(f"no branch called {branch}")
    return f"The {branch} branch is open {HOURS[branch]}."


@server.tool()
def count_books(shelf: str, minimum: int = 0) -> int:
    """How many books are on a shelf (at least ``minimum``)."""
    return max(len(shelf) * 10, minimum)


if __name__ == "__main__":
    server.run(sys.argv[1])  # type: ignore[arg-type]
