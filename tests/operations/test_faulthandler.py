"""A fatal signal leaves the Python stack in the log (the journal under systemd).

systemd's watchdog ends a stuck daemon with SIGABRT; without faulthandler that leaves only
"status=6/ABRT". Here the supervisor and a child are sent SIGABRT and must each print
"Fatal Python error: Aborted" and their threads' stacks before they die. (The supervisor
is aborted only when it has no children: its orphans would outlive the test.)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from roomd.daemon.devserver import DevServerAddress

from daemon_process import DaemonProcess

# No server answers here: the supervisor and its pool run anyway (the link keeps retrying).
NOWHERE = DevServerAddress("ws://127.0.0.1:9", "devkey", "secret")


def _stacks(daemon: DaemonProcess, pid: int) -> bool:
    text = "".join(daemon.lines)
    return "Fatal Python error: Aborted" in text and "(most recent call first)" in text \
        and not psutil.pid_exists(pid)


async def test_sigabrt_leaves_the_stack_of_a_child(tmp_path: Path) -> None:
    daemon = DaemonProcess(NOWHERE, tmp_path, config={
        "link": {"max_retry": 1000, "reconnect_backoff_max": 1.0}})
    await daemon.start(ready=False)
    try:
        await daemon.wait_event(lambda e: e.get("event") == "pool state" and e.get("new") == "ready")
        listening = await daemon.wait_event(lambda e: e.get("event") == "http listening")
        daemon.http = f"http://127.0.0.1:{listening['port']}"
        child = (await daemon.status())["children"][0]["pid"]
        os.kill(child, signal.SIGABRT)
        await daemon.until(_async(lambda: _stacks(daemon, child)), timeout=20)
        assert daemon.returncode is None  # the supervisor lives on and replaces the child
    finally:
        assert await daemon.stop() == 0


async def test_sigabrt_leaves_the_stack_of_the_supervisor(tmp_path: Path) -> None:
    # No plugin, so no child: an aborted supervisor leaves no orphan behind.
    daemon = DaemonProcess(NOWHERE, tmp_path, config={"plugins": {"enabled": ["none-here"]}})
    await daemon.start(ready=False)
    try:
        await daemon.wait_state("ready")
        daemon.signal(signal.SIGABRT)
        assert await daemon.wait(30) == -signal.SIGABRT
        text = "".join(daemon.lines)
        assert "Fatal Python error: Aborted" in text, text[-2000:]
        assert "most recent call first" in text and "supervisor.py" in text, text[-2000:]
    finally:
        if daemon.returncode is None:
            await daemon.stop()


def _async(check):  # type: ignore[no-untyped-def]
    async def run() -> bool:
        return bool(check())
    return run
