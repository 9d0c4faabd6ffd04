"""The playground's routes on the daemon's HTTP port: served in dev mode (or when the
configuration asks), absent otherwise; the session endpoint mints a token, dispatches the
agent, and refuses what a page of this origin on this machine would not send."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from livekit import api

from daemon_process import AGENT, DaemonProcess
from roomd.daemon.config import LiveKitConfig
from roomd.daemon.ops.playground import Playground, find_livekit_client, livekit_client_version
from roomd.daemon.plugin_runtime import PluginState

pytestmark = pytest.mark.livekit_server


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def post(daemon: DaemonProcess, path: str, body: object, **headers: str) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await asyncio.to_thread(_post, daemon.http + path, data,
                                   {"Content-Type": "application/json", **headers})


async def test_dev_daemon_serves_the_page_and_hands_out_sessions(
        livekit_server, tmp_path: Path, daemons) -> None:
    daemon = DaemonProcess(livekit_server, tmp_path, config={"daemon": {"dev": True}})
    daemons.append(daemon)
    await daemon.start()
    printed = await daemon.wait_event(lambda e: str(e.get("event", "")).startswith("playground"))
    assert printed["url"] == daemon.http + "/playground/"

    code, page = await daemon.get("/playground/")
    assert code == 200 and "<title>roomd playground</title>" in page
    code, script = await daemon.get("/playground/playground.js")
    assert code == 200 and "registerTextStreamHandler" in script
    code, agents = await daemon.get("/playground/api/agents")
    listed = json.loads(agents)
    assert code == 200 and listed["agents"] == [{"plugin": "probe", "agent_name": AGENT}]
    fetched = find_livekit_client() is not None
    assert listed["livekit_client"] == (livekit_client_version() if fetched else None)
    code, sdk = await daemon.get("/playground/vendor/livekit-client.js")
    assert code == (200 if fetched else 404)
    assert ("LivekitClient" in sdk) if fetched else ("packaging/web-client.sh" in sdk)

    code, grant = await post(daemon, "/playground/api/session", {"agent_name": AGENT})
    assert code == 200, grant
    assert grant["url"] == livekit_server.url and grant["agent_name"] == AGENT
    claims = api.TokenVerifier(livekit_server.api_key, livekit_server.api_secret).verify(grant["token"])
    assert claims.identity == grant["identity"] and claims.video.room == grant["room"]
    assert [agent.agent_name for agent in claims.room_config.agents] == [AGENT]

    code, refused = await post(daemon, "/playground/api/session", {"agent_name": "nobody"})
    assert code == 404 and AGENT in refused["error"]
    code, refused = await post(daemon, "/playground/api/session", b"agent_name=x",
                               **{"Content-Type": "application/x-www-form-urlencoded"})
    assert code == 403 and "JSON" in refused["error"]
    code, refused = await post(daemon, "/playground/api/session", {"agent_name": AGENT},
                               Origin="http://example.com")
    assert code == 403 and "cross-origin" in refused["error"]
    code, refused = await post(daemon, "/playground/api/session", {"agent_name": AGENT},
                               Host="attacker.example:8081")
    assert code == 403 and "Host" in refused["error"]
    code, refused = await post(daemon, "/playground/api/session", {"agent": AGENT})
    assert code == 400 and "bad session request" in refused["error"]


@pytest.mark.parametrize("http_section, served", [({}, False), ({"playground": True}, True)])
async def test_production_daemon_serves_the_page_only_when_configured(
        livekit_server, tmp_path: Path, daemons, http_section: dict, served: bool) -> None:
    daemon = DaemonProcess(livekit_server, tmp_path, config={"http": http_section})
    daemons.append(daemon)
    await daemon.start()
    code, _ = await daemon.get("/playground/")
    assert code == (200 if served else 404)
    code, _ = await daemon.get("/playground/api/agents")
    assert code == (200 if served else 404)
    assert any(str(e.get("event", "")).startswith("playground") for e in daemon.events) is served


async def test_session_endpoint_refuses_a_peer_off_the_loopback_interface() -> None:
    record = SimpleNamespace(state=PluginState.SERVING, agent_name="receptionist")
    view = SimpleNamespace(plugins={"receptionist": record})
    server = LiveKitConfig(url="ws://127.0.0.1:7880", api_key="k", api_secret="s" * 32)
    playground = Playground(view, lambda: server)  # type: ignore[arg-type]
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        ("192.0.2.7", 40000) if name == "peername" else default)
    request = make_mocked_request(
        "POST", "/playground/api/session", transport=transport,
        headers={"Content-Type": "application/json", "Host": "127.0.0.1:8081"})
    response = await playground._session(request)
    assert response.status == 403
    assert "loopback" in json.loads(response.body)["error"]
