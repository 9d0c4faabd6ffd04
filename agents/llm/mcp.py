"""MCP servers as tool sources: ``Agent(mcp_servers=[...])`` / ``AgentSession(mcp_servers=[...])``.

Built on the official MCP Python SDK (``pip install 'roomd[mcp]'``). Each server's tools
become raw function tools: the model sees the server's own name, description and JSON
schema, and a call is forwarded to the server as is.

The SDK's transports live inside anyio task scopes that must be entered and left by
the same task, so each server runs its connection in one task of its own (started by
``initialize()``, ended by ``aclose()``); tool calls from any task go through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ToolError
from .tools import RawFunctionTool

try:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.sse import sse_client
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamablehttp_client
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("MCP support needs the 'mcp' package: pip install 'roomd[mcp]'") from exc

logger = logging.getLogger("roomd.agents.mcp")

MCPTool = RawFunctionTool


class MCPServer(ABC):
    """One MCP server. ``initialize()`` connects, ``list_tools()`` returns its tools (cached
    until ``invalidate_cache()``), ``aclose()`` disconnects. ``client_session_timeout_seconds``
    bounds every request to the server."""

    def __init__(self, *, client_session_timeout_seconds: float) -> None:
        self._read_timeout = client_session_timeout_seconds
        self._client: ClientSession | None = None
        self._connection: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._tools: list[MCPTool] | None = None

    @abstractmethod
    def client_streams(self) -> AbstractAsyncContextManager[Any]:
        """The SDK transport: an async context manager yielding (read, write, ...) streams."""

    @property
    def initialized(self) -> bool:
        return self._client is not None

    def invalidate_cache(self) -> None:
        self._tools = None

    async def initialize(self) -> None:
        """Connect and run the MCP handshake; raises what the connection raised."""
        if self._connection is not None and not self._connection.done():
            return
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._connection = asyncio.get_running_loop().create_task(self._connect(ready, self._stop),
                                                                  name=f"mcp {self}")
        try:
            self._client = await ready
        except BaseException:
            await self.aclose()
            raise

    async def _connect(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        timeout = timedelta(seconds=self._read_timeout) if self._read_timeout else None
        try:
            async with self.client_streams() as streams, \
                    ClientSession(streams[0], streams[1], read_timeout_seconds=timeout) as client:
                await client.initialize()
                ready.set_result(client)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError(f"{self} closed"))
            elif not isinstance(exc, asyncio.CancelledError):
                logger.warning("MCP server %s disconnected: %s", self, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None

    async def list_tools(self) -> list[MCPTool]:
        """The server's tools as function tools (cached)."""
        if self._client is None:
            raise RuntimeError(f"{self} is not initialized: call initialize() first")
        if self._tools is None:
            listed = await self._client.list_tools()
            self._tools = [self._make_tool(t.name, t.description or "", t.inputSchema, getattr(t, "meta", None))
                           for t in listed.tools]
        return list(self._tools)

    def _make_tool(self, name: str, description: str, input_schema: dict[str, Any],
                   meta: dict[str, Any] | None) -> MCPTool:
        async def call(raw_arguments: dict[str, Any]) -> str:
            client = self._client
            if client is None:
                raise ToolError(f"MCP server for tool {name!r} is not connected")
            result = await client.call_tool(name, raw_arguments)
            if result.isError:
                raise ToolError("\n".join(_content_text(part) for part in result.content) or f"{name} failed")
            if len(result.content) == 1:
                return result.content[0].model_dump_json()
            if result.content:
                return json.dumps([part.model_dump(mode="json") for part in result.content])
            raise ToolError(f"MCP tool {name!r} returned no content")

        schema: dict[str, Any] = {"name": name, "description": description, "parameters": input_schema}
        if meta:
            schema["meta"] = meta
        return RawFunctionTool(call, raw_schema=schema)

    async def aclose(self) -> None:
        """Disconnect (for stdio servers: the server process ends)."""
        if self._stop is not None:
            self._stop.set()
        if self._connection is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(max(self._read_timeout, 1.0) + 2.0):
                    await asyncio.shield(self._connection)
            if not self._connection.done():
                self._connection.cancel()
                with contextlib.suppress(BaseException):
                    await self._connection
        self._connection = None
        self._client = None
        self._tools = None


def _content_text(part: Any) -> str:
    text = getattr(part, "text", None)
    return text if isinstance(text, str) else str(part)


class MCPServerHTTP(MCPServer):
    """A server over HTTP: a URL whose path ends in ``mcp`` uses streamable HTTP, any other
    (``.../sse``) the older SSE transport."""

    def __init__(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: float = 5,
        sse_read_timeout: float = 300,
        client_session_timeout_seconds: float = 5,
    ) -> None:
        super().__init__(client_session_timeout_seconds=client_session_timeout_seconds)
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"MCPServerHTTP needs an http(s) URL, got {url!r}")
        self.url = url
        self.headers = headers
        self._timeout = timeout
        self._sse_read_timeout = sse_read_timeout
        self._streamable = urlparse(url).path.lower().rstrip("/").endswith("mcp")

    def client_streams(self) -> AbstractAsyncContextManager[Any]:
        if self._streamable:
            return streamablehttp_client(url=self.url, headers=self.headers,
                                         timeout=timedelta(seconds=self._timeout),
                                         sse_read_timeout=timedelta(seconds=self._sse_read_timeout))
        return sse_client(url=self.url, headers=self.headers, timeout=self._timeout,
                          sse_read_timeout=self._sse_read_timeout)

    def __repr__(self) -> str:
        kind = "streamable_http" if self._streamable else "sse"
        return f"MCPServerHTTP(url={self.url}, transport={kind})"


class MCPServerStdio(MCPServer):
    """A server run as a child process speaking MCP on its stdin/stdout."""

    def __init__(
        self,
        command: str,
        args: list[str],
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        client_session_timeout_seconds: float = 5,
    ) -> None:
        super().__init__(client_session_timeout_seconds=client_session_timeout_seconds)
        self.command = command
        self.args = args
        self.env = env
        self.cwd = cwd

    def client_streams(self) -> AbstractAsyncContextManager[Any]:
        return stdio_client(StdioServerParameters(command=self.command, args=self.args, env=self.env,
                                                  cwd=self.cwd))

    def __repr__(self) -> str:
        return f"MCPServerStdio(command={self.command}, args={self.args}, cwd={self.cwd})"


async def load_tools(servers: Sequence[MCPServer]) -> list[MCPTool]:
    """Connect (if needed) and list the tools of every server, side by side. A server that
    fails is logged and skipped: the agent still runs with the others' tools."""

    async def one(server: MCPServer) -> list[MCPTool]:
        if not server.initialized:
            await server.initialize()
        return await server.list_tools()

    results = await asyncio.gather(*(one(s) for s in servers), return_exceptions=True)
    tools: list[MCPTool] = []
    for server, result in zip(servers, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("could not list the tools of MCP server %s: %s", server, result, exc_info=result)
            continue
        tools.extend(result)
    return tools


__all__ = ["MCPServer", "MCPServerHTTP", "MCPServerStdio", "MCPTool", "load_tools"]
