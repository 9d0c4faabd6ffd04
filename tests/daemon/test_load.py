"""The load reported to the server measures this service, not its neighbours."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from roomd.daemon.load import LoadMonitor, ProcessTreeCpu

# Spins until it has used the given CPU seconds (its own clock), then exits.
BURN = "import sys,time\nend=time.process_time()+float(sys.argv[1])\nwhile time.process_time()<end: pass\n"


def test_process_tree_counts_the_cpu_time_of_our_children() -> None:
    tree = ProcessTreeCpu(capacity=1.0)
    child = subprocess.Popen([sys.executable, "-c", BURN + "time.sleep(30)", "0.5"])
    try:
        tree.sample()
        started = time.monotonic()
        # Wait until the child has burnt its 0.5 s: an event (its own CPU clock), not a guess.
        while sum(psutil.Process(child.pid).cpu_times()[:2]) < 0.45:
            time.sleep(0.05)
        load = tree.sample()
        elapsed = time.monotonic() - started
    finally:
        child.kill()
        child.wait()
    assert load is not None
    # CPU seconds the sample accounted for; the child's start-up before the first sample is excluded.
    assert load * elapsed >= 0.3, (load, elapsed)


def test_a_busy_neighbour_is_not_our_load() -> None:
    tree = ProcessTreeCpu(capacity=1.0)
    # Double fork: the burner is re-parented away from us, like a build in another shell.
    neighbour = subprocess.run(
        [sys.executable, "-c",
         "import subprocess,sys; p=subprocess.Popen([sys.executable,'-c',sys.argv[1],'0.5']);"
         "print(p.pid)", BURN],
        capture_output=True, text=True, check=True)
    pid = int(neighbour.stdout)
    tree.sample()
    started = time.monotonic()
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)
    load = tree.sample()
    assert load is not None
    assert load * (time.monotonic() - started) < 0.2, load


def fake_cgroup(tmp_path: Path, procs: list[int], usage_usec: int) -> Path:
    (tmp_path / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in procs))
    (tmp_path / "cpu.stat").write_text(f"usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\n")
    (tmp_path / "cpu.max").write_text("100000 100000\n")  # CPUQuota=100%: one CPU
    return tmp_path


def test_cgroup_is_used_only_when_it_holds_nothing_but_us(tmp_path: Path) -> None:
    monitor = LoadMonitor(cgroup_dir=fake_cgroup(tmp_path, [os.getpid()], 0))
    monitor.sample()
    assert monitor.source == "cgroup"
    fake_cgroup(tmp_path, [os.getpid(), 1], 0)  # someone else joined our cgroup
    monitor.sample()
    assert monitor.source == "process tree"


def test_cgroup_load_is_a_share_of_the_quota(tmp_path: Path) -> None:
    cgroup = fake_cgroup(tmp_path, [os.getpid()], 0)
    monitor = LoadMonitor(cgroup_dir=cgroup)
    monitor.sample()
    started = time.monotonic()
    time.sleep(0.2)
    # Half a CPU-second per second of wall time, under a one-CPU quota.
    fake_cgroup(tmp_path, [os.getpid()], int((time.monotonic() - started) * 0.5e6))
    value = monitor.sample()
    assert 0.3 < value <= 0.5, value
