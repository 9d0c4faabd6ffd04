"""The supervisor's zygote handle against a zygote that misbehaves (a fake one, for faults
the real zygote does not produce on demand)."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import psutil
import pytest

from roomd.daemon.pool import zygote as zygote_module
from roomd.daemon.pool.zygote import Zygote, ZygoteError

# Stands in for `python -m roomd.child.zygote ...`: says it is ready, then answers
# the first Fork only after the supervisor has given up on it, right before the second.
SLOW_ZYGOTE = f"""#!{sys.executable}
import os, socket, subprocess, sys, time
import msgspec
from roomd.ipc import PluginDescription
from roomd.ipc.control import ControlMessage, Forked, ZygoteReady

fd = int(sys.argv[sys.argv.index("--control-fd") + 1])
control = socket.socket(fileno=fd)
decoder, encoder = msgspec.msgpack.Decoder(ControlMessage), msgspec.msgpack.Encoder()
control.send(encoder.encode(ZygoteReady(pid=os.getpid(), description=PluginDescription(
    agent_name="slow", worker_type="room"))))
pending = []
while True:
    data, fds, _flags, _addr = socket.recv_fds(control, 1 << 16, 4)
    if not data:
        break
    for passed in fds:
        os.close(passed)
    pending.append(decoder.decode(data).child_id)
    if len(pending) == 2:  # the late reply first, then the one being waited for
        for child_id in pending:
            child = subprocess.Popen(["sleep", "60"])
            with open(os.path.join(os.path.dirname(__file__), "pids"), "a") as pids:
                pids.write(f"{{child.pid}}\\n")
            control.send(encoder.encode(Forked(child_id=child_id, pid=child.pid)))
"""


async def test_a_late_fork_reply_kills_the_unowned_child(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "slow-zygote"
    fake.write_text(SLOW_ZYGOTE)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(zygote_module, "FORK_TIMEOUT", 0.5)
    zygote = Zygote(target="x:y", plugin="slow", generation=1, ready_timeout=10, python=str(fake))
    await zygote.start()
    try:
        with pytest.raises(ZygoteError, match="did not fork"):
            await zygote.fork()
        pid, sock = await zygote.fork()
        sock.close()
        late, ours = (int(line) for line in (tmp_path / "pids").read_text().split())
        assert pid == ours
        for _ in range(100):  # killed at once; its reaper runs on the loop
            if not psutil.pid_exists(late) or psutil.Process(late).status() == psutil.STATUS_ZOMBIE:
                break
            await asyncio.sleep(0.05)
        assert not psutil.pid_exists(late) or psutil.Process(late).status() == psutil.STATUS_ZOMBIE
        assert psutil.Process(ours).is_running()
        os.kill(ours, 9)
    finally:
        await zygote.aclose(timeout=2)
