"""The link tests' runner: starts ServerLinks against a server and closes them all."""

from __future__ import annotations

import asyncio

from roomd.daemon.admission import Admission
from roomd.daemon.config import LinkConfig, LiveKitConfig
from roomd.daemon.link import AcceptEveryJob, AgentRegistration, ServerLink

from launchers import SteeredLauncher

FAST = LinkConfig(max_retry=3, reconnect_backoff_max=0.2, status_interval=0.5,
                  assignment_timeout=1.0, ping_interval=0.5)


class LinkRunner:
    """Runs links for a test and closes every one of them afterwards."""

    def __init__(self) -> None:
        self.tasks: list[tuple[ServerLink, asyncio.Task[None]]] = []

    def start(self, url: str, *, launcher: object | None = None, admission: Admission | None = None,
              config: LinkConfig = FAST, agent_name: str = "", evaluator: object | None = None,
              api_key: str = "key", api_secret: str = "secret-secret-secret-secret-secret") -> ServerLink:
        link = ServerLink(
            livekit=LiveKitConfig(url=url, api_key=api_key, api_secret=api_secret),
            config=config,
            registration=AgentRegistration(plugin="test", agent_name=agent_name, version="0"),
            admission=admission or Admission(max_jobs=0, load_threshold=1.0, load=lambda: 0.0),
            evaluator=evaluator or AcceptEveryJob(),
            launcher=launcher or SteeredLauncher(),  # type: ignore[arg-type]
        )
        self.tasks.append((link, asyncio.create_task(link.run())))
        return link

    async def close(self) -> None:
        for link, task in self.tasks:
            await link.aclose()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
