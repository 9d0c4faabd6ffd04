"""The playground: a page on the daemon's HTTP port to talk to an installed agent from a
browser (``roomd run --dev``, or ``[http] playground = true``).

  GET  /playground/                     the page (``web/``: our HTML, JS and CSS, no build)
  GET  /playground/vendor/livekit-client.js
                                        LiveKit's browser SDK, fetched from npm at install
                                        time by packaging/web-client.sh, never committed
  GET  /playground/api/agents           the installed agents and whether the SDK is there
  POST /playground/api/session          ``{"agent_name"}``: a room and a participant token
                                        for it that dispatches the agent; loopback only

The session endpoint hands out tokens for the daemon's LiveKit server, so it answers only
loopback peers, and only requests a page of this origin would make: a JSON body (another
site's form cannot send one without a CORS preflight we never answer), an ``Origin`` equal
to ``Host`` when present, and a loopback ``Host`` (no DNS rebinding).
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import msgspec
import structlog
from aiohttp import web

from roomd.daemon.config import LiveKitConfig
from roomd.daemon.devserver import cache_dir
from roomd.daemon.plugin_runtime import PluginState

from .http import is_loopback
from .view import DaemonView

log = structlog.get_logger("roomd.playground")

PREFIX = "/playground/"
_ASSETS = {"index.html": "text/html", "playground.js": "text/javascript",
           "playground.css": "text/css"}
_CLIENT_FILE = "livekit-client.umd.js"
SYSTEM_WEB_DIR = Path("/usr/share/roomd/web")  # packaging/build-deb.sh puts the SDK there
FETCH_HINT = "bash packaging/web-client.sh   (or: bash packaging/devenv.sh true)"


def _web() -> resources.abc.Traversable:
    return resources.files("roomd.daemon.ops") / "web"


def livekit_client_version() -> str:
    return (_web() / "livekit-client.version").read_text().strip()


def find_livekit_client() -> Path | None:
    """The fetched SDK file: in the user's cache, else the .deb's copy."""
    name = f"livekit-client-{livekit_client_version()}"
    for base in (cache_dir() / "web", SYSTEM_WEB_DIR):
        candidate = base / name / _CLIENT_FILE
        if candidate.is_file():
            return candidate
    return None


class AgentChoice(msgspec.Struct, frozen=True):
    plugin: str
    agent_name: str


class AgentList(msgspec.Struct, frozen=True):
    agents: list[AgentChoice]
    livekit_client: str | None  # the SDK's version when it is there, else None
    fetch_hint: str


class SessionRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    agent_name: str


class SessionGrant(msgspec.Struct, frozen=True):
    url: str
    token: str
    room: str
    identity: str
    agent_name: str


class Playground:
    """Adds the playground's routes to the ops HTTP application."""

    def __init__(self, view: DaemonView, server: Callable[[], LiveKitConfig]) -> None:
        self._view = view
        self._server = server  # read per request: a reload may change the server

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/playground", self._redirect)
        app.router.add_get(PREFIX, self._page)
        app.router.add_get(PREFIX + "vendor/livekit-client.js", self._client)
        app.router.add_get(PREFIX + "api/agents", self._agents)
        app.router.add_post(PREFIX + "api/session", self._session)
        app.router.add_get(PREFIX + "{name}", self._asset)

    def url(self, host: str, port: int) -> str:
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"http://{netloc}{PREFIX}"

    # -- the page ------------------------------------------------------------------------
    async def _redirect(self, _request: web.Request) -> web.Response:
        raise web.HTTPFound(PREFIX)

    async def _page(self, _request: web.Request) -> web.Response:
        return _asset_response("index.html")

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _ASSETS:
            raise web.HTTPNotFound(text=f"no playground file {name!r}\n")
        return _asset_response(name)

    async def _client(self, _request: web.Request) -> web.StreamResponse:
        path = find_livekit_client()
        if path is None:
            raise web.HTTPNotFound(text=f"livekit-client {livekit_client_version()} is not "
                                        f"fetched; run: {FETCH_HINT}\n")
        return web.FileResponse(path, headers={"Content-Type": "text/javascript",
                                               "Cache-Control": "no-cache"})

    # -- the API -------------------------------------------------------------------------
    def _choices(self) -> list[AgentChoice]:
        return sorted(
            (AgentChoice(plugin=name, agent_name=record.agent_name)
             for name, record in self._view.plugins.items()
             if record.state is PluginState.SERVING and record.agent_name),
            key=lambda choice: choice.plugin)

    async def _agents(self, _request: web.Request) -> web.Response:
        found = find_livekit_client() is not None
        body = AgentList(agents=self._choices(), fetch_hint=FETCH_HINT,
                         livekit_client=livekit_client_version() if found else None)
        return _json(body)

    async def _session(self, request: web.Request) -> web.Response:
        refusal = _refusal(request)
        if refusal:
            log.warning("playground session refused", peer=request.remote, reason=refusal)
            return _error(403, refusal)
        try:
            wanted = msgspec.json.decode(await request.read(), type=SessionRequest)
        except msgspec.DecodeError as exc:
            return _error(400, f"bad session request: {exc}")
        served = {choice.agent_name for choice in self._choices()}
        if wanted.agent_name not in served:
            return _error(404, f"no agent {wanted.agent_name!r} is served here; serving: "
                               + (", ".join(sorted(served)) or "none"))
        server = self._server()
        if not server.url or not server.api_key or not server.api_secret:
            return _error(503, "the daemon has no LiveKit server credentials to mint a token")
        grant = _grant(server, wanted.agent_name)
        log.info("playground session", room=grant.room, agent_name=grant.agent_name)
        return _json(grant)


def _grant(server: LiveKitConfig, agent_name: str) -> SessionGrant:
    """A new room and a token to join it that dispatches ``agent_name`` there: the server
    sends the agent when the page's join creates the room, so it never waits in an empty
    room nor misses what the agent says first."""
    from livekit import api  # only when a page asks: the daemon itself does not need it

    suffix = secrets.token_hex(4)
    room, identity = f"playground-{suffix}", f"playground-user-{suffix}"
    token = (api.AccessToken(server.api_key, server.api_secret)
             .with_identity(identity).with_name("you")
             .with_grants(api.VideoGrants(room_join=True, room=room))
             .with_room_config(api.RoomConfiguration(
                 agents=[api.RoomAgentDispatch(agent_name=agent_name)]))
             .to_jwt())
    browser_url = server.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return SessionGrant(url=browser_url, token=token, room=room, identity=identity,
                        agent_name=agent_name)


def _refusal(request: web.Request) -> str:
    """Why a session request is refused, or "" when it is accepted."""
    if not is_loopback(request.remote):
        return "the playground hands out tokens to loopback clients only"
    if request.content_type != "application/json":
        return "a session request must be JSON (application/json)"
    host = request.headers.get("Host", "")
    if not _loopback_host(host):
        return f"the Host header {host!r} is not a loopback address"
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"http://{host}":
        return f"cross-origin request from {origin!r}"
    return ""


def _loopback_host(host: str) -> bool:
    name = urllib.parse.urlsplit(f"//{host}").hostname or ""
    return name == "localhost" or is_loopback(name)


def _asset_response(name: str) -> web.Response:
    body = (_web() / name).read_bytes()
    return web.Response(body=body, content_type=_ASSETS[name],
                        headers={"Cache-Control": "no-cache"})


def _json(value: msgspec.Struct) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), content_type="application/json")


def _error(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)
