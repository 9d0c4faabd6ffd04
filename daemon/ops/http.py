"""The operations endpoint: health, readiness, status, metrics, and reload.

  GET  /healthz   200 while the event loop answers (it is the loop that answers)
  GET  /readyz    200 only when every agent is registered, nothing drains, no pool is
                  FATAL and no plugin FAILED; 503 with the reasons otherwise
  GET  /status    JSON (``status.DaemonStatus``), never secrets
  GET  /metrics   Prometheus text format
  POST /reload    runs a reload and answers ``{"ok", "generation", "detail"}`` once it is
                  done; refused (403) unless the peer is on the loopback interface, so
                  exposing the port for Prometheus never exposes control, and (415) unless
                  it is a JSON request or carries ``X-Roomd-Reload`` (no browser page can
                  send either cross-origin without a preflight). Reloads asked for while one
                  runs share its result.

Connections are bounded (``http_guard``): a request must arrive within 10 s, and at most 64
connections stay open, so half-sent requests cannot hold the endpoint or the daemon's files.

More routes (the playground, ``playground.py``) come in through ``routes``.

It binds ``daemon.http_host``/``daemon.http_port`` (127.0.0.1:8081 by default); port 0
picks a free port, and the bound address is logged ("http listening").
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence

import msgspec
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .http_guard import IDLE_TIMEOUT, ConnectionGuard
from .metrics import DaemonMetrics
from .status import collect_status, readiness
from .view import DaemonView

log = structlog.get_logger("roomd.http")

_JSON = "application/json"
RELOAD_HEADER = "X-Roomd-Reload"


def is_loopback(address: str | None) -> bool:
    if not address:
        return False  # a unix socket peer has no address; we never listen on one
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class OpsHttpServer:
    def __init__(self, view: DaemonView, metrics: DaemonMetrics, *, host: str, port: int,
                 routes: Sequence[Callable[[web.Application], None]] = ()) -> None:
        self._view = view
        self._routes = routes
        self._metrics = metrics
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self._guard = ConnectionGuard(self._protocol)
        self._sweeper: asyncio.Task[None] | None = None
        self.addresses: list[tuple[str, int]] = []

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._guard.middleware])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics_handler)
        app.router.add_post("/reload", self._reload)
        for add_routes in self._routes:
            add_routes(app)
        return app

    async def start(self) -> None:
        """Bind and serve; ``OSError`` (address in use, bad host) propagates to the caller."""
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False,
                               keepalive_timeout=IDLE_TIMEOUT)
        await runner.setup()
        self._runner = runner
        try:
            # Our own listener instead of a TCPSite: every connection goes through the guard.
            self._server = await asyncio.get_running_loop().create_server(
                self._guard, self._host, self._port, reuse_address=True)
        except BaseException:
            self._runner = None
            await runner.cleanup()
            raise
        self._sweeper = asyncio.get_running_loop().create_task(self._guard.sweep(), name="http sweeper")
        self.addresses = [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in self._server.sockets]
        for host, port in self.addresses:
            log.info("http listening", host=host, port=port, url=f"http://{_netloc(host, port)}/")

    def _protocol(self) -> object:
        assert self._runner is not None and self._runner.server is not None
        return self._runner.server()

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        server, self._server = self._server, None
        if server is not None:
            server.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()  # closes the connections still open

    # -- handlers ------------------------------------------------------------------------
    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        result = readiness(self._view)
        return web.Response(text=result.text(), status=200 if result.ready else 503)

    async def _status(self, _request: web.Request) -> web.Response:
        body = msgspec.json.encode(collect_status(self._view))
        return web.Response(body=body, content_type=_JSON)

    async def _metrics_handler(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _reload(self, request: web.Request) -> web.Response:
        if not is_loopback(request.remote):
            log.warning("reload refused: not a loopback peer", peer=request.remote)
            return web.json_response({"ok": False, "generation": self._view.generation,
                                      "detail": "reload is only accepted from the loopback "
                                                "interface"}, status=403)
        if request.content_type != _JSON and RELOAD_HEADER not in request.headers:
            # A "simple" request (form or text/plain POST) is what a web page in the operator's
            # browser may send to 127.0.0.1 without asking; a JSON body or a custom header is not.
            log.warning("reload refused: not a JSON or X-Roomd-Reload request", peer=request.remote,
                        content_type=request.content_type)
            return web.json_response({"ok": False, "generation": self._view.generation,
                                      "detail": "POST /reload needs Content-Type: application/json "
                                                f"or an {RELOAD_HEADER} header"}, status=415)
        log.info("reload requested over http", peer=request.remote)
        # Shielded: a client that hangs up must not cancel a reload half way; the
        # supervisor finishes it and only the answer is lost.
        result = await asyncio.shield(self._view.request_reload())
        return web.json_response({"ok": result.ok, "generation": result.generation,
                                  "detail": result.detail}, status=200 if result.ok else 409)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
