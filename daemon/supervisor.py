"""The supervisor: owns every long-lived resource and reconciles them toward the config."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
import uvloop

from .config import Config, LiveKitConfig
from .devserver import DevServer, DevServerError
from .logging import configure_logging

log = structlog.get_logger("roomd.supervisor")


def run_daemon(config: Config) -> int:
    """Run until stopped; return the process exit code."""
    configure_logging(config.daemon.log_format, config.daemon.log_level)
    dev_server: DevServer | None = None
    if config.daemon.dev and not config.livekit.url:
        dev_server = DevServer()
        try:
            address = dev_server.start()
        except DevServerError as exc:
            log.error("dev server failed", error=str(exc))
            return 1
        log.info("started local livekit-server --dev", url=address.url)
        config = config.__class__(
            **{**_fields(config), "livekit": LiveKitConfig(
                url=address.url, api_key=address.api_key, api_secret=address.api_secret)},
        )
    try:
        return uvloop.run(_serve(config))
    finally:
        if dev_server is not None:
            dev_server.stop()


def _fields(config: Config) -> dict[str, object]:
    return {name: getattr(config, name) for name in config.__struct_fields__}


async def _serve(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("roomd ready", livekit_url=config.livekit.url)
    with contextlib.suppress(asyncio.CancelledError):
        await stop.wait()
    log.info("roomd stopped")
    return 0
