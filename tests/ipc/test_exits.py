"""``exit_now``: the way out for processes whose threads cannot be stopped."""

from __future__ import annotations

import subprocess
import sys


def test_exit_now_flushes_both_streams_and_skips_teardown() -> None:
    script = (
        "import atexit, sys, threading, time\n"
        "from roomd.ipc.exits import exit_now\n"
        "atexit.register(lambda: print('teardown ran'))\n"
        "threading.Thread(target=time.sleep, args=(60,)).start()  # teardown would wait for it\n"
        "sys.stdout.write('out'); sys.stderr.write('err')\n"
        "exit_now(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out", "err")
