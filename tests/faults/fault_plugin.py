"""The agent plugin the fault suite installs: one job behaviour per job metadata ``action``.

- leave:   join, announce, ``ctx.shutdown()`` (a normal, successful end)
- hold:    stay until shut down or every other participant left
- helpers: start helper processes (a ``sleep`` it never waits for, one a shell leaves
           behind, one that exits at once), announce their pids, then leave
- grow:    start a helper that allocates memory steadily, announce its pid, then hold
- burst:   announce, then allocate memory steadily in the job's own process
- lazy:    import a module of its own package only now, announce its version, then leave
- linger:  stay 3 s, then leave
- garbage: write bytes that are no message into its pipe to the supervisor, then hold

``prewarm`` is chosen per installed version: "ok", "raise" (a broken upgrade) or "hang".
"""

from __future__ import annotations

AGENT = "roomd-faults"

SOURCE = '''
import asyncio
import json
import os
import subprocess
import sys
import time

from roomd.agents import JobContext, JobProcess, WorkerOptions

VERSION = {version!r}
PREWARM = {prewarm!r}
# A helper that grows by 16 MB every 50 ms (about 320 MB/s) up to 2 GB, then waits.
GROW = (
    "import time\\n"
    "blocks = []\\n"
    "while len(blocks) < 128:\\n"
    "    blocks.append(bytearray(16 * 1024 * 1024))\\n"
    "    time.sleep(0.05)\\n"
    "time.sleep(3600)\\n"
)


def prewarm(proc: JobProcess) -> None:
    if PREWARM == "raise":
        raise RuntimeError("this version's prewarm is broken")
    if PREWARM == "hang":
        time.sleep(3600)


async def entrypoint(ctx: JobContext) -> None:
    metadata = json.loads(ctx.job.metadata or "{{}}")
    action = metadata.get("action", "leave")
    await ctx.connect()
    room = ctx.room
    attributes = {{"plugin_version": VERSION, "job_pid": str(os.getpid())}}
    if action == "lazy":
        from . import lazy  # first imported here, long after the zygote loaded the plugin

        attributes["lazy_version"] = lazy.VERSION
    elif action == "helpers":
        direct = subprocess.Popen(["sleep", "30"])
        shell = subprocess.Popen(["sh", "-c", "sleep 30 & echo $!"], stdout=subprocess.PIPE)
        left_behind = int(shell.stdout.readline())
        shell.wait()
        quick = subprocess.Popen(["true"])
        attributes["helper_pids"] = f"{{direct.pid}},{{left_behind}},{{quick.pid}}"
    elif action == "grow":
        attributes["helper_pids"] = str(subprocess.Popen([sys.executable, "-c", GROW]).pid)
    await room.local_participant.set_attributes(attributes)
    if action == "burst":
        blocks = []
        while len(blocks) < 128:  # the same pace as GROW, in this process
            blocks.append(bytearray(16 * 1024 * 1024))
            await asyncio.sleep(0.05)
    if action in ("leave", "lazy", "helpers"):
        ctx.shutdown(f"{{action}} done")
        return
    if action == "linger":
        await asyncio.sleep(3)
        ctx.shutdown("lingered")
        return
    if action == "garbage":
        os.write(ctx.proc._ipc_fileno, b"\\x00\\x00\\x00\\x08not-msgp")
    everyone_left = asyncio.Event()
    room.on("participant_disconnected", lambda _p: None if room.remote_participants else everyone_left.set())
    await everyone_left.wait()
    ctx.shutdown("every other participant left")


options = WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm, agent_name={agent!r})
'''


def source(version: str = "1.0.0", prewarm: str = "ok", agent: str = AGENT) -> str:
    return SOURCE.format(version=version, prewarm=prewarm, agent=agent)


def lazy_module(version: str) -> str:
    return f"VERSION = {version!r}\n"
