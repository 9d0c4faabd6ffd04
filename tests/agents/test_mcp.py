"""MCP servers' tools in a session: a FastMCP server started by the test (over stdio, over
streamable HTTP and over SSE on 127.0.0.1), a session whose ScriptedLLM calls its tools."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from roomd.agents.llm import FunctionCallOutput, mcp
from roomd.agents.testing import ScriptedLLM, ScriptedReply, ToneTTS, tool_call
from roomd.agents.voice import Agent, AgentSession, MemoryAudioOutput, MemoryTextOutput

SERVER = Path(__file__).parent / "data" / "mcp_library_server.py"
TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test server over HTTP; yields its URL (transport from the test's parameter)."""
    transport = request.param
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), transport, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):  # until it listens (the SDK's imports take a moment)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, "the MCP test server exited"
                import time

                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/{'mcp' if transport == 'streamable-http' else 'sse'}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def stdio_server() -> AsyncIterator[mcp.MCPServerStdio]:
    server = mcp.MCPServerStdio(sys.executable, [str(SERVER), "stdio"], client_session_timeout_seconds=10)
    yield server
    await server.aclose()


async def run_session(llm: ScriptedLLM, *, session_servers: Any = None, agent_servers: Any = None,
                      question: str = "when is central open") -> AgentSession[Any]:
    kwargs: dict[str, Any] = {"mcp_servers": session_servers} if session_servers is not None else {}
    session: AgentSession[Any] = AgentSession(llm=llm, tts=ToneTTS(seconds_per_char=0.001), **kwargs)
    session.output.audio = MemoryAudioOutput(sample_rate=48000, speed=20.0)
    session.output.transcription = MemoryTextOutput()
    agent_kwargs: dict[str, Any] = {"mcp_servers": agent_servers} if agent_servers is not None else {}
    await session.start(Agent(instructions="You answer library questions.", **agent_kwargs))
    await asyncio.wait_for(session.generate_reply(user_input=question).wait_for_playout(), TIMEOUT)
    return session


def tool_outputs(session: AgentSession[Any]) -> list[FunctionCallOutput]:
    return [item for item in session.history.items if isinstance(item, FunctionCallOutput)]


async def test_stdio_server_tools_are_called_by_the_session(stdio_server: mcp.MCPServerStdio) -> None:
    llm = ScriptedLLM([
        ScriptedReply(tool_calls=[tool_call("opening_hours", branch="central")]),
        "Central is open from nine to five.",
    ])
    session = await run_session(llm, session_servers=[stdio_server])
    try:
        assert sorted(llm.tool_names[0]) == ["count_books", "opening_hours"]
        (output,) = tool_outputs(session)
        assert not output.is_error
        assert json.loads(output.output)["text"] == "The central branch is open 9:00 to 17:00."
        # the follow-up request carried the server's answer to the model
        assert any(isinstance(i, FunctionCallOutput) for i in llm.requests[1].items)
        assert [m.text_content for m in session.history.messages if m.role == "assistant"] == [
            "Central is open from nine to five."]
        # the model sees the server's own schema
        tool = next(t for t in await stdio_server.list_tools() if t.name == "count_books")
        assert tool.raw_schema["parameters"]["required"] == ["shelf"]
        assert "books are on a shelf" in tool.raw_schema["description"]
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)
    assert not stdio_server.initialized  # the session closed the server it connected


async def test_a_failing_mcp_tool_reports_the_servers_error(stdio_server: mcp.MCPServerStdio) -> None:
    llm = ScriptedLLM([
        ScriptedReply(tool_calls=[tool_call("opening_hours", branch="atlantis")]),
        "I could not find that branch.",
    ])
    session = await run_session(llm, agent_servers=[stdio_server])
    try:
        (output,) = tool_outputs(session)
        assert output.is_error and "no branch called atlantis" in output.output
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


@pytest.mark.parametrize("http_server", ["streamable-http", "sse"], indirect=True)
async def test_http_server_tools_are_called_by_the_session(http_server: str) -> None:
    server = mcp.MCPServerHTTP(http_server, client_session_timeout_seconds=10)
    llm = ScriptedLLM([
        ScriptedReply(tool_calls=[tool_call("count_books", shelf="poetry", minimum=5)]),
        "There are sixty books.",
    ])
    session = await run_session(llm, agent_servers=[server], question="how many poetry books")
    try:
        (output,) = tool_outputs(session)
        assert json.loads(output.output)["text"] == "60"
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)
        await server.aclose()


async def test_an_unreachable_server_is_skipped_and_the_agent_still_answers() -> None:
    dead = mcp.MCPServerHTTP(f"http://127.0.0.1:{free_port()}/mcp", timeout=2, client_session_timeout_seconds=2)
    llm = ScriptedLLM(["Hello."])
    session = await run_session(llm, session_servers=[dead], question="hi")
    try:
        assert llm.tool_names == [[]]
        assert [m.text_content for m in session.history.messages if m.role == "assistant"] == ["Hello."]
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)


async def test_an_agents_empty_server_list_overrides_the_sessions(stdio_server: mcp.MCPServerStdio) -> None:
    llm = ScriptedLLM(["No tools here."])
    session = await run_session(llm, session_servers=[stdio_server], agent_servers=[], question="hi")
    try:
        assert llm.tool_names == [[]] and not stdio_server.initialized
    finally:
        await asyncio.wait_for(session.aclose(), TIMEOUT)
